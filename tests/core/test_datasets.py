"""Tests of the data set loaders (decoding_core.datasets)."""

from __future__ import annotations

import gzip
import shutil

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from decoding_core import datasets, simulation
from decoding_core.datasets import (
    DATASET_CHOICES,
    HAXBY_CATEGORIES,
    MASK_TITLES,
    load_dataset,
    load_files,
    load_haxby,
    load_simulated,
    read_labels_table,
)
from decoding_core.errors import DecodingInputError


def _mask_array(image):
    return np.asanyarray(image.dataobj) != 0


# --------------------------------------------------------------------------------------
# Simulated data set
# --------------------------------------------------------------------------------------


def test_simulated_dataset_fields(simulated_dataset):
    ds = simulated_dataset
    assert ds.name == "simulated" and "simulated" in ds.title.lower()
    assert "SIMULATED" in ds.description and "SIMULATED" in ds.source
    assert "seed 0" in ds.description and "haemodynamic" in ds.description
    assert ds.func_path.is_file() and ds.func_path.name.endswith("seed0.nii.gz")
    header = nib.load(ds.func_path).header
    assert tuple(header.get_data_shape()) == ds.shape and ds.shape[3] == 1452
    assert np.allclose(nib.load(ds.func_path).affine, ds.affine)
    assert ds.tr == 2.5 and ds.n_runs == 12 and ds.n_volumes == 1452
    assert list(ds.labels.columns) == ["labels", "chunks"]
    assert set(ds.conditions) == set(HAXBY_CATEGORIES) | {"rest"}
    assert isinstance(ds.conditions, np.ndarray) and ds.conditions.dtype.kind == "U"
    assert len(ds.digest) == 64
    assert set(ds.masks) == {"vt", "face", "house", "brain"} and set(ds.masks) <= set(MASK_TITLES)


def test_simulated_masks_nested_and_on_grid(simulated_dataset):
    ds = simulated_dataset
    masks = {name: _mask_array(image) for name, image in ds.masks.items()}
    for name, image in ds.masks.items():
        assert image.shape == ds.shape[:3] and np.allclose(image.affine, ds.affine)
        assert np.asanyarray(image.dataobj).dtype == np.uint8
    assert not (masks["face"] & ~masks["vt"]).any()
    assert not (masks["house"] & ~masks["vt"]).any()
    assert not (masks["vt"] & ~masks["brain"]).any()
    assert 150 <= masks["vt"].sum() <= 700
    anat = ds.anat_img
    assert anat.shape == ds.shape[:3] and np.allclose(anat.affine, ds.affine)
    anat_values = np.asanyarray(anat.dataobj)
    assert anat_values[masks["brain"]].mean() > 10 and not anat_values[~masks["brain"]].any()


def test_simulated_ground_truth(simulated_dataset):
    ds = simulated_dataset
    truth = ds.ground_truth
    n_vt = int(_mask_array(ds.masks["vt"]).sum())
    assert set(truth.patterns) == set(HAXBY_CATEGORIES)
    assert truth.pattern_matrix.shape == (8, n_vt)
    assert truth.seed == 0 and truth.generator_version == simulation.GENERATOR_VERSION
    informative = _mask_array(truth.informative_img)
    assert informative.any() and not (informative & ~_mask_array(ds.masks["vt"])).any()
    assert np.array_equal(_mask_array(truth.face_img), _mask_array(ds.masks["face"]))
    assert np.array_equal(_mask_array(truth.house_img), _mask_array(ds.masks["house"]))


def test_simulated_face_vs_cat_decodes_well_but_not_trivially(simulated_dataset):
    from nilearn.maskers import NiftiMasker
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
    from sklearn.svm import SVC

    ds = simulated_dataset
    masker = NiftiMasker(mask_img=ds.masks["vt"], standardize="zscore_sample", reports=False)
    X = masker.fit_transform(ds.func_path)
    labels, runs = ds.conditions, ds.runs
    face_cat = np.isin(labels, ["face", "cat"])
    scores = cross_val_score(SVC(kernel="linear"), X[face_cat], labels[face_cat],
                             groups=runs[face_cat], cv=LeaveOneGroupOut())
    assert 0.7 < scores.mean() < 0.99
    # Eight categories: far above chance (1/8).
    tasks = labels != "rest"
    eight = cross_val_score(SVC(kernel="linear"), X[tasks], labels[tasks], groups=runs[tasks],
                            cv=LeaveOneGroupOut())
    assert eight.mean() > 0.35
    # The information sits in vt: voxels outside the brain carry nothing.
    assert X.std(axis=0).min() > 0


