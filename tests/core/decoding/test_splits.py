"""Tests of decoding_core.decoding.splits: make_splits and its schemes, their folds and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import KFold, LeaveOneGroupOut, cross_val_score
from sklearn.svm import SVC

from decoding_core.config import DecodingConfig
from decoding_core.decoding import decode
from decoding_core.errors import DecodingInputError
from decoding_core.masking import MaskedData

from tests.core.decoding._helpers import make_masked


@pytest.mark.parametrize("cv, n_folds", [
    ("train", 1), ("holdout", 1), ("kfold", 5), ("default", 5), ("leave-one-run-out", 4),
])
def test_every_scheme_gives_its_number_of_folds(masked, cv, n_folds):
    config = DecodingConfig(cv=cv, holdout_size=12)
    result = decode(masked, config)
    assert len(result.fold_scores) == n_folds
    assert result.folds.shape[0] == n_folds
    assert result.mean_score == pytest.approx(np.mean(result.fold_scores))
    assert result.predictions["fold"].nunique() == n_folds
    assert result.meaningless == (cv == "train")


def test_train_scheme_scores_one_and_is_meaningless():
    # Pure noise labels: a linear classifier with more voxels than samples still fits them.
    data = make_masked(signal=0.0, n_voxels=200)
    result = decode(data, DecodingConfig(cv="train"))
    assert result.fold_scores.tolist() == [1.0]
    assert result.meaningless
    assert any("meaningless" in w for w in result.warnings)


def test_holdout_tests_exactly_the_last_samples(masked):
    result = decode(masked, DecodingConfig(cv="holdout", holdout_size=10))
    n = masked.X.shape[0]
    assert result.predictions["sample"].tolist() == list(range(n - 10, n))
    assert result.predictions["volume"].tolist() == list(masked.volume_index[n - 10:])
    assert result.folds["n_train"].tolist() == [n - 10]
    svc = SVC(kernel="linear").fit(masked.X[: n - 10], masked.labels[: n - 10])
    assert result.fold_scores[0] == pytest.approx(svc.score(masked.X[n - 10:], masked.labels[n - 10:]))


def test_kfold_equals_sklearn_unshuffled_kfold(masked):
    result = decode(masked, DecodingConfig(cv="kfold", n_folds=5))
    expected = cross_val_score(SVC(kernel="linear"), masked.X, masked.labels, cv=KFold(5))
    np.testing.assert_allclose(result.fold_scores, expected)


def test_default_equals_cross_val_score_default(masked):
    result = decode(masked, DecodingConfig(cv="default"))
    expected = cross_val_score(SVC(kernel="linear"), masked.X, masked.labels)
    np.testing.assert_allclose(result.fold_scores, expected)


def test_leave_one_run_out_equals_sklearn(masked):
    result = decode(masked, DecodingConfig(cv="leave-one-run-out", C=0.1))
    expected = cross_val_score(SVC(kernel="linear", C=0.1), masked.X, masked.labels,
                               cv=LeaveOneGroupOut(), groups=masked.runs)
    np.testing.assert_allclose(result.fold_scores, expected)
    # Every sample is tested once, in the fold of its run.
    predictions = result.predictions.sort_values("sample")
    assert predictions["sample"].tolist() == list(range(len(masked.labels)))
    assert (predictions["fold"].to_numpy() - 1 == masked.runs).all()


def test_leave_one_run_out_with_one_run_is_refused(masked):
    one_run = MaskedData(X=masked.X, labels=masked.labels, runs=np.zeros(len(masked.labels), int),
                         volume_index=masked.volume_index, mask_img=masked.mask_img, mask_name="t")
    with pytest.raises(DecodingInputError, match="Leave-one-run-out needs at least two runs; the selected data have 1 run"):
        decode(one_run, DecodingConfig())
    no_runs = MaskedData(X=masked.X, labels=masked.labels, runs=None,
                         volume_index=masked.volume_index, mask_img=masked.mask_img, mask_name="t")
    with pytest.raises(DecodingInputError, match="Choose K-fold or hold-out"):
        decode(no_runs, DecodingConfig())


def test_holdout_too_large_is_refused(masked):
    n = len(masked.labels)
    with pytest.raises(DecodingInputError, match="must be smaller than"):
        decode(masked, DecodingConfig(cv="holdout", holdout_size=n))
    # Holding out all but the first block leaves one class to train on.
    with pytest.raises(DecodingInputError, match="single condition"):
        decode(masked, DecodingConfig(cv="holdout", holdout_size=n - 6))


def test_kfold_too_many_folds_is_refused(masked):
    with pytest.raises(DecodingInputError, match="K-fold with K=100"):
        decode(masked, DecodingConfig(cv="kfold", n_folds=100))


def test_kfold_that_trains_on_one_class_is_refused():
    labels = np.repeat(["face", "cat"], 10)  # sorted by condition: 2-fold trains on one class
    data = make_masked(labels=labels, n_runs=2)
    with pytest.raises(DecodingInputError, match="trains on a single class"):
        decode(data, DecodingConfig(cv="kfold", n_folds=2))


def test_default_split_needs_five_samples_per_class():
    labels = np.array(["face"] * 4 + ["cat"] * 8)
    data = make_masked(labels=labels, n_runs=2)
    with pytest.raises(DecodingInputError, match=r"at least 5 samples of each condition.*'face' \(4\)"):
        decode(data, DecodingConfig(cv="default"))
