"""Searchlight on the real subject-1 VT data: nilearn's spheres, scikit-learn's scores, nilearn's map."""

from __future__ import annotations

import json
import warnings

import nibabel as nib
import numpy as np
import pytest
from nilearn.decoding import SearchLight
from nilearn.image import index_img
from nilearn.maskers.nifti_spheres_masker import apply_mask_and_get_affinity
from sklearn.model_selection import KFold, LeaveOneGroupOut, cross_val_score
from sklearn.svm import SVC

from decoding_core import datasets, masking
from decoding_core.cli import EXIT_INPUT_ERROR, main
from decoding_core.config import DecodingConfig
from decoding_core.decoding import make_classifier
from decoding_core.errors import DecodingInputError
from decoding_core.searchlight import (
    PARTIAL_DESCRIPTION,
    make_spheres,
    run_searchlight,
    searchlight,
)

RADIUS = 5.6  # mm, the and nilearn's tutorial radius


@pytest.fixture(scope="module")
def vt_dataset(haxby_vt_dir):
    return datasets.load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                               mask=haxby_vt_dir / "mask_vt.nii.gz")


@pytest.fixture(scope="module")
def vt_config(vt_dataset):
    return DecodingConfig(mask_name=next(iter(vt_dataset.masks)))  # face vs cat, LORO, SVC, z-scored


@pytest.fixture(scope="module")
def vt_masked(vt_dataset, vt_config):
    return masking.mask_dataset(vt_dataset, vt_config.mask_name)  # the project's default cleaning


@pytest.fixture(scope="module")
def vt_map(vt_masked, vt_config):
    return searchlight(vt_masked, vt_config, RADIUS)


def small_masked(masked: masking.MaskedData, box=(slice(14, 17), slice(18, 22), slice(22, 26))):
    """The same matrix restricted to the VT voxels inside a small box (a mask of its own)."""
    mask = masking.mask_bool(masked.mask_img)
    inside = np.zeros_like(mask)
    inside[box] = mask[box]
    columns = inside[mask]  # the box's voxels among the mask's, in C order
    sub_mask = nib.Nifti1Image(inside.astype(np.uint8), masked.mask_img.affine)
    return masking.MaskedData(X=masked.X[:, columns], labels=masked.labels, runs=masked.runs,
                              volume_index=masked.volume_index, mask_img=sub_mask, mask_name="box")


def voxel_world_coordinates(mask_img):
    voxels = np.column_stack(np.nonzero(masking.mask_bool(mask_img)))
    return nib.affines.apply_affine(mask_img.affine, voxels)


@pytest.mark.parametrize("radius", [2.0, 3.6, RADIUS, 8.0])
def test_spheres_are_nilearns(vt_masked, radius):
    mask_img = vt_masked.mask_img
    _, adjacency = apply_mask_and_get_affinity(voxel_world_coordinates(mask_img), None, radius, True,
                                               mask_img=mask_img)
    spheres = make_spheres(mask_img, radius)
    assert len(spheres) == adjacency.shape[0] == 577
    for i, row in enumerate(adjacency.rows):
        assert spheres.columns(i).tolist() == sorted(row), f"sphere {i}"
    assert spheres.sizes.tolist() == [len(row) for row in adjacency.rows]


def test_sphere_sizes_follow_the_anisotropic_voxels(vt_masked):
    # 3.5 x 3.75 x 3.75 mm voxels: 3.6 mm reaches the two neighbours along x only.
    assert make_spheres(vt_masked.mask_img, 3.6).sizes.max() == 3
    assert make_spheres(vt_masked.mask_img, 2.0).sizes.max() == 1
    assert make_spheres(vt_masked.mask_img, RADIUS).sizes.max() == 19


