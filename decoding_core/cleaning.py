"""Cleaning the masked voxels' time series, fitted without labels: per run or over the series.

The choices are two tables, read by `decoding_core.config.SETTINGS` (and through it
by the Configure page, the command line, links, sweeps and exports):

- `SCOPES`: where a z-score or a linear detrend is fitted: over the whole series
  (``"series"``, the tutorial's ``NiftiMasker(standardize="zscore_sample")``),
  within each run (``"run"``, as ``nilearn.signal.clean(..., runs=runs)``), or not at all.
- `CONFOUND_STRATEGIES`: fMRIPrep confounds regressed out of each run, read by
  ``nilearn.interfaces.fmriprep.load_confounds`` from the data set's run files.

Every step uses all volumes of a run (or of the series), before any condition is
chosen and without the labels, so nothing of the test folds' labels leaks into it.
The order is nilearn's: detrend, then high-pass filter and confound regression, then z-score.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from decoding_core.choices import Choice
from decoding_core.errors import DecodingInputError

#: Columns processed at once by `clean_signals` (float64 work block).
CLEAN_BLOCK_COLUMNS = 2048

SERIES, RUN, NONE = "series", "run", "none"

#: The tutorial's cleaning (`DecodingConfig`'s defaults), as `DecodingConfig.cleaning_options` gives it.
TUTORIAL_CLEANING = {"standardize": SERIES, "detrend": NONE, "high_pass": None, "confounds": ()}


@dataclass(frozen=True)
class CleaningChoice(Choice):
    """One value a cleaning setting offers: a `Choice`, for a confound strategy with its nilearn name.

    Attributes
    ----------
    nilearn_name : str
        For a confound strategy: its name in ``nilearn.interfaces.fmriprep.load_confounds``.
    """

    nilearn_name: str = ""


#: Where a z-score or a linear detrend is fitted.
SCOPES = {
    choice.name: choice
    for choice in (
        CleaningChoice(SERIES, "Over the whole series",
               "Fitted over every volume of the data set at once, as the nilearn tutorial's "
               "NiftiMasker(standardize='zscore_sample') does."),
        CleaningChoice(RUN, "Within each run",
               "Fitted within each run, over all of that run's volumes (before conditions are chosen), "
               "as nilearn.signal.clean(..., runs=runs) does: differences between runs' means and "
               "scales are removed."),
        CleaningChoice(NONE, "None", "Not applied."),
    )
}


#: fMRIPrep confound strategies, through nilearn.interfaces.fmriprep.load_confounds (its defaults).
CONFOUND_STRATEGIES = {
    choice.name: choice
    for choice in (
        CleaningChoice("motion", "Motion (24 parameters)",
                         "The 6 head-motion parameters, their derivatives and squares (load_confounds "
                         "motion='full').", "motion"),
        CleaningChoice("wm_csf", "White matter and CSF",
                         "The mean signals of white matter and cerebrospinal fluid.", "wm_csf"),
        CleaningChoice("global_signal", "Global signal", "The mean signal of the whole brain.",
                         "global_signal"),
        CleaningChoice("scrubbing", "Scrubbing (drop high-motion volumes)",
                         "Volumes with framewise displacement > 0.5 mm or standardized DVARS > 1.5, and "
                         "segments of fewer than 5 volumes left between them, are left out (their labels "
                         "and runs too).", "scrub"),
    )
}


def scope_of(value, name: str = "standardize") -> str:
    """A cleaning scope from any value it was ever written as.

    ``True`` (and nilearn's ``"zscore_sample"``) mean ``"series"``, ``False`` and
    ``None`` mean ``"none"``: configurations, links and history records written
    before the per-run choice keep their meaning.
    """
    if value is True or value == "zscore_sample":
        return SERIES
    if value is False or value is None:
        return NONE
    if isinstance(value, str) and value.strip().lower() in SCOPES:
        return value.strip().lower()
    raise DecodingInputError(f"'{name}' must be one of {list(SCOPES)} (or True/False). Got {value!r}.")


def confound_strategies(value) -> tuple:
    """The confound strategies as a tuple of `CONFOUND_STRATEGIES` keys, checked (None: none)."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value)
    items = [str(item).strip() for item in items if str(item).strip()]
    unknown = [item for item in items if item not in CONFOUND_STRATEGIES]
    if unknown:
        raise DecodingInputError(
            f"'confounds' must be among {list(CONFOUND_STRATEGIES)}. Got {unknown[0]!r}."
        )
    return tuple(dict.fromkeys(items))


def describe(standardize, detrend, high_pass=None, confounds=()) -> str:
    """One sentence saying how the voxels' time series were cleaned (results, exports)."""
    standardize, detrend = scope_of(standardize), scope_of(detrend, "detrend")
    steps = []
    if detrend != NONE:
        steps.append("linear detrend " + ("within each run" if detrend == RUN else "over the whole series"))
    if high_pass is not None:
        steps.append(f"high-pass filter at {high_pass:g} Hz (Butterworth) within each run")
    if confounds:
        steps.append("regression of the fMRIPrep confounds " + ", ".join(confounds) + " within each run")
    if standardize != NONE:
        steps.append("z-score of each voxel " + ("within each run, over all of that run's volumes"
                                                 if standardize == RUN else "over the whole series"))
    if not steps:
        return "The voxels' time series were not cleaned (raw values)."
    return ("Cleaning, fitted on all volumes before conditions were chosen, without labels: "
            + "; then ".join(steps) + ".")


# --------------------------------------------------------------------------------------
# The arithmetic
# --------------------------------------------------------------------------------------


def clean_signals(X, *, standardize=True, detrend=False, copy=True) -> np.ndarray:
    """Detrend and z-score each column over all rows, as ``nilearn.signal.clean`` does.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_voxels)
        Not modified unless ``copy=False``.
    standardize : bool or {"zscore_sample"} or None
        True or "zscore_sample": subtract the mean and divide by the standard
        deviation with ddof=1; columns whose deviation is below float64 eps
        are only centred (they become 0), as nilearn does.
    detrend : bool
        Remove the mean and a linear trend first.
    copy : bool
        False cleans a writeable float32 ``X`` in place (no second matrix in
        memory: useful for whole-brain masks).

    Returns
    -------
    ndarray of shape (n_samples, n_voxels), float32
        Computed in float64 blocks of columns, so memory stays close to that
        of the output.
    """
    if standardize not in (True, False, None, "zscore_sample"):
        raise DecodingInputError(
            f"'standardize' must be True, False, None or 'zscore_sample'. Got {standardize!r}."
        )
    standardize = standardize in (True, "zscore_sample")
    in_place = (not copy and isinstance(X, np.ndarray) and X.dtype == np.float32 and X.flags.writeable)
    out = X if in_place else np.array(X, dtype=np.float32, copy=True)
    if out.ndim != 2:
        raise DecodingInputError(f"'X' must be a 2D matrix (samples x voxels). Got shape {out.shape}.")
    n_samples = out.shape[0]
    if n_samples < 2 or not (standardize or detrend):
        return out  # nilearn skips both steps for a single sample
    regressor = None
    if detrend:
        regressor = np.arange(n_samples, dtype=np.float64)
        regressor -= regressor.mean()
        regressor /= np.sqrt((regressor**2).sum())
    eps = np.finfo(np.float64).eps
    for start in range(0, out.shape[1], CLEAN_BLOCK_COLUMNS):
        block = out[:, start : start + CLEAN_BLOCK_COLUMNS].astype(np.float64)
        block -= block.mean(axis=0)
        if regressor is not None:
            block -= np.outer(regressor, regressor @ block)
        if standardize:
            block -= block.mean(axis=0)
            std = block.std(axis=0, ddof=1)
            std[std < eps] = 1.0
            block /= std
        out[:, start : start + CLEAN_BLOCK_COLUMNS] = block
    return out


def run_rows(runs, n_samples: int) -> list:
    """The row indices of each run, runs in the order they first appear (one run when ``runs`` is None)."""
    if runs is None:
        return [np.arange(n_samples)]
    runs = np.asarray(runs)
    if len(runs) != n_samples:
        raise DecodingInputError(f"There are {len(runs)} run values for {n_samples} volumes; give one per volume.")
    _, first, inverse = np.unique(runs, return_index=True, return_inverse=True)
    return [np.flatnonzero(inverse == k) for k in np.argsort(first)]


@dataclass(frozen=True, eq=False)
class Cleaned:
    """A cleaned matrix and the rows of the raw matrix it kept.

    Attributes
    ----------
    X : ndarray of shape (n_kept, n_voxels), float32
    kept : ndarray of shape (n_kept,), int
        Rows (volumes) of the raw matrix kept, in order; all of them unless scrubbing dropped some.
    notes : tuple of str
        Sentences for the run's notes (e.g. how many volumes scrubbing left out).
    """

    X: np.ndarray
    kept: np.ndarray
    notes: tuple = field(default=())


def clean_runs(raw, runs=None, *, standardize=SERIES, detrend=NONE, high_pass=None, t_r=None,
               confounds=None, sample_masks=None, copy=True) -> Cleaned:
    """Clean a raw (volumes x voxels) matrix, per run or over the series, without labels.

    Parameters
    ----------
    raw : ndarray of shape (n_volumes, n_voxels)
    runs : ndarray of shape (n_volumes,), optional
        The run of each volume; None: the series is one run.
    standardize, detrend : {"series", "run", "none"} or bool
        Where the z-score (ddof=1) and the linear detrend are fitted (`SCOPES`).
    high_pass : float, optional
        Cutoff in Hz of nilearn's Butterworth high-pass filter, applied within each run.
    t_r : float, optional
        Repetition time in seconds; needed by ``high_pass``.
    confounds : list of ndarray, optional
        One (run's volumes x regressors) matrix per run, runs in `run_rows` order;
        regressed out of that run as ``nilearn.signal.clean(confounds=...)`` does.
    sample_masks : list of (ndarray or None), optional
        Per run, the indices (within the run) of the volumes to keep (scrubbing).
    copy : bool
        False may clean a writeable float32 ``raw`` in place.

    Returns
    -------
    Cleaned
        With every scope ``"run"``, equal to ``nilearn.signal.clean(raw, runs=runs,
        detrend=..., standardize="zscore_sample", confounds=..., high_pass=...,
        sample_mask=...)`` (float32 precision).
    """
    standardize, detrend = scope_of(standardize), scope_of(detrend, "detrend")
    n_volumes = raw.shape[0]
    per_run_nilearn = high_pass is not None or confounds is not None or sample_masks is not None
    if not per_run_nilearn and RUN not in (standardize, detrend):
        # The tutorial's path: one pass over the series.
        X = clean_signals(raw, standardize=standardize == SERIES, detrend=detrend == SERIES, copy=copy)
        return Cleaned(X=X, kept=np.arange(n_volumes))
    if high_pass is not None and t_r is None:
        raise DecodingInputError(
            "The high-pass filter needs the repetition time (TR) of the data set, which is not known. "
            "Give it (command line: --tr SECONDS; a BIDS data set: RepetitionTime in *_bold.json), "
            "or turn the high-pass filter off."
        )
    X = clean_signals(raw, standardize=False, detrend=detrend == SERIES, copy=copy)
    groups = run_rows(runs, n_volumes)
    for name, per_run in (("confounds", confounds), ("sample_masks", sample_masks)):
        if per_run is not None and len(per_run) != len(groups):
            raise DecodingInputError(f"'{name}' has {len(per_run)} entries for {len(groups)} runs; give one per run.")
    if not per_run_nilearn:
        for rows in groups:
            X[rows] = clean_signals(X[rows], standardize=standardize == RUN, detrend=detrend == RUN)
        kept = np.arange(n_volumes)
    else:
        X, kept = _clean_with_nilearn(X, groups, standardize=standardize == RUN, detrend=detrend == RUN,
                                      high_pass=high_pass, t_r=t_r, confounds=confounds,
                                      sample_masks=sample_masks)
    if standardize == SERIES:
        X = clean_signals(X, standardize=True, copy=False)
    notes = ()
    if len(kept) < n_volumes:
        notes = (f"Scrubbing left out {n_volumes - len(kept)} of the {n_volumes} volumes "
                 "(high motion), with their labels and runs.",)
    return Cleaned(X=X, kept=kept, notes=notes)


def _clean_with_nilearn(X, groups, *, standardize, detrend, high_pass, t_r, confounds, sample_masks):
    """Each run through ``nilearn.signal.clean`` (filter, confounds, scrubbing); returns (X, kept rows)."""
    from nilearn import signal  # nilearn only when these steps are asked for

    pieces, kept = [], []
    for k, rows in enumerate(groups):
        mask = None if sample_masks is None else sample_masks[k]
        if mask is None and confounds is None:
            pieces.append(_high_pass_run(X[rows], standardize=standardize, detrend=detrend, high_pass=high_pass,
                                         t_r=t_r))
            kept.append(rows)
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning))
                cleaned = signal.clean(
                    X[rows].astype(np.float64), detrend=detrend,
                    standardize="zscore_sample" if standardize else None,
                    confounds=None if confounds is None else confounds[k],
                    sample_mask=mask, filter="butterworth" if high_pass is not None else False,
                    high_pass=high_pass, t_r=t_r,
                )
        except ValueError as err:
            raise DecodingInputError(f"Cleaning run {k + 1} failed: {err}") from None
        pieces.append(cleaned.astype(np.float32))
        kept.append(rows if mask is None else rows[np.asarray(mask, dtype=int)])
    return np.concatenate(pieces, axis=0), np.concatenate(kept)


