"""Converged solvers, reported non-convergence, float64 input, fully nested tuning and the
multi-class ROC AUC of linear SVC, each checked against scikit-learn on the real VT data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectPercentile, f_classif
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, LeaveOneGroupOut, cross_val_predict, cross_val_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import label_binarize
from sklearn.svm import SVC

from decoding_core import masking
from decoding_core.config import ESTIMATORS, DecodingConfig
from decoding_core.decoding import DEFAULT_C_GRID, decode, make_splits
from decoding_core.decoding.decode import NESTED_SCREENING_NOTE, SVC_ROC_AUC_NOTE
from decoding_core.decoding.estimators import _inner_splitter

#: How far the scores may move when an estimator's tolerance is divided by 100.
STABLE_TO = 0.002

#: The estimators whose face vs cat decode takes more than about 3 s here at tol / 100.
SLOW_ESTIMATORS = {"svm_l1", "logistic_l1", "logistic_l2"}


def selection(masked, conditions):
    """The float64 matrix, labels and runs of some conditions (what scikit-learn is given)."""
    selected = masking.select_conditions(masked, conditions)
    return (np.asarray(selected.X, dtype=np.float64), np.asarray(selected.labels).astype(str),
            np.asarray(selected.runs))


def tightened(estimator):
    """The same estimator with every tolerance divided by 100 and a generous iteration cap."""
    changes = {}
    for name, value in estimator.get_params(deep=True).items():
        if name.split("__")[-1] == "tol" and value is not None:
            changes[name] = value / 100
        if name.split("__")[-1] == "max_iter" and value is not None and value > 0:
            changes[name] = max(value * 20, 200_000)
    return clone(estimator).set_params(**changes)


def config_for(masked, **settings) -> DecodingConfig:
    return DecodingConfig(mask_name=masked.mask_name, **settings)


@pytest.mark.parametrize("estimator", [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW_ESTIMATORS else name for name in ESTIMATORS
])
def test_scores_are_stable_when_the_tolerance_is_divided_by_100(vt_masked, estimator):
    # Before: svm_l1 (tol 1e-3) 0.8148 against 0.8287 converged; logistic_l1 (saga,
    # tol 1e-3) 0.7685 against 0.8009.
    config = config_for(vt_masked, conditions=("face", "cat"), estimator=estimator, C=1.0)
    result = decode(vt_masked, config)
    X, y, runs = selection(vt_masked, ("face", "cat"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the reference itself must converge
        converged = cross_val_score(tightened(ESTIMATORS[estimator].make(1.0)), X, y, groups=runs,
                                    cv=LeaveOneGroupOut())
    assert result.not_converged == 0
    assert abs(result.mean_score - converged.mean()) <= STABLE_TO
    np.testing.assert_allclose(result.fold_scores, converged, atol=STABLE_TO)


# -- non-convergence is reported ----------------------------------------------------------------
def test_a_run_stopped_by_the_iteration_cap_says_so(vt_masked, monkeypatch):
    from sklearn.svm import LinearSVC

    spec = ESTIMATORS["svm_l1"]
    capped = lambda C: LinearSVC(penalty="l1", dual=False, C=C, tol=1e-8, max_iter=2,  # noqa: E731
                                 random_state=0)
    monkeypatch.setitem(ESTIMATORS, "svm_l1", type(spec)(spec.name, spec.title, spec.help, capped, spec.source))
    config = config_for(vt_masked, conditions=("face", "cat"), estimator="svm_l1")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # counted, never shown
        result = decode(vt_masked, config)
    assert result.not_converged == 12 + 1  # every fold and the refit
    message = [w for w in result.warnings if "iteration cap" in w]
    assert len(message) == 1 and message[0].startswith("13 model fit(s)")
    assert "smaller C" in message[0] and "max_iter" in message[0] and "Standardize" in message[0]


def test_inner_tuning_fits_that_hit_the_cap_are_counted(vt_masked, monkeypatch):
    from sklearn.svm import LinearSVC

    spec = ESTIMATORS["svm_l2"]
    capped = lambda C: LinearSVC(C=C, tol=1e-10, max_iter=1, random_state=0)  # noqa: E731
    monkeypatch.setitem(ESTIMATORS, "svm_l2", type(spec)(spec.name, spec.title, spec.help, capped, spec.source))
    config = config_for(vt_masked, conditions=("face", "cat"), estimator="svm_l2", tune_C=True,
                        cv="holdout", holdout_size=18)
    result = decode(vt_masked, config)
    # Hold-out: 1 fold (inner 5 runs x 6 C + its refit) and the refit on all (same again).
    n_inner = len(DEFAULT_C_GRID) * 5
    assert result.not_converged == 2 * (n_inner + 1)
    assert any("iteration cap" in w for w in result.warnings)


def test_a_converged_run_says_nothing_about_convergence(vt_masked):
    result = decode(vt_masked, config_for(vt_masked, conditions=("face", "cat"), estimator="svm_l2"))
    assert result.not_converged == 0
    assert not any("iteration cap" in w for w in result.warnings)


# -- float64 input --------------------------------------------------------------------------------
@pytest.mark.slow
def test_logistic_roc_auc_equals_sklearn_on_the_float64_matrix(vt_masked):
    conditions = ("face", "cat", "house")
    config = config_for(vt_masked, conditions=conditions, estimator="logistic_l2", scoring="roc_auc")
    result = decode(vt_masked, config)
    X, y, runs = selection(vt_masked, conditions)
    expected = cross_val_score(ESTIMATORS["logistic_l2"].make(1.0), X, y, groups=runs,
                               cv=LeaveOneGroupOut(), scoring="roc_auc_ovr")
    np.testing.assert_allclose(result.fold_scores, expected, rtol=0, atol=1e-9)
    # The probabilities themselves (a float32 fit lands about 1e-6 away from the float64 one).
    probabilities = cross_val_predict(ESTIMATORS["logistic_l2"].make(1.0), X, y, groups=runs,
                                      cv=LeaveOneGroupOut(), method="predict_proba")
    in_sample_order = result.predictions.sort_values("sample")
    obtained = in_sample_order[[f"proba_{name}" for name in np.unique(y)]].to_numpy()
    np.testing.assert_allclose(obtained, probabilities, rtol=0, atol=1e-9)


# -- fully nested tuning with screening -------------------------------------------------------------
@pytest.mark.slow
def test_tuning_with_screening_equals_grid_search_over_the_pipeline(vt_masked):
    # Before: the screening was fitted on the whole outer training fold (0.7361; nested 0.7500).
    config = config_for(vt_masked, conditions=("face", "cat"), tune_C=True, screening_percentile=20)
    result = decode(vt_masked, config)
    X, y, runs = selection(vt_masked, ("face", "cat"))
    for fold, (train, test) in enumerate(make_splits(config, y, runs)):
        splitter, groups = _inner_splitter(y[train], runs[train])
        search = GridSearchCV(
            Pipeline([("screening", SelectPercentile(f_classif, percentile=20)),
                      ("classifier", SVC(kernel="linear"))]),
            {"classifier__C": list(DEFAULT_C_GRID)}, cv=splitter,
        ).fit(X[train], y[train], groups=groups)
        assert result.chosen_C[fold] == search.best_params_["classifier__C"], fold
        assert result.fold_scores[fold] == pytest.approx(search.score(X[test], y[test]), abs=1e-12), fold
    assert NESTED_SCREENING_NOTE in result.notes


def test_tuning_without_screening_has_no_nesting_note(vt_masked):
    result = decode(vt_masked, config_for(vt_masked, conditions=("face", "cat"), cv="holdout",
                                          holdout_size=18, tune_C=True))
    assert NESTED_SCREENING_NOTE not in result.notes


# -- multi-class ROC AUC of linear SVC ---------------------------------------------------------------
@pytest.mark.slow
def test_multiclass_svc_roc_auc_is_the_one_vs_rest_svc_auc(vt_masked):
    conditions = ("face", "cat", "house")
    config = config_for(vt_masked, conditions=conditions, scoring="roc_auc", C=0.1)
    result = decode(vt_masked, config)
    X, y, runs = selection(vt_masked, conditions)
    classes = np.unique(y)
    for fold, (train, test) in enumerate(LeaveOneGroupOut().split(X, y, runs)):
        one_vs_rest = OneVsRestClassifier(SVC(kernel="linear", C=0.1)).fit(X[train], y[train])
        # roc_auc_score(multi_class="ovr") needs probabilities; on decision values the same
        # one-vs-rest macro average is the multilabel form.
        expected = roc_auc_score(label_binarize(y[test], classes=classes),
                                 one_vs_rest.decision_function(X[test]), average="macro")
        assert result.fold_scores[fold] == pytest.approx(expected, abs=1e-9), fold
        # The labels stay those of the one-vs-one SVC of the tutorial.
        one_vs_one = SVC(kernel="linear", C=0.1).fit(X[train], y[train])
        predicted = result.predictions.loc[result.predictions["fold"] == fold + 1, "predicted"]
        np.testing.assert_array_equal(predicted, one_vs_one.predict(X[test]))
    assert SVC_ROC_AUC_NOTE in result.notes