@pytest.mark.slow
def test_map_equals_cross_val_score_on_each_sampled_sphere(vt_map, vt_masked, vt_config):
    selected = masking.select_conditions(vt_masked, vt_config.conditions)
    spheres = make_spheres(vt_masked.mask_img, RADIUS)
    map_data = np.asarray(vt_map.score_img.dataobj)
    voxels = np.column_stack(np.nonzero(masking.mask_bool(vt_masked.mask_img)))
    for i in np.random.default_rng(0).choice(len(spheres), size=25, replace=False):
        expected = cross_val_score(SVC(kernel="linear", C=1.0), selected.X[:, spheres.columns(i)],
                                   selected.labels, cv=LeaveOneGroupOut(), groups=selected.runs).mean()
        assert vt_map.scores[i] == pytest.approx(expected, abs=1e-12), f"sphere {i}"
        assert map_data[tuple(voxels[i])] == pytest.approx(expected, abs=1e-6)  # float32 image
    assert not vt_map.partial and vt_map.n_done == vt_map.n_spheres == 577
    assert vt_map.radius == RADIUS and vt_map.sphere_sizes.tolist() == spheres.sizes.tolist()
    assert vt_map.chance_level == pytest.approx(0.5) and vt_map.n_samples == 216
    assert np.nanmax(vt_map.scores) > 0.75  # VT tells faces from cats somewhere
    assert vt_map.best_voxels(1)[0]["score"] == np.nanmax(vt_map.scores)


