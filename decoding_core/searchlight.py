"""Searchlight: every voxel of a mask scored by decoding the voxels of a sphere around it.

The spheres are nilearn's (``nilearn.decoding.SearchLight``): for each voxel of the mask,
the mask's voxels whose centres lie within ``radius`` millimetres of its centre, in world
space (the image's affine), the voxel itself included. They are built once (`make_spheres`).

Each sphere is decoded under a `DecodingConfig` (its estimator, evaluation scheme and
scoring) on the columns of the masked matrix that the project's cleaning made
(`masking.mask_dataset`): a voxel's score is the mean over the folds, as
``cross_val_score(estimator, X[:, sphere], y, cv=<the scheme's splits>).mean()``.

Why it is fast: the folds are split once for all spheres, and for the linear SVC each
sphere's linear kernel ``X_s X_s^T`` is computed once and handed to libsvm as a
precomputed kernel, fold by fold, without scikit-learn's per-fit checks (which cost
more than the solver on problems of this size). libsvm solves the same problem with the
same settings, so the predictions are scikit-learn's. Other estimators (and nested tuning
or screening) go through the project's own pipeline, sphere by sphere.

The spheres are scored in chunks by a mapping function the caller may supply
(``map_chunks``): the default runs them here, one after the other; a cluster layer can
send them to workers (`score_chunk` is a plain function of a picklable `SearchlightTask`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

import nibabel as nib
import numpy as np
from sklearn.base import clone
from sklearn.neighbors import NearestNeighbors
from sklearn.svm import SVC
from sklearn.svm import _libsvm  # the solver SVC calls; see _KernelSVC
from threadpoolctl import threadpool_limits

from decoding_core import masking
from decoding_core._validation import as_labels, as_runs
from decoding_core.decoding.estimators import build_estimator, fit_estimator
from decoding_core.decoding.maps import one_vs_rest_svc, voxel_support
from decoding_core.decoding.scoring import chance_level, class_scores, fold_score
from decoding_core.decoding.splits import make_splits
from decoding_core.errors import DecodingInputError
from decoding_core.masking import MaskedData
from decoding_core.progress import ProgressCallback, share

#: Spheres scored per chunk by default: small enough for Stop and progress to react within a
#: second or so, large enough that sending a chunk to a worker is worth it.
DEFAULT_CHUNK_SIZE = 32

#: What `SearchlightResult.partial` maps say in their NIfTI header.
PARTIAL_DESCRIPTION = "PARTIAL searchlight: {done} of {total} spheres scored (NaN = not scored)"

#: ``map_chunks(function, chunks)``: an iterable of ``function(chunk)`` for every chunk, in any order.
MapChunks = Callable[[Callable, list], Iterable]


# -- spheres -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Spheres:
    """The sphere of every voxel of a mask, as lists of the mask's columns (CSR layout).

    Attributes
    ----------
    indptr : ndarray of shape (n_spheres + 1,), int
    indices : ndarray of shape (n_members,), int
        Sphere ``i`` is ``indices[indptr[i]:indptr[i + 1]]`` (sorted): columns of the
        masked matrix, i.e. the mask's voxels in C order, as nilearn's rows of ``A``.
    radius : float
        In millimetres.
    """

    indptr: np.ndarray
    indices: np.ndarray
    radius: float

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def columns(self, sphere: int) -> np.ndarray:
        """The columns (mask voxels) of one sphere."""
        return self.indices[self.indptr[sphere]:self.indptr[sphere + 1]]

    @property
    def sizes(self) -> np.ndarray:
        """Number of voxels in each sphere."""
        return np.diff(self.indptr)


def check_radius(radius) -> float:
    """``radius`` as a positive float in millimetres, or a `DecodingInputError`."""
    try:
        value = float(radius)
    except (TypeError, ValueError):
        raise DecodingInputError(f"The searchlight radius must be a number of millimetres. Got {radius!r}.") from None
    if not np.isfinite(value) or value <= 0:
        raise DecodingInputError(
            f"The searchlight radius must be a positive number of millimetres (e.g. 5.6). Got {radius!r}."
        )
    return value


def make_spheres(mask_img: nib.Nifti1Image, radius: float, *, mask_name: str = "mask") -> Spheres:
    """The sphere around every voxel of ``mask_img``, as nilearn's ``SearchLight`` builds them.

    Each voxel's sphere holds the mask's voxels whose centres (in world coordinates,
    through the mask's affine) are within ``radius`` mm of its centre, and always the
    voxel itself (nilearn's ``apply_mask_and_get_affinity`` with the mask as the process mask).

    Parameters
    ----------
    mask_img : nibabel.Nifti1Image
        Binary 3D mask; its nonzero voxels in C order are the columns of the masked matrix.
    radius : float
        Sphere radius in millimetres (> 0).
    mask_name : str
        Named in error messages.

    Returns
    -------
    Spheres

    Raises
    ------
    DecodingInputError
        A radius that is not a positive number, or a mask that is empty or not binary.
    """
    radius = check_radius(radius)
    mask = masking.mask_bool(mask_img, mask_name)  # refuses an empty or non-binary mask
    voxels = np.column_stack(np.nonzero(mask))
    affine = np.asarray(mask_img.affine, dtype=np.float64)
    world = voxels @ affine[:3, :3].T + affine[:3, 3]
    graph = NearestNeighbors(radius=radius).fit(world).radius_neighbors_graph(world).tocsr()
    graph.setdiag(1)  # the seed itself, as nilearn adds it (it is within any radius anyway)
    graph = graph.tocsr()
    graph.sort_indices()
    return Spheres(indptr=graph.indptr.astype(np.intp), indices=graph.indices.astype(np.intp), radius=radius)


# -- the work of one chunk ----------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SearchlightTask:
    """Everything needed to score any sphere: small, picklable, the same for every chunk.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_voxels), float64
        The cleaned masked matrix of the selected samples.
    labels : ndarray of shape (n_samples,), str
    runs : ndarray of shape (n_samples,) or None
    classes : ndarray
        Sorted conditions.
    splits : list of (train, test) index arrays
        The scheme's folds, made once.
    spheres : Spheres
    config : DecodingConfig
    """

    X: np.ndarray
    labels: np.ndarray
    runs: np.ndarray | None
    classes: np.ndarray
    splits: list
    spheres: Spheres
    config: object


@dataclass(frozen=True, eq=False)
class _Fold:
    """One fold, laid out for taking its kernel blocks out of a flattened sphere kernel."""

    test: np.ndarray
    classes: np.ndarray  # the fold's sorted training classes
    codes: np.ndarray  # training labels as indices of ``classes``, float64 (as SVC.fit codes them)
    train_block: np.ndarray  # flat indices of kernel[train][:, train]
    test_block: np.ndarray  # flat indices of kernel[test][:, train]


def _fold_layout(task: SearchlightTask) -> list[_Fold]:
    """The folds' blocks in a flattened (n_samples x n_samples) kernel: computed once, used by every sphere."""
    n = len(task.labels)
    folds = []
    for train, test in task.splits:
        classes, codes = np.unique(task.labels[train], return_inverse=True)
        folds.append(_Fold(test=test, classes=classes, codes=codes.astype(np.float64),
                           train_block=(train[:, None] * n + train[None, :]).ravel(),
                           test_block=(test[:, None] * n + train[None, :]).ravel()))
    return folds


class _KernelSVC:
    """A linear ``SVC`` fitted fold by fold from one precomputed kernel, through libsvm directly.

    ``SVC(kernel="linear", C=C)`` and ``SVC(kernel="precomputed", C=C)`` on ``X X^T`` solve the
    same dual problem with the same solver and settings (libsvm, tol 1e-3, shrinking); this
    calls ``sklearn.svm._libsvm`` with the arguments ``SVC.fit`` and ``SVC.predict`` pass
    (labels coded as indices of the sorted classes), skipping their input checks, which cost
    more than the solver on problems of this size.
    """

    def __init__(self, svc: SVC):
        self.params = {"C": float(svc.C), "tol": float(svc.tol), "shrinking": bool(svc.shrinking),
                       "cache_size": float(svc.cache_size), "max_iter": int(svc.max_iter)}

    def fold_outputs(self, flat_kernel: np.ndarray, fold: _Fold, with_decision: bool):
        """Predicted labels of the fold's test samples and (if asked) SVC's decision values."""
        n_train = len(fold.codes)
        _libsvm.set_verbosity_wrap(0)  # process-wide in libsvm, as SVC.fit sets it before each fit
        model = _libsvm.fit(
            flat_kernel.take(fold.train_block).reshape(n_train, n_train), fold.codes, svm_type=0,
            kernel="precomputed", sample_weight=np.empty(0), class_weight=np.empty(0),
            random_seed=0, **self.params,
        )
        args = (flat_kernel.take(fold.test_block).reshape(len(fold.test), n_train), *model[:7])
        predicted = _libsvm.predict(*args, svm_type=0, kernel="precomputed", cache_size=self.params["cache_size"])
        decision = None
        if with_decision:
            # libsvm's binary decision points to the first class; SVC flips it toward the second.
            decision = -_libsvm.decision_function(*args, svm_type=0, kernel="precomputed",
                                                  cache_size=self.params["cache_size"]).ravel()
        return fold.classes[predicted.astype(np.intp)], decision


def _kernel_solver(task: SearchlightTask) -> _KernelSVC | None:
    """The fast path when the configuration's classifier is a linear SVC with nothing around it.

    Decided from the estimator the configuration builds, not from its name.
    """
    pipeline = build_estimator(task.config)
    classifier = pipeline.named_steps["classifier"]
    if len(pipeline.steps) != 1 or not isinstance(classifier, SVC) or classifier.kernel != "linear":
        return None
    # probability is "deprecated" (a string) in scikit-learn 1.9: only True changes the fit.
    if classifier.class_weight is not None or classifier.probability is True:
        return None
    if task.config.scoring == "roc_auc" and len(task.classes) > 2:
        return None  # scored by a one-vs-rest SVC, as decode does: the general path
    return _KernelSVC(classifier)


def _sphere_score_kernel(solver: _KernelSVC, folds: list, task: SearchlightTask, columns: np.ndarray) -> float:
    block = task.X[:, columns]
    flat_kernel = (block @ block.T).ravel()
    scores = np.empty(len(folds))
    with_decision = task.config.scoring == "roc_auc"
    for k, fold in enumerate(folds):
        predicted, decision = solver.fold_outputs(flat_kernel, fold, with_decision)
        scores[k] = fold_score(task.config.scoring, task.labels[fold.test], predicted, decision, None, task.classes)
    return float(np.nanmean(scores)) if np.isfinite(scores).any() else float("nan")


def _sphere_score_pipeline(template, task: SearchlightTask, columns: np.ndarray) -> float:
    """A sphere scored by the configuration's own pipeline, fold by fold (as `decode` scores a fold)."""
    block = task.X[:, columns]
    scores = np.empty(len(task.splits))
    for fold, (train, test) in enumerate(task.splits):
        groups = None if task.runs is None else task.runs[train]
        model = fit_estimator(clone(template), block[train], task.labels[train], groups)
        predicted = np.asarray(model.predict(block[test])).astype(str)
        one_vs_rest = one_vs_rest_svc(model, block[train], task.labels[train], task.config)
        if one_vs_rest is None:
            decision, proba = class_scores(model, block[test], task.classes)
        else:
            support = voxel_support(model, block.shape[1])
            decision, proba = class_scores(one_vs_rest, block[test][:, support], task.classes)
        scores[fold] = fold_score(task.config.scoring, task.labels[test], predicted, decision, proba, task.classes)
    return float(np.nanmean(scores)) if np.isfinite(scores).any() else float("nan")


def score_chunk(task: SearchlightTask, sphere_ids) -> tuple[np.ndarray, np.ndarray]:
    """Score some spheres of ``task``.

    Parameters
    ----------
    task : SearchlightTask
    sphere_ids : array-like of int
        Which spheres (voxels of the mask).

    Returns
    -------
    (sphere_ids, scores) : tuple of ndarray
        The ids it was given and the mean fold score of each sphere, so chunks may come
        back in any order.
    """
    sphere_ids = np.asarray(sphere_ids, dtype=np.intp)
    solver = _kernel_solver(task)
    if solver is not None:
        score_one = partial(_sphere_score_kernel, solver, _fold_layout(task), task)
    else:
        score_one = partial(_sphere_score_pipeline, build_estimator(task.config), task)
    # One thread: each product is tiny, and BLAS threads only fight over the cores (and with
    # other chunks running in parallel).
    with threadpool_limits(limits=1):
        scores = np.array([score_one(task.spheres.columns(i)) for i in sphere_ids], dtype=np.float64)
    return sphere_ids, scores


def map_locally(function: Callable, chunks: list) -> Iterable:
    """The default ``map_chunks``: each chunk in turn, in this process (lazily, so Stop is seen)."""
    return (function(chunk) for chunk in chunks)


# -- the result ----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SearchlightResult:
    """A searchlight map.

    Attributes
    ----------
    scores : ndarray of shape (n_voxels,)
        Each mask voxel's score (columns of the masked matrix); NaN where its sphere was
        not scored (a stopped run) or its score is undefined on every fold.
    score_img : nibabel.Nifti1Image
        ``scores`` in the brain (0 outside the mask). A partial map says so in its header's
        ``descrip`` (`PARTIAL_DESCRIPTION`).
    mask_img : nibabel.Nifti1Image
        The mask whose voxels (C order) are the entries of ``scores``.
    radius : float
        Sphere radius in millimetres.
    n_spheres : int
        Spheres in the map (one per mask voxel).
    sphere_sizes : ndarray of shape (n_spheres,)
        Voxels in each sphere.
    partial : bool
        True when the run stopped before every sphere was scored: the map is incomplete.
    n_done : int
        Spheres scored.
    config : DecodingConfig
    chance_level : float
        What guessing scores under ``config.scoring`` on these samples.
    n_samples : int
    classes : tuple of str
    elapsed_seconds : float
    """

    scores: np.ndarray
    score_img: nib.Nifti1Image
    mask_img: nib.Nifti1Image
    radius: float
    n_spheres: int
    sphere_sizes: np.ndarray
    partial: bool
    n_done: int
    config: object
    chance_level: float
    n_samples: int
    classes: tuple
    elapsed_seconds: float = 0.0

    def best_voxels(self, n: int = 5) -> list[dict]:
        """The ``n`` best-scoring voxels: voxel indices (i, j, k), world coordinates (mm), score."""
        voxels = np.column_stack(np.nonzero(masking.mask_bool(self.mask_img)))
        finite = np.flatnonzero(np.isfinite(self.scores))
        order = finite[np.argsort(-self.scores[finite], kind="stable")][:n]
        affine = np.asarray(self.score_img.affine)
        return [{"voxel": [int(v) for v in voxels[i]],
                 "mm": [round(float(c), 2) for c in affine[:3, :3] @ voxels[i] + affine[:3, 3]],
                 "score": float(self.scores[i])} for i in order]


    def score_at(self, voxel) -> float | None:
        """The score of voxel ``(i, j, k)``: None outside the mask, NaN when it was not scored."""
        mask = masking.mask_bool(self.mask_img)
        voxel = tuple(int(v) for v in voxel)
        if len(voxel) != 3 or any(not 0 <= v < n for v, n in zip(voxel, mask.shape)) or not mask[voxel]:
            return None
        return float(self.scores[int(mask[:voxel[0]].sum() + mask[voxel[0], :voxel[1]].sum()
                                     + mask[voxel[0], voxel[1], :voxel[2]].sum())])

    def above_chance_img(self) -> nib.Nifti1Image:
        """The map as score minus chance level, for a symmetric colour scale: 0 outside the mask
        and where no score was computed (both drawn transparent)."""
        values = np.nan_to_num(self.scores - self.chance_level, nan=0.0)
        return masking.unmask(values, self.mask_img)


def _scores_image(scores: np.ndarray, mask_img: nib.Nifti1Image, partial: bool, n_done: int) -> nib.Nifti1Image:
    img = masking.unmask(scores, mask_img)
    if partial:
        img.header["descrip"] = PARTIAL_DESCRIPTION.format(done=n_done, total=len(scores))[:79].encode()
    return img


def sphere_chunks(n_spheres: int, chunk_size: int = DEFAULT_CHUNK_SIZE) -> list[np.ndarray]:
    """The spheres' ids cut into consecutive chunks of ``chunk_size`` (the last one shorter)."""
    if int(chunk_size) < 1:
        raise DecodingInputError(f"'chunk_size' must be a positive integer. Got {chunk_size!r}.")
    return [np.arange(start, min(start + int(chunk_size), n_spheres)) for start in range(0, n_spheres, int(chunk_size))]


def searchlight_result(task: SearchlightTask, scores: np.ndarray, scored: np.ndarray, mask_img: nib.Nifti1Image,
                       *, elapsed_seconds: float = 0.0) -> SearchlightResult:
    """The result of the spheres scored so far: partial (and marked so) unless every one is.

    Parameters
    ----------
    task : SearchlightTask
    scores : ndarray of shape (n_spheres,)
        Scores of the spheres scored (others are set to NaN here).
    scored : ndarray of shape (n_spheres,), bool
        Which spheres were scored.
    mask_img : nibabel.Nifti1Image
        The mask of the masked data (its voxels are the spheres' centres).
    elapsed_seconds : float
    """
    scored = np.asarray(scored, dtype=bool)
    scores = np.where(scored, np.asarray(scores, dtype=np.float64), np.nan)
    n_done, n_spheres = int(scored.sum()), len(task.spheres)
    _, counts = np.unique(task.labels, return_counts=True)
    return SearchlightResult(
        scores=scores, score_img=_scores_image(scores, mask_img, n_done < n_spheres, n_done),
        mask_img=mask_img, radius=task.spheres.radius, n_spheres=n_spheres,
        sphere_sizes=task.spheres.sizes, partial=n_done < n_spheres, n_done=n_done, config=task.config,
        chance_level=chance_level(task.config.scoring, counts), n_samples=len(task.labels),
        classes=tuple(task.classes.tolist()), elapsed_seconds=elapsed_seconds,
    )


def prepare_task(masked: MaskedData, config, radius: float) -> SearchlightTask:
    """The selected, cleaned samples, their folds and the spheres: what every chunk shares.

    Raises
    ------
    DecodingInputError
        Bad radius, an empty mask, absent conditions, a scheme that does not fit the data.
    """
    spheres = make_spheres(masked.mask_img, radius, mask_name=masked.mask_name)
    selected = masking.select_conditions(masked, config.conditions)
    X = np.asarray(selected.X)
    if X.ndim != 2 or X.shape[1] != len(spheres):
        raise DecodingInputError(
            f"The masked data have {X.shape[-1]} voxels but the mask '{masked.mask_name}' has {len(spheres)}."
        )
    if not np.isfinite(X).all():
        raise DecodingInputError(
            "The masked data contain NaN or infinite values. Check the image (and the mask) for invalid voxels."
        )
    labels = as_labels(selected.labels)
    runs = as_runs(selected.runs, len(labels))
    splits = make_splits(config, labels, runs)
    # float64 once, as decode does, so every sphere's score is scikit-learn's on the float64 columns.
    return SearchlightTask(X=np.ascontiguousarray(X, dtype=np.float64), labels=labels, runs=runs,
                           classes=np.unique(labels), splits=splits, spheres=spheres, config=config)


def searchlight(masked: MaskedData, config, radius: float, *, progress: ProgressCallback | None = None,
                should_stop: Callable[[], bool] | None = None, map_chunks: MapChunks | None = None,
                chunk_size: int = DEFAULT_CHUNK_SIZE) -> SearchlightResult:
    """Score every voxel of the mask by decoding its sphere under ``config``.

    Parameters
    ----------
    masked : MaskedData
        All volumes of a data set, masked and cleaned (`masking.mask_dataset`); the
        conditions of ``config`` are selected here.
    config : DecodingConfig
        Conditions, estimator, C, scheme, tuning, screening and scoring.
    radius : float
        Sphere radius in millimetres, as nilearn's ``SearchLight(radius=...)``.
    progress : callable, optional
        ``progress(fraction, message)`` after each chunk.
    should_stop : callable, optional
        Asked before each chunk; True stops the run and returns a partial map.
    map_chunks : callable, optional
        ``map_chunks(function, chunks)`` -> iterable of ``function(chunk)`` for every
        chunk, in any order; ``function`` is picklable (``functools.partial`` of
        `score_chunk` and a `SearchlightTask`). Default `map_locally`. A cluster runs
        the chunks on its workers.
    chunk_size : int
        Spheres per chunk.

    Returns
    -------
    SearchlightResult

    Raises
    ------
    DecodingInputError
        Bad radius, an empty mask, conditions or scheme that do not fit the data.
    RuntimeError
        ``map_chunks`` ended without a Stop before every sphere was scored (a lost
        chunk): never a silent partial map.
    """
    started = time.perf_counter()
    sphere_chunks(0, chunk_size)  # refuses a bad chunk_size before any work
    task = prepare_task(masked, config, radius)
    n_spheres = len(task.spheres)
    scores = np.full(n_spheres, np.nan)
    scored = np.zeros(n_spheres, dtype=bool)
    stopped = False
    chunks = sphere_chunks(n_spheres, chunk_size)
    results = (map_chunks or map_locally)(partial(score_chunk, task), chunks)
    try:
        for ids, values in results:
            scores[ids], scored[ids] = values, True
            if progress is not None:
                progress(scored.sum() / n_spheres, f"{int(scored.sum())} of {n_spheres} spheres scored")
            if should_stop is not None and scored.sum() < n_spheres and should_stop():
                stopped = True
                break
    finally:
        close = getattr(results, "close", None)
        if close is not None:
            close()  # a generator's cleanup (e.g. cancelling futures) runs now
    n_done = int(scored.sum())
    if not stopped and n_done < n_spheres:
        raise RuntimeError(f"The searchlight's chunks came back with {n_spheres - n_done} of {n_spheres} "
                           "spheres unscored (a lost chunk?): no partial map is returned as complete.")
    return searchlight_result(task, scores, scored, masked.mask_img, elapsed_seconds=time.perf_counter() - started)


def _cleaning_options(config) -> dict:
    """The cleaning `masking.mask_dataset` applies for ``config``, as `decoding.run_decoding` asks for it."""
    if hasattr(config, "cleaning_options"):  # with the per-run cleaning settings
        return config.cleaning_options()
    return {"standardize": config.standardize, "detrend": config.detrend}


def run_searchlight(dataset, config, radius: float, *, progress: ProgressCallback | None = None,
                    should_stop: Callable[[], bool] | None = None, map_chunks: MapChunks | None = None,
                    cache: masking.RawVoxelCache | None = None) -> SearchlightResult:
    """Mask ``dataset`` as ``config`` says (its cleaning), then `searchlight`.

    ``progress`` runs over masking (the first 20 %) and the spheres.
    """
    check_radius(radius)  # before reading the image
    masked = masking.mask_dataset(
        dataset, config.mask_name, **_cleaning_options(config),
        smoothing_fwhm=config.smoothing_fwhm, progress=share(progress, 0.0, 0.2), cache=cache,
    )
    return searchlight(masked, config, radius, progress=share(progress, 0.2, 1.0), should_stop=should_stop,
                       map_chunks=map_chunks)
