"""Events (BIDS ``*_events.tsv``) into samples: a label per volume, or a beta per trial.

Two designs turn a run's events into samples for decoding:

* **Block designs** (`events_to_volume_labels`): every volume keeps its place in
  the series and gets the ``trial_type`` of the event its acquisition time falls
  in, after a haemodynamic lag; volumes in no event are ``rest``. With no lag the
  Haxby BIDS events give back the per-volume labels table exactly.
* **Event-related designs** (`trial_betas`): one sample per trial, the trial's
  beta (effect size) estimated by nilearn's ``FirstLevelModel``, either by *least
  squares all* (LSA: one model per run with a regressor for every trial) or by
  *least squares separate* (LSS: one model per trial, the trial against the other
  trials of its run grouped by condition, as nilearn's beta-series example does).
  LSA is exact when trials are far apart; LSS is steadier when they are close in
  time (their regressors overlap and LSA's betas become noisy).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from decoding_core.errors import DecodingInputError, DecodingInputTypeError
from decoding_core.io.labels import read_labels_table

#: The columns every events table needs (BIDS: seconds from the run's first volume).
EVENT_COLUMNS = ("onset", "duration", "trial_type")
#: Label of the volumes that fall in no event.
REST_LABEL = "rest"
#: Label of the volumes at the edges of a block, when `events_to_volume_labels` is asked to drop them.
EDGE_LABEL = "edge"
#: Ways of estimating one beta per trial (`trial_betas`), name -> what it is.
BETA_METHODS = {
    "lsa": "least squares all: one model per run, one regressor per trial",
    "lss": "least squares separate: one model per trial, the trial against the run's other trials by condition",
}


def _source_name(source) -> str:
    return Path(source).name if isinstance(source, (str, os.PathLike)) else "uploaded events table"


def read_events(source, name: str | None = None) -> pd.DataFrame:
    """Read a BIDS events table and check it.

    Parameters
    ----------
    source : str, pathlib.Path or bytes
        A tab-separated ``*_events.tsv`` file (CSV works too), or its content.
        The text is bounded and checked as labels tables are
        (`decoding_core.io.labels.read_labels_table`).
    name : str, optional
        The file's name for messages; default the path's name.

    Returns
    -------
    pandas.DataFrame
        ``onset`` and ``duration`` as float seconds, ``trial_type`` as str
        (stripped), then any other columns, in the file's row order.

    Raises
    ------
    DecodingInputError
        A missing ``onset``, ``duration`` or ``trial_type`` column, a cell of
        ``onset`` or ``duration`` that is not a finite number, a negative
        duration, an empty ``trial_type``; the message names the file.

    Examples
    --------
    >>> read_events(b"onset\\tduration\\ttrial_type\\n0\\t2.5\\tface\\n", "run1.tsv")["trial_type"].tolist()
    ['face']
    """
    if not isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        raise DecodingInputTypeError(f"'source' must be a path or bytes. Got {type(source).__name__}.")
    name = name or _source_name(source)
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise DecodingInputError(f"The events file {name} does not exist (or is not a file). Check the path.")
    try:
        table = read_labels_table(source)
    except DecodingInputError as error:
        raise DecodingInputError(f"The events file {name} could not be read: {error}") from None
    missing = [column for column in EVENT_COLUMNS if column not in table.columns]
    if missing:
        columns = ", ".join(repr(str(c)) for c in table.columns)
        raise DecodingInputError(
            f"The events file {name} has no {' or '.join(repr(c) for c in missing)} column (its columns: "
            f"{columns}). A BIDS events file needs onset and duration in seconds and the condition of each "
            "event in trial_type."
        )
    events = table.copy()
    for column in ("onset", "duration"):
        events[column] = _seconds(events[column], column, name)
    if (events["duration"] < 0).any():
        row = int(np.flatnonzero(events["duration"].to_numpy() < 0)[0])
        raise DecodingInputError(
            f"The events file {name} has a negative duration on line {row + 2} "
            f"({events['duration'].iloc[row]:g} s). Durations are seconds, 0 or more."
        )
    trial_types = np.char.strip(events["trial_type"].to_numpy(dtype=str))
    empty = np.flatnonzero((trial_types == "") | (trial_types == "n/a"))
    if empty.size:
        raise DecodingInputError(
            f"The events file {name} has no trial_type on line {int(empty[0]) + 2} ({empty.size} row(s) in all). "
            "Give every event its condition, or remove the rows."
        )
    events["trial_type"] = pd.array(trial_types.tolist(), dtype="str")
    order = list(EVENT_COLUMNS) + [c for c in events.columns if c not in EVENT_COLUMNS]
    return events[order].reset_index(drop=True)


def _seconds(column: pd.Series, column_name: str, name: str) -> pd.Series:
    """A column of seconds as float64; an error naming the first cell that is not a finite number."""
    values = pd.to_numeric(column, errors="coerce").astype(float)
    bad = np.flatnonzero(~np.isfinite(values.to_numpy()))
    if bad.size:
        row = int(bad[0])
        raise DecodingInputError(
            f"The events file {name} has {column.iloc[row]!r} in the {column_name} column on line {row + 2}: "
            f"{column_name} must be a number of seconds on every row."
        )
    return values


def _check_run_timing(n_volumes, tr) -> tuple[int, float]:
    if isinstance(n_volumes, bool) or not isinstance(n_volumes, (int, np.integer)) or n_volumes < 1:
        raise DecodingInputError(f"'n_volumes' must be a positive integer. Got {n_volumes!r}.")
    if isinstance(tr, bool) or not isinstance(tr, (int, float, np.integer, np.floating)) \
            or not math.isfinite(tr) or tr <= 0:
        raise DecodingInputError(
            f"The repetition time (TR) must be a positive number of seconds. Got {tr!r}. "
            "Set RepetitionTime in the bold sidecar JSON, or give the TR."
        )
    return int(n_volumes), float(tr)


def check_events_in_run(events: pd.DataFrame, n_volumes: int, tr: float, name: str = "the events table") -> None:
    """Raise when an event starts before the run or after its last volume.

    Raises
    ------
    DecodingInputError
        "events outside the run", with the first such event and the run's length.
    """
    run_seconds = n_volumes * tr
    onsets = events["onset"].to_numpy(dtype=float)
    outside = np.flatnonzero((onsets < 0) | (onsets >= run_seconds))
    if outside.size:
        row = int(outside[0])
        raise DecodingInputError(
            f"{name[:1].upper()}{name[1:]} has events outside the run: {outside.size} event(s) start before 0 s or "
            f"after the run's {n_volumes} volumes x {tr:g} s = {run_seconds:g} s (the first: "
            f"{events['trial_type'].iloc[row]!r} at {onsets[row]:g} s). Check that the events file belongs "
            "to this run and that the TR is right."
        )


def events_to_volume_labels(events: pd.DataFrame, n_volumes: int, tr: float, *, hrf_lag: float = 0.0,
                            drop_edge_volumes: int = 0, rest_label: str = REST_LABEL,
                            name: str = "the events table") -> np.ndarray:
    """The condition of each volume of a run, from its events (a block design).

    Volume ``i`` is acquired at ``t = i * tr`` (BIDS: onsets are counted from the
    start of the run's first volume). It takes the ``trial_type`` of the event
    with ``onset + hrf_lag <= t < onset + hrf_lag + duration``; volumes in no
    event get ``rest_label``.

    Parameters
    ----------
    events : pandas.DataFrame
        As `read_events` returns it.
    n_volumes : int
        Volumes of the run.
    tr : float
        Repetition time in seconds.
    hrf_lag : float, default=0.0
        Seconds added to every onset: the haemodynamic response peaks 4-6 s
        after the stimulus, so a lag of one or two TRs labels the volumes that
        carry the response. 0 labels by the stimulus itself.
    drop_edge_volumes : int, default=0
        The first and last ``drop_edge_volumes`` volumes of each event (block)
        are labelled `EDGE_LABEL` (``"edge"``) instead of its condition: they
        hold the rise and fall of the response. They stay in the series (so
        cleaning over the run and the runs themselves are unchanged) and, like
        ``rest``, they are left out of decoding unless ``"edge"`` is chosen as
        a condition.
    rest_label : str, default="rest"
    name : str
        What the events are, for messages (e.g. the file name).

    Returns
    -------
    ndarray of str, shape (n_volumes,)

    Raises
    ------
    DecodingInputError
        Events outside the run (an onset before 0 or at or after
        ``n_volumes * tr``), two events of different conditions covering one
        volume, a negative lag or edge count.

    Examples
    --------
    >>> events = pd.DataFrame({"onset": [2.0], "duration": [4.0], "trial_type": ["face"]})
    >>> events_to_volume_labels(events, 5, 2.0).tolist()
    ['rest', 'face', 'face', 'rest', 'rest']
    >>> events_to_volume_labels(events, 5, 2.0, hrf_lag=2.0).tolist()
    ['rest', 'rest', 'face', 'face', 'rest']
    """
    n_volumes, tr = _check_run_timing(n_volumes, tr)
    if not math.isfinite(float(hrf_lag)) or hrf_lag < 0:
        raise DecodingInputError(f"The haemodynamic lag must be 0 or more seconds. Got {hrf_lag!r}.")
    if isinstance(drop_edge_volumes, bool) or int(drop_edge_volumes) != drop_edge_volumes or drop_edge_volumes < 0:
        raise DecodingInputError(f"'drop_edge_volumes' must be an integer, 0 or more. Got {drop_edge_volumes!r}.")
    check_events_in_run(events, n_volumes, tr, name)
    times = np.arange(n_volumes) * tr
    labels = np.full(n_volumes, rest_label, dtype=object)
    owner = np.full(n_volumes, -1)
    for index, (onset, duration, trial_type) in enumerate(
            zip(events["onset"], events["duration"], events["trial_type"].astype(str))):
        start = onset + hrf_lag
        # A small tolerance: onsets written as multiples of the TR in decimal (e.g. 52.5) must not
        # miss their volume by a rounding error.
        inside = np.flatnonzero((times >= start - 1e-6) & (times < start + duration - 1e-6))
        clash = inside[(owner[inside] >= 0) & (labels[inside] != trial_type)]
        if clash.size:
            other = events["trial_type"].iloc[owner[clash[0]]]
            raise DecodingInputError(
                f"In {name}, events {other!r} and {trial_type!r} both cover volume {int(clash[0])} "
                f"(t = {times[clash[0]]:g} s): a block design gives each volume one condition. Use an "
                "event-related design (LSA or LSS betas) for overlapping events."
            )
        labels[inside] = trial_type
        owner[inside] = index
        if drop_edge_volumes and inside.size:
            edges = np.r_[inside[:drop_edge_volumes], inside[-drop_edge_volumes:]]
            labels[edges] = EDGE_LABEL
    return labels.astype(str)


# -- event-related designs: one beta per trial ------------------------------------------------


def _check_method(method: str) -> str:
    if method not in BETA_METHODS:
        raise DecodingInputError(f"'method' must be one of {sorted(BETA_METHODS)}. Got {method!r}.")
    return method


def trial_names(events: pd.DataFrame) -> list[str]:
    """A unique regressor name per trial: ``<trial_type>__<k>``, k counting that condition's trials from 0.

    nilearn's beta-series example names trials the same way.
    """
    counts = events.groupby("trial_type", sort=False).cumcount()
    return [f"{trial_type}__{int(k):03d}" for trial_type, k in zip(events["trial_type"].astype(str), counts)]


def _first_level_model(tr: float, mask_img, model_options: dict):
    from nilearn.glm.first_level import FirstLevelModel

    options = {"hrf_model": "glover", "drift_model": "cosine", "high_pass": 0.01, "noise_model": "ar1",
               "minimize_memory": True, "standardize": False, "signal_scaling": 0, **model_options}
    return FirstLevelModel(t_r=tr, mask_img=mask_img, **options)


def _events_for_glm(events: pd.DataFrame) -> pd.DataFrame:
    return events[list(EVENT_COLUMNS)].reset_index(drop=True)


def _lsa_run(run_img, events: pd.DataFrame, tr: float, mask_img, model_options: dict) -> list:
    """Least squares all on one run: one model, one regressor per trial."""
    lsa_events = _events_for_glm(events).assign(trial_type=trial_names(events))
    model = _first_level_model(tr, mask_img, model_options).fit(run_img, events=lsa_events)
    return [model.compute_contrast(trial, output_type="effect_size") for trial in lsa_events["trial_type"]]


def _lss_run(run_img, events: pd.DataFrame, tr: float, mask_img, model_options: dict) -> list:
    """Least squares separate on one run: one model per trial, the trial vs the others by condition."""
    base = _events_for_glm(events)
    names = trial_names(events)
    betas = []
    for row, trial in enumerate(names):
        lss_events = base.copy()
        lss_events.loc[row, "trial_type"] = trial
        model = _first_level_model(tr, mask_img, model_options).fit(run_img, events=lss_events)
        betas.append(model.compute_contrast(trial, output_type="effect_size"))
    return betas


def trial_betas(run_imgs, events_per_run, tr: float, *, method: str = "lsa", mask_img=None,
                run_labels=None, model_options: dict | None = None,
                progress=None) -> tuple[nib.Nifti1Image, pd.DataFrame]:
    """One beta image per trial, estimated with nilearn's ``FirstLevelModel`` (an event-related design).

    Each run is modelled on its own (its events, its drift terms): the GLM is
    ``FirstLevelModel(t_r=tr, hrf_model="glover", drift_model="cosine",
    high_pass=0.01, noise_model="ar1", signal_scaling=0)``, nilearn's defaults
    (``signal_scaling=0``: each voxel in percent of its mean; change any of them
    with ``model_options``), and a trial's beta is its regressor's effect size.

    Parameters
    ----------
    run_imgs : sequence of str, pathlib.Path or nibabel.Nifti1Image
        One 4D image per run.
    events_per_run : sequence of pandas.DataFrame
        The events of each run (`read_events`), in the order of ``run_imgs``.
    tr : float
        Repetition time in seconds, the same for every run.
    method : {"lsa", "lss"}, default="lsa"
        ``"lsa"``: least squares all, one model per run with one regressor per
        trial. ``"lss"``: least squares separate, one model per trial in which
        the trial has its own regressor and the run's other trials are grouped
        by condition (nilearn's beta-series example); slower (a model per
        trial), steadier when trials are close in time. See `BETA_METHODS`.
    mask_img : nibabel.Nifti1Image or path, optional
        The voxels to model; default the mask ``FirstLevelModel`` computes.
    run_labels : sequence, optional
        The run of each image, for the ``run`` column; default 0, 1, ...
    model_options : dict, optional
        More ``FirstLevelModel`` arguments (they override the defaults above).
    progress : callable, optional
        ``progress(fraction, message)`` after each run.

    Returns
    -------
    betas : nibabel.Nifti1Image
        4D, one volume per trial, runs in order and each run's trials in the
        order of its events.
    labels : pandas.DataFrame
        One row per trial: ``trial_type``, ``run``, ``onset``, ``trial`` (the
        regressor's name).

    Raises
    ------
    DecodingInputError
        An unknown method, as many event tables as runs not given, events
        outside a run.
    """
    from nilearn.image import concat_imgs, load_img

    method = _check_method(method)
    run_imgs, events_per_run = list(run_imgs), list(events_per_run)
    if len(run_imgs) != len(events_per_run) or not run_imgs:
        raise DecodingInputError(
            f"Give one events table per run: {len(run_imgs)} run image(s) and {len(events_per_run)} events table(s)."
        )
    run_labels = list(range(len(run_imgs))) if run_labels is None else list(run_labels)
    fit_run = _lsa_run if method == "lsa" else _lss_run
    images, rows = [], []
    for index, (run_img, events, run) in enumerate(zip(run_imgs, events_per_run, run_labels)):
        run_img = load_img(run_img)
        check_events_in_run(events, run_img.shape[3], tr, f"the events table of run {run}")
        images += fit_run(run_img, events, tr, mask_img, dict(model_options or {}))
        rows.append(pd.DataFrame({"trial_type": events["trial_type"].astype(str).to_numpy(), "run": run,
                                  "onset": events["onset"].to_numpy(dtype=float), "trial": trial_names(events)}))
        if progress is not None:
            progress((index + 1) / len(run_imgs), f"Estimated the trial betas of run {index + 1} of {len(run_imgs)}")
    betas = concat_imgs(images)
    betas = nib.Nifti1Image(np.asarray(betas.dataobj, dtype=np.float32), betas.affine)
    return betas, pd.concat(rows, ignore_index=True)


__all__ = [
    "BETA_METHODS", "EDGE_LABEL", "EVENT_COLUMNS", "REST_LABEL",
    "check_events_in_run", "events_to_volume_labels", "read_events", "trial_betas", "trial_names",
]