@pytest.fixture(scope="module")
def seed1_cache(tmp_path_factory):
    """The simulated data set with seed 1, generated once into its own cache folder."""
    directory = tmp_path_factory.mktemp("simulated-seed1")
    return load_simulated(seed=1, cache_dir=directory), directory


def test_simulated_cache_is_reused_and_verified(seed1_cache, monkeypatch):
    first, directory = seed1_cache
    calls = []
    real = simulation.simulate_subject

    def counting(seed=0):
        calls.append(seed)
        return real(seed)

    monkeypatch.setattr(simulation, "simulate_subject", counting)
    mtime = first.func_path.stat().st_mtime_ns
    second = load_simulated(seed=1, cache_dir=directory)
    assert calls == []
    assert second.func_path == first.func_path and second.func_path.stat().st_mtime_ns == mtime
    assert second.digest == first.digest
    stem = f"simulated-v{simulation.GENERATOR_VERSION}-seed1"
    assert sorted(p.name for p in directory.iterdir()) == [f"{stem}.json", f"{stem}.nii.gz"]
    meta = directory / f"{stem}.json"
    # The sidecar must match the file, the seed and the generator version.
    assert datasets._verified_cache(first.func_path, meta, 1, first.shape) is not None
    assert datasets._verified_cache(first.func_path, meta, 2, first.shape) is None
    assert datasets._verified_cache(first.func_path, directory / "absent.json", 1, first.shape) is None
    # A damaged cache file is detected on reload and generated again, identical.
    content = bytearray(first.func_path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    first.func_path.write_bytes(bytes(content))
    third = load_simulated(seed=1, cache_dir=directory)
    assert calls == [1]
    assert third.digest == first.digest
    assert sorted(p.name for p in directory.iterdir()) == [f"{stem}.json", f"{stem}.nii.gz"]


def test_simulated_same_seed_identical_bytes_other_seed_differs(simulated_dataset, seed1_cache, tmp_path):
    again = load_simulated(seed=0, cache_dir=tmp_path / "again")
    assert again.func_path != simulated_dataset.func_path
    assert again.func_path.read_bytes() == simulated_dataset.func_path.read_bytes()
    assert again.digest == simulated_dataset.digest
    assert again.labels.equals(simulated_dataset.labels)
    other = seed1_cache[0]
    assert other.digest != simulated_dataset.digest
    assert other.func_path.read_bytes() != simulated_dataset.func_path.read_bytes()
    assert not other.labels.equals(simulated_dataset.labels)
    assert other.name == "simulated:1"


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "0", True])
def test_simulated_rejects_bad_seeds(seed, tmp_path):
    with pytest.raises(DecodingInputError, match="'seed' must be an integer"):
        load_simulated(seed=seed, cache_dir=tmp_path)


# --------------------------------------------------------------------------------------
# Labels tables
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "labels,chunks\nface,0\ncat,0\nrest,1\n",
        "labels\tchunks\nface\t0\ncat\t0\nrest\t1\n",
        "labels chunks\nface 0\ncat   0\nrest\t1\n",
        "labels;chunks\nface;0\ncat;0\nrest;1\n",
        "\ufefflabels,chunks\r\nface,0\r\ncat,0\r\nrest,1\r\n\r\n",
        'labels,chunks\n"face",0\n  cat ,0\nrest,1',
    ],
    ids=["csv", "tsv", "space", "semicolon", "bom-crlf", "quotes-spaces"],
)
def test_read_labels_table_formats(text, tmp_path):
    for source in (text.encode("utf-8"), tmp_path / "labels.txt"):
        if not isinstance(source, bytes):
            source.write_text(text, encoding="utf-8", newline="")
        table = read_labels_table(source, n_volumes=3)
        assert list(table.columns) == ["labels", "chunks"]
        assert table["labels"].to_numpy(dtype=str).tolist() == ["face", "cat", "rest"]
        assert table["chunks"].dtype == np.int64 and table["chunks"].tolist() == [0, 0, 1]


def test_read_labels_table_real_haxby_file(haxby_slice_dir):
    table = read_labels_table(haxby_slice_dir / "labels.txt", n_volumes=1452)
    assert len(table) == 1452 and sorted(table["chunks"].unique()) == list(range(12))
    assert (table["labels"] == "rest").sum() == 1452 - 12 * 72


