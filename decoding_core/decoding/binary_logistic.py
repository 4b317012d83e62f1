"""Two-class L2 logistic regression fitted to its optimum by Newton's method.

``LogisticRegression(l1_ratio=0, C=C)`` on two classes minimises

    1/2 ||w||^2 + C sum_i [log(1 + exp(z_i)) - y_i z_i],   z = X w + b,  y in {0, 1}

with the intercept ``b`` not penalised. The objective is smooth and strongly convex in
``w``: Newton's method converges quadratically, in about 10 steps to the rounding of
float64, where L-BFGS stops at its tolerance after a hundred or more steps. Each step solves
the Hessian system in the space of the samples (a shared kernel ``X X^T``, through the
Woodbury identity) or of the voxels, whichever costs less (`squared_hinge.choose_form`),
with the intercept eliminated by its Schur complement. Problems too large for either,
and more than two classes (multinomial), keep scikit-learn's L-BFGS.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import expit, log1p
from sklearn.linear_model import LogisticRegression

from decoding_core.decoding.squared_hinge import BinarySolution, choose_form

#: Most Newton steps (about 10 on the real VT data).
MAX_NEWTON_STEPS = 100

#: A Newton step this small, relative to the weights, means the optimum is reached: the
#: next would be about its square (quadratic convergence).
STEP_TOLERANCE = 1e-10


def solves_exactly(classifier, X, y) -> bool:
    """Whether `fit_binary_logistic` can fit this classifier on these data."""
    return (type(classifier) is LogisticRegression and classifier.l1_ratio == 0
            and classifier.penalty in ("deprecated", "l2") and classifier.fit_intercept
            and classifier.class_weight is None and len(np.unique(y)) == 2
            and choose_form(*np.shape(X)) is not None)


def _objective(weights, intercept, decision, y, C) -> float:
    # log(1 + exp(z)) computed without overflow
    losses = np.maximum(decision, 0) + log1p(np.exp(-np.abs(decision))) - y * decision
    return 0.5 * float(weights @ weights) + C * float(losses.sum())


class _Hessian:
    """Solves ``[[I + C X^T S X, C X^T s], [C s^T X, C sum(s)]] [dw; db] = [gw; gb]``."""

    def __init__(self, X, kernel, curvature, C):
        self.X, self.C, self.curvature = X, C, curvature
        root = np.sqrt(curvature)
        if kernel is not None:  # samples: (I + C X^T S X)^-1 = I - C X^T R (I + C R K R)^-1 R X
            system = C * (root[:, None] * kernel * root[None, :])
            system.flat[::len(root) + 1] += 1.0
            self.root, self.factor, self.form = root, cho_factor(system, check_finite=False), "dual"
        else:
            scaled = X * root[:, None]
            system = C * (scaled.T @ scaled)
            system.flat[::system.shape[0] + 1] += 1.0
            self.factor, self.form = cho_factor(system, check_finite=False), "primal"

    def _solve_weights(self, rhs):
        """``(I + C X^T S X)^-1 rhs`` for rhs of shape (n_features, k)."""
        if self.form == "primal":
            return cho_solve(self.factor, rhs, check_finite=False)
        inner = self.root[:, None] * (self.X @ rhs)
        return rhs - self.C * self.X.T @ (self.root[:, None] * cho_solve(self.factor, inner, check_finite=False))

    def solve(self, gradient_weights, gradient_intercept):
        coupling = self.C * (self.X.T @ self.curvature)
        both = self._solve_weights(np.column_stack([gradient_weights, coupling]))
        schur = self.C * self.curvature.sum() - coupling @ both[:, 1]
        step_intercept = (gradient_intercept - coupling @ both[:, 0]) / schur
        return both[:, 0] - both[:, 1] * step_intercept, step_intercept


def _step_size(weights, intercept, decision, step_weights, step_intercept, step_decision, decrement,
               objective, y, C):
    """Backtracking (Armijo) along the Newton step: the full step once close, shorter far away.

    Returns (size, objective after the step), or (None, None) when no size decreases it.
    Once the predicted decrease is below what the objective's rounding can show, the full
    step is taken unchecked: there Newton's method converges quadratically.
    """
    if decrement / 2 <= 1e-10 * max(objective, 1.0):
        return 1.0, _objective(weights - step_weights, intercept - step_intercept, decision - step_decision, y, C)
    size = 1.0
    while size >= 1e-10:
        candidate = _objective(weights - size * step_weights, intercept - size * step_intercept,
                               decision - size * step_decision, y, C)
        if candidate <= objective - 0.25 * size * decrement:
            return size, candidate
        size /= 2
    return None, None


def solve_binary_logistic(X, y, C: float, *, form: str = "auto", kernel=None,
                          max_steps: int = MAX_NEWTON_STEPS) -> BinarySolution:
    """The minimiser of two-class L2 logistic regression (unpenalised intercept).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        0 or 1 (1: the positive class, ``classes_[1]``).
    C : float
    form : {"auto", "dual", "primal"}
        Where the Newton systems are solved; "auto" takes `choose_form`'s.
    kernel : ndarray of shape (n_samples, n_samples) or None
        ``X X^T``, if already computed.
    max_steps : int, default=MAX_NEWTON_STEPS

    Returns
    -------
    BinarySolution
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    form = choose_form(*X.shape) if form == "auto" else form
    if form == "dual" and kernel is None:
        kernel = X @ X.T
    weights, intercept = np.zeros(X.shape[1]), 0.0
    decision = np.zeros(len(y))
    objective = _objective(weights, intercept, decision, y, C)
    for step in range(1, max_steps + 1):
        probability = expit(decision)
        residual = C * (probability - y)
        gradient_weights, gradient_intercept = weights + X.T @ residual, float(residual.sum())
        curvature = np.maximum(probability * (1.0 - probability), 1e-300)
        hessian = _Hessian(X, kernel if form == "dual" else None, curvature, C)
        step_weights, step_intercept = hessian.solve(gradient_weights, gradient_intercept)
        decrement = float(gradient_weights @ step_weights + gradient_intercept * step_intercept)
        largest = max(np.abs(weights).max(initial=0.0), abs(intercept))
        if max(np.abs(step_weights).max(initial=0.0), abs(step_intercept)) <= STEP_TOLERANCE * (1 + largest):
            # this last full step leaves an error of about its square
            return BinarySolution(weights - step_weights, intercept - step_intercept, step, True)
        step_decision = X @ step_weights + step_intercept
        size, candidate = _step_size(weights, intercept, decision, step_weights, step_intercept,
                                     step_decision, decrement, objective, y, C)
        if size is None:  # no decrease left although the step is not small: a flat objective
            return BinarySolution(weights, intercept, step, False)
        weights, intercept = weights - size * step_weights, intercept - size * step_intercept
        decision, objective = decision - size * step_decision, candidate
    return BinarySolution(weights, intercept, max_steps, False)


