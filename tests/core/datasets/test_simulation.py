"""Tests of the simulated Haxby-like data generator (decoding_core.datasets.simulation)."""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from decoding_core.datasets import simulation
from decoding_core.datasets.simulation import CATEGORIES, N_RUNS, VOLUMES_PER_RUN


@pytest.fixture(scope="module")
def anatomy():
    return simulation.simulated_anatomy()


@pytest.fixture(scope="module")
def subject():
    return simulation.simulate_subject(0)


def _blocks(labels):
    """Runs of equal consecutive labels as (label, length)."""
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.r_[0, change]
    ends = np.r_[change, labels.size]
    return [(labels[s], e - s) for s, e in zip(starts, ends)]


def test_design_follows_haxby():
    design = simulation.simulated_design(0)
    assert list(design.columns) == ["labels", "chunks"]
    assert len(design) == N_RUNS * VOLUMES_PER_RUN == 1452
    runs = design["chunks"].to_numpy()
    labels = design["labels"].to_numpy(dtype=str)
    assert sorted(np.unique(runs)) == list(range(12))
    orders = set()
    for run in range(N_RUNS):
        in_run = labels[runs == run]
        assert in_run.size == 121
        blocks = _blocks(in_run)
        task_blocks = [(label, n) for label, n in blocks if label != "rest"]
        # One block of 9 volumes per category, separated by rest, starting and ending with rest.
        assert sorted(label for label, _ in task_blocks) == sorted(CATEGORIES)
        assert all(n == 9 for _, n in task_blocks)
        assert blocks[0][0] == "rest" and blocks[-1][0] == "rest"
        assert all(n in (5, 6) for label, n in blocks if label == "rest")
        assert (in_run == "rest").sum() == 121 - 72
        orders.add(tuple(label for label, _ in task_blocks))
    # The order of categories is shuffled per run.
    assert len(orders) > 6


def test_design_depends_on_seed_only():
    assert simulation.simulated_design(3).equals(simulation.simulated_design(3))
    assert not simulation.simulated_design(3).equals(simulation.simulated_design(4))


def test_regions_are_nested_and_anatomically_placed(anatomy):
    brain, vt, face, house = anatomy.brain, anatomy.vt, anatomy.face, anatomy.house
    assert face.any() and house.any()
    assert not (face & ~vt).any() and not (house & ~vt).any() and not (vt & ~brain).any()
    assert not (face & house).any()
    assert 150 <= vt.sum() <= 700
    ijk = np.argwhere(vt)
    xyz = ijk @ anatomy.affine[:3, :3].T + anatomy.affine[:3, 3]
    # Bilateral, posterior, inferior: the fusiform / inferior temporal cortex.
    assert (xyz[:, 0] < -20).sum() > 50 and (xyz[:, 0] > 20).sum() > 50
    assert -75 < xyz[:, 1].mean() < -35 and -30 < xyz[:, 2].mean() < 0
    # The face region is lateral to the house region.
    face_x = np.abs((np.argwhere(face) @ anatomy.affine[:3, :3].T + anatomy.affine[:3, 3])[:, 0]).mean()
    house_x = np.abs((np.argwhere(house) @ anatomy.affine[:3, :3].T + anatomy.affine[:3, 3])[:, 0]).mean()
    assert face_x > house_x
    # A real anatomy: background only inside the brain, with contrast.
    assert (anatomy.anat[~brain] == 0).all() and anatomy.anat[brain].std() > 10


def test_subject_values_look_like_bold(subject, anatomy):
    bold = subject.bold
    assert bold.dtype == np.int16
    assert bold.shape == (*anatomy.shape, 1452)
    assert not bold[~anatomy.brain].any()
    inside = bold[anatomy.brain]
    assert 800 < inside.mean() < 1100 and inside.min() > 600 and inside.max() < 1400


def test_face_blocks_raise_vt_signal_by_a_realistic_amount_after_a_delay(subject, anatomy):
    labels = subject.labels["labels"].to_numpy(dtype=str)
    runs = subject.labels["chunks"].to_numpy()
    face_mean = subject.bold[anatomy.face].astype(float).mean(axis=0)
    # Per-run percent change, to remove drifts between runs.
    percent = np.empty_like(face_mean)
    for run in range(N_RUNS):
        rows = runs == run
        percent[rows] = 100 * (face_mean[rows] / face_mean[rows & (labels == "rest")].mean() - 1)
    is_face = labels == "face"
    change = percent[is_face].mean()
    assert 0.8 < change < 4.0
    # The haemodynamic delay: the response is stronger a few volumes after the labels than on them.
    lagged = np.roll(is_face, 2)
    assert percent[lagged].mean() > percent[is_face].mean()
    onsets = np.flatnonzero(is_face & ~np.roll(is_face, 1))
    assert percent[onsets].mean() < percent[onsets + 4].mean()


