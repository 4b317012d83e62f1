"""The squared-hinge SVM fitted to its exact optimum equals LinearSVC converged (issue 13)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.svm import LinearSVC

from decoding_core import masking
from decoding_core.config import DecodingConfig
from decoding_core.datasets import load_files
from decoding_core.decoding import decode, make_classifier
from decoding_core.decoding import squared_hinge
from decoding_core.decoding.estimators import fit_classifier
from decoding_core.decoding.squared_hinge import choose_form, fit_linear_svc, solve_binary


def first_fold(masked, conditions):
    """Training and test matrices of the first leave-one-run-out fold (float64, as fitted)."""
    selected = masking.select_conditions(masked, conditions)
    X = np.asarray(selected.X, dtype=np.float64)
    y, runs = np.asarray(selected.labels).astype(str), np.asarray(selected.runs)
    train, test = next(LeaveOneGroupOut().split(X, y, runs))
    return X[train], y[train], X[test], y[test]


def liblinear_converged(C, X, y, **params):
    """LinearSVC's own fit, far past the tolerance the app would need."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return LinearSVC(C=C, tol=1e-9, max_iter=1_000_000, random_state=0, **params).fit(X, y)


def fitted_in_form(form, monkeypatch, C, X, y, **params):
    monkeypatch.setattr(squared_hinge, "choose_form", lambda n_samples, n_features: form)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return fit_linear_svc(LinearSVC(C=C, **params), X, y)


def assert_same_model(ours, theirs, X_test):
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.intercept_, theirs.intercept_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.decision_function(X_test), theirs.decision_function(X_test), atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X_test), theirs.predict(X_test))


@pytest.mark.parametrize("form", ["dual", "primal"])
@pytest.mark.parametrize("C", [0.001, 1.0, 100.0])
def test_face_vs_cat_equals_liblinear_converged_in_either_form(vt_masked, monkeypatch, form, C):
    X, y, X_test, _ = first_fold(vt_masked, ("face", "cat"))
    assert_same_model(fitted_in_form(form, monkeypatch, C, X, y), liblinear_converged(C, X, y), X_test)


@pytest.mark.slow
@pytest.mark.parametrize("form", ["dual", "primal"])
def test_eight_categories_equal_liblinear_converged_in_either_form(vt_masked, monkeypatch, form):
    conditions = tuple(sorted(set(vt_masked.labels) - {"rest"}))
    X, y, X_test, _ = first_fold(vt_masked, conditions)
    assert_same_model(fitted_in_form(form, monkeypatch, 1.0, X, y), liblinear_converged(1.0, X, y), X_test)


def test_intercept_scaling_is_the_appended_column_liblinear_penalises(vt_masked):
    X, y, X_test, _ = first_fold(vt_masked, ("face", "house"))
    ours = fit_linear_svc(LinearSVC(C=0.1, intercept_scaling=5.0), X, y)
    assert_same_model(ours, liblinear_converged(0.1, X, y, intercept_scaling=5.0), X_test)


@pytest.mark.parametrize("form", ["dual", "primal"])
def test_the_answer_meets_the_optimality_conditions(form, rng=np.random.default_rng(3)):
    # Independent of liblinear: the objective's gradient vanishes at the optimum.
    X = rng.normal(size=(60, 25))
    targets = np.where(X[:, 0] + rng.normal(scale=1.5, size=60) > 0, 1.0, -1.0)
    C, scaling = 2.0, 1.5
    solution = solve_binary(X, targets, C, intercept_scaling=scaling, form=form)
    weights = np.append(solution.coef, solution.intercept / scaling)
    X_aug = np.hstack([X, np.full((60, 1), scaling)])
    residual = np.maximum(0.0, 1.0 - targets * (X_aug @ weights))
    gradient = weights - 2 * C * X_aug.T @ (targets * residual)
    assert solution.converged and 1 < solution.n_steps < 20
    np.testing.assert_allclose(gradient, 0.0, atol=1e-10)


def test_the_form_follows_the_cost_of_a_newton_step(monkeypatch):
    assert choose_form(792, 577) == "dual"  # 8 categories of the VT data: samples factorised
    assert choose_form(216, 40_000) == "dual"  # whole-brain voxels
    assert choose_form(3000, 200) == "primal"  # many volumes, few voxels
    monkeypatch.setattr(squared_hinge, "MAX_SYSTEM_SIZE", 100)
    assert choose_form(200, 50) == "primal"
    assert choose_form(200, 500) is None


