"""Tests of decoding_core.datasets.files: a data set from the user's own files."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from decoding_core.datasets import HAXBY_CATEGORIES, load_files
from decoding_core.errors import DecodingInputError


def _mask_array(image):
    return np.asanyarray(image.dataobj) != 0


@pytest.fixture(scope="module")
def vt_dataset(haxby_vt_dir):
    return load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                      mask=haxby_vt_dir / "mask_vt.nii.gz")


def test_load_files_real_haxby_vt(vt_dataset, haxby_vt_dir):
    ds = vt_dataset
    assert ds.shape == (40, 64, 64, 864) and ds.n_volumes == 864
    assert ds.tr == 2.5 and ds.n_runs == 12 and ds.run_column == "chunks"
    assert set(ds.masks) == {"uploaded"} and int(_mask_array(ds.masks["uploaded"]).sum()) == 577
    assert ds.voxel_size == pytest.approx((3.5, 3.75, 3.75))
    assert set(ds.conditions) == set(HAXBY_CATEGORIES)
    assert ds.anat_img.shape == (40, 64, 64)  # the mean image as background
    mean = np.asanyarray(ds.anat_img.dataobj)
    first = np.asanyarray(nib.load(haxby_vt_dir / "bold_vt.nii.gz").dataobj[..., :1])
    assert (mean[first[..., 0] == 0] == 0).mean() > 0.99 and mean.max() > 100
    assert ds.name == "upload" and "bold_vt.nii.gz" in ds.description
    assert len(ds.digest) == 64


def test_load_files_digest_depends_on_content(vt_dataset, haxby_vt_dir, tmp_path):
    again = load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                       mask=haxby_vt_dir / "mask_vt.nii.gz")
    assert again.digest == vt_dataset.digest
    labels = (haxby_vt_dir / "labels.txt").read_text().replace("face", "visage")
    changed = load_files(haxby_vt_dir / "bold_vt.nii.gz", labels.encode(), mask=haxby_vt_dir / "mask_vt.nii.gz")
    assert changed.digest != vt_dataset.digest and "visage" in set(changed.conditions)


def test_load_files_computes_epi_mask_and_resamples_anat(haxby_vt_dir, tmp_path):
    anat_data = np.random.default_rng(0).random((20, 32, 32)).astype(np.float32) * 100
    anat_affine = np.diag([7.0, 7.5, 7.5, 1.0])
    nib.Nifti1Image(anat_data, anat_affine).to_filename(tmp_path / "anat.nii.gz")
    ds = load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                    anat=tmp_path / "anat.nii.gz", run_column=None, tr=2.0, title="Mine")
    assert set(ds.masks) == {"epi"}
    epi = _mask_array(ds.masks["epi"])
    vt = np.asanyarray(nib.load(haxby_vt_dir / "mask_vt.nii.gz").dataobj) != 0
    assert epi.sum() > 50 and not (epi & ~vt).any()
    assert ds.anat_img.shape == (40, 64, 64) and np.allclose(ds.anat_img.affine, ds.affine)
    assert np.asanyarray(ds.anat_img.dataobj).max() > 50
    assert ds.runs is None and ds.n_runs == 0 and ds.tr == 2.0 and ds.title == "Mine"


def test_a_single_slice_without_a_mask_gets_an_epi_mask_inside_the_image(haxby_slice_dir):
    # nilearn's default opening erodes a one-slice image to nothing; the retry without it
    # gives a usable mask instead of an error.
    ds = load_files(haxby_slice_dir / "bold.nii.gz", haxby_slice_dir / "labels.txt")
    assert set(ds.masks) == {"epi"}
    epi = _mask_array(ds.masks["epi"])
    mean = np.asanyarray(nib.load(haxby_slice_dir / "bold.nii.gz").dataobj).mean(axis=-1)
    assert epi.shape == (40, 20, 1) and 20 < epi.sum() < epi.size
    assert (mean[epi] > 0).all()
    # Among the brightest voxels: the mask is brain, not background.
    assert np.median(mean[epi]) > np.median(mean[~epi])


def test_an_image_with_no_brain_asks_for_a_mask(tmp_path):
    image = nib.Nifti1Image(np.zeros((6, 6, 4, 20), dtype=np.int16), np.eye(4))
    image.to_filename(tmp_path / "empty.nii.gz")
    labels = "labels chunks\n" + "".join(f"{'a' if i % 2 else 'b'} {i // 10}\n" for i in range(20))
    with pytest.raises(DecodingInputError, match="Upload a mask for this image"):
        load_files(tmp_path / "empty.nii.gz", labels.encode())


def test_load_files_tr_from_header_units(tmp_path):
    data = np.random.default_rng(1).integers(100, 200, (3, 3, 3, 4)).astype(np.int16)
    image = nib.Nifti1Image(data, np.eye(4))
    image.header.set_zooms((1.0, 1.0, 1.0, 2000.0))
    image.header.set_xyzt_units("mm", "msec")
    image.to_filename(tmp_path / "ms.nii")
    mask = nib.Nifti1Image(np.ones((3, 3, 3), np.uint8), np.eye(4))
    mask.to_filename(tmp_path / "mask.nii.gz")
    table = b"labels\na\nb\na\nb\n"
    ds = load_files(tmp_path / "ms.nii", table, run_column=None, mask=tmp_path / "mask.nii.gz")
    assert ds.tr == pytest.approx(2.0)
    image.header.set_zooms((1.0, 1.0, 1.0, 0.0))
    image.to_filename(tmp_path / "zero.nii.gz")
    ds = load_files(tmp_path / "zero.nii.gz", table, run_column=None, mask=tmp_path / "mask.nii.gz")
    assert ds.tr is None
    # A TR of 0 means "not given": the header's TR is used.
    assert load_files(tmp_path / "ms.nii", table, run_column=None, mask=tmp_path / "mask.nii.gz", tr=0).tr == 2.0
    image.header.set_zooms((1.0, 1.0, 1.0, 2000.0))
    image.header.set_xyzt_units("mm", "unknown")
    image.to_filename(tmp_path / "unitless.nii.gz")
    assert load_files(tmp_path / "unitless.nii.gz", table, run_column=None, mask=tmp_path / "mask.nii.gz").tr is None


def test_load_files_length_mismatch(haxby_vt_dir):
    short = "\n".join((haxby_vt_dir / "labels.txt").read_text().splitlines()[:101]) + "\n"
    with pytest.raises(DecodingInputError, match="The labels table has 100 rows but the image has 864 volumes"):
        load_files(haxby_vt_dir / "bold_vt.nii.gz", short.encode())


def test_load_files_missing_columns_named(haxby_vt_dir):
    with pytest.raises(DecodingInputError, match=r"no label column 'condition'.*'labels', 'chunks'"):
        load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt", label_column="condition")
    with pytest.raises(DecodingInputError, match=r"no run column 'session'.*'labels', 'chunks'"):
        load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt", run_column="session")
    with pytest.raises(DecodingInputError, match="both 'labels'"):
        load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt", run_column="labels")


def test_load_files_empty_labels_refused(haxby_vt_dir):
    lines = (haxby_vt_dir / "labels.txt").read_text().splitlines()
    lines = ["labels,chunks"] + [",".join(line.split()) for line in lines[1:]]
    lines[5] = ",0"
    with pytest.raises(DecodingInputError, match="empty on 1 row"):
        load_files(haxby_vt_dir / "bold_vt.nii.gz", "\n".join(lines).encode())


def test_load_files_mask_on_another_grid(haxby_vt_dir, haxby_slice_dir):
    with pytest.raises(DecodingInputError, match="The mask 'mask.nii.gz' has shape"):
        load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                   mask=haxby_slice_dir / "mask.nii.gz")


def test_load_files_shifted_mask_refused(haxby_vt_dir, tmp_path):
    mask = nib.load(haxby_vt_dir / "mask_vt.nii.gz")
    shifted = mask.affine.copy()
    shifted[0, 3] += 10
    nib.Nifti1Image(np.asanyarray(mask.dataobj), shifted).to_filename(tmp_path / "shifted.nii.gz")
    with pytest.raises(DecodingInputError, match="not on the functional image's grid"):
        load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt", mask=tmp_path / "shifted.nii.gz")


def test_load_files_3d_image_refused(haxby_vt_dir):
    with pytest.raises(DecodingInputError, match="must be 4D"):
        load_files(haxby_vt_dir / "mask_vt.nii.gz", haxby_vt_dir / "labels.txt")


def test_load_files_corrupt_and_non_nifti_refused(haxby_vt_dir, tmp_path):
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(DecodingInputError):
        load_files(junk, haxby_vt_dir / "labels.txt")
    text = tmp_path / "notes.nii"
    text.write_text("this is not an image\n" * 50)
    with pytest.raises(DecodingInputError):
        load_files(text, haxby_vt_dir / "labels.txt")
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes((haxby_vt_dir / "bold_vt.nii.gz").read_bytes()[:300_000])
    # The header is intact, so the loader accepts it only if it never reads the data; with
    # no mask the mean image is computed, which must fail cleanly.
    with pytest.raises(DecodingInputError):
        load_files(truncated, haxby_vt_dir / "labels.txt")
    with pytest.raises(DecodingInputError, match="does not exist"):
        load_files(tmp_path / "missing.nii.gz", haxby_vt_dir / "labels.txt")


def test_load_files_bad_tr(haxby_vt_dir):
    with pytest.raises(DecodingInputError, match="repetition time"):
        load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                   mask=haxby_vt_dir / "mask_vt.nii.gz", tr=-1.0)
    with pytest.raises(TypeError, match="'tr' must be a number"):
        load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                   mask=haxby_vt_dir / "mask_vt.nii.gz", tr="fast")


def test_the_mean_image_is_read_only_when_the_background_is(haxby_vt_dir, monkeypatch, capsys):
    """Loading, masking and decoding (the command line's whole path) never compute the mean image;
    the background the app draws is still the mean image, computed once when first read."""
    from decoding_core import cli
    from decoding_core.io import nifti

    real_mean_volume = nifti.mean_volume

    def refuse(*args, **kwargs):
        raise AssertionError("the mean image was computed")

    monkeypatch.setattr(nifti, "mean_volume", refuse)
    func, labels, mask = haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt", haxby_vt_dir / "mask_vt.nii.gz"
    status = cli.main(["decode", "--func", func, "--labels", labels, "--mask", mask,
                       "--conditions", "face", "cat", "--json"])
    assert status == 0, capsys.readouterr().err
    dataset = load_files(func, labels, mask=mask)
    assert dataset.anat_img.shape == (40, 64, 64) and not dataset.anat_img.in_memory

    calls = []
    monkeypatch.setattr(nifti, "mean_volume", lambda *a, **k: calls.append(a) or real_mean_volume(*a, **k))
    expected = real_mean_volume(func)
    assert dataset.read_background() is dataset.anat_img
    assert np.array_equal(np.asanyarray(dataset.anat_img.dataobj), np.asanyarray(expected.dataobj))
    assert np.array_equal(dataset.anat_img.get_fdata(), expected.get_fdata())
    assert np.allclose(dataset.anat_img.affine, expected.affine)
    assert dataset.anat_img.get_data_dtype() == expected.get_data_dtype() == np.float32
    assert len(calls) == 1  # computed once, then kept


def test_a_lazy_background_survives_copies_and_saving(haxby_vt_dir, tmp_path):
    import copy
    import pickle

    from decoding_core.io import nifti

    func = haxby_vt_dir / "bold_vt.nii.gz"
    dataset = load_files(func, haxby_vt_dir / "labels.txt", mask=haxby_vt_dir / "mask_vt.nii.gz")
    expected = np.asanyarray(nifti.mean_volume(func).dataobj)
    # nilearn deep-copies images, caches pickle them: neither may fail on the unread background.
    copied = copy.deepcopy(dataset.anat_img)
    unpickled = pickle.loads(pickle.dumps(dataset.anat_img))
    nib.save(dataset.anat_img, tmp_path / "anat.nii.gz")  # reproduce.py's export-data does
    for image in (copied, unpickled, nib.load(tmp_path / "anat.nii.gz")):
        assert np.array_equal(np.asanyarray(image.dataobj), expected)
