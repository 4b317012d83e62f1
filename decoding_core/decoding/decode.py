"""Decode: a masked data set and a configuration into fold scores, predictions and maps."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
import pandas as pd
from sklearn.base import clone

from decoding_core import cleaning, masking
from decoding_core._validation import as_labels, as_runs
from decoding_core.decoding.design import design_warnings, fold_list
from decoding_core.decoding.folds import fold_workers, run_folds, single_blas_thread
from decoding_core.decoding.estimators import (
    ESTIMATORS,
    build_estimator,
    classifier_C,
    convergence_warnings_counted,
    fit_estimator,
    not_converged_message,
)
from decoding_core.decoding.maps import (
    activation_pattern,
    maps_image,
    one_vs_rest_svc,
    sign_stability,
    voxel_support,
    weight_maps,
)
from decoding_core.decoding.scoring import chance_level, class_scores, fold_score
from decoding_core.decoding.splits import make_splits
from decoding_core.errors import DecodingInputError
from decoding_core.masking import MaskedData
from decoding_core.progress import ProgressCallback, share

if TYPE_CHECKING:
    from decoding_core.config import DecodingConfig


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
        Design and leakage warnings about this run, and the fits stopped at an iteration cap.
    elapsed_seconds : float
    folds : pandas.DataFrame or None
        One row per fold: ``fold, n_train, n_test, test_runs, score, C``.
    chosen_C : ndarray of shape (n_folds,) or None
        C used in each fold (chosen by the inner split when ``config.tune_C``).
    final_C : float or None
        C of the classifier refitted on all samples.
    fold_weights : ndarray of shape (n_folds, n_maps, n_voxels) or None
        Weights of each fold's classifier, float32.
    pattern, pattern_img : ndarray of shape (n_maps, n_voxels) and its image, or None
        Activation patterns (Haufe et al. 2014) of ``weights``, see `activation_pattern`.
    stability, stability_img : ndarray of shape (n_maps, n_voxels) and its image, or None
        Per voxel, the fraction of folds whose weight has the sign of the
        full-data weight (`sign_stability`).
    class_counts : dict of str to int or None
        Samples per condition.
    majority_rate : float or None
        The majority-class rate (the chance level of accuracy).
    positive_class : str or None
        The class positive weights and decision values point to (two classes only).
    not_converged : int
        Number of model fits (every fold's, the inner tuning fits, one-vs-rest sub-fits
        and the refit) that stopped at their solver's iteration cap; a sentence in
        ``warnings`` says what to do when it is not 0.
    notes : list of str
        How some numbers were computed, when it is not the obvious way (fully nested
        tuning with screening; the one-vs-rest SVC behind a multi-class ROC AUC).
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
    folds: pd.DataFrame | None = None
    chosen_C: np.ndarray | None = None
    final_C: float | None = None
    fold_weights: np.ndarray | None = None
    pattern: np.ndarray | None = None
    pattern_img: nib.Nifti1Image | None = None
    stability: np.ndarray | None = None
    stability_img: nib.Nifti1Image | None = None
    class_counts: dict | None = None
    majority_rate: float | None = None
    positive_class: str | None = None
    not_converged: int = 0
    notes: list = field(default_factory=list)


@dataclass
class _Folds:
    """What the cross-validation loop gathers, fold by fold."""

    scores: np.ndarray
    weights: np.ndarray
    chosen_C: np.ndarray
    predictions: list = field(default_factory=list)
    table: list = field(default_factory=list)
    last_model: object = None
    not_converged: int = 0


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
           progress: ProgressCallback | None = None, *, tr: float | None = None,
           workers: int | None = None) -> DecodingResult:
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
    workers : int, optional
        Folds fitted at once, in threads (same results as one after the other). By
        default one per core (at most 4) when the estimator allows it
        (`Estimator.fits_in_threads`) and the matrix is small enough; 1 fits them in turn.

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
    return decode_selected(selected, config, progress, tr=tr if tr is not None else getattr(masked, "tr", None),
                           workers=workers)


def _prediction_frame(fold, test, volumes, runs, tr, labels, predicted, decision, proba, classes) -> pd.DataFrame:
    """The rows of `DecodingResult.predictions` for one test fold."""
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
    return pd.DataFrame(frame)


@dataclass
class _FoldOutcome:
    """What one fold gives: its score, weights, C, predictions and row of the folds table."""

    score: float
    weights: np.ndarray
    C: float
    predictions: pd.DataFrame
    row: dict
    model: object
    not_converged: int


def _decode_fold(fold, train, test, template, data, classes, config, tr, count_warnings: bool,
                 progress: ProgressCallback | None) -> _FoldOutcome:
    """Fit one fold's model on ``train``, score it on ``test``; its weights and predictions.

    ``count_warnings`` is False when the folds run in threads (the caller counts them).
    """
    X, labels, runs, volumes = data
    # A multi-class SVC's decision values are one-vs-one votes: its one-vs-rest counterpart is
    # fitted too (about as long as the SVC itself), for the scores and the maps.
    fit_share = 0.5 if config.estimator == "svc" and len(classes) > 2 else 1.0
    model = fit_estimator(clone(template), X[train], labels[train], None if runs is None else runs[train],
                          progress=share(progress, 0.0, fit_share), count_warnings=count_warnings)
    predicted = np.asarray(model.predict(X[test])).astype(str)
    one_vs_rest = one_vs_rest_svc(model, X[train], labels[train], config, share(progress, fit_share, 1.0))
    if one_vs_rest is None:
        decision, proba = class_scores(model, X[test], classes)
    else:
        support = voxel_support(model, X.shape[1])
        decision, proba = class_scores(one_vs_rest, X[test][:, support], classes)
    score = fold_score(config.scoring, labels[test], predicted, decision, proba, classes)
    chosen_C = classifier_C(model, config)
    return _FoldOutcome(
        score=score,
        weights=weight_maps(model, X[train], labels[train], classes, config, one_vs_rest),
        C=chosen_C,
        predictions=_prediction_frame(fold, test, volumes, runs, tr, labels, predicted, decision, proba, classes),
        row={"fold": fold + 1, "n_train": len(train), "n_test": len(test),
             "test_runs": "" if runs is None else ", ".join(map(str, np.unique(runs[test]))),
             "score": score, "C": chosen_C},
        model=model,
        not_converged=model.n_not_converged_,
    )


def _cross_validate(X, labels, runs, volumes, classes, splits, config, progress, tr,
                    workers: int | None = None) -> _Folds:
    """Fit and score every fold (side by side when the estimator allows); the predictions, weights and C of each."""
    template = build_estimator(config)
    if workers is None:
        n_outputs = 1 if len(classes) == 2 else len(classes)
        workers = fold_workers(len(splits), X, n_outputs, ESTIMATORS[config.estimator].fits_in_threads)
    data = (X, labels, runs, volumes)
    tasks = [partial(_decode_fold, fold, train, test, template, data, classes, config, tr, workers == 1)
             for fold, (train, test) in enumerate(splits)]
    if workers == 1:
        outcomes, warned = run_folds(tasks, progress), []
    else:
        with convergence_warnings_counted() as warned:
            outcomes = run_folds(tasks, progress, workers)
    n_maps = 1 if len(classes) == 2 else len(classes)
    return _Folds(
        scores=np.array([outcome.score for outcome in outcomes], dtype=float),
        weights=np.stack([outcome.weights for outcome in outcomes]).astype(np.float32).reshape(
            len(outcomes), n_maps, X.shape[1]),
        chosen_C=np.array([outcome.C for outcome in outcomes], dtype=float),
        predictions=[outcome.predictions for outcome in outcomes],
        table=[outcome.row for outcome in outcomes],
        last_model=outcomes[-1].model,
        not_converged=sum(outcome.not_converged for outcome in outcomes) + len(warned),
    )


def _undefined_score_messages(scores: np.ndarray, scoring: str) -> list:
    """Refuse a run scored on no fold; say which folds are left out of the mean."""
    if np.isnan(scores).all():
        raise DecodingInputError(
            f"The {scoring} score is undefined on every fold: each test fold holds a single "
            "condition. Choose another scheme (e.g. leave-one-run-out) or accuracy."
        )
    if np.isnan(scores).any():
        return [
            f"The score is undefined on fold(s) {fold_list(list(np.flatnonzero(np.isnan(scores)) + 1))} "
            "(a single condition in the test fold); the mean leaves them out."
        ]
    return []


def _checked_selection(selected: MaskedData):
    """The matrix (float64), labels, runs and volume indices of a selection, checked."""
    # Masking gives float32; every estimator gets float64 (cast once, here), so the scores
    # equal scikit-learn's on the float64 matrix (lbfgs on float32 stops elsewhere).
    X = _checked_matrix(selected).astype(np.float64, copy=False)
    labels = as_labels(selected.labels)
    if len(labels) != X.shape[0]:
        raise DecodingInputError(f"There are {len(labels)} labels for {X.shape[0]} samples; give one per sample.")
    runs = as_runs(selected.runs, X.shape[0])
    volumes = np.arange(X.shape[0]) if selected.volume_index is None else np.asarray(selected.volume_index)
    return X, labels, runs, volumes


#: The note of a run that tunes C with screening.
NESTED_SCREENING_NOTE = (
    "C was chosen by an inner cross-validation in which the screening was refitted in each "
    "inner fold (fully nested: the inner validation folds never saw the screening)."
)

#: The note of a multi-class ROC AUC of linear SVC.
SVC_ROC_AUC_NOTE = (
    "Linear SVC is one-vs-one: the decision values (and a ROC AUC, one-vs-rest and "
    "macro-averaged) come from a one-vs-rest linear SVC with the same C fitted on the same training fold; "
    "the predicted labels are the one-vs-one SVC's."
)


def _computation_notes(config: DecodingConfig, n_classes: int) -> list:
    """How some numbers of the run were computed, in sentences (see `DecodingResult.notes`)."""
    notes = []
    if config.cleaning_options() != cleaning.TUTORIAL_CLEANING:  # the tutorial's cleaning goes unsaid
        notes.append(cleaning.describe(**config.cleaning_options()))
    if config.tune_C and config.screening_percentile is not None:
        notes.append(NESTED_SCREENING_NOTE)
    if config.estimator == "svc" and n_classes > 2:
        notes.append(SVC_ROC_AUC_NOTE)
    return notes


def decode_selected(selected: MaskedData, config: DecodingConfig,
                    progress: ProgressCallback | None = None, *, tr: float | None = None,
                    workers: int | None = None) -> DecodingResult:
    """Decode every sample of ``selected`` (already restricted to the conditions).

    See `decode`; ``config.conditions`` is not used to select here.
    """
    with single_blas_thread():
        return _decode_selected(selected, config, progress, tr, workers)


def _decode_selected(selected, config, progress, tr, workers) -> DecodingResult:
    started = time.perf_counter()
    X, labels, runs, volumes = _checked_selection(selected)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise DecodingInputError(
            f"Only one condition ({str(classes[0]) if len(classes) else 'none'!r}) is selected: "
            "choose at least two conditions to decode."
        )
    splits = make_splits(config, labels, runs)
    messages = design_warnings(config, labels, runs, splits)
    folds = _cross_validate(X, labels, runs, volumes, classes, splits, config, progress, tr, workers)
    messages += _undefined_score_messages(folds.scores, config.scoring)

    # The classifier refitted on all selected samples, as in the tutorial (svc.coef_).
    refit = share(progress, len(splits) / (len(splits) + 1), 1.0, "Refitting on all samples")
    if refit is not None:
        refit(0.0, "")
    if config.cv == "train":
        final = folds.last_model  # the single fold already trained on every sample
        weights = folds.weights[0].copy()
    else:
        final = fit_estimator(build_estimator(config), X, labels, runs, progress=share(refit, 0.0, 0.5, ": "))
        folds.not_converged += final.n_not_converged_
        weights = weight_maps(final, X, labels, classes, config, progress=share(refit, 0.5, 1.0, ": "))
    messages += [m for m in [not_converged_message(folds.not_converged)] if m]
    pattern = activation_pattern(X, weights)
    stability = sign_stability(folds.weights, weights)
    if progress is not None:
        progress(1.0, "Decoding done")
    return DecodingResult(
        config=config,
        fold_scores=folds.scores,
        mean_score=float(np.nanmean(folds.scores)),
        std_score=float(np.nanstd(folds.scores)),
        chance_level=chance_level(config.scoring, counts),
        meaningless=config.cv == "train",
        predictions=pd.concat(folds.predictions, ignore_index=True),
        classes=tuple(classes.tolist()),
        weights=weights,
        weight_img=maps_image(weights, selected.mask_img),
        n_samples=X.shape[0],
        n_voxels=X.shape[1],
        warnings=messages,
        elapsed_seconds=time.perf_counter() - started,
        folds=pd.DataFrame(folds.table),
        chosen_C=folds.chosen_C,
        final_C=classifier_C(final, config),
        fold_weights=folds.weights,
        pattern=pattern,
        pattern_img=maps_image(pattern, selected.mask_img),
        stability=stability,
        stability_img=maps_image(stability, selected.mask_img),
        class_counts=dict(zip(classes.tolist(), counts.tolist())),
        majority_rate=float(counts.max() / counts.sum()),
        positive_class=classes[1] if len(classes) == 2 else None,
        not_converged=folds.not_converged,
        notes=_computation_notes(config, len(classes)) + list(selected.notes),
    )
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
        Cache of raw masked matrices kept between calls (default: none kept).

    Returns
    -------
    DecodingResult
    """
    masked = masking.mask_dataset(
        dataset, config.mask_name, **config.cleaning_options(),
        smoothing_fwhm=config.smoothing_fwhm, progress=share(progress, 0.0, 0.7), cache=cache,
    )
    return decode(masked, config, share(progress, 0.7, 1.0), tr=dataset.tr)
