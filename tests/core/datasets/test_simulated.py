"""Tests of decoding_core.datasets.simulated: the built-in data set, its cache and ground truth."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from decoding_core.datasets import HAXBY_CATEGORIES, MASK_TITLES, load_simulated, simulated, simulation
from decoding_core.errors import DecodingInputError


def _mask_array(image):
    return np.asanyarray(image.dataobj) != 0


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


@pytest.mark.slow
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


@pytest.mark.slow
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
    assert simulated._verified_cache(first.func_path, meta, 1, first.shape) is not None
    assert simulated._verified_cache(first.func_path, meta, 2, first.shape) is None
    assert simulated._verified_cache(first.func_path, directory / "absent.json", 1, first.shape) is None
    # A damaged cache file is detected on reload and generated again, identical.
    content = bytearray(first.func_path.read_bytes())
    content[len(content) // 2] ^= 0xFF
    first.func_path.write_bytes(bytes(content))
    third = load_simulated(seed=1, cache_dir=directory)
    assert calls == [1]
    assert third.digest == first.digest
    assert sorted(p.name for p in directory.iterdir()) == [f"{stem}.json", f"{stem}.nii.gz"]


@pytest.mark.slow
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


def test_simulated_unwritable_cache_is_a_clear_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    def must_not_generate(seed=0):
        raise AssertionError("generated data that could not be stored")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    monkeypatch.setattr(simulation, "simulate_subject", must_not_generate)
    with pytest.raises(DecodingInputError, match="could not be stored.*DECODING_LAB_DATA_DIR"):
        load_simulated(seed=0, cache_dir=tmp_path / "ro")
