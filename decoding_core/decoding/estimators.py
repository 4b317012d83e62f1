"""The linear classifiers offered, in one table, and the pipeline a configuration builds.

`ESTIMATORS` is the only description of an estimator: its name (the key used by the
configuration, the command line, links and exports), its title, a help text and the
factory that builds it, as nilearn keeps ``SUPPORTED_ESTIMATORS``.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GroupKFold, StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelBinarizer
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from decoding_core.choices import Choice
from decoding_core.decoding.folds import LIBLINEAR_LOCK, available_cores
from decoding_core.decoding import binary_logistic, squared_hinge
from decoding_core.errors import DecodingInputError
from decoding_core.progress import ProgressCallback, share

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
    fits_in_threads : bool
        Whether the folds gain from being fitted side by side in threads. liblinear's do
        not: its fits take turns (one random state for the whole process, reseeded by each
        fit; `_fits_with_liblinear`).
    binary_source : str or None
        Python source of the same fit on two classes, where `fit_classifier` reaches it
        another way than ``make(C).fit`` (None: ``source``). The exported script uses it.
    many_classes_note : str or None
        What a run with more than two classes costs, where that is far more than the
        others (shown before the run); None when nothing needs saying.
    """

    make: Callable[[float], ClassifierMixin]
    source: str
    fits_in_threads: bool = True
    binary_source: str | None = None
    many_classes_note: str | None = None


def _make_svc(C: float):
    # As in nilearn's tutorial. One-vs-one for several classes.
    return SVC(kernel="linear", C=C)


def _make_svm_l2(C: float):
    # Fitted to its exact optimum by `squared_hinge.fit_linear_svc` (Newton's method), not
    # by liblinear, whose tol=1e-3 stopped short on 8 categories of the real VT data (mean
    # 0.7581 against 0.7535 converged). The parameters are for liblinear where it still fits
    # (problems too large for a Newton system) and for the exported script: tol=1e-5 gives
    # weights within about 1e-6 of the optimum. random_state: liblinear visits coordinates
    # in a random order; a fixed one makes the same configuration give the same scores.
    return LinearSVC(penalty="l2", loss="squared_hinge", dual=True, C=C, tol=1e-5, max_iter=20000,
                     random_state=0)


def _make_svm_l1(C: float):
    # The L1 penalty exists only in the primal formulation. tol=1e-3 stopped early
    # (face vs cat 0.8148 against 0.8287 converged); 1e-4 has the converged mean but two
    # folds differ; 1e-5 gives the fold scores of 1e-6 ... 1e-8.
    return LinearSVC(penalty="l1", loss="squared_hinge", dual=False, C=C, tol=1e-5, max_iter=20000,
                     random_state=0)


def _make_logistic_l2(C: float):
    # tol=1e-6: lbfgs's default 1e-4 stops where the ROC AUC still moves (3 classes of the
    # real VT data: 0.8909 against 0.8951 converged on one fold; 8 classes: 0.938 against
    # 0.934), and where a 1e-5 change of the data (nilearn's masking) moves it too.
    # Two classes are fitted to the optimum by `binary_logistic` (Newton's method) instead.
    # The exported script's two-class fit (the binary source) is scikit-learn's newton-cholesky
    # at tol=1e-7: on three pairs of the real VT data for C from 1e-3 to 10 it converged with
    # no warning, within 1.2e-6 of this fit's probabilities (7e-5 at C=10). At 1e-8 and below
    # its line search gives up at the rounding floor in some folds (a ConvergenceWarning, then
    # L-BFGS); lbfgs itself stops short silently (gradient 1e-3 at C=1 even at tol=1e-10).
    return LogisticRegression(l1_ratio=0.0, solver="lbfgs", C=C, tol=1e-6, max_iter=10000)


