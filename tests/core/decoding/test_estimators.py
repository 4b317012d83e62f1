"""Tests of decoding_core.decoding: schemes, estimators, tuning, screening, metrics, maps."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import SelectPercentile, f_classif
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import KFold, LeaveOneGroupOut, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import SVC

from decoding_core import decoding
from decoding_core.config import ESTIMATORS, DecodingConfig
from decoding_core.decoding import (
    TunedLinearClassifier,
    activation_pattern,
    build_estimator,
    decode,
    decode_selected,
    design_warnings,
    make_splits,
    run_decoding,
    sign_stability,
)
from decoding_core.decoding.estimators import _inner_splitter
from decoding_core.errors import DecodingInputError
from decoding_core.masking import MaskedData, mask_dataset


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def plain_params(estimator) -> dict:
    """Every parameter of an estimator, nested ones included, with wrapped estimators by type."""
    return {name: type(value) if hasattr(value, "get_params") else value
            for name, value in estimator.get_params(deep=True).items()}


def _mask_img(n_voxels: int) -> nib.Nifti1Image:
    data = np.zeros(n_voxels + 3, dtype=np.uint8)
    data[:n_voxels] = 1
    return nib.Nifti1Image(data.reshape(-1, 1, 1), np.eye(4))


def make_masked(*, n_runs=4, blocks_per_run=2, block=6, n_voxels=100, classes=("face", "cat"),
                signal=1.0, seed=0, labels=None) -> MaskedData:
    """Block-designed data: each run holds `blocks_per_run` blocks of each class."""
    rng = np.random.default_rng(seed)
    if labels is None:
        one_run = np.concatenate([np.repeat(c, block) for _ in range(blocks_per_run) for c in classes])
        labels = np.tile(one_run, n_runs)
    runs = np.repeat(np.arange(n_runs), len(labels) // n_runs)
    X = rng.normal(size=(len(labels), n_voxels))
    patterns = rng.normal(size=(len(classes), n_voxels))
    for k, c in enumerate(classes):
        X[labels == c] += signal * patterns[k]
    return MaskedData(X=X.astype(np.float32), labels=np.asarray(labels, dtype=str), runs=runs,
                      volume_index=np.arange(len(labels)) + 5, mask_img=_mask_img(n_voxels),
                      mask_name="test")


@pytest.fixture(scope="module")
def masked():
    return make_masked()


@pytest.fixture(scope="module")
def haxby_vt_masked(haxby_vt_dir):
    """The real data masked by plain nilearn, as the tutorial does."""
    from nilearn.maskers import NiftiMasker

    labels = pd.read_csv(haxby_vt_dir / "labels.txt", sep=" ")
    masker = NiftiMasker(mask_img=str(haxby_vt_dir / "mask_vt.nii.gz"), standardize="zscore_sample",
                         reports=False)
    X = masker.fit_transform(str(haxby_vt_dir / "bold_vt.nii.gz"))
    return X, labels["labels"].to_numpy(dtype=str), labels["chunks"].to_numpy()


@pytest.fixture(scope="module")
def simulated_vt(simulated_dataset):
    return mask_dataset(simulated_dataset, "vt")


# --------------------------------------------------------------------------------------
# Schemes
# --------------------------------------------------------------------------------------


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


@pytest.mark.parametrize("scoring", ["roc_auc", "balanced_accuracy"])
def test_scores_equal_sklearn_scorers(masked, scoring):
    result = decode(masked, DecodingConfig(scoring=scoring))
    expected = cross_val_score(SVC(kernel="linear"), masked.X, masked.labels, cv=LeaveOneGroupOut(),
                               groups=masked.runs, scoring=scoring)
    np.testing.assert_allclose(result.fold_scores, expected)


@pytest.mark.slow
def test_real_haxby_face_vs_cat_matches_nilearn_and_sklearn(haxby_vt_dir, haxby_vt_masked):
    from decoding_core.datasets import load_files

    X, labels, runs = haxby_vt_masked
    keep = np.isin(labels, ["face", "cat"])
    expected = cross_val_score(SVC(kernel="linear"), X[keep], labels[keep], cv=LeaveOneGroupOut(),
                               groups=runs[keep])
    dataset = load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                         mask=haxby_vt_dir / "mask_vt.nii.gz")
    result = run_decoding(dataset, DecodingConfig(mask_name="uploaded", standardize=True))
    assert len(result.fold_scores) == 12
    np.testing.assert_allclose(result.fold_scores, expected, atol=1e-4)
    assert result.n_samples == keep.sum() and result.n_voxels == X.shape[1]
    assert result.chance_level == pytest.approx(0.5)
    # The weights are the tutorial's svc.coef_ on all selected samples.
    svc = SVC(kernel="linear").fit(X[keep], labels[keep])
    np.testing.assert_allclose(result.weights, svc.coef_, atol=2e-3 * np.abs(svc.coef_).max())
    assert result.weight_img.shape == dataset.masks["uploaded"].shape
    # time = volume * TR
    tr = dataset.tr
    np.testing.assert_allclose(result.predictions["time"], result.predictions["volume"] * tr)


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def test_single_class_is_refused(masked):
    one = MaskedData(X=masked.X[:12], labels=masked.labels[:12].copy(), runs=masked.runs[:12],
                     volume_index=masked.volume_index[:12], mask_img=masked.mask_img, mask_name="t")
    one.labels[:] = "face"
    with pytest.raises(DecodingInputError, match="Only one condition"):
        decode_selected(one, DecodingConfig())


def test_unknown_condition_is_refused(masked):
    with pytest.raises(DecodingInputError, match="dog"):
        decode(masked, DecodingConfig(conditions=("face", "dog")))


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


def test_non_finite_data_are_refused(masked):
    X = masked.X.copy()
    X[0, 0] = np.nan
    bad = MaskedData(X=X, labels=masked.labels, runs=masked.runs, volume_index=masked.volume_index,
                     mask_img=masked.mask_img, mask_name="t")
    with pytest.raises(DecodingInputError, match="NaN or infinite"):
        decode(bad, DecodingConfig())


def test_arrow_string_labels_are_accepted(masked):
    arrow_labels = pd.Series(masked.labels, dtype="str").array
    data = MaskedData(X=masked.X, labels=arrow_labels, runs=pd.Series(masked.runs).array,
                      volume_index=masked.volume_index, mask_img=masked.mask_img, mask_name="t")
    result = decode_selected(data, DecodingConfig())
    np.testing.assert_allclose(result.fold_scores, decode(masked, DecodingConfig()).fold_scores)


# --------------------------------------------------------------------------------------
# Estimators, tuning, screening
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_each_estimators_source_builds_the_same_classifier(estimator):
    # The exported script writes `source`; the app calls `make`: one table row, two forms.
    from sklearn.linear_model import LogisticRegression, RidgeClassifier  # noqa: F401  (names for eval)
    from sklearn.svm import LinearSVC  # noqa: F401

    spec = ESTIMATORS[estimator]
    built = eval(spec.source.format(C="0.25"))
    assert type(built) is type(spec.make(0.25))
    assert plain_params(built) == plain_params(spec.make(0.25))


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
@pytest.mark.parametrize("n_classes", [2, 3])
def test_every_estimator_decodes_and_maps(estimator, n_classes):
    classes = ("face", "cat", "house")[:n_classes]
    data = make_masked(classes=classes, n_voxels=40, signal=1.0, seed=1)
    result = decode(data, DecodingConfig(conditions=classes, estimator=estimator))
    n_maps = 1 if n_classes == 2 else n_classes
    assert result.weights.shape == (n_maps, 40)
    assert result.fold_weights.shape == (4, n_maps, 40)
    assert result.fold_weights.dtype == np.float32
    assert result.mean_score > 1.0 / n_classes + 0.2
    assert result.classes == tuple(sorted(classes))


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_binary_weights_are_the_estimators_own_coefficients(masked, estimator):
    # RidgeClassifier's coef_ is 1-D for two classes: its map must still be one weight
    # per voxel, not its first weight copied everywhere.
    result = decode(masked, DecodingConfig(estimator=estimator, C=0.5))
    reference = ESTIMATORS[estimator].make(0.5).fit(np.asarray(masked.X, dtype=float), masked.labels)
    expected = np.asarray(decoding.coefficients(reference), dtype=float).reshape(1, -1)
    assert result.weights.shape == expected.shape
    # The iterative solvers stop at a tolerance: the same solution to within it.
    assert np.corrcoef(result.weights[0], expected[0])[0, 1] > 0.99
    np.testing.assert_allclose(result.weights, expected, atol=0.05 * np.abs(expected).max())
    for fold_map in result.fold_weights:
        assert np.ptp(fold_map) > 0


@pytest.mark.parametrize("estimator", ["svm_l1", "svm_l2", "logistic_l1"])
def test_the_same_configuration_gives_the_same_scores_and_maps(estimator):
    # liblinear visits coordinates in a random order; a rerun of a
    # configuration (history, "change one setting", the exported script) must not differ.
    data = make_masked(classes=("face", "cat", "house"), n_voxels=60, signal=0.4, seed=5)
    config = DecodingConfig(conditions=("face", "cat", "house"), estimator=estimator, C=0.3)
    first, second = decode(data, config), decode(data, config)
    np.testing.assert_array_equal(first.fold_scores, second.fold_scores)
    np.testing.assert_array_equal(first.weights, second.weights)
    np.testing.assert_array_equal(first.fold_weights, second.fold_weights)


def test_ridge_alpha_follows_C():
    assert ESTIMATORS["ridge"].make(2.0).alpha == pytest.approx(0.25)


def test_multiclass_svc_maps_are_one_vs_rest():
    classes = ("face", "cat", "house")
    data = make_masked(classes=classes, n_voxels=30, seed=2)
    result = decode(data, DecodingConfig(conditions=classes))
    ovr = OneVsRestClassifier(SVC(kernel="linear")).fit(data.X, data.labels)
    expected = np.vstack([e.coef_ for e in ovr.estimators_])
    assert list(ovr.classes_) == list(result.classes)
    np.testing.assert_allclose(result.weights, expected, rtol=1e-4, atol=1e-5)
    assert result.weight_img.shape == (33, 1, 1, 3)


def test_binary_weights_point_to_second_class(masked):
    result = decode(masked, DecodingConfig())
    svc = SVC(kernel="linear").fit(masked.X, masked.labels)
    np.testing.assert_allclose(result.weights, svc.coef_, rtol=1e-4, atol=1e-6)
    assert result.positive_class == result.classes[1] == svc.classes_[1]


def test_screening_keeps_the_percentile_and_zeroes_the_rest(masked):
    result = decode(masked, DecodingConfig(screening_percentile=10))
    kept = np.count_nonzero(result.weights[0])
    assert kept == 10  # 10 % of 100 voxels
    for fold_weights in result.fold_weights:
        assert np.count_nonzero(fold_weights) == 10
    # Stability is 0 where the full-data weight is 0.
    assert (result.stability[0][result.weights[0] == 0] == 0).all()


def test_screening_inside_folds_does_not_leak():
    # Pure noise: 60 samples, 2000 voxels, random labels.
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 2000)).astype(np.float32)
    labels = rng.permutation(np.repeat(["a", "b"], 30))
    runs = np.repeat(np.arange(6), 10)
    data = MaskedData(X=X, labels=labels, runs=runs, volume_index=np.arange(60),
                      mask_img=_mask_img(2000), mask_name="t")
    honest = decode(data, DecodingConfig(conditions=("a", "b"), screening_percentile=1))
    # Screening fitted on all samples, as a leaky analysis would do.
    X_screened = SelectPercentile(f_classif, percentile=1).fit_transform(X, labels)
    leaky = cross_val_score(SVC(kernel="linear"), X_screened, labels, cv=LeaveOneGroupOut(), groups=runs)
    assert abs(honest.mean_score - 0.5) < 0.15
    assert leaky.mean() > 0.8
    assert leaky.mean() - honest.mean_score > 0.25


def test_tuning_sees_training_folds_only(masked, monkeypatch):
    seen = []
    original_fit = TunedLinearClassifier.fit

    def recording_fit(self, X, y, groups=None):
        seen.append((np.array(X), None if groups is None else np.array(groups)))
        return original_fit(self, X, y, groups)

    monkeypatch.setattr(TunedLinearClassifier, "fit", recording_fit)
    config = DecodingConfig(tune_C=True)
    result = decode(masked, config)
    splits = make_splits(config, masked.labels, masked.runs)
    assert len(seen) == len(splits) + 1  # one per fold, then the refit on all samples
    for (X_seen, groups_seen), (train, _test) in zip(seen, splits):
        np.testing.assert_array_equal(X_seen, masked.X[train])
        np.testing.assert_array_equal(groups_seen, masked.runs[train])
    assert set(result.chosen_C) <= set(decoding.DEFAULT_C_GRID)
    assert result.folds["C"].tolist() == list(result.chosen_C)


def test_tuning_on_noise_stays_at_chance():
    data = make_masked(signal=0.0, n_runs=6, n_voxels=300, seed=5)
    result = decode(data, DecodingConfig(tune_C=True))
    assert abs(result.mean_score - 0.5) < 0.17


def test_inner_split_keeps_runs_together():
    y = np.tile(np.repeat(["a", "b"], 5), 4)
    groups = np.repeat(np.arange(4), 10)
    splitter, split_groups = _inner_splitter(y, groups)
    for train, test in splitter.split(np.zeros((40, 1)), y, split_groups):
        assert not set(groups[train]) & set(groups[test])
    splitter, split_groups = _inner_splitter(y, groups % 2)  # two runs: stratified
    assert split_groups is None and splitter.get_n_splits() >= 2


def test_tuned_classifier_chooses_strong_regularisation_on_noise():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 500))
    y = np.repeat(["a", "b"], 20)
    tuned = TunedLinearClassifier("svc", Cs=(0.001, 0.01, 100.0)).fit(X, y)
    assert tuned.best_C_ in (0.001, 0.01, 100.0)
    assert tuned.inner_scores_.shape == (3,)
    assert tuned.coef_.shape == (1, 500)


def test_build_estimator_is_a_pipeline():
    screened = build_estimator(DecodingConfig(screening_percentile=5))
    assert [name for name, _ in screened.steps] == ["screening", "classifier"]
    # Tuned: the tuner holds the screening, to refit it inside each inner training fold.
    pipeline = build_estimator(DecodingConfig(screening_percentile=5, tune_C=True))
    assert [name for name, _ in pipeline.steps] == ["classifier"]
    assert isinstance(pipeline.named_steps["classifier"], TunedLinearClassifier)
    assert pipeline.named_steps["classifier"].screening_percentile == 5
    plain = build_estimator(DecodingConfig())
    assert [name for name, _ in plain.steps] == ["classifier"]
    assert isinstance(plain.named_steps["classifier"], SVC)


# --------------------------------------------------------------------------------------
# Results: predictions, metrics, warnings, progress
# --------------------------------------------------------------------------------------


def test_predictions(masked):
    result = decode(masked, DecodingConfig(), tr=2.0)
    predictions = result.predictions
    for column in ("sample", "volume", "run", "time", "fold", "true", "predicted", "correct", "decision"):
        assert column in predictions.columns
    np.testing.assert_allclose(predictions["time"], predictions["volume"] * 2.0)
    assert (predictions["correct"] == (predictions["true"] == predictions["predicted"])).all()
    # decision > 0 means the second class
    second = predictions["decision"] > 0
    assert ((predictions["predicted"] == result.classes[1]) == second).all()


def test_chance_level_is_majority_rate():
    labels = np.array((["face"] * 8 + ["cat"] * 4) * 4)
    data = make_masked(labels=labels, n_runs=4)
    result = decode(data, DecodingConfig())
    assert result.chance_level == pytest.approx(2 / 3)
    assert any("balanced accuracy" in w for w in result.warnings)


def test_design_warnings(masked):
    labels, runs = masked.labels, masked.runs
    kfold = DecodingConfig(cv="kfold", n_folds=5)
    messages = design_warnings(kfold, labels, runs, make_splits(kfold, labels, runs))
    assert any("Leave-one-run-out is the honest scheme" in m for m in messages)
    # Not "likely optimistic": on the real data K-fold scores below leave-one-run-out.
    assert any("not an honest estimate" in m and "pessimistic" in m for m in messages)
    assert not any("likely optimistic" in m for m in messages)
    loro = DecodingConfig()
    assert design_warnings(loro, labels, runs, make_splits(loro, labels, runs)) == []
    # A test fold missing a class under ROC AUC.
    three = np.tile(np.repeat(["a", "b", "c"], 4), 3)
    three_runs = np.repeat(np.arange(3), 12)
    auc = DecodingConfig(conditions=("a", "b", "c"), cv="kfold", n_folds=6, scoring="roc_auc")
    messages = design_warnings(auc, three, three_runs, make_splits(auc, three, three_runs))
    assert any("miss some condition" in m for m in messages)
    # A class with a single training sample.
    few = np.array(["a"] * 10 + ["b"] * 2)
    holdout = DecodingConfig(conditions=("a", "b"), cv="holdout", holdout_size=1)
    messages = design_warnings(holdout, few, None, make_splits(holdout, few, None))
    assert any("fewer than two samples" in m for m in messages)


def test_progress_reports_every_fold(masked):
    calls = []
    decode(masked, DecodingConfig(), progress=lambda fraction, message: calls.append((fraction, message)))
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum("Fold" in m for _, m in calls) == 4


# --------------------------------------------------------------------------------------
# Weight maps: patterns, stability
# --------------------------------------------------------------------------------------


def test_activation_pattern_equals_covariance_formula():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 8))
    W = rng.normal(size=(2, 8))
    pattern = activation_pattern(X, W)
    covariance = np.cov(X, rowvar=False)
    outputs_variance = np.var(X @ W.T, axis=0, ddof=1)
    expected = (covariance @ W.T / outputs_variance).T
    np.testing.assert_allclose(pattern, expected, rtol=1e-5)


def test_sign_stability():
    weights = np.array([[1.0, -1.0, 0.0, 2.0]])
    folds = np.array([[[1, -1, 1, -1]], [[1, 1, 0, -1]]], dtype=float)
    np.testing.assert_allclose(sign_stability(folds, weights), [[1.0, 0.5, 0.0, 0.0]])


def test_stability_and_pattern_images(masked):
    result = decode(masked, DecodingConfig())
    stability = result.stability
    assert stability.shape == (1, 100) and ((stability >= 0) & (stability <= 1)).all()
    assert result.stability_img.shape == (103, 1, 1)
    assert result.pattern.shape == (1, 100)
    np.testing.assert_allclose(result.pattern_img.get_fdata()[:100, 0, 0],
                               result.pattern[0], rtol=1e-6)


def test_simulated_multiclass_beats_chance(simulated_dataset, simulated_vt):
    conditions = tuple(simulated_dataset.ground_truth.patterns)
    result = decode(simulated_vt, DecodingConfig(conditions=conditions))
    assert len(result.classes) == 8
    assert result.chance_level == pytest.approx(1 / 8)
    assert result.mean_score > 0.4
    assert result.weights.shape == (8, simulated_vt.X.shape[1])
    assert result.weight_img.shape[-1] == 8


def test_simulated_face_vs_cat_maps_find_the_planted_voxels(simulated_dataset, simulated_vt):
    truth = simulated_dataset.ground_truth
    planted_difference = truth.patterns["face"] - truth.patterns["cat"]
    informative = planted_difference != 0
    result = decode(simulated_vt, DecodingConfig())
    assert result.mean_score > 0.7
    # Maps point to the second class: orient the planted difference the same way.
    assert result.positive_class == "face"
    # Raw weights and the pattern both follow the planted face - cat difference voxel by
    # voxel (weights of a classifier fitted on noise would not: correlation about 0);
    # the pattern far more closely, as Haufe et al. explain (suppressor voxels).
    weights_correlation = np.corrcoef(result.weights[0], planted_difference)[0, 1]
    pattern_correlation = np.corrcoef(result.pattern[0], planted_difference)[0, 1]
    assert weights_correlation > 0.3
    assert pattern_correlation > max(weights_correlation, 0.8)
    weights = np.abs(result.weights[0])
    pattern = np.abs(result.pattern[0])
    by_chance = informative.mean()
    # The activation pattern puts its mass in the informative voxels well above chance,
    assert pattern[informative].sum() / pattern.sum() > by_chance + 0.1
    # and ranks the informative voxels at least as well as the raw weights do.
    assert roc_auc_score(informative, pattern) >= roc_auc_score(informative, weights)
    assert roc_auc_score(informative, pattern) > 0.6


@pytest.mark.parametrize(
    ("scoring", "expected"),
    [("accuracy", 20 / 35), ("balanced_accuracy", 1 / 3), ("roc_auc", 0.5)],
)
def test_chance_level_follows_the_scoring(scoring, expected):
    from decoding_core.decoding import chance_level

    assert chance_level(scoring, [20, 10, 5]) == pytest.approx(expected)


def test_result_chance_level_is_that_of_its_scoring(simulated_dataset):
    from decoding_core.decoding import run_decoding

    config = DecodingConfig(conditions=("face", "cat", "house"), cv="kfold", n_folds=3)
    accuracy = run_decoding(simulated_dataset, config)
    balanced = run_decoding(simulated_dataset, config.replace(scoring="balanced_accuracy"))
    assert accuracy.chance_level == pytest.approx(accuracy.majority_rate)
    assert balanced.chance_level == pytest.approx(1 / 3)
    # The predictions carry time in seconds when the data set has a TR.
    assert np.allclose(accuracy.predictions["time"], accuracy.predictions["volume"] * simulated_dataset.tr)
