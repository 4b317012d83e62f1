"""Two-class L2 logistic regression fitted by Newton's method equals scikit-learn's (issue 13)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import LeaveOneGroupOut, cross_val_predict

from decoding_core import masking
from decoding_core.config import ESTIMATORS, DecodingConfig
from decoding_core.decoding import binary_logistic, decode, make_classifier
from decoding_core.decoding.binary_logistic import fit_binary_logistic, solve_binary_logistic
from decoding_core.decoding.estimators import fit_classifier


def selection(masked, conditions):
    selected = masking.select_conditions(masked, conditions)
    return (np.asarray(selected.X, dtype=np.float64), np.asarray(selected.labels).astype(str),
            np.asarray(selected.runs))


def newton_cholesky(C, tol=1e-10):
    """scikit-learn's own Newton solver, far past the tolerance (it converges on these folds)."""
    return LogisticRegression(l1_ratio=0.0, solver="newton-cholesky", C=C, tol=tol, max_iter=100)


def script_classifier(C):
    """The exported script's two-class fit (`Estimator.binary_source`)."""
    return eval(ESTIMATORS["logistic_l2"].binary_source.format(C=C), {"LogisticRegression": LogisticRegression})


@pytest.mark.parametrize("form", ["dual", "primal"])
@pytest.mark.parametrize("C", [0.001, 1.0, 100.0])
def test_face_vs_cat_equals_scikit_learns_newton_cholesky(vt_masked, monkeypatch, form, C):
    X, y, runs = selection(vt_masked, ("face", "cat"))
    train, test = next(LeaveOneGroupOut().split(X, y, runs))
    monkeypatch.setattr(binary_logistic, "choose_form", lambda n_samples, n_features: form)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        ours = fit_binary_logistic(make_classifier("logistic_l2", C), X[train], y[train])
        theirs = newton_cholesky(C).fit(X[train], y[train])
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(X[test]), theirs.predict_proba(X[test]), atol=1e-10)
    assert ours.n_iter_[0] < 20


@pytest.mark.parametrize("form", ["dual", "primal"])
def test_the_answer_meets_the_optimality_conditions(form):
    # Independent of scikit-learn: the gradient vanishes, the intercept's unpenalised.
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 20))
    y = (X[:, 0] + rng.normal(size=50) > 0).astype(float)
    solution = solve_binary_logistic(X, y, 3.0, form=form)
    probability = 1 / (1 + np.exp(-(X @ solution.coef + solution.intercept)))
    assert solution.converged
    np.testing.assert_allclose(solution.coef + 3.0 * X.T @ (probability - y), 0.0, atol=1e-9)
    assert abs(np.sum(probability - y)) < 1e-9


def test_more_than_two_classes_keep_lbfgs(vt_masked):
    X, y, _ = selection(vt_masked, ("face", "cat", "house"))
    assert not binary_logistic.solves_exactly(make_classifier("logistic_l2"), X, y)
    assert binary_logistic.solves_exactly(make_classifier("logistic_l2"), X[y != "house"], y[y != "house"])
    assert not binary_logistic.solves_exactly(make_classifier("logistic_l1"), X[y != "house"], y[y != "house"])
    fitted = fit_classifier(make_classifier("logistic_l2"), X, y)
    assert fitted.n_iter_[0] > 50  # L-BFGS iterations, not Newton steps


def test_a_step_cap_short_of_the_optimum_falls_back_to_lbfgs_which_warns(vt_masked):
    X, y, _ = selection(vt_masked, ("face", "cat"))
    classifier = make_classifier("logistic_l2").set_params(max_iter=2)
    with pytest.warns(ConvergenceWarning, match="lbfgs"):
        fit_classifier(classifier, X, y)
    assert classifier.n_iter_[0] == 2
    plain = make_classifier("logistic_l2").set_params(max_iter=2)
    with pytest.warns(ConvergenceWarning):
        plain.fit(X, y)
    np.testing.assert_array_equal(classifier.coef_, plain.coef_)


def test_a_hessian_that_cannot_be_factorised_falls_back_to_lbfgs(vt_masked, monkeypatch):
    X, y, _ = selection(vt_masked, ("face", "cat"))

    def not_positive_definite(*args, **kwargs):
        raise np.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr(binary_logistic, "cho_factor", not_positive_definite)
    fitted = fit_classifier(make_classifier("logistic_l2", 1.0), X, y)
    np.testing.assert_array_equal(fitted.coef_, make_classifier("logistic_l2", 1.0).fit(X, y).coef_)


@pytest.mark.parametrize("C", [0.001, 1.0])
def test_decode_equals_the_exported_scripts_scikit_learn_fit_fold_by_fold(vt_masked, C):
    X, y, runs = selection(vt_masked, ("face", "cat"))
    config = DecodingConfig(mask_name=vt_masked.mask_name, conditions=("face", "cat"),
                            estimator="logistic_l2", scoring="roc_auc", C=C)
    result = decode(vt_masked, config)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # the script's fit converges here
        probabilities = cross_val_predict(script_classifier(C), X, y, groups=runs, cv=LeaveOneGroupOut(),
                                          method="predict_proba")
    from sklearn.metrics import roc_auc_score

    expected = [roc_auc_score(y[test] == "face", probabilities[test, 1])
                for _, test in LeaveOneGroupOut().split(X, y, runs)]
    np.testing.assert_allclose(result.fold_scores, expected, rtol=0, atol=1e-12)
    assert result.not_converged == 0


def test_with_a_large_C_the_optimum_is_reached_where_scikit_learns_solvers_stop_short(vt_masked):
    # C=100 on face vs cat: newton-cholesky's line search gives up (then L-BFGS), and
    # lbfgs stops silently; the Newton fit's gradient is still at the rounding floor.
    X, y, runs = selection(vt_masked, ("face", "cat"))
    targets = (y == "face").astype(float)
    for train, _ in list(LeaveOneGroupOut().split(X, y, runs))[:3]:
        fitted = fit_classifier(make_classifier("logistic_l2", 100.0), X[train], y[train])
        assert fitted.n_iter_[0] < 30
        probability = fitted.predict_proba(X[train])[:, 1]
        gradient = fitted.coef_.ravel() + 100.0 * X[train].T @ (probability - targets[train])
        assert np.abs(gradient).max() < 1e-6
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            lbfgs = make_classifier("logistic_l2", 100.0).fit(X[train], y[train])
        lbfgs_gradient = lbfgs.coef_.ravel() + 100.0 * X[train].T @ (lbfgs.predict_proba(X[train])[:, 1]
                                                                      - targets[train])
        assert np.abs(lbfgs_gradient).max() > 100 * np.abs(gradient).max()
