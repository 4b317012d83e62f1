"""Decoding: a masked data set and a configuration into fold scores, predictions and weights.

The steps follow nilearn's decoding tutorial (Haxby 2001, face vs cat, linear
SVC) and every evaluation scheme it shows, then go further: other linear
estimators, nested tuning of C, ANOVA screening fitted inside each training
fold, several metrics, activation patterns (Haufe et al. 2014), weight
stability across folds, and warnings about designs that leak.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import nibabel as nib
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectPercentile, f_classif
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.model_selection import (
    GroupKFold,
    KFold,
    LeaveOneGroupOut,
    StratifiedKFold,
)
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from decoding_core import masking
from decoding_core.config import ESTIMATORS, DecodingConfig
from decoding_core.errors import DecodingInputError
from decoding_core.masking import MaskedData, ProgressCallback

# ---------------------------------------------------------------------------
# Estimators
# ---------------------------------------------------------------------------


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


#: ``ESTIMATOR_FACTORIES[name](C)`` -> an unfitted linear classifier; keys as in
#: `decoding_core.config.ESTIMATORS`.
ESTIMATOR_FACTORIES = {
    "svc": _make_svc,
    "svm_l2": _make_svm_l2,
    "svm_l1": _make_svm_l1,
    "logistic_l2": _make_logistic_l2,
    "logistic_l1": _make_logistic_l1,
    "ridge": _make_ridge,
}
assert set(ESTIMATOR_FACTORIES) == set(ESTIMATORS), "ESTIMATOR_FACTORIES and config.ESTIMATORS disagree"

#: Values of C tried by nested tuning (log-spaced, 1e-3 to 1e2).
DEFAULT_C_GRID = tuple(float(c) for c in np.logspace(-3, 2, 6))


def make_classifier(name: str, C: float = 1.0):
    """An unfitted classifier from `ESTIMATOR_FACTORIES`.

    Parameters
    ----------
    name : str
        Key of `decoding_core.config.ESTIMATORS`.
    C : float, default=1.0
        Inverse regularisation strength (ridge: ``alpha = 1 / (2 C)``).
    """
    if name not in ESTIMATOR_FACTORIES:
        raise DecodingInputError(
            f"Unknown estimator {name!r}. Known estimators are: {sorted(ESTIMATOR_FACTORIES)}."
        )
    return ESTIMATOR_FACTORIES[name](float(C))


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


class TunedLinearClassifier(ClassifierMixin, BaseEstimator):
    """A linear classifier whose C is chosen by an inner cross-validation.

    Only the data given to `fit` are used to choose C, so inside an outer
    cross-validation the test fold never influences the choice. The inner
    split keeps whole runs together when ``groups`` (the runs of the training
    samples) has at least three values.

    Parameters
    ----------
    estimator : str, default="svc"
        Key of `ESTIMATOR_FACTORIES`.
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
                        fold_scores[i, j] = _label_score(self.scoring, y[test], model.predict(X[test]))
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
        return _coefficients(self.estimator_)

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


def _coefficients(classifier) -> np.ndarray:
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