@pytest.mark.slow
def test_standardize_off_equals_nilearn_searchlight_on_the_raw_images(vt_dataset, haxby_vt_dir):
    config = DecodingConfig(mask_name=next(iter(vt_dataset.masks)), standardize=False)
    raw = small_masked(masking.mask_dataset(vt_dataset, config.mask_name, standardize=False))
    ours = searchlight(raw, config, 3.6)
    assert 5 <= ours.n_spheres <= 40

    keep = np.isin(vt_dataset.conditions, config.conditions)
    images = index_img(nib.load(haxby_vt_dir / "bold_vt.nii.gz"), np.flatnonzero(keep))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn: "custom estimator at your own risk"
        reference = SearchLight(mask_img=raw.mask_img, radius=3.6, estimator=SVC(kernel="linear", C=1.0),
                                cv=LeaveOneGroupOut(), n_jobs=1).fit(
            images, np.asarray(vt_dataset.conditions)[keep], groups=np.asarray(vt_dataset.runs)[keep])
    np.testing.assert_allclose(ours.scores, reference.masked_scores_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(ours.score_img.dataobj), reference.scores_, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("changes, scorer", [
    ({"scoring": "roc_auc"}, "roc_auc"),
    ({"estimator": "ridge", "scoring": "balanced_accuracy"}, "balanced_accuracy"),
    ({"estimator": "svc", "conditions": ("face", "cat", "house"), "C": 0.1}, "accuracy"),
    ({"estimator": "svc", "cv": "kfold", "n_folds": 4}, "accuracy"),
])
def test_other_estimators_schemes_and_scorings_equal_cross_val_score(vt_masked, vt_config, changes, scorer):
    config = vt_config.replace(**changes)
    small = small_masked(vt_masked)
    result = searchlight(small, config, RADIUS)
    selected = masking.select_conditions(small, config.conditions)
    spheres = make_spheres(small.mask_img, RADIUS)
    loro = config.cv == "leave-one-run-out"
    cv = LeaveOneGroupOut() if loro else KFold(n_splits=config.n_folds)
    for i in range(len(spheres)):
        expected = cross_val_score(make_classifier(config.estimator, config.C), selected.X[:, spheres.columns(i)],
                                   selected.labels, cv=cv, groups=selected.runs if loro else None,
                                   scoring=scorer).mean()
        assert result.scores[i] == pytest.approx(expected, abs=1e-12), f"sphere {i}"


def test_stop_keeps_a_partial_map_marked_as_partial(vt_masked, vt_config):
    small = small_masked(vt_masked)
    seen = []
    result = searchlight(small, vt_config, RADIUS, chunk_size=4, progress=lambda f, m: seen.append((f, m)),
                         should_stop=lambda: len(seen) >= 2)
    assert result.partial and result.n_done == 8 < result.n_spheres
    assert np.isfinite(result.scores).sum() == 8 and np.isnan(result.scores[8:]).all()
    description = result.score_img.header["descrip"].tobytes().decode()
    assert description.startswith(PARTIAL_DESCRIPTION.format(done=8, total=result.n_spheres)[:40])
    assert seen[0][0] == pytest.approx(4 / result.n_spheres) and "4 of" in seen[0][1]
    complete = searchlight(small, vt_config, RADIUS)
    assert not complete.partial and "PARTIAL" not in complete.score_img.header["descrip"].tobytes().decode()
    np.testing.assert_array_equal(result.scores[:8], complete.scores[:8])


def test_a_caller_supplied_mapper_gives_the_same_map_in_any_order(vt_masked, vt_config):
    small = small_masked(vt_masked)
    calls = []

    def reversed_mapper(function, chunks):
        calls.append(len(chunks))
        return [function(chunk) for chunk in reversed(chunks)]

    local = searchlight(small, vt_config, RADIUS, chunk_size=5)
    mapped = searchlight(small, vt_config, RADIUS, chunk_size=5, map_chunks=reversed_mapper)
    assert calls == [int(np.ceil(local.n_spheres / 5))]
    np.testing.assert_array_equal(mapped.scores, local.scores)


def test_a_lost_chunk_is_an_error_not_a_silent_partial_map(vt_masked, vt_config):
    def losing_mapper(function, chunks):
        return [function(chunk) for chunk in chunks[1:]]

    with pytest.raises(RuntimeError, match="unscored"):
        searchlight(small_masked(vt_masked), vt_config, RADIUS, chunk_size=5, map_chunks=losing_mapper)


@pytest.mark.parametrize("radius", [0, -2.5, float("nan"), "wide"])
def test_a_bad_radius_is_refused_clearly(vt_masked, vt_config, radius):
    with pytest.raises(DecodingInputError, match="radius must be"):
        searchlight(vt_masked, vt_config, radius)


def test_an_empty_mask_is_refused_clearly(vt_masked, vt_config):
    empty = nib.Nifti1Image(np.zeros(vt_masked.mask_img.shape, dtype=np.uint8), vt_masked.mask_img.affine)
    with pytest.raises(DecodingInputError, match="empty"):
        make_spheres(empty, RADIUS, mask_name="uploaded")


def test_run_searchlight_checks_the_radius_before_reading_the_image(vt_dataset, vt_config):
    with pytest.raises(DecodingInputError, match="radius"):
        run_searchlight(vt_dataset, vt_config, 0)


@pytest.mark.slow
def test_cli_writes_the_map_and_prints_a_summary(haxby_vt_dir, tmp_path, capsys, vt_map):
    out = tmp_path / "map.nii.gz"
    code = main(["searchlight", "--func", str(haxby_vt_dir / "bold_vt.nii.gz"),
                 "--labels", str(haxby_vt_dir / "labels.txt"), "--mask", str(haxby_vt_dir / "mask_vt.nii.gz"),
                 "--radius", str(RADIUS), "--out", str(out), "--json", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_spheres"] == 577 and summary["radius_mm"] == RADIUS and not summary["partial"]
    assert summary["mean_score"] == pytest.approx(float(np.nanmean(vt_map.scores)), abs=1e-12)
    assert summary["best_voxels"][0]["score"] == pytest.approx(float(np.nanmax(vt_map.scores)))
    written = nib.load(out)
    np.testing.assert_allclose(np.asarray(written.dataobj), np.asarray(vt_map.score_img.dataobj))


def test_cli_bad_radius_exits_2_with_one_line(haxby_vt_dir, tmp_path, capsys):
    code = main(["searchlight", "--func", str(haxby_vt_dir / "bold_vt.nii.gz"),
                 "--labels", str(haxby_vt_dir / "labels.txt"), "--mask", str(haxby_vt_dir / "mask_vt.nii.gz"),
                 "--radius", "0", "--out", str(tmp_path / "map.nii.gz")])
    assert code == EXIT_INPUT_ERROR
    err = capsys.readouterr().err
    assert "radius" in err and "Traceback" not in err
    assert not (tmp_path / "map.nii.gz").exists()