def test_problems_too_large_for_a_newton_system_are_fitted_by_liblinear(vt_masked, monkeypatch):
    X, y, X_test, _ = first_fold(vt_masked, ("face", "cat"))
    monkeypatch.setattr(squared_hinge, "MAX_SYSTEM_SIZE", 50)
    ours = fit_linear_svc(make_classifier("svm_l2", 1.0), X, y)
    theirs = make_classifier("svm_l2", 1.0).fit(X, y)
    np.testing.assert_array_equal(ours.coef_, theirs.coef_)
    assert ours.n_iter_ == theirs.n_iter_ > 1  # liblinear's iterations, not Newton steps


def test_a_system_that_cannot_be_factorised_falls_back_to_liblinear(vt_masked, monkeypatch):
    X, y, _, _ = first_fold(vt_masked, ("face", "cat"))

    def not_positive_definite(*args, **kwargs):
        raise np.linalg.LinAlgError("not positive definite")

    monkeypatch.setattr(squared_hinge, "cho_factor", not_positive_definite)
    fitted = fit_linear_svc(make_classifier("svm_l2", 1.0), X, y)
    np.testing.assert_array_equal(fitted.coef_, make_classifier("svm_l2", 1.0).fit(X, y).coef_)


def test_raw_unstandardised_voxels_are_fitted_exactly(haxby_vt_dir):
    # Raw BOLD values (hundreds to thousands) make the kernel's entries about 1e9.
    dataset = load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                         mask=haxby_vt_dir / "mask_vt.nii.gz")
    raw = masking.mask_dataset(dataset, next(iter(dataset.masks)), standardize=False)
    X, y, _, _ = first_fold(raw, ("face", "cat"))
    assert X.max() > 1000
    C = 0.01
    svc = fit_linear_svc(LinearSVC(C=C), X, y)  # liblinear does not converge here even at 1e6 iterations
    # The optimality conditions (liblinear's objective: the intercept is a penalised weight).
    targets = np.where(y == svc.classes_[1], 1.0, -1.0)
    weights = np.append(svc.coef_.ravel(), svc.intercept_)
    X_aug = np.hstack([X, np.ones((len(X), 1))])
    residual = np.maximum(0.0, 1.0 - targets * (X_aug @ weights))
    gradient = weights - 2 * C * X_aug.T @ (targets * residual)
    # The two terms cancel to 1e-8 of their size: the kernel's entries are about 1e9, so its
    # rounding (1e-16 of them) is about the size of the intercept's column of ones.
    term_size = 2 * C * np.abs(X_aug).T @ residual
    assert np.all(np.abs(gradient) <= 1e-8 * term_size.max())
    assert np.mean(svc.predict(X) == y) > 0.9


def test_one_class_is_refused_as_linear_svc_refuses_it():
    X = np.random.default_rng(0).normal(size=(10, 4))
    with pytest.raises(ValueError, match="at least 2 classes"):
        fit_linear_svc(LinearSVC(), X, np.array(["face"] * 10))


def test_a_step_cap_short_of_the_optimum_warns_and_is_counted(vt_masked):
    X, y, _, _ = first_fold(vt_masked, ("face", "cat"))
    with pytest.warns(ConvergenceWarning, match="stopped at 1 steps"):
        svc = fit_linear_svc(LinearSVC(max_iter=1), X, y)
    assert svc.n_iter_ == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert fit_linear_svc(LinearSVC(), X, y).n_iter_ > 1


def test_fit_classifier_takes_the_exact_path_with_progress_per_class(vt_masked):
    conditions = ("face", "cat", "house", "shoe")
    X, y, X_test, _ = first_fold(vt_masked, conditions)
    calls = []
    svc = fit_classifier(make_classifier("svm_l2", 1.0), X, y, lambda fraction, message: calls.append(fraction))
    assert calls == [0.25, 0.5, 0.75, 1.0]
    assert svc.n_iter_ < 50  # Newton steps (liblinear takes hundreds of iterations)
    assert_same_model(svc, liblinear_converged(1.0, X, y), X_test)


@pytest.mark.slow
def test_eight_category_decode_equals_liblinear_converged_fold_by_fold(vt_masked):
    # Before: liblinear at tol=1e-3 gave a mean of 0.7581 against 0.7535 converged.
    conditions = tuple(sorted(set(vt_masked.labels) - {"rest"}))
    result = decode(vt_masked, DecodingConfig(mask_name=vt_masked.mask_name, conditions=conditions,
                                              estimator="svm_l2"))
    selected = masking.select_conditions(vt_masked, conditions)
    X = np.asarray(selected.X, dtype=np.float64)
    y, runs = np.asarray(selected.labels).astype(str), np.asarray(selected.runs)
    # scikit-learn's own fit of the estimator as the exported script builds it (tol=1e-5).
    converged = cross_val_score(make_classifier("svm_l2", 1.0), X, y, groups=runs, cv=LeaveOneGroupOut())
    np.testing.assert_array_equal(result.fold_scores, converged)
    assert result.not_converged == 0