def _label_score(scoring: str, y_true, y_pred) -> float:
    if scoring == "balanced_accuracy":
        from sklearn.metrics import balanced_accuracy_score

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a class absent from y_pred warns
            return float(balanced_accuracy_score(y_true, y_pred))
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def build_estimator(config: DecodingConfig) -> Pipeline:
    """The scikit-learn estimator a configuration describes.

    A `~sklearn.pipeline.Pipeline` of an optional ``"screening"`` step
    (``SelectPercentile(f_classif, config.screening_percentile)``) and a
    ``"classifier"`` step: ``ESTIMATOR_FACTORIES[config.estimator](config.C)``,
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


# ---------------------------------------------------------------------------
# Cross-validation schemes
# ---------------------------------------------------------------------------


def _as_labels(labels) -> np.ndarray:
    """Labels as a plain numpy str array (pandas 3 hands out Arrow strings)."""
    if isinstance(labels, (pd.Series, pd.Index)):
        labels = labels.to_numpy(dtype=str)
    array = np.asarray(labels)
    if array.ndim != 1:
        raise DecodingInputError(f"The labels must be one label per sample (1D). Got shape {array.shape}.")
    if array.dtype.kind != "U":
        if any(value is None or (isinstance(value, float) and np.isnan(value)) for value in array):
            raise DecodingInputError("Some labels are missing (empty or NaN). Give every selected volume a label.")
        array = array.astype(str)
    return array


def _as_runs(runs, n_samples: int) -> np.ndarray | None:
    """Runs as a plain numpy array (str or numbers), or None."""
    if runs is None:
        return None
    if isinstance(runs, (pd.Series, pd.Index)):
        runs = runs.to_numpy()
    array = np.asarray(runs)
    if array.ndim != 1 or len(array) != n_samples:
        raise DecodingInputError(
            f"There must be one run per sample: got {array.shape} runs for {n_samples} samples."
        )
    if array.dtype.kind in "fc" and np.isnan(array).any():
        raise DecodingInputError("Some runs are missing (NaN). Give every volume a run, or decode without runs.")
    if array.dtype.kind == "O":
        if any(value is None or (isinstance(value, float) and np.isnan(value)) for value in array):
            raise DecodingInputError("Some runs are missing. Give every volume a run, or decode without runs.")
        array = array.astype(str)
    return array


def _check_training_classes(splits, labels, scheme: str) -> None:
    for fold, (train, _test) in enumerate(splits):
        present = np.unique(labels[train])
        if len(present) < 2:
            raise DecodingInputError(
                f"Fold {fold + 1} of the {scheme} scheme trains on a single class ({str(present[0])!r}): "
                "a classifier needs at least two. The samples are probably ordered by condition; "
                "choose leave-one-run-out or fewer folds."
            )


def make_splits(config: DecodingConfig, labels, runs=None) -> list:
    """The (train, test) index pairs of ``config.cv`` on the selected samples.

    Parameters
    ----------
    config : DecodingConfig
        ``cv``, ``n_folds`` and ``holdout_size`` are read.
    labels : array-like of shape (n_samples,)
        Condition of each selected sample.
    runs : array-like of shape (n_samples,) or None
        Run of each selected sample.

    Returns
    -------
    list of (ndarray, ndarray)
        Integer indices: ``train`` (sorted) and ``test`` for each fold. For
        ``"train"`` one pair whose two halves are both every sample.

    Raises
    ------
    DecodingInputError
        When the scheme cannot be used on these samples.
    """
    labels = _as_labels(labels)
    n_samples = len(labels)
    runs = _as_runs(runs, n_samples)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise DecodingInputError(
            f"Only one condition ({str(classes[0]) if len(classes) else 'none'!r}) is present in the "
            "selected samples: select at least two conditions to decode."
        )
    indices = np.arange(n_samples)
    scheme = config.cv
    if scheme == "train":
        splits = [(indices, indices.copy())]
    elif scheme == "holdout":
        size = config.holdout_size
        if size >= n_samples:
            raise DecodingInputError(
                f"The hold-out set ({size} samples) must be smaller than the {n_samples} selected "
                f"samples. Choose a hold-out size below {n_samples} (e.g. {max(1, n_samples // 5)})."
            )
        train, test = indices[: n_samples - size], indices[n_samples - size :]
        if len(np.unique(labels[train])) < 2:
            raise DecodingInputError(
                f"Holding out the last {size} samples leaves a single condition "
                f"({str(labels[train][0])!r}) to train on. Choose a smaller hold-out size, or another scheme."
            )
        splits = [(train, test)]
    elif scheme == "kfold":
        k = config.n_folds
        if k > n_samples:
            raise DecodingInputError(
                f"K-fold with K={k} needs at least {k} samples; the selection has {n_samples}. "
                f"Choose K of at most {n_samples}."
            )
        splits = list(KFold(n_splits=k).split(indices))
    elif scheme == "default":
        # What cross_val_score(classifier, X, y) does: StratifiedKFold(5), unshuffled.
        if counts.min() < 5:
            rare = ", ".join(f"{str(c)!r} ({n})" for c, n in zip(classes, counts) if n < 5)
            raise DecodingInputError(
                "scikit-learn's default split (stratified 5-fold) needs at least 5 samples of each "
                f"condition; these have fewer: {rare}. Choose K-fold with fewer folds, or hold-out."
            )
        splits = list(StratifiedKFold(n_splits=5).split(indices, labels))
    elif scheme == "leave-one-run-out":
        n_runs = 0 if runs is None else len(np.unique(runs))
        if n_runs < 2:
            described = "no runs" if runs is None else f"{n_runs} run"
            raise DecodingInputError(
                "Leave-one-run-out needs at least two runs; the selected data have "
                f"{described}. Choose K-fold or hold-out, or give a run (chunk) column for the volumes."
            )
        splits = list(LeaveOneGroupOut().split(indices, labels, runs))
    else:  # config validates cv; keep a clear message for hand-built objects
        raise DecodingInputError(f"Unknown evaluation scheme {scheme!r}.")
    _check_training_classes(splits, labels, scheme)
    return [(np.asarray(train, dtype=np.intp), np.asarray(test, dtype=np.intp)) for train, test in splits]


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DecodingResult:
    """The outcome of one decoding run.

    Attributes
    ----------
    config : DecodingConfig
    fold_scores : ndarray of shape (n_folds,)
        Score of each fold under ``config.scoring`` (one value for ``train`` and ``holdout``).
    mean_score, std_score : float
    chance_level : float
        What guessing scores under ``config.scoring``: for accuracy the
        majority-class rate of the selected samples (always predicting the most
        frequent class), for balanced accuracy 1 / n_classes, for ROC AUC 0.5.
        ``extras["majority_rate"]`` always holds the majority-class rate.
    meaningless : bool
        True when the scheme scores the training data itself (``cv="train"``).
    predictions : pandas.DataFrame
        One row per (sample, fold in which it was tested): columns ``sample``
        (row in the selected data), ``volume`` (index in the 4D image), ``run``,
        ``time`` (``volume * TR``, NaN without TR), ``fold``, ``true``,
        ``predicted``, ``correct``; then ``decision`` (two classes: positive
        toward ``classes[1]``) or ``decision_<class>``, and ``proba_<class>``
        for estimators with probabilities.
    classes : tuple of str
        Sorted conditions; row k of ``weights`` is ``classes[k]`` when there
        are more than two.
    weights : ndarray of shape (n_maps, n_voxels)
        Weights of the classifier refitted on all selected samples, as in the
        tutorial: one row for two classes, one per class (one-vs-rest) otherwise.
    weight_img : nibabel.Nifti1Image
        ``weights`` back in the brain (3D for one map, 4D for several).
    n_samples, n_voxels : int
    warnings : list of str
        Design and leakage warnings about this run.
    elapsed_seconds : float
    extras : dict
        Further results:

        - ``"scoring"``: the score's name; ``"folds"``: DataFrame (fold, n_train,
          n_test, test_runs, score, C);
        - ``"chosen_C"``: ndarray (n_folds,), C used in each fold (chosen by the
          inner split when ``config.tune_C``); ``"final_C"``: C of the refit;
        - ``"per_class"``: DataFrame (precision, recall, f1, support) per
          condition; ``"confusion"``: DataFrame true x predicted, summed over folds;
        - ``"fold_weights"``: ndarray (n_folds, n_maps, n_voxels) float32;
        - ``"pattern"``, ``"pattern_img"``: activation patterns (Haufe et al.
          2014) of ``weights``, see `activation_pattern`;
        - ``"stability"``, ``"stability_img"``: per voxel, the fraction of folds
          whose weight has the sign of the full-data weight (`sign_stability`);
        - ``"class_counts"``: samples per condition; ``"positive_class"``: the
          class positive weights and decision values point to (two classes only).
    """

    config: DecodingConfig
    fold_scores: np.ndarray
    mean_score: float
    std_score: float
    chance_level: float
    meaningless: bool
    predictions: pd.DataFrame
    classes: tuple
    weights: np.ndarray
    weight_img: nib.Nifti1Image
    n_samples: int
    n_voxels: int
    warnings: list = field(default_factory=list)
    elapsed_seconds: float = 0.0
    extras: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------
# Warnings about the design
# ---------------------------------------------------------------------------

_SCHEME_NAMES = {
    "train": "training-data",
    "holdout": "hold-out",
    "kfold": "unshuffled K-fold",
    "default": "default (stratified 5-fold)",
    "leave-one-run-out": "leave-one-run-out",
}


def _is_block_design(labels: np.ndarray) -> bool:
    """Whether conditions come in blocks of consecutive volumes (mean block length >= 2)."""
    if len(labels) < 2:
        return False
    n_blocks = 1 + int(np.count_nonzero(labels[1:] != labels[:-1]))
    return len(labels) / n_blocks >= 2.0


def design_warnings(config: DecodingConfig, labels, runs, splits) -> list:
    """Warnings about leakage and design problems of a decoding run.

    Parameters
    ----------
    config : DecodingConfig
    labels : array-like of shape (n_samples,)
        Condition of each selected sample.
    runs : array-like of shape (n_samples,) or None
    splits : list of (train, test) index arrays
        As from `make_splits`.

    Returns
    -------
    list of str
        One sentence or two per problem, saying what to do; empty when none.
    """
    labels = _as_labels(labels)
    runs = _as_runs(runs, len(labels))
    messages = []
    scheme = config.cv
    if scheme == "train":
        messages.append(
            "Training accuracy is meaningless: the classifier is scored on the very samples it was "
            "fitted on, and with more voxels than samples a linear classifier can fit any labelling. "
            "Use leave-one-run-out to measure how well it generalises."
        )
    elif scheme != "leave-one-run-out" and _is_block_design(labels):
        name = _SCHEME_NAMES[scheme]
        if runs is not None and len(np.unique(runs)) >= 2:
            shared = [
                fold + 1 for fold, (train, test) in enumerate(splits)
                if np.intersect1d(runs[train], runs[test]).size
            ]
            if shared:
                messages.append(
                    f"The {name} split puts volumes of the same run on both sides of the split "
                    f"(fold(s) {_fold_list(shared)}). In this block design neighbouring volumes are "
                    "correlated, so leave-one-run-out is the honest scheme; this score is likely optimistic."
                )
        else:
            messages.append(
                f"The conditions come in blocks of consecutive volumes and the {name} split cuts "
                "through them: neighbouring volumes are correlated, so the score may be optimistic. "
                "With a run (chunk) column, leave-one-run-out would be the honest scheme."
            )
    classes, counts = np.unique(labels, return_counts=True)
    if config.scoring == "accuracy" and len(counts) and counts.max() / counts.min() > 1.5:
        summary = ", ".join(f"{str(c)!r}: {n}" for c, n in zip(classes, counts))
        messages.append(
            f"The conditions are imbalanced ({summary}): plain accuracy rewards always guessing the "
            f"most frequent one (chance level {counts.max() / counts.sum():.0%}). "
            "Use balanced accuracy."
        )
    thin = []
    for fold, (train, _test) in enumerate(splits):
        train_classes, train_counts = np.unique(labels[train], return_counts=True)
        missing = set(classes) - set(train_classes)
        few = [str(c) for c, n in zip(train_classes, train_counts) if n < 2] + sorted(map(str, missing))
        if few:
            thin.append((fold + 1, few))
    if thin:
        details = "; ".join(f"fold {fold}: {', '.join(map(repr, few))}" for fold, few in thin[:5])
        more = f" (and {len(thin) - 5} more folds)" if len(thin) > 5 else ""
        messages.append(
            f"Some training folds have fewer than two samples of a condition ({details}{more}): the "
            "classifier can hardly learn it. Use fewer folds, a smaller hold-out, or more data."
        )
    if config.scoring == "roc_auc":
        lacking = [
            fold + 1 for fold, (_train, test) in enumerate(splits)
            if len(np.unique(labels[test])) < len(classes)
        ]
        if lacking:
            messages.append(
                f"Test fold(s) {_fold_list(lacking)} miss some condition: ROC AUC there is averaged over "
                "the conditions present only, and undefined when one condition remains. Use a scheme "
                "whose test folds hold every condition (e.g. leave-one-run-out), or accuracy."
            )
    return messages


def _fold_list(folds: list) -> str:
    text = ", ".join(str(f) for f in folds[:10])
    return text + (f" and {len(folds) - 10} more" if len(folds) > 10 else "")


# ---------------------------------------------------------------------------
# Scores, weights and patterns
# ---------------------------------------------------------------------------


def _class_scores(model, X, classes: np.ndarray):
    """Continuous outputs of a fitted model on ``X``, laid out by ``classes``.

    Returns ``(decision, proba)``: for two classes ``decision`` is a vector (score
    toward ``classes[1]``); otherwise an (n, n_classes) matrix with -inf for a
    class the model never saw. ``proba`` is None without ``predict_proba``.
    """
    fitted = np.asarray(model.classes_).astype(str)
    columns = np.searchsorted(classes, fitted)
    decision = proba = None
    if hasattr(model, "decision_function"):
        raw = np.asarray(model.decision_function(X), dtype=float)
        if len(classes) == 2:
            decision = raw if raw.ndim == 1 else raw[:, -1]
        else:
            decision = np.full((len(X), len(classes)), -np.inf)
            if raw.ndim == 1:  # a fold that trained on two classes only
                decision[:, columns[1]], decision[:, columns[0]] = raw, -raw
            else:
                decision[:, columns] = raw
    if hasattr(model, "predict_proba"):
        raw = np.asarray(model.predict_proba(X), dtype=float)
        proba = np.zeros((len(X), len(classes)))
        proba[:, columns] = raw
    return decision, proba


def _fold_score(scoring: str, y_true, y_pred, decision, proba, classes) -> float:
    """One fold's score; NaN for ROC AUC when the fold holds a single condition."""
    from sklearn.metrics import roc_auc_score

    if scoring in ("accuracy", "balanced_accuracy"):
        return _label_score(scoring, y_true, y_pred)
    scores = proba if (proba is not None and len(classes) > 2) else decision
    if scores is None:
        scores = proba[:, 1] if len(classes) == 2 else proba
    if len(classes) == 2:
        positive = y_true == classes[1]
        if positive.all() or not positive.any():
            return float("nan")
        return float(roc_auc_score(positive, scores))
    # One-vs-rest, macro-averaged over the classes with positives and negatives here;
    # equals roc_auc_score(multi_class="ovr") when every class is present.
    aucs = []
    for k, name in enumerate(classes):
        positive = y_true == name
        if positive.any() and not positive.all() and np.isfinite(scores[:, k]).all():
            aucs.append(roc_auc_score(positive, scores[:, k]))
    return float(np.mean(aucs)) if aucs else float("nan")


