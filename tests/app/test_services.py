"""The app's service layer: bounded cache, click-to-voxel, permutation bookkeeping."""

from __future__ import annotations

import pytest

import app_services as services


def test_bounded_store_drops_the_least_recently_used():
    store = services.BoundedStore(2)
    store.put("a", 1)
    store.put("b", 2)
    assert store.get("a") == 1  # "a" is now the most recent
    store.put("c", 3)
    assert "b" not in store and "a" in store and "c" in store
    assert len(store) == 2


def test_cut_from_selection_reads_the_voxel_of_a_click():
    selection = {"points": [{"x": 1.0, "y": 2.0, "customdata": {"0": 4, "1": 7, "2": 2}}]}
    assert services.cut_from_selection(selection) == (4, 7, 2)
    assert services.cut_from_selection({"points": []}) is None
    assert services.cut_from_selection(None) is None


def test_clamp_cut_stays_inside_the_grid():
    assert services.clamp_cut((-3, 50, 4), (10, 20, 30)) == (0, 19, 4)


def test_permutation_summary_counts_ties_as_at_least_as_high():
    run = services.new_permutation_run(4)
    run.update(observed=0.8, null_scores=[0.5, 0.8, 0.9, 0.6], n_done=4)
    summary = services.permutation_summary(run)
    assert summary["p_value"] == pytest.approx((1 + 2) / (1 + 4))
    assert summary["n_done"] == 4


def test_upload_root_refuses_a_token_that_could_escape_the_folder():
    with pytest.raises(ValueError):
        services.upload_root("../other")
    assert services.upload_root("abc123").name == "abc123"


def test_upload_errors_name_the_users_files_not_the_stored_copies():
    import app_services

    names = {"4D image": "bold.nii.gz", "labels": "my labels.csv"}
    message = "This file ('func.nii.gz') is 3D; func.nii is not NIfTI; labels.txt has 3 rows; mask.nii stays"
    assert app_services.with_upload_names(message, names) == (
        "This file ('bold.nii.gz') is 3D; 'bold.nii.gz' is not NIfTI; 'my labels.csv' has 3 rows; mask.nii stays"
    )
