"""Chance and significance: dummy classifiers and permutation tests.

Two answers to "is this score better than chance?":

* `dummy_scores`: the fold scores of scikit-learn's ``DummyClassifier``
  (``most_frequent`` and ``stratified``) under the same cross-validation and
  the same scoring as the real decoder, to draw beside it. They show the
  chance level of *this* design (class imbalance, fold composition), which is
  not always ``1 / n_classes``.
* `permutation_test`: Test 1 of Ojala & Garriga (2010), as scikit-learn's
  ``permutation_test_score``. The labels are shuffled within runs, the whole
  cross-validation is rerun on each shuffled copy, and the p-value is
  ``(1 + #{null >= observed}) / (1 + n_done)``. It reports progress and can
  be stopped early, keeping the permutations already done.

Speed. For the linear SVC without screening or tuning (the tutorial's
setting) the permutation test uses an exact shortcut: the linear kernel
``K = X X^T`` is computed once and every fold fits
``SVC(kernel="precomputed")`` on ``K[train][:, train]`` and predicts from
``K[test][:, train]``. libsvm then solves the very same problem as
``SVC(kernel="linear")`` without recomputing dot products over the voxels,
so the null scores are those of ``permutation_test_score`` (checked by the
tests and ``benchmarks/bench_permutation.py``) at a fraction of the cost.
For accuracy and balanced accuracy the folds call scikit-learn's libsvm
wrapper directly (checked against the public ``SVC`` on the real labels
first), and spare workers run as threads, since libsvm releases the GIL.
Other estimators, ANOVA screening and nested tuning of C go through the full
pipeline of `decoding_core.decoding.build_estimator` on every fold of every
permutation: correct, but several times slower.

A caveat a methods reviewer will raise: shuffling single volumes within a
run treats neighbouring volumes as exchangeable although the BOLD signal is
autocorrelated and the conditions come in blocks. Within-run shuffling keeps
every run's label counts (so a leave-one-run-out fold never loses a class)
and is what scikit-learn does; it is the standard test, not a perfect one.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from sklearn.base import clone
from sklearn.dummy import DummyClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from decoding_core import decoding, masking
from decoding_core._validation import as_labels, as_runs
from decoding_core.config import DecodingConfig
from decoding_core.decoding.folds import available_cores, single_blas_thread
from decoding_core.errors import DecodingInputError
from decoding_core.masking import MaskedData, ProgressCallback

#: Strategies of `dummy_scores`, in the order they are drawn.
DUMMY_STRATEGIES = ("most_frequent", "stratified")

#: Largest number of permutations accepted in one test.
MAX_PERMUTATIONS = 100_000

#: Cross-validation schemes whose folds depend on the labels: they are
#: recomputed on every permuted copy, as ``permutation_test_score`` does.
_LABEL_DEPENDENT_CV = frozenset({"default"})

#: The kernel shortcut keeps an n x n float64 matrix (128 MB at this size);
#: above this many samples the generic path is used instead.
_MAX_KERNEL_SAMPLES = 4_000

#: Per-fold kernel blocks are cached when they fit in this many bytes.
_KERNEL_BLOCK_CACHE_BYTES = 64 * 1024**2

#: The first permutations run serially for at least this long; their speed
#: decides whether the rest is worth spreading over workers.
_WARMUP_SECONDS = 0.5

#: Parallel workers are used only when the remaining work is estimated to take
#: longer than this (threads start in microseconds, processes in about a second).
_MIN_PARALLEL_SECONDS = {"threading": 1.5, "loky": 6.0}

#: Target duration of one batch of permutations sent to a worker.
_BATCH_SECONDS = 0.25

#: Scorings computed from predicted labels alone.
_LABEL_SCORINGS = frozenset({"accuracy", "balanced_accuracy"})

#: Minimum interval between two progress reports.
_PROGRESS_INTERVAL_SECONDS = 0.1


# ---------------------------------------------------------------------------
# Result
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PermutationResult:
    """The outcome of a permutation test.

    Attributes
    ----------
    observed_score : float
        Mean fold score of the real labels (the decoder's mean score).
    null_scores : ndarray of shape (n_done,)
        Mean fold score of each permuted copy, in the order drawn.
    p_value : float
        ``(1 + #{null_scores >= observed_score}) / (1 + n_done)``, as
        scikit-learn's ``permutation_test_score``; the smallest possible value
        is ``1 / (1 + n_done)``.
    n_permutations : int
        Number of permutations requested.
    n_done : int
        Number of permutations completed (fewer when stopped early).
    stopped_early : bool
        True when ``should_stop`` ended the test before ``n_permutations``.
    seed : int
        Seed of the shuffling; the same seed gives the same permutations.
    elapsed_seconds : float
    scoring : str
        Key of `decoding_core.config.SCORINGS` used for every score.
    observed_fold_scores : ndarray of shape (n_folds,)
        Fold scores of the real labels.
    shuffle_within_runs : bool
        True when labels were shuffled within runs, False when globally (no runs).
    method : str
        ``"precomputed-kernel"`` (exact shortcut for the linear SVC) or ``"pipeline"``.
    n_jobs : int
        Number of workers used for the bulk of the permutations.
    """

    observed_score: float
    null_scores: np.ndarray
    p_value: float
    n_permutations: int
    n_done: int
    stopped_early: bool
    seed: int
    elapsed_seconds: float
    scoring: str = "accuracy"
    observed_fold_scores: np.ndarray | None = None
    shuffle_within_runs: bool = True
    method: str = "pipeline"
    n_jobs: int = 1

    @property
    def null_mean(self) -> float:
        """Mean of the null distribution (NaN when no permutation was done)."""
        return float(np.mean(self.null_scores)) if self.n_done else math.nan

    @property
    def min_p_value(self) -> float:
        """The smallest p-value this number of permutations can give."""
        return 1.0 / (1 + self.n_done)


def empirical_p_value(observed_score: float, null_scores) -> float:
    """``(1 + #{null >= observed}) / (1 + n)``, as ``permutation_test_score``.

    Parameters
    ----------
    observed_score : float
    null_scores : array-like of shape (n,)

    Returns
    -------
    float
        1.0 for an empty null distribution.
    """
    null_scores = np.asarray(null_scores, dtype=float)
    return float((np.sum(null_scores >= observed_score) + 1.0) / (len(null_scores) + 1))


# ---------------------------------------------------------------------------
# Input preparation
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Prepared:
    """The selected samples as plain arrays, labels encoded as integers."""

    X: np.ndarray
    classes: np.ndarray  # sorted class names
    codes: np.ndarray  # index into classes, per sample
    runs: np.ndarray | None


def _select(masked: MaskedData, config: DecodingConfig) -> MaskedData:
    """``masked`` restricted to ``config.conditions`` (as is when it already is)."""
    labels = as_labels(masked.labels)
    present = set(np.unique(labels).tolist())
    if present == set(config.conditions):
        return masked
    return masking.select_conditions(masked, config.conditions)


def _prepare(masked: MaskedData, config: DecodingConfig) -> _Prepared:
    if not isinstance(masked, MaskedData):
        raise DecodingInputError(
            f"Expected the masked data (a MaskedData); got {type(masked).__name__}. "
            "Mask the data set first (masking.mask_dataset)."
        )
    if not isinstance(config, DecodingConfig):
        raise DecodingInputError(f"Expected a DecodingConfig; got {type(config).__name__}.")
    selected = _select(masked, config)
    X = np.asarray(selected.X)
    labels = as_labels(selected.labels)
    if X.ndim != 2 or X.shape[0] != len(labels):
        raise DecodingInputError(
            f"The data matrix must be samples x voxels with one label per sample; "
            f"got a matrix of shape {X.shape} and {len(labels)} labels."
        )
    if X.shape[1] == 0:
        raise DecodingInputError("The mask selects no voxel: choose a mask that covers some of the brain.")
    if not np.isfinite(X).all():
        raise DecodingInputError(
            "The masked data contain NaN or infinite values: check the image, or choose a mask "
            "inside the brain."
        )
    runs = as_runs(selected.runs, len(labels))
    classes, codes = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise DecodingInputError(
            f"Only one condition ({classes[0] if len(classes) else 'none'!r}) is present in the "
            "selected samples: select at least two conditions."
        )
    return _Prepared(X=X, classes=classes, codes=codes.astype(np.intp), runs=runs)


def _check_seed(seed) -> int:
    if seed is None:
        # A fresh seed, recorded in the result so the test can be repeated.
        return int(np.random.SeedSequence().entropy % 2**32)
    if isinstance(seed, np.integer):
        seed = int(seed)
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        raise DecodingInputError(f"'seed' must be an integer in the range [0, {2**32 - 1}]. Got {seed!r}.")
    return seed


def _check_n_permutations(n_permutations) -> int:
    if isinstance(n_permutations, np.integer):
        n_permutations = int(n_permutations)
    if (
        not isinstance(n_permutations, int)
        or isinstance(n_permutations, bool)
        or not 1 <= n_permutations <= MAX_PERMUTATIONS
    ):
        raise DecodingInputError(
            f"'n_permutations' must be an integer in the range [1, {MAX_PERMUTATIONS}]. "
            f"Got {n_permutations!r}."
        )
    return n_permutations


def _check_first(first) -> int:
    if isinstance(first, np.integer):
        first = int(first)
    if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first <= MAX_PERMUTATIONS:
        raise DecodingInputError(f"'first' must be an integer in the range [0, {MAX_PERMUTATIONS}]. Got {first!r}.")
    return first


def _check_n_jobs(n_jobs) -> int | None:
    if n_jobs is None:
        return None
    if isinstance(n_jobs, np.integer):
        n_jobs = int(n_jobs)
    if not isinstance(n_jobs, int) or isinstance(n_jobs, bool) or n_jobs == 0 or n_jobs < -64:
        raise DecodingInputError(
            f"'n_jobs' must be None (automatic), a positive integer or -1 (all cores). Got {n_jobs!r}."
        )
    return n_jobs


# ---------------------------------------------------------------------------
# Scoring one fold
# ---------------------------------------------------------------------------


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> float:
    """``sklearn.metrics.balanced_accuracy_score`` on integer codes, without its overhead.

    The same arithmetic (recall of each class present in ``y_true``, in class
    order, then their mean), hence the same floating-point result.
    """
    true_counts = np.bincount(y_true, minlength=n_classes)
    hits = np.bincount(y_true[y_true == y_pred], minlength=n_classes)
    present = true_counts > 0
    return float(np.mean(hits[present] / true_counts[present]))


def _continuous_output(estimator, X_test: np.ndarray) -> np.ndarray:
    # scikit-learn's "roc_auc" scorer prefers decision_function to predict_proba.
    if hasattr(estimator, "decision_function"):
        return np.asarray(estimator.decision_function(X_test))
    proba = np.asarray(estimator.predict_proba(X_test))
    return proba[:, 1] if proba.shape[1] == 2 else proba


def _roc_auc(y_true: np.ndarray, output: np.ndarray, n_classes: int) -> float:
    """Binary ROC AUC, or the macro mean of one-vs-rest AUCs for several classes."""
    present = np.unique(y_true)
    if len(present) < 2:
        raise DecodingInputError(
            "ROC AUC needs every condition in every test fold, but a test fold holds a single one. "
            "Choose accuracy, or a scheme whose test folds mix the conditions (leave-one-run-out)."
        )
    if n_classes == 2:
        return float(roc_auc_score(y_true, output))
    per_class = [roc_auc_score(y_true == code, output[:, code]) for code in present]
    return float(np.mean(per_class))


def _score_predictions(scoring: str, n_classes: int, y_test, y_pred) -> float:
    """Score predicted labels (integer codes) under a label-based scoring."""
    if scoring == "accuracy":
        # Identical to accuracy_score: the mean of the correct predictions.
        return float(np.mean(y_pred == y_test))
    return _balanced_accuracy(y_test, np.asarray(y_pred), n_classes)


def _score_fold(scoring: str, n_classes: int, estimator, X_test, y_test) -> float:
    """Score a fitted estimator on one test fold (labels are integer codes)."""
    if scoring in _LABEL_SCORINGS:
        return _score_predictions(scoring, n_classes, y_test, estimator.predict(X_test))
    if scoring == "roc_auc":
        if n_classes > 2 and len(estimator.classes_) != n_classes:
            raise DecodingInputError(
                "ROC AUC over several conditions needs every condition in every training fold, "
                "but a training fold lacks one. Choose leave-one-run-out, or accuracy."
            )
        return _roc_auc(y_test, _continuous_output(estimator, X_test), n_classes)
    raise DecodingInputError(f"Unknown scoring {scoring!r}.")


# ---------------------------------------------------------------------------
# Evaluating all folds for one labelling
# ---------------------------------------------------------------------------


class _FoldEvaluator:
    """Cross-validated fold scores of one labelling of the selected samples."""

    method = "pipeline"
    backend = "loky"  # holds the GIL: use processes

    def __init__(self, prepared: _Prepared, config: DecodingConfig, estimator, splits, fit=None):
        self.prepared = prepared
        self.config = config
        self.estimator = estimator
        self.splits = splits
        self.n_classes = len(prepared.classes)
        self._fit = fit

    def splits_for(self, codes: np.ndarray) -> list:
        if self.config.cv in _LABEL_DEPENDENT_CV:
            return decoding.make_splits(self.config, self.prepared.classes[codes], self.prepared.runs)
        return self.splits

    def fold_scores(self, codes: np.ndarray) -> np.ndarray:
        X, runs = self.prepared.X, self.prepared.runs
        scores = []
        for train, test in self.splits_for(codes):
            model = clone(self.estimator)
            if self._fit is not None:
                self._fit(model, X[train], codes[train])
            else:
                decoding.fit_estimator(model, X[train], codes[train], None if runs is None else runs[train])
            scores.append(_score_fold(self.config.scoring, self.n_classes, model, X[test], codes[test]))
        return np.asarray(scores, dtype=float)

    def mean_scores(self, batch: list) -> list:
        # As permutation_test_score: the plain mean of the fold scores.
        return [float(np.mean(self.fold_scores(codes))) for codes in batch]


class _PrecomputedKernelEvaluator(_FoldEvaluator):
    """The linear SVC on a precomputed linear kernel: same fits, far fewer flops.

    For label-based scorings each fold calls scikit-learn's libsvm wrapper
    directly (the calls ``SVC.fit`` and ``SVC.predict`` make, without their
    input checks, about a third of the time on small folds). A self-check on
    the real labels compares every fold's predictions with the public
    ``SVC``; any difference, or a change of the private wrapper, switches
    back to the public ``SVC``.
    """

    method = "precomputed-kernel"
    backend = "threading"  # libsvm releases the GIL while it trains

    def __init__(self, prepared: _Prepared, config: DecodingConfig, svc: SVC, splits):
        super().__init__(prepared, config, svc, splits)
        # SVC(kernel="linear") works in float64 too; the same dot products, once.
        X64 = np.asarray(prepared.X, dtype=np.float64)
        self.kernel = X64 @ X64.T
        self.template = clone(svc).set_params(kernel="precomputed")
        n_block_bytes = sum(8 * len(train) * (len(train) + len(test)) for train, test in splits)
        self._blocks = None
        if config.cv not in _LABEL_DEPENDENT_CV and n_block_bytes <= _KERNEL_BLOCK_CACHE_BYTES:
            self._blocks = [self._block(train, test) for train, test in splits]
        self.direct = config.scoring in _LABEL_SCORINGS and self._direct_calls_agree()

    def _block(self, train, test):
        return (
            np.ascontiguousarray(self.kernel[np.ix_(train, train)]),
            np.ascontiguousarray(self.kernel[np.ix_(test, train)]),
        )

    def _fold_blocks(self, splits):
        for fold, (train, test) in enumerate(splits):
            blocks = self._blocks[fold] if self._blocks is not None else self._block(train, test)
            yield train, test, blocks

    def _public_predict(self, k_train, y_train, k_test):
        return clone(self.template).fit(k_train, y_train).predict(k_test)

    def _direct_predict(self, k_train, y_train, k_test):
        # What SVC.fit / SVC.predict pass to libsvm for a dense precomputed
        # kernel, class_weight=None and probability=False.
        from sklearn.svm import _libsvm

        svc = self.template
        classes, encoded = np.unique(y_train, return_inverse=True)
        model = _libsvm.fit(
            k_train, encoded.astype(np.float64), svm_type=0, sample_weight=np.empty(0),
            class_weight=np.ones(len(classes)), kernel="precomputed", C=svc.C, nu=svc.nu,
            probability=False, degree=svc.degree, shrinking=svc.shrinking, tol=svc.tol,
            cache_size=svc.cache_size, coef0=svc.coef0, gamma=0.0, epsilon=svc.epsilon,
            max_iter=svc.max_iter, random_seed=0,
        )
        predicted = _libsvm.predict(
            k_test, *model[:7], svm_type=0, kernel="precomputed", degree=svc.degree,
            coef0=svc.coef0, gamma=0.0, cache_size=svc.cache_size,
        )
        return classes[predicted.astype(np.intp)]

    def _direct_calls_agree(self) -> bool:
        svc = self.template
        # probability is the string "deprecated" by default in scikit-learn 1.9.
        if svc.class_weight is not None or svc.probability is True or svc.break_ties or svc.max_iter != -1:
            return False
        codes = self.prepared.codes
        try:
            for train, _test, (k_train, k_test) in self._fold_blocks(self.splits_for(codes)):
                public = self._public_predict(k_train, codes[train], k_test)
                direct = self._direct_predict(k_train, codes[train], k_test)
                if not np.array_equal(public, direct):
                    return False
        except Exception:  # noqa: BLE001 - a changed private API: use the public one
            return False
        return True

    def fold_scores(self, codes: np.ndarray) -> np.ndarray:
        scores = []
        for train, test, (k_train, k_test) in self._fold_blocks(self.splits_for(codes)):
            if self.direct:
                predicted = self._direct_predict(k_train, codes[train], k_test)
                scores.append(_score_predictions(self.config.scoring, self.n_classes, codes[test], predicted))
            else:
                model = clone(self.template).fit(k_train, codes[train])
                scores.append(_score_fold(self.config.scoring, self.n_classes, model, k_test, codes[test]))
        return np.asarray(scores, dtype=float)


def _lone_linear_svc(estimator) -> SVC | None:
    """The SVC when ``estimator`` amounts to a linear-kernel SVC alone, else None."""
    if isinstance(estimator, Pipeline):
        steps = [step for _, step in estimator.steps if step not in (None, "passthrough")]
        if len(steps) != 1:
            return None
        estimator = steps[0]
    if type(estimator) is SVC and estimator.kernel == "linear":
        return estimator
    return None


def _make_evaluator(prepared: _Prepared, config: DecodingConfig) -> _FoldEvaluator:
    splits = decoding.make_splits(config, prepared.classes[prepared.codes], prepared.runs)
    estimator = decoding.build_estimator(config)
    svc = _lone_linear_svc(estimator)
    if svc is not None and len(prepared.codes) <= _MAX_KERNEL_SAMPLES:
        return _PrecomputedKernelEvaluator(prepared, config, svc, splits)
    return _FoldEvaluator(prepared, config, estimator, splits)


# ---------------------------------------------------------------------------
# Dummy classifiers
# ---------------------------------------------------------------------------


def _plain_fit(model, X, y):
    model.fit(X, y)


def dummy_scores(masked: MaskedData, config: DecodingConfig, *, seed: int = 0) -> dict:
    """Fold scores of dummy classifiers under the decoder's cross-validation.

    Parameters
    ----------
    masked : MaskedData
        The masked data set. When its labels hold other conditions than
        ``config.conditions``, the samples of ``config.conditions`` are
        selected first (`decoding_core.masking.select_conditions`); data
        already restricted to them are used as they are.
    config : DecodingConfig
        ``conditions``, ``cv`` (with ``n_folds``, ``holdout_size``) and
        ``scoring`` are read; the folds are those of
        `decoding_core.decoding.make_splits`, as for the real decoder.
    seed : int, default=0
        Seed of the ``stratified`` dummy's random guesses (each fold draws its
        own guesses from a seed derived from this one).

    Returns
    -------
    dict of str to ndarray of shape (n_folds,)
        ``"most_frequent"``: always predicts the most frequent condition of the
        training fold (its accuracy is that condition's share of the test fold).
        ``"stratified"``: guesses at random with the training fold's class
        proportions (expected accuracy ``sum p_k^2``; 0.5 for two balanced classes).

    Raises
    ------
    DecodingInputError
        When the conditions or the scheme cannot be used on these data.

    Examples
    --------
    >>> scores = dummy_scores(masked, DecodingConfig())  # doctest: +SKIP
    >>> scores["most_frequent"].mean()  # doctest: +SKIP
    0.5
    """
    seed = _check_seed(seed)
    prepared = _prepare(masked, config)
    splits = decoding.make_splits(config, prepared.classes[prepared.codes], prepared.runs)
    results = {}
    for strategy in DUMMY_STRATEGIES:
        scores = []
        for fold, split in enumerate(splits):
            # One seed per fold: the same seed in every fold would repeat the
            # same guesses, and the folds would not be independent draws.
            fold_seed = int(np.random.SeedSequence([seed, fold]).generate_state(1)[0])
            dummy = DummyClassifier(strategy=strategy, random_state=fold_seed)
            evaluator = _FoldEvaluator(prepared, config, dummy, [split], fit=_plain_fit)
            scores.append(evaluator.fold_scores(prepared.codes)[0])
        results[strategy] = np.asarray(scores, dtype=float)
    return results


# ---------------------------------------------------------------------------
# Permutation test
# ---------------------------------------------------------------------------


def _permuted_codes(codes: np.ndarray, runs: np.ndarray | None, seed: int,
                    rng: np.random.RandomState | None = None) -> Iterator[np.ndarray]:
    """Endless shuffled copies of ``codes``, within runs when there are runs.

    The random draws are those of scikit-learn's ``_shuffle`` (used by
    ``permutation_test_score``) with ``random_state=seed``: one
    ``RandomState.permutation`` per run, runs in sorted order, so the same
    seed gives the same null distribution in both. ``rng``, when given, is
    drawn from instead (a cluster worker resumes the stream where its chunk starts).
    """
    rng = np.random.RandomState(seed) if rng is None else rng
    n_samples = len(codes)
    groups = None
    if runs is not None:
        groups = [np.flatnonzero(runs == run) for run in np.unique(runs)]
    while True:
        if groups is None:
            indices = rng.permutation(n_samples)
        else:
            indices = np.arange(n_samples)
            for members in groups:
                indices[members] = rng.permutation(indices[members])
        yield codes[indices]


def _resolve_workers(n_jobs: int | None) -> int:
    cores = available_cores()
    if n_jobs is None:
        return cores
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    return n_jobs


def permutation_test(
    masked: MaskedData,
    config: DecodingConfig,
    *,
    n_permutations: int = 1000,
    seed: int | None = 0,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    n_jobs: int | None = 1,
    scheduler: str | None = None,
    first: int = 0,
    on_null_scores: Callable[[float, list], None] | None = None,
) -> PermutationResult:
    """Permutation test of the cross-validated score (labels shuffled within runs).

    The whole cross-validation of ``config`` is rerun on ``n_permutations``
    copies of the data whose labels are shuffled within each run (globally
    when there are no runs), which keeps each run's label counts. The folds
    are the decoder's (`decoding_core.decoding.make_splits`); for the
    ``"default"`` scheme (stratified 5-fold) they are recomputed on each
    shuffled copy, as scikit-learn does. Each score is the mean fold score
    under ``config.scoring``. With the same seed, the permutations and
    therefore the null scores are those of
    ``sklearn.model_selection.permutation_test_score(estimator, X, y,
    groups=runs, cv=splits, random_state=seed)``.

    The linear SVC without screening or tuning takes an exact shortcut
    through a precomputed linear kernel (see the module docstring); other
    estimators, screening and nested tuning refit the whole pipeline on
    every fold of every permutation and are several times slower.

    Parameters
    ----------
    masked : MaskedData
        The masked data set; restricted to ``config.conditions`` first when
        it holds other conditions too.
    config : DecodingConfig
    n_permutations : int, default=1000
        Number of shuffled copies, 1 to `MAX_PERMUTATIONS`. The smallest
        possible p-value is ``1 / (n_permutations + 1)``.
    seed : int or None, default=0
        Seed of the shuffling; None draws one (recorded in the result).
    progress : callable or None
        ``progress(fraction, message)`` about every 0.1 s while permutations run.
    should_stop : callable or None
        Called between permutations (between batches when several workers
        run); when it returns True the test stops and the result holds the
        permutations done so far, with the p-value over those.
    n_jobs : int or None, default=1
        Most workers to use: 1 runs everything in this thread; -1 or None
        uses every available core. Workers start only when the first
        permutations show that the rest takes seconds (threads for the
        linear SVC shortcut, processes otherwise). The result does not
        depend on ``n_jobs``.
    scheduler : str or None
        ``tcp://HOST:PORT`` of a Dask scheduler: the permutations run there
        in chunks (`decoding_core.cluster`), with the null scores of a local
        run, in the same order; ``n_jobs`` is then not used.
    first : int, default=0
        Permutations of the seed's sequence to skip: a test run in several calls
        (``first`` = the permutations already done, the same seed) draws the
        permutations of one call, hence its null scores.
    on_null_scores : callable or None
        ``on_null_scores(observed_score, scores)`` with the null scores of each
        permutation (each batch, with several workers) as soon as it is done, in
        order: a caller interrupted mid-test (a Streamlit Stop) keeps them all.

    Returns
    -------
    PermutationResult

    Raises
    ------
    DecodingInputError
        For arguments out of range, or conditions and schemes that cannot be
        used on these data.

    Examples
    --------
    >>> result = permutation_test(masked, DecodingConfig(), n_permutations=200)  # doctest: +SKIP
    >>> result.p_value < 0.05  # doctest: +SKIP
    True
    """
    start = time.perf_counter()
    n_permutations = _check_n_permutations(n_permutations)
    seed = _check_seed(seed)
    n_jobs = _check_n_jobs(n_jobs)
    first = _check_first(first)
    prepared = _prepare(masked, config)
    evaluator = _make_evaluator(prepared, config)
    if progress is not None:
        progress(0.0, "Scoring the real labels")
    # The many small fits go faster on one BLAS thread each (decoding_core.decoding.folds);
    # the kernel above, one large product, was computed with all of them.
    with single_blas_thread():
        observed_fold_scores = evaluator.fold_scores(prepared.codes)
        collector = _NullCollector(float(np.mean(observed_fold_scores)), n_permutations, progress, should_stop,
                                   on_null_scores)
        permutations = _permuted_codes(prepared.codes, prepared.runs, seed)
        for _ in range(first):  # drawn, not scored: a continued test's earlier permutations
            next(permutations)
        if scheduler is None:
            stopped_early, workers = _collect_null(collector, evaluator, permutations, n_jobs)
        else:
            stopped_early, workers = _collect_null_on_cluster(collector, prepared, config, seed, scheduler, first)

    null = np.asarray(collector.null_scores, dtype=float)
    return PermutationResult(
        observed_score=collector.observed_score,
        null_scores=null,
        p_value=empirical_p_value(collector.observed_score, null),
        n_permutations=n_permutations,
        n_done=len(null),
        stopped_early=stopped_early,
        seed=seed,
        elapsed_seconds=time.perf_counter() - start,
        scoring=config.scoring,
        observed_fold_scores=observed_fold_scores,
        shuffle_within_runs=prepared.runs is not None,
        method=evaluator.method,
        n_jobs=workers,
    )


class _NullCollector:
    """The null scores gathered so far, with the progress reports and the Stop check."""

    def __init__(self, observed_score: float, n_permutations: int, progress, should_stop, on_null_scores=None):
        self.observed_score = observed_score
        self.n_permutations = n_permutations
        self.null_scores: list[float] = []
        self._progress = progress
        self._should_stop = should_stop
        self._on_null_scores = on_null_scores
        self._last_report = -math.inf
        self.loop_start = time.perf_counter()

    @property
    def remaining(self) -> int:
        return self.n_permutations - len(self.null_scores)

    def stop_requested(self) -> bool:
        return self._should_stop is not None and bool(self._should_stop())

    def add(self, scores) -> None:
        """Keep the null scores of finished permutations, and hand them to ``on_null_scores``."""
        scores = [float(score) for score in scores]
        self.null_scores.extend(scores)
        if self._on_null_scores is not None and scores:
            self._on_null_scores(self.observed_score, scores)

    def report(self, force: bool = False) -> None:
        """Progress with the p-value so far and the time left, at most every 0.1 s unless forced."""
        now = time.perf_counter()
        if self._progress is None or (not force and now - self._last_report < _PROGRESS_INTERVAL_SECONDS):
            return
        self._last_report = now
        done = len(self.null_scores)
        message = f"{done} of {self.n_permutations} permutations"
        if done:
            seconds_left = (now - self.loop_start) / done * (self.n_permutations - done)
            p_so_far = empirical_p_value(self.observed_score, self.null_scores)
            message += f", p = {p_so_far:.3g} so far, about {seconds_left:.0f} s left"
        self._progress(min(max(done / self.n_permutations, 0.0), 1.0), message)

    def run_serially(self, evaluator, permutations, max_seconds: float = math.inf) -> bool:
        """Permute one by one until done, stopped (returns True) or ``max_seconds`` passed."""
        while self.remaining > 0:
            if self.stop_requested():
                return True
            self.add(evaluator.mean_scores([next(permutations)]))
            self.report()
            if time.perf_counter() - self.loop_start >= max_seconds:
                break
        return False


def _collect_null(collector: _NullCollector, evaluator, permutations, n_jobs) -> tuple[bool, int]:
    """Fill ``collector`` with null scores; returns (stopped early, workers used).

    A serial warm-up comes first: its speed tells whether workers are worth starting.
    """
    stopped_early = collector.run_serially(evaluator, permutations, _WARMUP_SECONDS)
    workers = 1
    remaining = collector.remaining
    if remaining and not stopped_early:
        seconds_per_permutation = (time.perf_counter() - collector.loop_start) / max(1, len(collector.null_scores))
        workers = min(_resolve_workers(n_jobs), remaining)
        if seconds_per_permutation * remaining < _MIN_PARALLEL_SECONDS[evaluator.backend]:
            workers = 1
        batch_size = int(min(max(1, _BATCH_SECONDS / seconds_per_permutation), 100))
        if workers == 1:
            stopped_early = collector.run_serially(evaluator, permutations)
        else:
            stopped_early = _run_parallel(evaluator, permutations, batch_size, workers, collector)
    collector.report(force=True)
    return stopped_early, workers


def _run_parallel(evaluator, permutations, batch_size: int, workers: int, collector: _NullCollector) -> bool:
    """Score the remaining permutations in batches on ``workers`` workers, in order.

    Batches are drawn from ``permutations`` in this thread, so the null
    distribution is the same as a serial run's. Returns True when stopped early.
    """
    from joblib import Parallel, delayed

    remaining = collector.remaining

    def batches():
        left = remaining
        while left > 0:
            size = min(batch_size, left)
            left -= size
            yield [next(permutations) for _ in range(size)]

    parallel = Parallel(n_jobs=workers, backend=evaluator.backend, return_as="generator")
    results = parallel(delayed(evaluator.mean_scores)(batch) for batch in batches())
    try:
        for scores in results:
            collector.add(scores)
            collector.report()
            if collector.remaining > 0 and collector.stop_requested():
                # Batches already queued are abandoned.
                return True
    finally:
        with warnings.catch_warnings():
            # joblib warns that the abandoned batches were cancelled: that is the point.
            warnings.filterwarnings("ignore", message=r".*tasks which were still being processed")
            results.close()
    return False


# ---------------------------------------------------------------------------
# On a Dask cluster
# ---------------------------------------------------------------------------

#: Fewest permutations in one chunk sent to a cluster worker (each chunk builds its evaluator).
_MIN_CLUSTER_CHUNK = 10


def _chunk_starts(prepared: _Prepared, seed: int, bounds, first: int = 0) -> list:
    """``(random state, size)`` at the start of each chunk of the seed's stream of permutations.

    The stream is drawn here, in order, as a local run draws it; a worker given a
    chunk's state draws exactly that chunk's permutations.
    """
    rng = np.random.RandomState(seed)
    permutations = _permuted_codes(prepared.codes, prepared.runs, seed, rng=rng)
    for _ in range(first):  # permutations a continued test already did
        next(permutations)
    starts = []
    for start, stop in bounds:
        starts.append((rng.get_state(), stop - start))
        for _ in range(stop - start):
            next(permutations)
    return starts


def _null_scores_of_chunk(prepared: _Prepared, config: DecodingConfig, chunk) -> list:
    """The null scores of one chunk of permutations (runs on a cluster worker)."""
    state, size = chunk
    rng = np.random.RandomState()
    rng.set_state(state)
    permutations = _permuted_codes(prepared.codes, prepared.runs, 0, rng=rng)
    return _make_evaluator(prepared, config).mean_scores([next(permutations) for _ in range(size)])


def _collect_null_on_cluster(collector: _NullCollector, prepared: _Prepared, config: DecodingConfig,
                             seed: int, scheduler: str, first: int = 0) -> tuple[bool, int]:
    """Fill ``collector`` from chunks run on the Dask cluster; returns (stopped early, workers)."""
    from decoding_core import cluster

    n_permutations = collector.n_permutations
    bounds = cluster.chunk_bounds(n_permutations, cluster.chunk_count(n_permutations, _MIN_CLUSTER_CHUNK))
    run = cluster.run_tasks(
        _null_scores_of_chunk, _chunk_starts(prepared, seed, bounds, first), shared=(prepared, config),
        scheduler=scheduler, progress=collector._progress, should_stop=collector._should_stop,
        what="chunks of permutations",
    )
    for scores in run.results:
        collector.add(scores)
    return run.stopped_early, run.n_workers