def test_read_labels_table_keeps_formulas_as_text():
    text = 'labels,chunks,note\n=1+1,0,@SUM(A1)\n+cmd,0,-2+3\n"=HYPERLINK(""x"")",1,ok\n'
    table = read_labels_table(text.encode(), n_volumes=3)
    assert table["labels"].to_numpy(dtype=str).tolist() == ["=1+1", "+cmd", '=HYPERLINK("x")']
    assert table["note"].to_numpy(dtype=str).tolist() == ["@SUM(A1)", "-2+3", "ok"]


def test_read_labels_table_quoted_separator_and_float_column():
    table = read_labels_table(b'labels,onset\n"face, front",0.5\nrest,1e1\n')
    assert table["labels"].tolist() == ["face, front", "rest"]
    assert table["onset"].dtype == np.float64 and table["onset"].tolist() == [0.5, 10.0]


@pytest.mark.parametrize(
    ("content", "n_volumes", "message"),
    [
        (b"face 0\ncat 0\nrest 1\n", 3, "no header row"),
        (b"labels chunks\nface 0\n", 3, "has 1 rows but the image has 3 volumes"),
        (b"labels chunks\nface 0\ncat 0\nrest 1\nrest 1\n", 3, "has 4 rows but the image has 3 volumes"),
        (b"labels chunks\nface 0\ncat\n", 2, "Line 3 .* has 1 values but the header names 2 columns"),
        (b"labels chunks\nface 0\n\ncat 0\n", 3, "Line 3 .* is empty"),
        (b"", None, "is empty"),
        (b"  \n\n", None, "is empty"),
        (b"labels,labels\nface,face\n", 1, "duplicate column names"),
        (b"labels,,chunks\nface,x,0\n", 1, "empty column name"),
        (b"labels\x00chunks\nface\x000\n", None, "binary, not a text table"),
        (b"labels chunks\nfa\x07ce 0\n", None, "control characters"),
        (gzip.compress(b"labels chunks\nface 0\n"), None, "compressed file"),
        (b'labels,chunks\n"face,0\n', None, "could not be read as a table"),
        (",".join(f"c{i}" for i in range(65)).encode() + b"\n" + b",".join([b"1"] * 65) + b"\n", 1,
         "65 columns; at most 64"),
        (b"labels chunks\n" + b"x" * 9000 + b" 0\n", 1, "Line 2 .* characters long"),
    ],
    ids=["no-header", "too-few", "too-many", "ragged", "blank-line", "empty", "blank-only",
         "duplicate", "empty-name", "nul", "control", "gzip", "bad-quote", "wide", "long-line"],
)
def test_read_labels_table_errors(content, n_volumes, message):
    with pytest.raises(DecodingInputError, match=message):
        read_labels_table(content, n_volumes=n_volumes)


def test_read_labels_table_size_bounds(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "MAX_LABELS_BYTES", 100)
    big = tmp_path / "big.csv"
    big.write_text("labels\n" + "face\n" * 50)
    with pytest.raises(DecodingInputError, match="at most 0 MB|MB; at most"):
        read_labels_table(big)
    with pytest.raises(DecodingInputError, match="MB; at most"):
        read_labels_table(big.read_bytes())
    with pytest.raises(DecodingInputError, match="does not exist"):
        read_labels_table(tmp_path / "nothing.csv")
    with pytest.raises(TypeError, match="'labels' must be a path or bytes"):
        read_labels_table(12)


def test_read_labels_table_counts_rows_before_parsing(monkeypatch):
    # With n_volumes given, a table with too many lines is refused before any row is split.
    def no_split(*args, **kwargs):
        raise AssertionError("parsed a table that was already too long")

    monkeypatch.setattr(datasets, "_split_rows", no_split)
    with pytest.raises(DecodingInputError, match="has 1000 rows but the image has 10 volumes"):
        read_labels_table(b"labels\n" + b"face\n" * 1000, n_volumes=10)


# --------------------------------------------------------------------------------------
# The user's files
# --------------------------------------------------------------------------------------


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
    with pytest.raises(DecodingInputError, match="The mask 'uploaded' has shape"):
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


# --------------------------------------------------------------------------------------
# Haxby through nilearn, offline
# --------------------------------------------------------------------------------------


