"""The linear classifiers offered, in one table, and the pipeline a configuration builds.

`ESTIMATORS` is the only description of an estimator: its name (the key used by the
configuration, the command line, links and exports), its title, a help text and the
factory that builds it, as nilearn keeps ``SUPPORTED_ESTIMATORS``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectPercentile, f_classif
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from decoding_core.decoding.choices import Choice
from decoding_core.errors import DecodingInputError

if TYPE_CHECKING:  # the configuration imports this table to check itself
    from decoding_core.config import DecodingConfig


@dataclass(frozen=True)
class Estimator(Choice):
    """One offered classifier: a `Choice` with its factory.

    Attributes
    ----------
    make : callable
        ``make(C)`` -> an unfitted scikit-learn classifier.
    source : str
        The same constructor as Python source, with ``{C}`` for C (for the exported script).
    """

    make: Callable[[float], ClassifierMixin]
    source: str


def _make_svc(C: float):
    # As in nilearn's tutorial. One-vs-one for several classes.
    return SVC(kernel="linear", C=C)


def _make_svm_l2(C: float):
    # dual=True: the notes measured it 10x faster than dual="auto" on Haxby-size
    # problems; the tolerance and iteration cap keep 8-class fits to seconds.
    # random_state: liblinear visits coordinates in a random order; a fixed one makes
    # the same configuration give the same scores and maps every time.
    return LinearSVC(penalty="l2", loss="squared_hinge", dual=True, C=C, tol=1e-3, max_iter=5000,
                     random_state=0)


def _make_svm_l1(C: float):
    # The L1 penalty exists only in the primal formulation.
    return LinearSVC(penalty="l1", loss="squared_hinge", dual=False, C=C, tol=1e-3, max_iter=5000,
                     random_state=0)


def _make_logistic_l2(C: float):
    return LogisticRegression(l1_ratio=0.0, solver="lbfgs", C=C, max_iter=1000)


def _make_logistic_l1(C: float):
    # saga handles L1 with any number of classes (liblinear refuses >= 3); it shuffles
    # samples, hence a fixed random_state, as for LinearSVC.
    return LogisticRegression(l1_ratio=1.0, solver="saga", C=C, tol=1e-3, max_iter=2000,
                              random_state=0)


def _make_ridge(C: float):
    # alpha = 1 / (2 C) makes ridge's penalty comparable to the SVM's C.
    return RidgeClassifier(alpha=1.0 / (2.0 * C))


#: Every offered estimator by name, in the order the app lists them.
ESTIMATORS = {
    spec.name: spec
    for spec in (
        Estimator("svc", "Linear SVC (SVC, kernel='linear')",
                  "As in nilearn's tutorial; one-vs-one for more than two classes.",
                  _make_svc, "SVC(kernel='linear', C={C})"),
        Estimator("svm_l2", "L2-penalised linear SVM (LinearSVC)",
                  "liblinear's squared-hinge SVM; one-vs-rest for more than two classes.",
                  _make_svm_l2,
                  "LinearSVC(penalty='l2', loss='squared_hinge', dual=True, C={C}, tol=1e-3, "
                  "max_iter=5000, random_state=0)"),
        Estimator("svm_l1", "L1-penalised linear SVM (LinearSVC)",
                  "Sparse weights: most voxels get exactly zero.",
                  _make_svm_l1,
                  "LinearSVC(penalty='l1', loss='squared_hinge', dual=False, C={C}, tol=1e-3, "
                  "max_iter=5000, random_state=0)"),
        Estimator("logistic_l2", "L2-penalised logistic regression",
                  "Gives class probabilities; multinomial for more than two classes.",
                  _make_logistic_l2, "LogisticRegression(l1_ratio=0.0, solver='lbfgs', C={C}, max_iter=1000)"),
        Estimator("logistic_l1", "L1-penalised logistic regression",
                  "Sparse weights and class probabilities.",
                  _make_logistic_l1,
                  "LogisticRegression(l1_ratio=1.0, solver='saga', C={C}, tol=1e-3, max_iter=2000, "
                  "random_state=0)"),
        Estimator("ridge", "Ridge classifier",
                  "Least squares with an L2 penalty (alpha = 1 / (2 C)); the fastest.",
                  _make_ridge, "RidgeClassifier(alpha=1.0 / (2.0 * {C}))"),
    )
}

#: Values of C tried by nested tuning (log-spaced, 1e-3 to 1e2).
DEFAULT_C_GRID = tuple(float(c) for c in np.logspace(-3, 2, 6))


def make_classifier(name: str, C: float = 1.0):
    """An unfitted classifier from `ESTIMATORS`.

    Parameters
    ----------
    name : str
        Key of `ESTIMATORS`.
    C : float, default=1.0
        Inverse regularisation strength (ridge: ``alpha = 1 / (2 C)``).

    Returns
    -------
    sklearn classifier
    """
    if name not in ESTIMATORS:
        raise DecodingInputError(f"Unknown estimator {name!r}. Known estimators are: {sorted(ESTIMATORS)}.")
    return ESTIMATORS[name].make(float(C))


def _inner_splitter(y, groups):
    """The inner cross-validation of nested tuning, on training samples only.

    Whole runs are kept together when there are at least three of them
    (neighbouring volumes are correlated); otherwise a stratified K-fold.
    Returns None when the training data are too small to tune.
    """
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups >= 3:
            return GroupKFold(n_splits=min(n_groups, 5)), groups
    _, counts = np.unique(y, return_counts=True)
    n_splits = min(3, int(counts.min()))
    if n_splits < 2:
        return None, None
    return StratifiedKFold(n_splits=n_splits), None


def label_score(scoring: str, y_true, y_pred) -> float:
    """Accuracy or balanced accuracy of predicted labels.

    Parameters
    ----------
    scoring : {"accuracy", "balanced_accuracy"}
    y_true, y_pred : array-like of shape (n_samples,)

    Returns
    -------
    float
    """
    if scoring == "balanced_accuracy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a class absent from y_pred warns
            return float(balanced_accuracy_score(y_true, y_pred))
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


class TunedLinearClassifier(ClassifierMixin, BaseEstimator):
    """A linear classifier whose C is chosen by an inner cross-validation.

    Only the data given to `fit` are used to choose C, so inside an outer
    cross-validation the test fold never influences the choice. The inner
    split keeps whole runs together when ``groups`` (the runs of the training
    samples) has at least three values.

    Parameters
    ----------
    estimator : str, default="svc"
        Key of `ESTIMATORS`.
    Cs : tuple of float, default=DEFAULT_C_GRID
        Values of C to try; ties go to the smallest C (strongest regularisation).
    scoring : str, default="accuracy"
        ``"accuracy"`` or ``"balanced_accuracy"`` on the inner test folds.
    fallback_C : float, default=1.0
        C used when the training data are too small for an inner split.

    Attributes
    ----------
    best_C_ : float
    inner_scores_ : ndarray of shape (len(Cs),)
        Mean inner score of each C (NaN when no inner split was possible).
    estimator_ : fitted classifier refitted with ``best_C_`` on all of ``X``.
    classes_, coef_
    """

    def __init__(self, estimator="svc", *, Cs=DEFAULT_C_GRID, scoring="accuracy", fallback_C=1.0):
        self.estimator = estimator
        self.Cs = Cs
        self.scoring = scoring
        self.fallback_C = fallback_C

    def fit(self, X, y, groups=None):
        """Choose C on an inner split of ``(X, y)``, then refit on all of it.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
        groups : ndarray of shape (n_samples,) or None
            Run of each sample.
        """
        y = np.asarray(y)
        Cs = np.asarray(self.Cs, dtype=float)
        if Cs.ndim != 1 or len(Cs) == 0 or np.any(~np.isfinite(Cs)) or np.any(Cs <= 0):
            raise DecodingInputError(f"'Cs' must be a non-empty list of positive numbers. Got {self.Cs!r}.")
        if self.scoring not in ("accuracy", "balanced_accuracy"):
            raise DecodingInputError(
                f"'scoring' must be one of ['accuracy', 'balanced_accuracy']. Got {self.scoring!r}."
            )
        splitter, split_groups = _inner_splitter(y, None if groups is None else np.asarray(groups))
        scores = np.full(len(Cs), np.nan)
        if splitter is not None:
            inner = [
                (train, test)
                for train, test in splitter.split(X, y, split_groups)
                if len(np.unique(y[train])) >= 2
            ]
            if inner:
                fold_scores = np.zeros((len(Cs), len(inner)))
                for j, (train, test) in enumerate(inner):
                    for i, C in enumerate(Cs):
                        model = make_classifier(self.estimator, C)
                        with warnings.catch_warnings():
                            warnings.simplefilter("ignore", ConvergenceWarning)
                            model.fit(X[train], y[train])
                        fold_scores[i, j] = label_score(self.scoring, y[test], model.predict(X[test]))
                scores = fold_scores.mean(axis=1)
        self.inner_scores_ = scores
        # np.argmax takes the first maximum: the smallest C among ties.
        self.best_C_ = float(Cs[int(np.argmax(scores))]) if np.isfinite(scores).any() else float(self.fallback_C)
        self.estimator_ = make_classifier(self.estimator, self.best_C_)
        self.estimator_.fit(X, y)
        self.classes_ = self.estimator_.classes_
        return self

    @property
    def coef_(self):
        check_is_fitted(self, "estimator_")
        return coefficients(self.estimator_)

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(X)

    def decision_function(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(X)

    def _has_predict_proba(self):
        return hasattr(make_classifier(self.estimator), "predict_proba") and not isinstance(
            make_classifier(self.estimator), SVC
        )

    @available_if(_has_predict_proba)
    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(X)


def coefficients(classifier) -> np.ndarray:
    """``coef_`` of a fitted linear classifier as (n_rows, n_features), also through wrappers.

    scikit-learn's ``RidgeClassifier`` gives a 1-D ``coef_`` for two classes where the
    other estimators give one row: always return rows, or ``coef[0]`` would be a number.
    """
    if isinstance(classifier, TunedLinearClassifier):
        return classifier.coef_
    if isinstance(classifier, OneVsRestClassifier):
        return np.vstack([np.asarray(est.coef_).reshape(1, -1) for est in classifier.estimators_])
    coef = np.asarray(classifier.coef_)
    return coef.reshape(1, -1) if coef.ndim == 1 else coef


def build_estimator(config: DecodingConfig) -> Pipeline:
    """The scikit-learn estimator a configuration describes.

    A `~sklearn.pipeline.Pipeline` of an optional ``"screening"`` step
    (``SelectPercentile(f_classif, config.screening_percentile)``) and a
    ``"classifier"`` step: ``ESTIMATORS[config.estimator].make(config.C)``,
    or a `TunedLinearClassifier` when ``config.tune_C``. Everything is fitted
    on the data given to ``fit`` only, so inside a cross-validation the
    screening and the choice of C never see the test fold. As in nilearn's
    ``Decoder``, the inner split that chooses C works on the voxels kept by
    the screening of the outer training fold.

    To let the inner split keep runs together, pass the training runs with
    `fit_estimator` (or ``fit(X, y, classifier__groups=runs)``).

    Parameters
    ----------
    config : DecodingConfig

    Returns
    -------
    sklearn.pipeline.Pipeline
    """
    steps = []
    if config.screening_percentile is not None:
        steps.append(("screening", SelectPercentile(f_classif, percentile=config.screening_percentile)))
    if config.tune_C:
        inner_scoring = "accuracy" if config.scoring == "accuracy" else "balanced_accuracy"
        classifier = TunedLinearClassifier(config.estimator, scoring=inner_scoring, fallback_C=config.C)
    else:
        classifier = make_classifier(config.estimator, config.C)
    steps.append(("classifier", classifier))
    return Pipeline(steps)


def fit_estimator(estimator: Pipeline, X, y, groups=None) -> Pipeline:
    """Fit an estimator from `build_estimator`, giving runs to nested tuning.

    Parameters
    ----------
    estimator : Pipeline
        From `build_estimator` (it is fitted in place and returned).
    X : ndarray of shape (n_samples, n_voxels)
    y : ndarray of shape (n_samples,)
    groups : ndarray of shape (n_samples,) or None
        Run of each sample; used only by nested tuning's inner split.
    """
    params = {}
    if groups is not None and isinstance(estimator.named_steps["classifier"], TunedLinearClassifier):
        params["classifier__groups"] = np.asarray(groups)
    with warnings.catch_warnings():
        # A capped iteration count is a deliberate speed/accuracy trade-off.
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Features .* are constant", category=UserWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="sklearn.feature_selection")
        estimator.fit(X, y, **params)
    return estimator


def classifier_C(pipeline: Pipeline, config: DecodingConfig) -> float:
    """C of the fitted pipeline's classifier: the one nested tuning chose, else ``config.C``."""
    classifier = pipeline.named_steps["classifier"]
    return float(classifier.best_C_) if isinstance(classifier, TunedLinearClassifier) else config.C