def _make_logistic_l1(C: float):
    # liblinear's coordinate descent converges in a fraction of a second where saga needed
    # minutes (saga at tol=1e-3 gave 0.7685 on face vs cat, 0.8009 at 1e-5); liblinear fits
    # one binary problem, hence one-vs-rest for several classes (it refuses multinomial).
    # It visits coordinates in a random order, hence a fixed random_state, as for LinearSVC.
    # liblinear penalises the intercept like a weight: converged, face vs cat scores 0.7870
    # where saga's unpenalised intercept converges to 0.8009; intercept_scaling 10 or 100
    # (a lighter intercept penalty) made the scores move with the tolerance again.
    return OneVsRestClassifier(LogisticRegression(l1_ratio=1.0, solver="liblinear", C=C, tol=1e-4,
                                                  max_iter=20000, random_state=0))


def _make_ridge(C: float):
    # alpha = 1 / (2 C) makes ridge's penalty comparable to the SVM's C. A direct
    # (Cholesky / SVD) solver: no tolerance, nothing to converge.
    return RidgeClassifier(alpha=1.0 / (2.0 * C))


#: Every offered estimator by name, in the order the app lists them.
ESTIMATORS = {
    spec.name: spec
    for spec in (
        Estimator("svc", "Linear SVC (SVC, kernel='linear')",
                  "As in nilearn's tutorial; one-vs-one for more than two classes.",
                  _make_svc, "SVC(kernel='linear', C={C})"),
        Estimator("svm_l2", "L2-penalised linear SVM (LinearSVC)",
                  "The squared-hinge SVM of LinearSVC, solved to its exact optimum (Newton's method); "
                  "one-vs-rest for more than two classes.",
                  _make_svm_l2,
                  "LinearSVC(penalty='l2', loss='squared_hinge', dual=True, C={C}, tol=1e-5, "
                  "max_iter=20000, random_state=0)"),
        Estimator("svm_l1", "L1-penalised linear SVM (LinearSVC)",
                  "Sparse weights: most voxels get exactly zero.",
                  _make_svm_l1,
                  "LinearSVC(penalty='l1', loss='squared_hinge', dual=False, C={C}, tol=1e-5, "
                  "max_iter=20000, random_state=0)", fits_in_threads=False,
                  many_classes_note="Slow with more than two classes: liblinear fits one class of one fold "
                                    "at a time, to a tight tolerance. All 8 Haxby categories in the VT mask "
                                    "(864 samples x 577 voxels, 12 folds) take about 5 minutes on 2 cores, "
                                    "where the linear SVC takes about 1 second."),
        Estimator("logistic_l2", "L2-penalised logistic regression",
                  "Gives class probabilities; two classes fitted to the optimum (Newton's method), more "
                  "with L-BFGS (multinomial).",
                  _make_logistic_l2,
                  "LogisticRegression(l1_ratio=0.0, solver='lbfgs', C={C}, tol=1e-6, max_iter=10000)",
                  binary_source="LogisticRegression(l1_ratio=0.0, solver='newton-cholesky', C={C}, "
                                "tol=1e-7, max_iter=100)"),
        Estimator("logistic_l1", "L1-penalised logistic regression",
                  "Sparse weights and class probabilities (liblinear); one-vs-rest for more than two "
                  "classes, its probabilities normalised over the classes.",
                  _make_logistic_l1,
                  "OneVsRestClassifier(LogisticRegression(l1_ratio=1.0, solver='liblinear', C={C}, "
                  "tol=1e-4, max_iter=20000, random_state=0))", fits_in_threads=False),
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
    samples) has at least three values. With ``screening_percentile`` the ANOVA
    screening is part of what is tuned: it is refitted inside each inner training
    fold, then on all of ``X`` for the final classifier, which makes the whole
    equal to ``GridSearchCV(Pipeline([("screening", SelectPercentile(f_classif, p)),
    ("classifier", ...)]), {"classifier__C": Cs}, cv=<the inner split>)``.

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
    screening_percentile : float or None, default=None
        Percentile of voxels kept by ``SelectPercentile(f_classif)``, refitted in
        every inner training fold; None keeps every voxel.

    Attributes
    ----------
    best_C_ : float
    inner_scores_ : ndarray of shape (len(Cs),)
        Mean inner score of each C (NaN when no inner split was possible).
    screening_ : SelectPercentile or None
        The screening fitted on all of ``X`` (None without ``screening_percentile``).
    estimator_ : fitted classifier refitted with ``best_C_`` on all of ``X`` (screened).
    classes_, coef_
        ``coef_`` covers the voxels the screening kept.
    """

    def __init__(self, estimator="svc", *, Cs=DEFAULT_C_GRID, scoring="accuracy", fallback_C=1.0,
                 screening_percentile=None):
        self.estimator = estimator
        self.Cs = Cs
        self.scoring = scoring
        self.fallback_C = fallback_C
        self.screening_percentile = screening_percentile

    def _candidate(self, C: float):
        """An unfitted model of one inner fit: the classifier, after the screening if any."""
        classifier = make_classifier(self.estimator, C)
        if self.screening_percentile is None:
            return Pipeline([("classifier", classifier)])
        return Pipeline([("screening", _screening(self.screening_percentile)), ("classifier", classifier)])

    def _inner_scores(self, X, y, groups, Cs, progress=None) -> np.ndarray:
        """Mean inner score of each C; NaN when the data are too small to split.

        ``progress(fraction, message)`` is called after each inner fit (fold x C).
        """
        splitter, split_groups = _inner_splitter(y, groups)
        if splitter is None:
            return np.full(len(Cs), np.nan)
        inner = [(train, test) for train, test in splitter.split(X, y, split_groups)
                 if len(np.unique(y[train])) >= 2]
        if not inner:
            return np.full(len(Cs), np.nan)
        fold_scores = np.zeros((len(Cs), len(inner)))
        n_fits = len(inner) * len(Cs)
        for j, (train, test) in enumerate(inner):
            for i, C in enumerate(Cs):
                # Convergence warnings are not silenced: `fit_estimator` counts them.
                model = _fit_pipeline(self._candidate(C), X[train], y[train])
                fold_scores[i, j] = label_score(self.scoring, y[test], model.predict(X[test]))
                if progress is not None:
                    done = j * len(Cs) + i + 1
                    progress(done / n_fits, f"tuning C: fit {done} of {n_fits} (inner fold {j + 1} of "
                             f"{len(inner)}, C = {C:g})")
        return fold_scores.mean(axis=1)

    def fit(self, X, y, groups=None, progress: ProgressCallback | None = None):
        """Choose C on an inner split of ``(X, y)``, then refit on all of it.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
        y : ndarray of shape (n_samples,)
        groups : ndarray of shape (n_samples,) or None
            Run of each sample.
        progress : callable or None
            ``progress(fraction, message)`` after each inner fit and after the refit.
        """
        X, y = np.asarray(X), np.asarray(y)
        Cs = np.asarray(self.Cs, dtype=float)
        if Cs.ndim != 1 or len(Cs) == 0 or np.any(~np.isfinite(Cs)) or np.any(Cs <= 0):
            raise DecodingInputError(f"'Cs' must be a non-empty list of positive numbers. Got {self.Cs!r}.")
        if self.scoring not in ("accuracy", "balanced_accuracy"):
            raise DecodingInputError(
                f"'scoring' must be one of ['accuracy', 'balanced_accuracy']. Got {self.scoring!r}."
            )
        # The inner fits (at most 5 inner folds x the Cs) take the bar but for one fit's share: the refit.
        n_inner = len(Cs) * 5
        scores = self._inner_scores(X, y, None if groups is None else np.asarray(groups), Cs,
                                    share(progress, 0.0, n_inner / (n_inner + 1)))
        self.inner_scores_ = scores
        # np.argmax takes the first maximum: the smallest C among ties (as GridSearchCV's rank).
        self.best_C_ = float(Cs[int(np.argmax(scores))]) if np.isfinite(scores).any() else float(self.fallback_C)
        self.screening_ = None
        if self.screening_percentile is not None:
            self.screening_ = _screening(self.screening_percentile).fit(X, y)
        self.estimator_ = fit_classifier(make_classifier(self.estimator, self.best_C_), self._screened(X), y)
        self.classes_ = self.estimator_.classes_
        if progress is not None:
            progress(1.0, f"tuning C: refitted with C = {self.best_C_:g}")
        return self

    def _screened(self, X):
        return X if self.screening_ is None else self.screening_.transform(X)

    @property
    def coef_(self):
        check_is_fitted(self, "estimator_")
        return coefficients(self.estimator_)

    def predict(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict(self._screened(X))

    def decision_function(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.decision_function(self._screened(X))

    def _has_predict_proba(self):
        return hasattr(make_classifier(self.estimator), "predict_proba") and not isinstance(
            make_classifier(self.estimator), SVC
        )

    @available_if(_has_predict_proba)
    def predict_proba(self, X):
        check_is_fitted(self, "estimator_")
        return self.estimator_.predict_proba(self._screened(X))


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


def _screening(percentile: float):
    """``SelectPercentile(f_classif, percentile)``; imported here, when a run screens (a slow import)."""
    from sklearn.feature_selection import SelectPercentile, f_classif

    return SelectPercentile(f_classif, percentile=percentile)


#: Most threads fitting the classes of a one-vs-rest linear SVC at once (libsvm releases
#: the GIL while it solves).
MAX_CLASS_THREADS = 4


def _class_threads(n_classes: int) -> int:
    return max(1, min(n_classes, available_cores(), MAX_CLASS_THREADS))


def _fits_with_liblinear(classifier) -> bool:
    """Whether ``classifier.fit`` runs liblinear.

    liblinear reseeds one random state for the whole process at the start of each fit and
    draws its coordinate order from it: two fits at once (folds, or two sessions of the
    app) would interleave their draws. Its fits take turns (`LIBLINEAR_LOCK`),
    so each gives the result it gives alone.
    """
    return isinstance(classifier, LinearSVC) or (
        isinstance(classifier, LogisticRegression) and classifier.solver == "liblinear")


def _is_linear_svc(classifier) -> bool:
    return type(classifier) is SVC and classifier.kernel == "linear"


def _fit_svc_on_kernel(svc: SVC, X, y, kernel=None) -> SVC:
    """Fit ``SVC(kernel="linear")`` through its precomputed linear kernel; the fitted SVC is linear.

    libsvm solves the very problem of ``svc.fit(X, y)`` (the kernel ``X X^T`` is what it
    would compute entry by entry over the voxels) but reads kernel values instead of
    computing dot products: about 3-4x faster on the real VT data. The fitted model is
    then given its support vectors, so ``predict``, ``decision_function`` and ``coef_``
    are those of a linear SVC (tests compare them with ``svc.fit(X, y)``).
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    kernel = X @ X.T if kernel is None else kernel
    params = svc.get_params()
    svc.set_params(kernel="precomputed")
    svc.fit(kernel, y)
    svc.set_params(kernel=params["kernel"])
    svc.support_vectors_ = X[svc.support_]
    svc.shape_fit_ = X.shape
    svc.n_features_in_ = X.shape[1]
    return svc


def fit_classifier(classifier, X, y, progress: ProgressCallback | None = None):
    """Fit one classifier of `ESTIMATORS` in place, as ``classifier.fit(X, y)`` would, faster.

    A linear SVC is fitted through its precomputed kernel (`_fit_svc_on_kernel`), a
    squared-hinge LinearSVC to its exact optimum (`squared_hinge.fit_linear_svc`, progress
    per class), a two-class L2 logistic regression to its optimum by Newton's method
    (`binary_logistic.fit_binary_logistic`), a one-vs-rest classifier by `fit_one_vs_rest`
    (classes in threads, progress per class), anything else by its own ``fit``.
    """
    if _is_linear_svc(classifier):
        return _fit_svc_on_kernel(classifier, X, y)
    if squared_hinge.solves_exactly(classifier):
        return squared_hinge.fit_linear_svc(classifier, X, y, progress)
    if binary_logistic.solves_exactly(classifier, X, y):
        return binary_logistic.fit_binary_logistic(classifier, X, y)
    if _fits_with_liblinear(classifier):
        with LIBLINEAR_LOCK:
            return classifier.fit(X, y)
    if isinstance(classifier, OneVsRestClassifier):
        return fit_one_vs_rest(classifier, X, y, progress)
    return classifier.fit(X, y)


def fit_one_vs_rest(one_vs_rest: OneVsRestClassifier, X, y,
                    progress: ProgressCallback | None = None) -> OneVsRestClassifier:
    """Fit a ``OneVsRestClassifier`` in place as its ``fit`` does, with progress per class.

    The same binary problems (`sklearn.multiclass._fit_binary` on the columns of a
    ``LabelBinarizer``, each a clone of ``one_vs_rest.estimator``), hence the same
    fitted classifier; ``progress(fraction, message)`` is called as each class is
    done. A linear SVC as the binary estimator shares one precomputed kernel and its
    classes are fitted in threads (libsvm releases the GIL); liblinear's are not.
    """
    from sklearn.multiclass import _fit_binary  # the binary fit OneVsRestClassifier.fit uses

    binarizer = LabelBinarizer(sparse_output=True).fit(y)
    classes = binarizer.classes_
    # The columns of binarizer.transform(y), without its sparse round trip (a few ms a fit).
    positives = classes[1:] if len(classes) == 2 else classes
    columns = [(np.asarray(y) == positive).astype(int) for positive in positives]
    X = np.asarray(X)
    kernel = None
    if _is_linear_svc(one_vs_rest.estimator):
        X = np.ascontiguousarray(X, dtype=np.float64)
        kernel = X @ X.T

    def fit_one(index: int):
        column = columns[index]
        if kernel is not None and len(np.unique(column)) == 2:
            return _fit_svc_on_kernel(clone(one_vs_rest.estimator), X, column, kernel)
        with LIBLINEAR_LOCK if _fits_with_liblinear(one_vs_rest.estimator) else nullcontext():
            return _fit_binary(one_vs_rest.estimator, X, column, fit_params={},
                               classes=[f"not {classes[index]}", classes[index]])

    estimators = [None] * len(columns)
    # liblinear's fits take turns (`_fits_with_liblinear`): threads would only wait.
    threads = _class_threads(len(columns)) if kernel is not None else 1
    with ThreadPoolExecutor(max_workers=threads) as pool:
        futures = {pool.submit(fit_one, index): index for index in range(len(columns))}
        for done, future in enumerate(as_completed(futures), start=1):
            estimators[futures[future]] = future.result()
            if progress is not None:
                progress(done / len(columns), f"one-vs-rest: {done} of {len(columns)} classes fitted")
    one_vs_rest.label_binarizer_ = binarizer
    one_vs_rest.classes_ = classes
    one_vs_rest.estimators_ = estimators
    if hasattr(estimators[0], "n_features_in_"):
        one_vs_rest.n_features_in_ = estimators[0].n_features_in_
    return one_vs_rest


def _fit_pipeline(pipeline: Pipeline, X, y, groups=None, progress: ProgressCallback | None = None) -> Pipeline:
    """Fit a pipeline's steps in place as ``Pipeline.fit`` does; the classifier by `fit_classifier`."""
    transformed = X
    for _name, step in pipeline.steps[:-1]:
        transformed = step.fit(transformed, y).transform(transformed)
    classifier = pipeline.steps[-1][1]
    if isinstance(classifier, TunedLinearClassifier):
        classifier.fit(transformed, y, groups=None if groups is None else np.asarray(groups), progress=progress)
    else:
        fit_classifier(classifier, transformed, y, progress)
    return pipeline


def build_estimator(config: DecodingConfig) -> Pipeline:
    """The scikit-learn estimator a configuration describes.

    Without tuning, a `~sklearn.pipeline.Pipeline` of an optional ``"screening"``
    step (``SelectPercentile(f_classif, config.screening_percentile)``) and a
    ``"classifier"`` step: ``ESTIMATORS[config.estimator].make(config.C)``. With
    ``config.tune_C``, a single ``"classifier"`` step: a `TunedLinearClassifier`
    that holds the screening itself, so that the screening is refitted inside
    each inner training fold (fully nested: the inner validation folds never
    saw it). Everything is fitted on the data given to ``fit`` only, so inside a
    cross-validation the screening and the choice of C never see the test fold.

    To let the inner split keep runs together, pass the training runs with
    `fit_estimator` (or ``fit(X, y, classifier__groups=runs)``).

    Parameters
    ----------
    config : DecodingConfig

    Returns
    -------
    sklearn.pipeline.Pipeline
    """
    if config.tune_C:
        inner_scoring = "accuracy" if config.scoring == "accuracy" else "balanced_accuracy"
        return Pipeline([("classifier", TunedLinearClassifier(
            config.estimator, scoring=inner_scoring, fallback_C=config.C,
            screening_percentile=config.screening_percentile))])
    steps = []
    if config.screening_percentile is not None:
        steps.append(("screening", _screening(config.screening_percentile)))
    steps.append(("classifier", make_classifier(config.estimator, config.C)))
    return Pipeline(steps)


@contextmanager
def convergence_warnings_counted():
    """Count the convergence warnings of fits within; show no other warning less than before.

    Yields a list that gets the identifier of the warning thread for each
    ``ConvergenceWarning`` (counted, never shown), from this thread and from threads
    it starts (the warning filters are the process's: one context serves fits in
    several threads). Screening's warnings about constant voxels are not shown; any
    other warning goes on as it would have.
    """
    warned = []
    with warnings.catch_warnings():
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Features .* are constant", category=UserWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="sklearn.feature_selection")
        show = warnings.showwarning

        def count_or_show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, ConvergenceWarning):
                warned.append(threading.get_ident())
            else:
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = count_or_show
        yield warned