def _lay_out_haxby(root, slice_dir, subject=1, anat=True, brain_on_other_grid=True):
    """Files where nilearn's fetch_haxby expects them, built from the real slice of subject 1."""
    base = root / "haxby2001"
    subject_dir = base / f"subj{subject}"
    subject_dir.mkdir(parents=True)
    shutil.copy(slice_dir / "bold.nii.gz", subject_dir / "bold.nii.gz")
    shutil.copy(slice_dir / "labels.txt", subject_dir / "labels.txt")
    (base / "MD5SUMS").write_text(f"{'0' * 32}  subj{subject}-2010.01.14.tar.gz\n")
    mask_img = nib.load(slice_dir / "mask.nii.gz")
    affine, shape = mask_img.affine, mask_img.shape
    vt = np.asanyarray(mask_img.dataobj) != 0
    ii = np.indices(shape)[0]
    face = vt & (ii < 20)
    house = vt & (ii >= 20)
    for name, data in {
        "mask4_vt": vt, "mask8b_face_vt": face, "mask8b_house_vt": house,
        "mask8_face_vt": face & (ii < 10), "mask8_house_vt": house & (ii >= 30),
    }.items():
        nib.Nifti1Image(data.astype(np.int16), affine).to_filename(subject_dir / f"{name}.nii.gz")
    if anat:
        # A finer anatomical grid over the same field of view, as the real anat.nii.gz.
        fine = affine.copy()
        fine[:3, :3] = affine[:3, :3] / 2
        values = np.random.default_rng(0).random((80, 40, 2)).astype(np.float32) * 500 + 100
        nib.Nifti1Image(values, fine).to_filename(subject_dir / "anat.nii.gz")
    if brain_on_other_grid:
        fine = affine.copy()
        fine[:3, :3] = affine[:3, :3] / 2
        nib.Nifti1Image(np.ones((80, 40, 2), np.uint8), fine).to_filename(base / "mask.nii.gz")
    else:
        nib.Nifti1Image(np.ones(shape, np.uint8), affine).to_filename(base / "mask.nii.gz")
    return base


def test_load_haxby_from_files_on_disk(tmp_path, haxby_slice_dir, monkeypatch):
    _lay_out_haxby(tmp_path, haxby_slice_dir)

    def no_network(*args, **kwargs):
        raise AssertionError("checked the network although every file is on disk")

    monkeypatch.setattr(datasets, "_download_hosts_reachable", no_network)
    messages = []
    ds = load_haxby(1, data_dir=tmp_path, progress=lambda f, m: messages.append((f, m)))
    assert ds.name == "haxby:1" and "Haxby" in ds.title and "Haxby" in ds.source
    assert ds.shape == (40, 20, 1, 1452) and ds.tr == 2.5 and ds.n_runs == 12
    assert ds.func_path == tmp_path / "haxby2001" / "subj1" / "bold.nii.gz"
    assert set(ds.masks) == {"vt", "face", "house", "face_little", "house_little", "brain"}
    for image in ds.masks.values():
        assert image.shape == (40, 20, 1) and np.allclose(image.affine, ds.affine)
    vt = _mask_array(ds.masks["vt"])
    assert vt.sum() == 530
    assert not (_mask_array(ds.masks["face"]) & ~vt).any()
    assert not (_mask_array(ds.masks["face_little"]) & ~_mask_array(ds.masks["face"])).any()
    assert _mask_array(ds.masks["brain"]).all()  # resampled (nearest) from a finer grid
    assert ds.anat_img.shape == (40, 20, 1) and np.allclose(ds.anat_img.affine, ds.affine)
    assert 100 <= np.asanyarray(ds.anat_img.dataobj).mean() <= 600
    assert set(ds.conditions) == set(HAXBY_CATEGORIES) | {"rest"}
    assert messages and messages[-1][0] == 1.0
    assert load_haxby(1, data_dir=tmp_path).digest == ds.digest


def test_load_haxby_subject_6_without_anat(tmp_path, haxby_slice_dir, monkeypatch):
    _lay_out_haxby(tmp_path, haxby_slice_dir, subject=6, anat=False, brain_on_other_grid=False)
    monkeypatch.setattr(datasets, "_download_hosts_reachable", lambda *a, **k: False)
    ds = load_haxby(6, data_dir=tmp_path)
    assert ds.anat_img.shape == (40, 20, 1)  # the mean functional image
    assert "mean functional image" in ds.description


def test_load_haxby_missing_file_without_network_fails_fast(tmp_path, haxby_slice_dir, monkeypatch):
    base = _lay_out_haxby(tmp_path, haxby_slice_dir)
    (base / "subj1" / "mask8_face_vt.nii.gz").unlink()
    checked = []

    def unreachable(hosts, timeout):
        checked.append((tuple(hosts), timeout))
        return False

    def fetch_must_not_run(*args, **kwargs):
        raise AssertionError("fetch_haxby called without network")

    monkeypatch.setattr(datasets, "_download_hosts_reachable", unreachable)
    monkeypatch.setattr("nilearn.datasets.fetch_haxby", fetch_must_not_run)
    with pytest.raises(DecodingInputError, match=r"(?s)missing haxby2001/subj1/mask8_face_vt.nii.gz.*no network.*simulated"):
        load_haxby(1, data_dir=tmp_path, connect_timeout=0.5)
    assert checked == [((("data.pymvpa.org", 80),), 0.5)]