def _classifier_C(pipeline: Pipeline, config: DecodingConfig) -> float:
    classifier = pipeline.named_steps["classifier"]
    return float(classifier.best_C_) if isinstance(classifier, TunedLinearClassifier) else config.C


def _weight_maps(pipeline: Pipeline, X, y, classes: np.ndarray, config: DecodingConfig) -> np.ndarray:
    """Weights of a fitted pipeline over all voxels, float32.

    One row (toward ``classes[1]``) for two classes; otherwise one
    one-vs-rest row per class. SVC's one-vs-one coefficients do not give one
    map per class, so a one-vs-rest SVC with the same C is fitted on the same
    training data for its maps. Voxels dropped by screening get 0.
    """
    n_voxels = X.shape[1]
    classifier = pipeline.named_steps["classifier"]
    fitted_classes = np.asarray(classifier.classes_).astype(str)
    coef = np.asarray(_coefficients(classifier), dtype=float)
    if "screening" in pipeline.named_steps:
        support = pipeline.named_steps["screening"].get_support()
    else:
        support = np.ones(n_voxels, dtype=bool)
    n_maps = 1 if len(classes) == 2 else len(classes)
    maps = np.zeros((n_maps, n_voxels), dtype=np.float32)
    if n_maps == 1:
        maps[0, support] = coef[0]
        return maps
    rows = np.searchsorted(classes, fitted_classes)
    # SVC's coef_ is one-vs-one: one row per pair of classes (3 rows for 3 classes
    # too, so the row count cannot tell).
    one_vs_one = isinstance(getattr(classifier, "estimator_", classifier), SVC)
    if len(fitted_classes) == 2:  # two classes (this fold saw only two)
        maps[rows[1], support], maps[rows[0], support] = coef[0], -coef[0]
    elif not one_vs_one:
        maps[np.ix_(rows, support)] = coef
    else:  # refit one-vs-rest for per-class maps
        screened = X[:, support]
        one_vs_rest = OneVsRestClassifier(make_classifier(config.estimator, _classifier_C(pipeline, config)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            one_vs_rest.fit(screened, y)
        ovr_coef = np.vstack([est.coef_.reshape(1, -1) for est in one_vs_rest.estimators_])
        maps[np.ix_(rows, support)] = ovr_coef
    return maps


def activation_pattern(X, weights) -> np.ndarray:
    """Activation patterns of linear decoders (Haufe et al., 2014, NeuroImage 87:96-110).

    ``A = cov(X) W``, scaled per map by the variance of its decoder output
    (Haufe's ``Sigma_s^-1`` taken map by map), computed as
    ``Xc^T (Xc W) / (n - 1) / var(Xc W)`` with centred ``Xc``: the voxel x voxel
    covariance is never formed. Unlike raw weights, a pattern shows where the
    signal is, not where a voxel helps cancel noise.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_voxels)
    weights : ndarray of shape (n_maps, n_voxels)

    Returns
    -------
    ndarray of shape (n_maps, n_voxels), float32
    """
    X = np.asarray(X, dtype=np.float64)
    W = np.asarray(weights, dtype=np.float64)
    centred = X - X.mean(axis=0)
    outputs = centred @ W.T  # (n_samples, n_maps)
    denominator = max(len(X) - 1, 1)
    pattern = (centred.T @ outputs).T / denominator
    variance = (outputs**2).sum(axis=0) / denominator
    scale = np.where(variance > 0, variance, 1.0)
    return (pattern / scale[:, None]).astype(np.float32)


def sign_stability(fold_weights, weights) -> np.ndarray:
    """Fraction of folds in which each weight has the sign of the full-data weight.

    Parameters
    ----------
    fold_weights : ndarray of shape (n_folds, n_maps, n_voxels)
    weights : ndarray of shape (n_maps, n_voxels)

    Returns
    -------
    ndarray of shape (n_maps, n_voxels), float32
        In [0, 1]; 0 where the full-data weight is exactly 0 (e.g. screened out).
    """
    reference = np.sign(weights)
    agree = (np.sign(fold_weights) == reference[None]).mean(axis=0)
    return np.where(reference != 0, agree, 0.0).astype(np.float32)


def chance_level(scoring: str, class_counts) -> float:
    """The score of guessing under ``scoring``, given the number of samples of each class.

    Accuracy: the majority-class rate (a classifier that always answers the most
    frequent class gets it). Balanced accuracy: 1 / n_classes. ROC AUC: 0.5.
    """
    counts = np.asarray(class_counts, dtype=float)
    if scoring == "balanced_accuracy":
        return 1.0 / counts.size
    if scoring == "roc_auc":
        return 0.5
    return float(counts.max() / counts.sum())


def _image(values: np.ndarray, mask_img) -> nib.Nifti1Image:
    """3D image for a single map, 4D for several."""
    values = np.asarray(values)
    return masking.unmask(values[0] if values.shape[0] == 1 else values, mask_img)


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


def _checked_matrix(masked: MaskedData) -> np.ndarray:
    X = np.asarray(masked.X)
    if X.ndim != 2:
        raise DecodingInputError(f"The masked data must be a samples x voxels matrix. Got shape {X.shape}.")
    if X.shape[1] == 0:
        raise DecodingInputError("The mask selects no voxel. Choose or upload a mask that covers the brain.")
    if X.dtype.kind not in "fiu":
        raise DecodingInputError(f"The masked data must be numbers. Got dtype {X.dtype}.")
    if not np.isfinite(X).all():
        raise DecodingInputError(
            "The masked data contain NaN or infinite values. Check the image (and the mask) for invalid voxels."
        )
    return X


def decode(masked: MaskedData, config: DecodingConfig,
           progress: ProgressCallback | None = None, *, tr: float | None = None) -> DecodingResult:
    """Select ``config.conditions`` from ``masked`` and decode them under ``config``.

    Parameters
    ----------
    masked : MaskedData
        All volumes of a data set, masked (see `decoding_core.masking.mask_dataset`).
    config : DecodingConfig
        Conditions, estimator, C, evaluation scheme, tuning, screening, scoring.
    progress : callable, optional
        ``progress(fraction, message)``, called after each fold.
    tr : float, optional
        Repetition time in seconds, for the ``time`` column of the predictions.

    Returns
    -------
    DecodingResult

    Raises
    ------
    DecodingInputError
        A condition is absent, one class remains, or the scheme does not fit the
        data (too few runs, hold-out or K too large, ...).
    """
    selected = masking.select_conditions(masked, config.conditions)
    return decode_selected(selected, config, progress, tr=tr if tr is not None else getattr(masked, "tr", None))


def decode_selected(selected: MaskedData, config: DecodingConfig,
                    progress: ProgressCallback | None = None, *, tr: float | None = None) -> DecodingResult:
    """Decode every sample of ``selected`` (already restricted to the conditions).

    See `decode`; ``config.conditions`` is not used to select here.
    """
    started = time.perf_counter()
    X = _checked_matrix(selected)
    labels = _as_labels(selected.labels)
    n_samples, n_voxels = X.shape
    if len(labels) != n_samples:
        raise DecodingInputError(f"There are {len(labels)} labels for {n_samples} samples; give one per sample.")
    runs = _as_runs(selected.runs, n_samples)
    volumes = np.arange(n_samples) if selected.volume_index is None else np.asarray(selected.volume_index)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise DecodingInputError(
            f"Only one condition ({str(classes[0]) if len(classes) else 'none'!r}) is selected: "
            "choose at least two conditions to decode."
        )
    splits = make_splits(config, labels, runs)
    messages = design_warnings(config, labels, runs, splits)
    template = build_estimator(config)
    n_folds = len(splits)
    n_maps = 1 if len(classes) == 2 else len(classes)
    fold_scores = np.zeros(n_folds)
    fold_weights = np.zeros((n_folds, n_maps, n_voxels), dtype=np.float32)
    chosen_C = np.zeros(n_folds)
    rows = []
    fold_table = []
    model = None
    for fold, (train, test) in enumerate(splits):
        model = fit_estimator(clone(template), X[train], labels[train], None if runs is None else runs[train])
        predicted = np.asarray(model.predict(X[test])).astype(str)
        decision, proba = _class_scores(model, X[test], classes)
        fold_scores[fold] = _fold_score(config.scoring, labels[test], predicted, decision, proba, classes)
        fold_weights[fold] = _weight_maps(model, X[train], labels[train], classes, config)
        chosen_C[fold] = _classifier_C(model, config)
        frame = {
            "sample": test,
            "volume": volumes[test],
            "run": runs[test] if runs is not None else np.full(len(test), None, dtype=object),
            "time": volumes[test] * float(tr) if tr else np.full(len(test), np.nan),
            "fold": np.full(len(test), fold + 1),
            "true": labels[test],
            "predicted": predicted,
            "correct": predicted == labels[test],
        }
        if decision is not None:
            if decision.ndim == 1:
                frame["decision"] = decision
            else:
                frame.update({f"decision_{name}": decision[:, k] for k, name in enumerate(classes)})
        if proba is not None:
            frame.update({f"proba_{name}": proba[:, k] for k, name in enumerate(classes)})
        rows.append(pd.DataFrame(frame))
        fold_table.append({
            "fold": fold + 1,
            "n_train": len(train),
            "n_test": len(test),
            "test_runs": "" if runs is None else ", ".join(map(str, np.unique(runs[test]))),
            "score": fold_scores[fold],
            "C": chosen_C[fold],
        })
        if progress is not None:
            progress((fold + 1) / (n_folds + 1), f"Fold {fold + 1} of {n_folds} done")
    if np.isnan(fold_scores).all():
        raise DecodingInputError(
            f"The {config.scoring} score is undefined on every fold: each test fold holds a single "
            "condition. Choose another scheme (e.g. leave-one-run-out) or accuracy."
        )
    if np.isnan(fold_scores).any():
        messages.append(
            f"The score is undefined on fold(s) {_fold_list(list(np.flatnonzero(np.isnan(fold_scores)) + 1))} "
            "(a single condition in the test fold); the mean leaves them out."
        )

    # The classifier refitted on all selected samples, as in the tutorial (svc.coef_).
    if progress is not None:
        progress(n_folds / (n_folds + 1), "Refitting on all samples")
    if config.cv == "train":
        final = model  # the single fold already trained on every sample
        weights = fold_weights[0].copy()
    else:
        final = fit_estimator(clone(template), X, labels, runs)
        weights = _weight_maps(final, X, labels, classes, config)
    pattern = activation_pattern(X, weights)
    stability = sign_stability(fold_weights, weights)

    predictions = pd.concat(rows, ignore_index=True)
    extras = _label_metrics(predictions, classes)
    extras.update({
        "scoring": config.scoring,
        "folds": pd.DataFrame(fold_table),
        "chosen_C": chosen_C,
        "final_C": _classifier_C(final, config),
        "fold_weights": fold_weights,
        "pattern": pattern,
        "pattern_img": _image(pattern, selected.mask_img),
        "stability": stability,
        "stability_img": _image(stability, selected.mask_img),
        "class_counts": dict(zip(classes.tolist(), counts.tolist())),
        "majority_rate": float(counts.max() / counts.sum()),
        "positive_class": classes[1] if n_maps == 1 else None,
    })
    if progress is not None:
        progress(1.0, "Decoding done")
    return DecodingResult(
        config=config,
        fold_scores=fold_scores,
        mean_score=float(np.nanmean(fold_scores)),
        std_score=float(np.nanstd(fold_scores)),
        chance_level=chance_level(config.scoring, counts),
        meaningless=config.cv == "train",
        predictions=predictions,
        classes=tuple(classes.tolist()),
        weights=weights,
        weight_img=_image(weights, selected.mask_img),
        n_samples=n_samples,
        n_voxels=n_voxels,
        warnings=messages,
        elapsed_seconds=time.perf_counter() - started,
        extras=extras,
    )


def _label_metrics(predictions: pd.DataFrame, classes: np.ndarray) -> dict:
    """Per-class precision / recall and the confusion matrix, pooled over folds."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    true = predictions["true"].to_numpy(dtype=str)
    predicted = predictions["predicted"].to_numpy(dtype=str)
    labels = classes.tolist()
    precision, recall, f1, support = precision_recall_fscore_support(
        true, predicted, labels=labels, zero_division=0
    )
    per_class = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support},
        index=pd.Index(labels, name="condition"),
    )
    confusion = pd.DataFrame(
        confusion_matrix(true, predicted, labels=labels),
        index=pd.Index(labels, name="true"),
        columns=pd.Index(labels, name="predicted"),
    )
    return {"per_class": per_class, "confusion": confusion}


def run_decoding(dataset, config: DecodingConfig,
                 progress: ProgressCallback | None = None, cache=None) -> DecodingResult:
    """The whole pipeline: mask ``dataset`` as ``config`` says, then `decode`.

    Parameters
    ----------
    dataset : decoding_core.datasets.Dataset
    config : DecodingConfig
    progress : callable, optional
        ``progress(fraction, message)``: masking takes the first 70 %.
    cache : masking.RawVoxelCache, optional
        Cache of raw masked matrices (default: the module-level one).

    Returns
    -------
    DecodingResult
    """
    def masking_progress(fraction, message):
        if progress is not None:
            progress(0.7 * fraction, message)

    def decoding_progress(fraction, message):
        if progress is not None:
            progress(0.7 + 0.3 * fraction, message)

    masked = masking.mask_dataset(
        dataset, config.mask_name, standardize=config.standardize, detrend=config.detrend,
        smoothing_fwhm=config.smoothing_fwhm, progress=masking_progress, cache=cache,
    )
    return decode(masked, config, decoding_progress, tr=dataset.tr)