def test_ground_truth_patterns(subject, anatomy):
    n_vt = int(anatomy.vt.sum())
    assert set(subject.patterns) == set(CATEGORIES)
    for pattern in subject.patterns.values():
        assert pattern.shape == (n_vt,) and pattern.dtype == np.float32
    assert subject.informative.any() and not (subject.informative & ~anatomy.vt).any()
    face_in_vt = anatomy.face[anatomy.vt]
    # Faces drive the face region more than houses do, and the other way round.
    assert subject.patterns["face"][face_in_vt].mean() > subject.patterns["house"][face_in_vt].mean() + 0.5
    house_in_vt = anatomy.house[anatomy.vt]
    assert subject.patterns["house"][house_in_vt].mean() > subject.patterns["face"][house_in_vt].mean() + 0.5
    # Category-specific parts differ between categories.
    centred = np.stack([subject.patterns[c] for c in CATEGORIES])
    centred = centred - centred.mean(axis=0)
    assert np.corrcoef(centred).max(initial=-1, where=~np.eye(8, dtype=bool)) < 0.9
    patterns, informative = simulation.planted_patterns(0)
    assert np.array_equal(patterns["face"][anatomy.vt], subject.patterns["face"])
    assert np.array_equal(informative, subject.informative)


def test_same_seed_same_data_other_seed_other_data(subject):
    again = simulation.simulate_subject(0)
    assert np.array_equal(again.bold, subject.bold)
    other = simulation.simulate_subject(1)
    assert not np.array_equal(other.bold, subject.bold)
    assert not np.array_equal(other.patterns["face"], subject.patterns["face"])


def test_written_file_is_deterministic_readable_and_atomic(tmp_path):
    data = (np.arange(4 * 5 * 3 * 7, dtype=np.int16).reshape(4, 5, 3, 7) % 97).astype(np.int16)
    affine = np.diag([5.0, 5.0, 6.0, 1.0])
    affine[:3, 3] = [-10, 20, -30]
    first, second = tmp_path / "a.nii.gz", tmp_path / "sub" / "b.nii.gz"
    simulation.write_nifti_gz_atomic(data, affine, first, zooms=(5.0, 5.0, 6.0, 2.5))
    simulation.write_nifti_gz_atomic(data, affine, second, zooms=(5.0, 5.0, 6.0, 2.5))
    assert first.read_bytes() == second.read_bytes()
    # No file name in the gzip header and no time stamp: FLG has no FNAME bit, MTIME is 0.
    raw = first.read_bytes()
    assert raw[3] & 0x08 == 0 and raw[4:8] == b"\x00\x00\x00\x00"
    assert len(gzip.decompress(raw)) == 352 + data.nbytes
    image = nib.load(first)
    assert np.array_equal(np.asanyarray(image.dataobj), data)
    assert np.allclose(image.affine, affine)
    assert image.header.get_zooms() == (5.0, 5.0, 6.0, 2.5)
    assert image.header.get_xyzt_units() == ("mm", "sec")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a.nii.gz", "b.nii.gz", "sub"]


@pytest.mark.parametrize("order", ["C", "F"])
def test_written_3d_and_4d_files_hold_the_data_in_either_memory_order(tmp_path, order):
    rng = np.random.default_rng(3)
    volume = np.asarray(rng.integers(-300, 300, size=(6, 4, 5)), dtype=np.int16, order=order)
    series = np.asarray(rng.normal(size=(3, 4, 2, 9)), dtype=np.float32, order=order)
    for name, data in (("mask.nii.gz", volume), ("bold.nii.gz", series)):
        simulation.write_nifti_gz_atomic(data, np.eye(4), tmp_path / name)
        loaded = nib.load(tmp_path / name)
        assert loaded.shape == data.shape
        assert np.array_equal(np.asanyarray(loaded.dataobj), data)


def test_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(simulation.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        simulation.write_nifti_gz_atomic(np.zeros((2, 2, 2, 2), np.int16), np.eye(4), tmp_path / "x.nii.gz")
    assert list(tmp_path.iterdir()) == []


def test_cache_file_names_carry_version_and_seed():
    stem = simulation.cache_file_stem(7)
    assert f"v{simulation.GENERATOR_VERSION}" in stem and stem.endswith("seed7")