def _high_pass_run(X, *, standardize, detrend, high_pass, t_r) -> np.ndarray:
    """One run detrended, high-pass filtered and z-scored as ``nilearn.signal.clean`` does, faster.

    ``signal.clean`` filters one column at a time (``butterworth(copy=False)``: about 4 ms a
    voxel and run here); ``butterworth(copy=True)`` runs the same ``sosfiltfilt`` on every
    column at once. The order is clean's (detrend, filter, z-score); tests compare the two.
    """
    from nilearn import signal

    X = clean_signals(X, standardize=False, detrend=detrend)
    filtered = signal.butterworth(X.astype(np.float64), sampling_rate=1.0 / t_r, high_pass=high_pass, copy=True)
    return clean_signals(filtered, standardize=standardize)


# --------------------------------------------------------------------------------------
# fMRIPrep confounds
# --------------------------------------------------------------------------------------


def confounds_file_for(bold_file) -> Path:
    """The fMRIPrep confounds table next to a preprocessed bold file (for messages and checks)."""
    bold_file = Path(bold_file)
    stem = re.sub(r"(_space-[^_]+)?(_res-[^_]+)?_desc-preproc_bold\.nii(\.gz)?$", "", bold_file.name)
    return bold_file.with_name(f"{stem}_desc-confounds_timeseries.tsv")


