"""Tests of decoding_core.decoding.estimators: the ESTIMATORS table and its factories, tuning,
screening and the pipeline build_estimator makes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_selection import SelectPercentile, f_classif
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.multiclass import OneVsRestClassifier  # noqa: F401  (a name for eval: logistic_l1's source)
from sklearn.svm import SVC

from decoding_core import decoding
from decoding_core.config import ESTIMATORS, DecodingConfig
from decoding_core.decoding import TunedLinearClassifier, build_estimator, decode, make_splits
from decoding_core.decoding.estimators import _inner_splitter, fit_classifier, fit_one_vs_rest
from decoding_core.masking import MaskedData

from tests.core.decoding._helpers import _mask_img, make_masked, plain_params


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

    def recording_fit(self, X, y, groups=None, **kwargs):
        seen.append((np.array(X), None if groups is None else np.array(groups)))
        return original_fit(self, X, y, groups, **kwargs)

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


# -- the fast fits: the same fitted classifiers as scikit-learn's own fit ----------------------------
def test_linear_svc_fitted_through_its_kernel_is_the_linear_svc():
    masked = make_masked(classes=("face", "cat", "house"), n_voxels=60, signal=0.4, seed=3)
    X, y = masked.X.astype(np.float64), masked.labels
    train, test = slice(0, 36), slice(36, None)
    plain = SVC(kernel="linear", C=0.5).fit(X[train], y[train])
    fast = fit_classifier(SVC(kernel="linear", C=0.5), X[train], y[train])
    assert fast.kernel == "linear" and type(fast) is SVC
    np.testing.assert_array_equal(fast.predict(X[test]), plain.predict(X[test]))
    np.testing.assert_allclose(fast.decision_function(X[test]), plain.decision_function(X[test]), atol=1e-10)
    np.testing.assert_allclose(fast.coef_, plain.coef_, atol=1e-12)
    np.testing.assert_array_equal(fast.support_, plain.support_)


@pytest.mark.parametrize("base", [SVC(kernel="linear"), decoding.make_classifier("logistic_l1").estimator])
def test_one_vs_rest_fit_equals_scikit_learns_and_reports_each_class(base):
    masked = make_masked(classes=("face", "cat", "house", "shoe"), n_voxels=40, signal=0.5, seed=4)
    X, y = masked.X.astype(np.float64), masked.labels
    plain = OneVsRestClassifier(base).fit(X, y)
    seen = []
    fast = fit_one_vs_rest(OneVsRestClassifier(base), X, y,
                                    progress=lambda fraction, message: seen.append((fraction, message)))
    np.testing.assert_array_equal(fast.classes_, plain.classes_)
    np.testing.assert_allclose(fast.decision_function(X), plain.decision_function(X), atol=1e-10)
    np.testing.assert_array_equal(fast.predict(X), plain.predict(X))
    assert [fraction for fraction, _ in seen] == [0.25, 0.5, 0.75, 1.0]
    assert seen[-1][1] == "one-vs-rest: 4 of 4 classes fitted"


def test_one_vs_rest_fit_of_two_classes_equals_scikit_learns():
    masked = make_masked(classes=("face", "cat"), n_voxels=40, signal=0.5, seed=6)
    X, y = masked.X.astype(np.float64), masked.labels
    base = decoding.make_classifier("logistic_l1").estimator
    plain = OneVsRestClassifier(base).fit(X, y)
    fast = fit_one_vs_rest(OneVsRestClassifier(base), X, y)
    assert len(fast.estimators_) == len(plain.estimators_) == 1
    np.testing.assert_array_equal(fast.estimators_[0].coef_, plain.estimators_[0].coef_)
    np.testing.assert_array_equal(fast.predict_proba(X), plain.predict_proba(X))


def test_tuned_fit_reports_each_inner_fit_then_the_refit():
    masked = make_masked(classes=("face", "cat", "house"), n_runs=4, n_voxels=30, seed=5)
    seen = []
    decoding.fit_estimator(build_estimator(DecodingConfig(tune_C=True)), masked.X, masked.labels, masked.runs,
                           progress=lambda fraction, message: seen.append((fraction, message)))
    n_fits = 4 * len(decoding.DEFAULT_C_GRID)  # 4 runs: 4 inner folds x the Cs
    fractions = [fraction for fraction, _ in seen]
    assert len(seen) == n_fits + 1 and fractions == sorted(fractions) and fractions[-1] == 1.0
    share = 30 / 31  # the inner fits' share of the bar (at most 5 inner folds x 6 Cs, then the refit)
    np.testing.assert_allclose(fractions[:-1], share * np.arange(1, n_fits + 1) / n_fits)
    assert seen[0][1] == "tuning C: fit 1 of 24 (inner fold 1 of 4, C = 0.001)"
    assert seen[-1][1].startswith("tuning C: refitted with C = ")