def fit_binary_logistic(classifier: LogisticRegression, X, y) -> LogisticRegression:
    """Fit a two-class L2 ``LogisticRegression`` in place, to its optimum.

    The fitted classifier has the attributes ``classifier.fit(X, y)`` gives (``coef_`` of
    one row for ``classes_[1]``, ``intercept_``, ``classes_``, ``n_iter_`` as Newton
    steps, ``n_features_in_``), so its ``predict``, ``predict_proba`` and
    ``decision_function`` are scikit-learn's own; ``tol`` is not needed and ``max_iter``
    caps the Newton steps. Where Newton's method stops at the cap or its Hessian cannot be
    factorised (nearly separable classes with a huge C), the classifier's own ``fit``
    (L-BFGS) fits it instead, and warns if it stops at its cap too.

    Parameters
    ----------
    classifier : LogisticRegression
        `solves_exactly` must accept it.
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    classes = np.unique(y)
    max_steps = max(1, min(MAX_NEWTON_STEPS, int(classifier.max_iter)))
    try:
        solution = solve_binary_logistic(X, (np.asarray(y) == classes[1]).astype(float), float(classifier.C),
                                         max_steps=max_steps)
    except np.linalg.LinAlgError:  # a Hessian too ill-conditioned to factorise (huge C on raw data)
        solution = None
    if solution is None or not solution.converged:
        # L-BFGS, as before this solver: it warns itself if it stops at its cap too.
        return classifier.fit(X, y)
    classifier.coef_ = solution.coef.reshape(1, -1)
    classifier.intercept_ = np.array([solution.intercept])
    classifier.classes_ = classes
    classifier.n_iter_ = np.array([solution.n_steps], dtype=np.int32)
    classifier.n_features_in_ = X.shape[1]
    return classifier
