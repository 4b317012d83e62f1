"""Tests of decoding_core.masking: streamed masking equals nilearn's NiftiMasker."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.maskers import NiftiMasker
from nilearn.signal import clean

from decoding_core.datasets import Dataset
from decoding_core.errors import DecodingInputError
from decoding_core.masking import (
    MaskedData,
    NonFiniteVoxelsError,
    RawVoxelCache,
    check_mask_matches,
    clean_signals,
    drop_nonfinite_voxels,
    extract_masked_voxels,
    find_nonfinite,
    mask_dataset,
    scan_nonfinite,
    select_conditions,
    unmask,
)
from decoding_core.io.nifti import load_image


def nilearn_masked(func_path, mask_img, *, standardize, detrend=False, smoothing_fwhm=None):
    masker = NiftiMasker(mask_img=mask_img, standardize="zscore_sample" if standardize else None,
                         detrend=detrend, smoothing_fwhm=smoothing_fwhm, reports=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return masker.fit_transform(str(func_path) if isinstance(func_path, (str, Path)) else func_path)


def assert_float32_close(ours, reference, standardize):
    """Equal to float32 precision: nilearn itself computes means and trends in float32."""
    assert ours.dtype == np.float32
    assert ours.shape == reference.shape
    scale = 1.0 if standardize else max(1.0, float(np.abs(reference).max()))
    np.testing.assert_allclose(ours, reference, rtol=0, atol=5e-5 * scale + 2e-4 * standardize)


def as_uncompressed(path, tmp_path):
    target = tmp_path / Path(path).name.removesuffix(".gz")
    target.write_bytes(gzip.decompress(Path(path).read_bytes()))
    return target


@pytest.fixture(scope="module")
def vt_pieces(haxby_vt_dir):
    """The real VT file, its mask, and a mask of all voxels with a nonzero mean (here: the VT voxels)."""
    func = haxby_vt_dir / "bold_vt.nii.gz"
    vt = load_image(haxby_vt_dir / "mask_vt.nii.gz", expected_ndim=3, kind="mask")
    data = nib.load(func).get_fdata(dtype=np.float32)
    nonzero = nib.Nifti1Image((data.mean(axis=3) != 0).astype(np.uint8), vt.affine)
    in_memory = nib.Nifti1Image(data, nib.load(func).affine)
    return func, vt, nonzero, in_memory


@pytest.fixture(scope="module")
def vt_references(vt_pieces):
    """NiftiMasker results on the VT data, each computed once (the image holds 283 MB).

    ``NiftiMasker`` is ``apply_mask`` followed by ``nilearn.signal.clean``: the
    raw and one cleaned result come from NiftiMasker itself, other cleaning
    options from ``clean`` applied to NiftiMasker's raw output.
    """
    _, vt, _, in_memory = vt_pieces
    results = {}

    def reference(standardize, detrend=False):
        key = (standardize, detrend)
        if key not in results:
            if key in ((False, False), (True, True)):
                results[key] = nilearn_masked(in_memory, vt, standardize=standardize, detrend=detrend)
            else:
                results[key] = clean(reference(False, False), detrend=detrend,
                                     standardize="zscore_sample" if standardize else None)
        return results[key]

    return reference


@pytest.fixture(scope="module")
def synthetic_brain(tmp_path_factory):
    """A brain-like int16 series with a whole-brain-size mask (~16k voxels), as .nii.gz and .nii."""
    rng = np.random.default_rng(11)
    shape = (36, 42, 34, 40)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape[:3]], indexing="ij"))
    inside = (grid**2).sum(axis=0) < 0.8
    baseline = 600 + 300 * np.cos(3 * grid[0]) * inside
    drift = np.linspace(0, 20, shape[3])
    data = (baseline[..., None] + drift + rng.normal(scale=15, size=shape)) * inside[..., None]
    img = nib.Nifti1Image(data.astype(np.int16), np.diag([3.0, 3.0, 3.5, 1.0]))
    folder = tmp_path_factory.mktemp("synthetic")
    img.to_filename(folder / "brain.nii.gz")
    img.to_filename(folder / "brain.nii")
    mask = nib.Nifti1Image(inside.astype(np.uint8), img.affine)
    return folder / "brain.nii.gz", folder / "brain.nii", mask


# ---------------------------------------------------------------------------------------
# Equality with NiftiMasker on real data
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("compressed", [True, False])
@pytest.mark.parametrize("standardize, detrend", [(True, False), (False, False), (True, True), (False, True)])
def test_vt_equals_niftimasker(vt_pieces, vt_references, tmp_path, compressed, standardize, detrend):
    func, vt, nonzero, _ = vt_pieces
    path = func if compressed else as_uncompressed(func, tmp_path)
    raw = extract_masked_voxels(path, {"vt": vt, "nonzero": nonzero})
    assert raw["vt"].shape == (864, 577)
    # This file is zero outside VT: the nonzero-mean mask is the VT mask, read in the same pass.
    np.testing.assert_array_equal(raw["nonzero"], raw["vt"])
    ours = clean_signals(raw["vt"], standardize=standardize, detrend=detrend)
    assert_float32_close(ours, vt_references(standardize, detrend), standardize)


@pytest.mark.slow
def test_column_order_is_niftimasker_order(vt_pieces, vt_references):
    func, vt, _, in_memory = vt_pieces
    raw = extract_masked_voxels(func, {"vt": vt})["vt"]
    np.testing.assert_array_equal(raw, vt_references(False))  # no cleaning: exact, column by column
    np.testing.assert_array_equal(raw, in_memory.get_fdata(dtype=np.float32)[vt.get_fdata() != 0].T)


def test_smoothing_equals_niftimasker(vt_pieces, tmp_path):
    func, vt, _, in_memory = vt_pieces
    # The first 60 real volumes keep this test fast; smoothing works per volume.
    head = nib.Nifti1Image(in_memory.get_fdata(dtype=np.float32)[..., :60].astype(np.int16), in_memory.affine)
    path = tmp_path / "head.nii.gz"
    head.to_filename(path)
    raw = extract_masked_voxels(path, {"vt": vt}, smoothing_fwhm=6.0)["vt"]
    for standardize in (True, False):
        ours = clean_signals(raw, standardize=standardize)
        reference = nilearn_masked(path, vt, standardize=standardize, smoothing_fwhm=6.0)
        assert_float32_close(ours, reference, standardize)


@pytest.mark.parametrize("compressed", [True, False])
def test_synthetic_whole_brain_equals_niftimasker(synthetic_brain, compressed):
    gz_path, nii_path, mask = synthetic_brain
    path = gz_path if compressed else nii_path
    n_voxels = int(np.count_nonzero(mask.get_fdata()))
    assert n_voxels > 15000
    raw = extract_masked_voxels(path, {"brain": mask})["brain"]
    assert raw.shape == (40, n_voxels)
    for standardize, detrend in ((True, False), (True, True), (False, True)):
        assert_float32_close(clean_signals(raw, standardize=standardize, detrend=detrend),
                             nilearn_masked(path, mask, standardize=standardize, detrend=detrend), standardize)


def test_synthetic_whole_brain_smoothing(synthetic_brain):
    gz_path, _, mask = synthetic_brain
    raw = extract_masked_voxels(gz_path, {"brain": mask}, smoothing_fwhm=8.0)["brain"]
    assert_float32_close(clean_signals(raw, standardize=True),
                         nilearn_masked(gz_path, mask, standardize=True, smoothing_fwhm=8.0), True)


# ---------------------------------------------------------------------------------------
# clean_signals
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("standardize, detrend", [(True, False), (True, True), (False, True), (False, False)])
def test_clean_signals_equals_nilearn_clean(standardize, detrend):
    rng = np.random.default_rng(7)
    X = (rng.normal(size=(50, 3000)) * 20 + np.linspace(0, 30, 50)[:, None] + 500).astype(np.float32)
    X[:, 10] = 3.0
    reference = clean(X, standardize="zscore_sample" if standardize else None, detrend=detrend)
    ours = clean_signals(X, standardize=standardize, detrend=detrend)
    assert_float32_close(ours, reference.astype(np.float32), standardize)
    if standardize:
        np.testing.assert_allclose(ours[:, 11:].std(axis=0, ddof=1), 1, atol=1e-5)
        assert np.all(ours[:, 10] == 0)


def test_clean_signals_does_not_modify_input():
    X = np.arange(20, dtype=np.float32).reshape(10, 2) ** 2
    before = X.copy()
    clean_signals(X, standardize=True, detrend=True)
    np.testing.assert_array_equal(X, before)


def test_clean_signals_rejects_unknown_standardize():
    with pytest.raises(DecodingInputError, match="'standardize' must be True, False, None or 'zscore_sample'"):
        clean_signals(np.ones((3, 2)), standardize="psc")


# ---------------------------------------------------------------------------------------
# Mask checks
# ---------------------------------------------------------------------------------------


def test_mask_shape_mismatch_message(vt_pieces):
    func = vt_pieces[0]
    small = nib.Nifti1Image(np.ones((10, 10, 10), np.uint8), np.diag([3.5, 3.75, 3.75, 1]))
    with pytest.raises(DecodingInputError, match=r"mask 'small' has shape \(10, 10, 10\) .* \(40, 64, 64\)\. .*resample"):
        extract_masked_voxels(func, {"small": small})


def test_mask_affine_mismatch_message(vt_pieces):
    func, vt = vt_pieces[:2]
    shifted = nib.Nifti1Image(np.asarray(vt.dataobj), vt.affine + np.array([[0, 0, 0, 2.0]] + [[0] * 4] * 3))
    with pytest.raises(DecodingInputError, match=r"mask 'shifted' is not on the functional image's grid"):
        extract_masked_voxels(func, {"shifted": shifted})
    nearly = nib.Nifti1Image(np.asarray(vt.dataobj), vt.affine + 1e-4)
    check_mask_matches(nearly, (40, 64, 64, 864), vt.affine, "nearly")


def test_empty_and_non_binary_masks(vt_pieces):
    func, vt = vt_pieces[:2]
    empty = nib.Nifti1Image(np.zeros((40, 64, 64), np.uint8), vt.affine)
    with pytest.raises(DecodingInputError, match="mask 'empty' is empty"):
        extract_masked_voxels(func, {"empty": empty})
    atlas = nib.Nifti1Image((np.arange(40 * 64 * 64).reshape(40, 64, 64) % 3).astype(np.int16), vt.affine)
    with pytest.raises(DecodingInputError, match="mask 'atlas' is not binary"):
        extract_masked_voxels(func, {"atlas": atlas})


def test_output_budget(tmp_path):
    # uint8 data become 4x larger as float32: the output can exceed the budget the file passed.
    path = tmp_path / "bytes.nii"
    nib.Nifti1Image(np.ones((10, 10, 10, 50), np.uint8), np.eye(4)).to_filename(path)
    mask = nib.Nifti1Image(np.ones((10, 10, 10), np.uint8), np.eye(4))
    with pytest.raises(DecodingInputError, match=r"masked data would take 0\.2 MB .* Use a smaller mask"):
        extract_masked_voxels(path, {"all": mask}, budget_bytes=100_000)


def test_functional_errors_pass_through(tmp_path, vt_pieces):
    vt = vt_pieces[1]
    path = tmp_path / "three.nii.gz"
    nib.Nifti1Image(np.zeros((40, 64, 64), np.int16), vt.affine).to_filename(path)
    with pytest.raises(DecodingInputError, match="must be 4D"):
        extract_masked_voxels(path, {"vt": vt})


# ---------------------------------------------------------------------------------------
# mask_dataset, cache, select_conditions, unmask
# ---------------------------------------------------------------------------------------


def make_dataset(func, masks, labels, runs):
    table = pd.DataFrame({"labels": labels} | ({} if runs is None else {"chunks": runs}))
    img = nib.load(func)
    return Dataset(name="test", title="test", func_path=Path(func), labels=table, label_column="labels",
                   run_column=None if runs is None else "chunks", tr=2.5, masks=masks, anat_img=None,
                   description="", source="", digest="test", shape=img.shape, affine=img.affine)


@pytest.fixture(scope="module")
def vt_dataset(vt_pieces, haxby_vt_dir):
    func, vt = vt_pieces[:2]
    half = np.asarray(vt.dataobj).copy()
    half[20:] = 0
    table = pd.read_csv(haxby_vt_dir / "labels.txt", sep=" ")
    return make_dataset(func, {"vt": vt, "half": nib.Nifti1Image(half, vt.affine)},
                        table["labels"].to_numpy(dtype=str), table["chunks"].to_numpy())


@pytest.mark.slow
def test_mask_dataset_equals_niftimasker_and_caches(vt_dataset, vt_pieces, vt_references, monkeypatch):
    cache = RawVoxelCache(max_bytes=64 * 1024**2)
    messages = []
    masked = mask_dataset(vt_dataset, "vt", detrend=True, cache=cache, progress=lambda f, m: messages.append(m))
    assert isinstance(masked, MaskedData)
    assert masked.mask_name == "vt" and masked.X.shape == (864, 577)
    np.testing.assert_array_equal(masked.volume_index, np.arange(864))
    np.testing.assert_array_equal(masked.runs, vt_dataset.runs)
    assert masked.labels.dtype.kind == "U"
    assert_float32_close(masked.X, vt_references(True, True), True)
    assert messages[-1] == "Read 864 of 864 volumes"
    assert len(cache) == 2  # the other (small enough) mask was read in the same pass

    import decoding_core.masking as masking

    def no_reading(*args, **kwargs):
        raise AssertionError("the image was read again")

    monkeypatch.setattr(masking, "extract_masked_voxels", no_reading)
    again = mask_dataset(vt_dataset, "half", standardize=False, cache=cache)
    half = vt_dataset.masks["half"].get_fdata() != 0
    np.testing.assert_array_equal(again.X, vt_pieces[3].get_fdata(dtype=np.float32)[half].T)
    assert mask_dataset(vt_dataset, "vt", cache=cache).X.flags.writeable  # cleaned copies, cache untouched


def test_mask_dataset_without_runs_and_unknown_mask(vt_pieces, haxby_vt_dir):
    func, vt = vt_pieces[:2]
    labels = pd.read_csv(haxby_vt_dir / "labels.txt", sep=" ")["labels"].to_numpy(dtype=str)
    dataset = make_dataset(func, {"vt": vt}, labels, None)
    masked = mask_dataset(dataset, "vt", cache=RawVoxelCache())
    assert masked.runs is None
    assert select_conditions(masked, ["face", "cat"]).runs is None
    with pytest.raises(DecodingInputError, match=r"no mask named 'brain'. Choose one of \['vt'\]"):
        mask_dataset(dataset, "brain")
    with pytest.raises(DecodingInputError, match="labels table has 10 rows but the image has 864 volumes"):
        mask_dataset(make_dataset(func, {"vt": vt}, labels[:10], None), "vt")


def test_mask_dataset_too_large_to_cache_is_cleaned_in_place(synthetic_brain):
    gz_path, _, mask = synthetic_brain
    labels = np.array(["a", "b"] * 20)
    dataset = make_dataset(gz_path, {"brain": mask}, labels, np.repeat([0, 1], 20))
    cache = RawVoxelCache(max_bytes=1024)
    masked = mask_dataset(dataset, "brain", detrend=True, cache=cache)
    assert len(cache) == 0
    assert_float32_close(masked.X, nilearn_masked(gz_path, mask, standardize=True, detrend=True), True)


def test_clean_signals_in_place():
    X = np.random.default_rng(8).normal(size=(30, 4)).astype(np.float32) + 3
    expected = clean_signals(X, standardize=True)
    out = clean_signals(X, standardize=True, copy=False)
    assert out is X
    np.testing.assert_array_equal(out, expected)


def test_cache_is_bounded_lru():
    cache = RawVoxelCache(max_bytes=1000)
    cache.put("a", np.zeros(100, np.float32))
    cache.put("b", np.zeros(100, np.float32))
    assert cache.get("a") is not None  # a is now most recent
    cache.put("c", np.zeros(100, np.float32))
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.nbytes == 800
    cache.put("huge", np.zeros(1000, np.float32))
    assert "huge" not in cache
    with pytest.raises(ValueError):
        cache.get("a")[0] = 1


def test_select_conditions():
    X = np.arange(12, dtype=np.float32).reshape(6, 2)
    mask_img = nib.Nifti1Image(np.array([[[1, 1]]], np.uint8), np.eye(4))
    masked = MaskedData(X=X, labels=np.array(["a", "b", "c", "a", "b", "c"]), runs=np.array([0, 0, 0, 1, 1, 1]),
                        volume_index=np.arange(6), mask_img=mask_img, mask_name="m")
    kept = select_conditions(masked, ["c", "a"])
    np.testing.assert_array_equal(kept.volume_index, [0, 2, 3, 5])
    np.testing.assert_array_equal(kept.X, X[[0, 2, 3, 5]])
    np.testing.assert_array_equal(kept.runs, [0, 0, 1, 1])
    with pytest.raises(DecodingInputError, match=r"condition\(s\) \['dog'\] do not occur"):
        select_conditions(masked, ["a", "dog"])
    with pytest.raises(DecodingInputError, match="at least two conditions"):
        select_conditions(masked, ["a"])


def test_unmask_round_trip(vt_pieces):
    vt = vt_pieces[1]
    mask = vt.get_fdata() != 0
    values = np.arange(mask.sum(), dtype=np.float32)
    img = unmask(values, vt)
    assert img.shape == (40, 64, 64)
    np.testing.assert_array_equal(img.get_fdata()[mask], values)
    assert np.all(img.get_fdata()[~mask] == 0)
    maps = unmask(np.vstack([values, -values]), vt)
    assert maps.shape == (40, 64, 64, 2)
    np.testing.assert_array_equal(maps.get_fdata()[mask][:, 1], -values)
    with pytest.raises(DecodingInputError, match="the mask has 577 voxels"):
        unmask(values[:-1], vt)


@pytest.mark.slow
def test_simulated_dataset_equals_niftimasker(simulated_dataset):
    dataset = simulated_dataset
    for name in ("vt", "brain"):
        masked = mask_dataset(dataset, name, cache=RawVoxelCache())
        reference = nilearn_masked(dataset.func_path, dataset.masks[name], standardize=True)
        assert_float32_close(masked.X, reference, True)


# ---------------------------------------------------------------------------------------
# NaN and infinite voxels: reported, then dropped only when asked
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slice_with_nonfinite(haxby_slice_dir, tmp_path_factory):
    """The real slice data as float32, with NaN or inf in 3 voxels of the mask (in 4 volumes)."""
    img = nib.load(haxby_slice_dir / "bold.nii.gz")
    mask_img = load_image(haxby_slice_dir / "mask.nii.gz", expected_ndim=3, kind="mask")
    data = img.get_fdata(dtype=np.float32)
    mask = np.asarray(mask_img.dataobj) != 0
    voxels = np.argwhere(mask)[[5, 7, 300]]  # C order: columns 5, 7 and 300
    data[tuple(voxels[0]) + (100,)] = np.nan
    data[tuple(voxels[1]) + (3,)] = np.inf
    data[tuple(voxels[1]) + (100,)] = -np.inf
    data[tuple(voxels[2]) + (700,)] = np.nan
    data[tuple(voxels[2]) + (701,)] = np.nan
    outside = np.argwhere(~mask)[0]
    data[tuple(outside) + (9,)] = np.nan  # outside the mask: never reported for it
    path = tmp_path_factory.mktemp("nonfinite") / "bold_nan.nii.gz"
    nib.Nifti1Image(data, img.affine).to_filename(path)
    table = pd.read_csv(haxby_slice_dir / "labels.txt", sep=" ")
    dataset = make_dataset(path, {"slice": mask_img}, table["labels"].to_numpy(dtype=str), table["chunks"].to_numpy())
    kept = mask.copy()
    kept[tuple(voxels.T)] = False
    return dataset, nib.Nifti1Image(kept.astype(np.uint8), mask_img.affine), [5, 7, 300]


def test_nan_voxels_stop_masking_by_default_with_their_count(slice_with_nonfinite):
    dataset = slice_with_nonfinite[0]
    # Before: the NaN became 0 silently, and that sample's z-score about -12.9.
    with pytest.raises(NonFiniteVoxelsError) as raised:
        mask_dataset(dataset, "slice")
    message = str(raised.value)
    assert "3 of the 530 voxels of the mask 'slice' (in 4 of the 1452 volumes)" in message
    assert "nonfinite='drop'" in message and "Drop the voxels with NaN or infinite values" in message
    assert raised.value.found.n_voxels == 3 and np.flatnonzero(raised.value.found.columns).tolist() == [5, 7, 300]
    with pytest.raises(DecodingInputError, match="'nonfinite' must be one of"):
        mask_dataset(dataset, "slice", nonfinite="zero")


@pytest.mark.parametrize("smoothing_fwhm", [None, 6.0])
def test_dropped_nan_voxels_give_niftimasker_on_the_other_voxels(slice_with_nonfinite, smoothing_fwhm):
    dataset, kept_mask, dropped_columns = slice_with_nonfinite
    masked = mask_dataset(dataset, "slice", nonfinite="drop", smoothing_fwhm=smoothing_fwhm,
                          cache=RawVoxelCache())
    reference = nilearn_masked(dataset.func_path, kept_mask, standardize=True, smoothing_fwhm=smoothing_fwhm)
    assert_float32_close(masked.X, reference, True)
    assert np.array_equal(np.asarray(masked.mask_img.dataobj) != 0, np.asarray(kept_mask.dataobj) != 0)
    assert masked.dropped.n_voxels == 3 and masked.dropped.n_volumes == 4
    assert np.flatnonzero(masked.dropped.columns).tolist() == dropped_columns
    assert select_conditions(masked, ["face", "cat"]).dropped is masked.dropped


def test_decoding_after_dropping_nan_voxels_equals_scikit_learn(slice_with_nonfinite):
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
    from sklearn.svm import SVC

    from decoding_core.config import DecodingConfig
    from decoding_core.decoding import decode

    dataset, kept_mask, _ = slice_with_nonfinite
    result = decode(mask_dataset(dataset, "slice", nonfinite="drop"), DecodingConfig(mask_name="slice"))
    X = nilearn_masked(dataset.func_path, kept_mask, standardize=True)
    keep = np.isin(dataset.conditions, ["face", "cat"])
    expected = cross_val_score(SVC(kernel="linear"), X[keep], dataset.conditions[keep], cv=LeaveOneGroupOut(),
                               groups=dataset.runs[keep])
    np.testing.assert_allclose(result.fold_scores, expected, atol=1e-12)
    weights = result.weight_img.get_fdata()
    inside = np.asarray(dataset.masks["slice"].dataobj) != 0
    dropped = inside & ~(np.asarray(kept_mask.dataobj) != 0)
    assert result.n_voxels == 527 and np.all(weights[dropped] == 0)
    assert np.count_nonzero(weights[inside & ~dropped]) > 500


def test_scan_finds_nan_voxels_of_every_mask_and_dropping_gives_a_new_data_set(slice_with_nonfinite):
    dataset, kept_mask, _ = slice_with_nonfinite
    scan = scan_nonfinite(dataset)
    assert scan.n_voxels == 4  # one of them outside the mask
    found = scan.by_mask["slice"]
    assert (found.n_voxels, found.n_volumes, found.n_mask_voxels) == (3, 4, 530)
    dropped = drop_nonfinite_voxels(dataset, scan)
    assert dropped.digest != dataset.digest
    assert "NaN or infinite values dropped" in dropped.title
    assert np.array_equal(np.asarray(dropped.masks["slice"].dataobj) != 0, np.asarray(kept_mask.dataobj) != 0)
    np.testing.assert_array_equal(mask_dataset(dropped, "slice").X, mask_dataset(dataset, "slice", nonfinite="drop").X)
    assert drop_nonfinite_voxels(dropped, scan_nonfinite(dropped)) is dropped


def test_scan_does_not_read_an_integer_image(haxby_slice_dir, monkeypatch):
    import decoding_core.masking as masking

    table = pd.read_csv(haxby_slice_dir / "labels.txt", sep=" ")
    mask = load_image(haxby_slice_dir / "mask.nii.gz", expected_ndim=3, kind="mask")
    int16_dataset = make_dataset(haxby_slice_dir / "bold.nii.gz", {"slice": mask}, table["labels"].to_numpy(dtype=str),
                                 None)

    def no_reading(*args, **kwargs):
        raise AssertionError("an integer image cannot hold NaN: it must not be read")

    monkeypatch.setattr(masking.nifti, "_iter_raw_chunks", no_reading)
    scan = scan_nonfinite(int16_dataset)
    assert scan.by_mask == {} and scan.n_voxels == 0


def test_find_nonfinite_on_a_matrix():
    X = np.ones((5, 4), dtype=np.float32)
    assert find_nonfinite(X) is None
    X[1, 2], X[3, 2], X[4, 0] = np.nan, np.inf, -np.inf
    found = find_nonfinite(X, "m")
    assert (found.n_voxels, found.n_volumes) == (2, 3)
    assert found.columns.tolist() == [True, False, True, False]
    assert found.describe() == "2 of the 4 voxels of the mask 'm' (in 3 of the 5 volumes)"