def fit_estimator(estimator: Pipeline, X, y, groups=None, progress: ProgressCallback | None = None,
                  *, count_warnings: bool = True) -> Pipeline:
    """Fit an estimator from `build_estimator`, giving runs to nested tuning.

    Convergence warnings are not shown but counted: the fitted pipeline's
    ``n_not_converged_`` is the number of model fits (inner tuning fits and
    one-vs-rest sub-fits included) that stopped at their iteration cap.
    Each step is fitted as ``Pipeline.fit`` does, the classifier by `fit_classifier`
    (the same fit, faster for linear SVC and one-vs-rest).

    Parameters
    ----------
    estimator : Pipeline
        From `build_estimator` (it is fitted in place and returned).
    X : ndarray of shape (n_samples, n_voxels)
    y : ndarray of shape (n_samples,)
    groups : ndarray of shape (n_samples,) or None
        Run of each sample; used only by nested tuning's inner split.
    progress : callable or None
        ``progress(fraction, message)`` within the fit: after each class of a
        one-vs-rest classifier, after each inner fit of nested tuning.
    count_warnings : bool, default=True
        False when the caller counts them itself, around fits in several threads
        (`convergence_warnings_counted`; the warning filters are the process's, so
        threads must not each set their own); ``n_not_converged_`` is then 0.
    """
    if not count_warnings:
        _fit_pipeline(estimator, X, y, groups=groups, progress=progress)
        estimator.n_not_converged_ = 0
        return estimator
    with convergence_warnings_counted() as warned:
        _fit_pipeline(estimator, X, y, groups=groups, progress=progress)
    estimator.n_not_converged_ = len(warned)
    return estimator


def not_converged_message(n_not_converged: int, n_fits_hint: str = "") -> str | None:
    """The sentence a result carries when some fits stopped at their iteration cap (None if none did)."""
    if not n_not_converged:
        return None
    return (
        f"{n_not_converged} model fit(s){n_fits_hint} stopped at the solver's iteration cap before "
        "converging, so the scores and weights may differ from what the estimator converges to. "
        "Standardize the voxels (z-score), choose a smaller C (stronger regularisation converges "
        "faster) or another estimator; in a script, raise the estimator's max_iter."
    )


def classifier_C(pipeline: Pipeline, config: DecodingConfig) -> float:
    """C of the fitted pipeline's classifier: the one nested tuning chose, else ``config.C``."""
    classifier = pipeline.named_steps["classifier"]
    return float(classifier.best_C_) if isinstance(classifier, TunedLinearClassifier) else config.C