def test_load_haxby_real_connectivity_check_without_network(tmp_path):
    # There is no network here: the real check must fail and the loader raise (not hang).
    with pytest.raises(DecodingInputError, match="no network connection"):
        load_haxby(3, data_dir=tmp_path, connect_timeout=2.0)


def test_load_haxby_download_error_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_download_hosts_reachable", lambda *a, **k: True)

    def failing_fetch(*args, **kwargs):
        raise OSError("connection reset by peer")

    monkeypatch.setattr("nilearn.datasets.fetch_haxby", failing_fetch)
    with pytest.raises(DecodingInputError, match="Could not get the Haxby data of subject 2: connection reset"):
        load_haxby(2, data_dir=tmp_path)


@pytest.mark.parametrize("subject", [0, 7, 2.0, "2", True])
def test_load_haxby_subject_checked(subject, tmp_path):
    with pytest.raises(DecodingInputError, match="'subject' must be an integer in the range"):
        load_haxby(subject, data_dir=tmp_path)


def test_haxby_missing_files_lists_what_fetch_haxby_needs(tmp_path):
    missing = datasets.haxby_missing_files(6, data_dir=tmp_path)
    assert "mask.nii.gz" in missing and "MD5SUMS" in missing
    assert "subj6/bold.nii.gz" in missing and "subj6/anat.nii.gz" not in missing
    assert "subj2/anat.nii.gz" in datasets.haxby_missing_files(2, data_dir=tmp_path)


# --------------------------------------------------------------------------------------
# By name
# --------------------------------------------------------------------------------------


def test_dataset_choices_and_load_dataset(simulated_dataset, tmp_path, haxby_slice_dir):
    assert list(DATASET_CHOICES)[0] == "simulated"
    assert {f"haxby:{n}" for n in range(1, 7)} <= set(DATASET_CHOICES)
    ds = load_dataset("simulated")
    assert ds.digest == simulated_dataset.digest
    _lay_out_haxby(tmp_path, haxby_slice_dir)
    assert load_dataset("haxby:1", data_dir=tmp_path).name == "haxby:1"
    with pytest.raises(DecodingInputError, match="Unknown data set 'mnist'.*simulated, haxby:1"):
        load_dataset("mnist")
    with pytest.raises(DecodingInputError, match="range \\[1, 6\\]"):
        load_dataset("haxby:9", data_dir=tmp_path)
    with pytest.raises(DecodingInputError, match="seed in 'simulated:x'"):
        load_dataset("simulated:x")


def test_dataset_labels_are_plain_strings_for_sklearn(simulated_dataset):
    from sklearn.model_selection import LeaveOneGroupOut

    conditions = simulated_dataset.conditions
    splits = list(LeaveOneGroupOut().split(conditions, conditions, simulated_dataset.runs))
    assert len(splits) == 12
    assert isinstance(simulated_dataset.labels, pd.DataFrame)


def test_simulated_unwritable_cache_is_a_clear_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def must_not_generate(seed=0):
        raise AssertionError("generated data that could not be stored")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    monkeypatch.setattr(simulation, "simulate_subject", must_not_generate)
    with pytest.raises(DecodingInputError, match="could not be stored.*DECODING_LAB_DATA_DIR"):
        load_simulated(seed=0, cache_dir=tmp_path / "ro")


def test_read_labels_table_never_fails_with_anything_but_our_error():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from([b"labels", b"chunks", b",", b"\t", b" ", b";", b"\n", b"\r\n", b'"', b"=1+1",
                              b"face", b"0", b"1.5", b"\x00", b"\xff", b"\xef\xbb\xbf", b"-", b"@"])

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.binary(max_size=300), st.lists(pieces, max_size=60).map(b"".join)),
           st.one_of(st.none(), st.integers(0, 5)))
    def check(content, n_volumes):
        try:
            table = read_labels_table(content, n_volumes=n_volumes)
        except DecodingInputError:
            return
        assert isinstance(table, pd.DataFrame) and len(table.columns) >= 1
        if n_volumes is not None:
            assert len(table) == n_volumes

    check()