def load_run_confounds(run_files, strategies, run_lengths) -> tuple[list, list | None]:
    """Read each run's fMRIPrep confounds with nilearn's ``load_confounds``, checked against the runs.

    Parameters
    ----------
    run_files : sequence of path
        The preprocessed bold file of each run (fMRIPrep names:
        ``*_desc-preproc_bold.nii.gz``), in run order.
    strategies : sequence of str
        Keys of `CONFOUND_STRATEGIES`.
    run_lengths : sequence of int
        Volumes of each run.

    Returns
    -------
    confounds : list of ndarray or None
        One (volumes x regressors) matrix per run; None when the strategies give no regressor.
    sample_masks : list of (ndarray or None), or None
        Per run, the kept volumes' indices (scrubbing); None when no volume is dropped.
    """
    strategies = confound_strategies(strategies)
    if not run_files:
        raise DecodingInputError(
            "Confound regression needs the data set's fMRIPrep files (one *_desc-preproc_bold.nii.gz per run, "
            "with its *_desc-confounds_timeseries.tsv). Load an fMRIPrep derivatives folder, or choose no confounds."
        )
    if len(run_files) != len(run_lengths):
        raise DecodingInputError(
            f"The data set has {len(run_lengths)} runs but {len(run_files)} run files; confounds are read per run file."
        )
    from nilearn.interfaces.fmriprep import load_confounds  # nilearn only when confounds are asked for

    names = tuple(CONFOUND_STRATEGIES[s].nilearn_name for s in strategies)
    matrices, masks = [], []
    for bold_file, n_volumes in zip(run_files, run_lengths):
        table_file = confounds_file_for(bold_file)
        shown = table_file if table_file.is_file() else Path(bold_file)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table, mask = load_confounds(str(bold_file), strategy=names)
        except (ValueError, OSError, KeyError) as err:
            raise DecodingInputError(f"Cannot read the fMRIPrep confounds of {Path(bold_file).name} "
                                     f"({shown}): {err}") from None
        if table is None or len(table) != n_volumes:
            rows = 0 if table is None else len(table)
            raise DecodingInputError(
                f"The confounds file {shown} has {rows} rows but its run ({Path(bold_file).name}) has "
                f"{n_volumes} volumes: it must have one row per volume. Use the confounds table fMRIPrep "
                "wrote for this run."
            )
        matrices.append(table.to_numpy(dtype=np.float64) if table.shape[1] else None)
        masks.append(None if mask is None else np.asarray(mask, dtype=int))
    confounds = None if all(m is None for m in matrices) else [
        np.zeros((n, 0)) if m is None else m for m, n in zip(matrices, run_lengths)]
    return confounds, (None if all(m is None for m in masks) else masks)
