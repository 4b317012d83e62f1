"""BIDS data sets on the Data page: a folder on the server or an uploaded zip, checked, previewed and loaded.

Two ways in. A **folder on the server** is offered only where the server is the
user's own computer (`server_folders_allowed`: ``$DECODING_LAB_SERVER_FOLDERS``,
default on, off when ``$DECODING_LAB_SHARED`` is): on a shared server a path would
let a visitor read the host's files. An **uploaded zip** of one subject's func/ files
is written to this session's folder and extracted there by the core's safe extractor
(`decoding_core.io.archive.extract_bids_zip`), in the uploader's callback so that
Streamlit's copy of its bytes is released at once (`store_bids_zip`).

Then the page lists what the folder holds (`decoding_core.datasets.bids.bids_choices`),
the runs of the chosen subject and task (`find_runs`, `runs_table`), previews the
volume labels the events give after the chosen lag (`preview_labels`, drawn by
`decoding_core.plotting.plot_events_timeline`), and loads the data set
(`load_bids_dataset`) through the job queue. Everything made from a zip stays in the
session's folder; paths inside it are never shown (messages say the zip's name).
"""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from decoding_core import environment, events, paths, plotting
from decoding_core.datasets import bids
from decoding_core.errors import DecodingInputError
from decoding_core.io.archive import ZipLimits, extract_bids_zip
from ui.feedback import run_heavy, safe_display_name
from ui.session import upload_root

#: How the folder of an extracted zip is named in the session's folder (then 24 hex digits of its sha256).
ZIP_FOLDER_PREFIX = "bids-"
#: The Data page's choices meaning "every session" and "raw data" (BIDS labels are alphanumeric: no clash).
ALL_SESSIONS = "(all sessions)"
RAW_SPACE = "(raw, no space)"
#: Sentences that explain each design on the Data page (the core's `bids.DESIGNS` names them).
DESIGN_HELP = {
    "block": "Block design: every volume is a sample, labelled with the trial_type of the event its "
             "acquisition time falls in, after the lag; volumes in no event are 'rest'.",
    "lsa": "Event-related, least squares all (LSA): one sample per trial, its beta from one model per run "
           "with a regressor for every trial (nilearn's FirstLevelModel). Exact when trials are far apart.",
    "lss": "Event-related, least squares separate (LSS): one sample per trial, its beta from a model of that "
           "trial against the run's other trials grouped by condition. Steadier when trials are close in time.",
}


@dataclass(frozen=True)
class BidsZip:
    """An uploaded zip of BIDS files, extracted into this session's folder.

    Attributes
    ----------
    root : pathlib.Path
        The extracted BIDS folder (never shown).
    name : str
        The uploaded file's name, safe to show.
    size : int
        Bytes of the zip.
    n_files : int
        Files extracted.
    """

    root: Path
    name: str
    size: int
    n_files: int


@dataclass(frozen=True)
class LabelPreview:
    """The events of each run and the volume labels they give, for the timeline.

    Attributes
    ----------
    events : pandas.DataFrame
        Every run's events (``onset``, ``duration``, ``trial_type``) and ``run`` (its name).
    volume_labels : dict
        Run name -> the label of each of its volumes.
    tr : float
    counts : pandas.DataFrame
        Volumes per label (rows) and run (columns).
    """

    events: pd.DataFrame
    volume_labels: dict
    tr: float
    counts: pd.DataFrame


def server_folders_allowed() -> bool:
    """Whether the page may open a folder on the server (``$DECODING_LAB_SERVER_FOLDERS``).

    Unset: allowed, unless the app is shared (``$DECODING_LAB_SHARED``), where a path
    typed by a visitor would read the host's files.
    """
    allowed = environment.read(environment.SERVER_FOLDERS)
    return (not environment.read(environment.SHARED)) if allowed is None else bool(allowed)


def server_folder(text: str) -> Path:
    """The BIDS folder typed on the page, after checking the server allows it and it is a folder.

    Raises
    ------
    DecodingInputError
        Folders are off on this server, nothing typed, or no such folder.
    """
    if not server_folders_allowed():
        raise DecodingInputError(
            "This server does not open folders on its disk (DECODING_LAB_SERVER_FOLDERS is off, as on a shared "
            "server). Upload a .zip of one subject's func/ files instead.")
    text = str(text or "").strip()
    if not text:
        raise DecodingInputError("Type the path of a BIDS folder on this computer (the folder holding sub-*/).")
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise DecodingInputError(f"The folder {text} does not exist on this computer (or is not a folder).")
    return folder.resolve()


# -- the zip ----------------------------------------------------------------------------------------


def _zip_folder(session_token: str, sha256: str) -> Path:
    return upload_root(session_token) / f"{ZIP_FOLDER_PREFIX}{sha256[:24]}"


def store_bids_zip(session_token: str, uploaded) -> BidsZip:
    """Write an uploaded zip to this session's folder and extract it there (the uploader's callback).

    The same zip uploaded again reuses its folder. The zip itself is deleted once
    extracted: only the checked files stay.

    Parameters
    ----------
    session_token : str
    uploaded : streamlit UploadedFile
        Anything with ``getvalue()`` and ``name`` (shown only).

    Raises
    ------
    DecodingInputError
        What `extract_bids_zip` refuses, naming the uploaded file.
    """
    name = safe_display_name(getattr(uploaded, "name", ""))
    data = uploaded.getvalue()
    size, sha256 = len(data), hashlib.sha256(data).hexdigest()
    root = _zip_folder(session_token, sha256)
    if not root.is_dir():
        root.parent.mkdir(parents=True, exist_ok=True)
        source = root.parent / f"{root.name}.zip"
        with paths.atomic_path(source) as temporary:
            temporary.write_bytes(data)
        del data
        try:
            extract_bids_zip(source, root, display_name=name)
        finally:
            source.unlink(missing_ok=True)
    n_files = sum(1 for path in root.rglob("*") if path.is_file())
    return BidsZip(root=root, name=name, size=size, n_files=n_files)


def discard_bids_zip(session_token: str, entry: BidsZip | None) -> None:
    """Delete an extracted zip's folder (only ever one in this session's folder)."""
    if entry is None:
        return
    folder = upload_root(session_token).resolve()
    root = Path(entry.root).resolve()
    if root.parent == folder and root.name.startswith(ZIP_FOLDER_PREFIX):
        shutil.rmtree(root, ignore_errors=True)


def zip_in_use(entry: BidsZip | None, dataset) -> bool:
    """Whether ``dataset`` was loaded from the files of ``entry`` (then they must stay)."""
    selection = bids.BidsSelection.from_name(getattr(dataset, "name", None))
    return entry is not None and selection is not None and Path(selection.root) == Path(entry.root).resolve()


def zip_limits_text() -> str:
    """The zip limits in words, for the uploader's help."""
    limits = ZipLimits.from_environment()
    return (f"{limits.max_total_bytes / 1e6:,.0f} MB unpacked, {limits.max_files:,} files, "
            f"each expanding at most {limits.max_ratio:g} times")


def with_zip_name(err: BaseException, entry: BidsZip | None) -> BaseException:
    """``err`` again, its message saying the zip's name instead of the session's folder (input errors only)."""
    if entry is None or not isinstance(err, DecodingInputError):
        return err
    return DecodingInputError(shown_path(str(err), entry))


def shown_path(message: str, entry: BidsZip | None) -> str:
    """A message about files of an extracted zip, saying the zip's name instead of the session's folder."""
    if entry is None:
        return message
    shown = f"your zip '{entry.name}'"
    for text in (str(Path(entry.root).resolve()), str(entry.root), Path(entry.root).name):
        message = message.replace(text, shown)
    return message


# -- what the folder holds ------------------------------------------------------------------------


def server_mask(text: str) -> Path | None:
    """The mask typed for a server folder, or None when nothing was typed.

    Raises
    ------
    DecodingInputError
        No such file.
    """
    text = str(text or "").strip()
    if not text:
        return None
    path = Path(text).expanduser()
    if not path.is_file():
        raise DecodingInputError(f"The mask {text} does not exist on this computer (or is not a file).")
    return path


def choices(root: Path) -> bids.BidsChoices:
    """What the folder holds (`decoding_core.datasets.bids.bids_choices`)."""
    return bids.bids_choices(root)


def find_runs(root: Path, *, subject: str, task: str, session=None, space=None) -> bids.BidsRuns:
    """The runs of one selection (`decoding_core.datasets.bids.find_runs`)."""
    return bids.find_runs(root, subject=subject, task=task, session=session, space=space)



def run_name(label: str) -> str:
    """``run-01`` for the run entity ``01``; a label with its session (``ses-a_run-1``) as it is."""
    return label if str(label).startswith("ses-") else f"run-{label}"


def runs_table(runs: bids.BidsRuns) -> pd.DataFrame:
    """One row per run: its name, bold file, volumes, TR, events and confounds files (names only)."""
    return pd.DataFrame({
        "run": [run_name(label) for label in runs.run_labels],
        "bold file": [path.name for path in runs.bold_files],
        "volumes": list(runs.n_volumes),
        "TR (s)": [None if tr is None else float(tr) for tr in runs.tr],
        "events": [path.name if path else "(none)" for path in runs.events_files],
        "confounds": [path.name if path else "(none)" for path in runs.confounds_files],
    })


def _check_confound_rows(bold: Path, confounds: Path | None, n_volumes: int) -> None:
    """A confounds table must have one row per volume of its run (fMRIPrep writes one)."""
    if confounds is None:
        return
    try:
        rows = len(pd.read_csv(confounds, sep="\t", usecols=[0]))
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DecodingInputError(f"The confounds file {confounds.name} could not be read ({err}).") from None
    if rows != n_volumes:
        raise DecodingInputError(
            f"The confounds file {confounds.name} has {rows} rows but its run ({bold.name}) has {n_volumes} "
            "volumes: it belongs to another run, or the run was cut. Use the confounds fMRIPrep wrote for it.")


def preview_labels(runs: bids.BidsRuns, hrf_lag: float, drop_edge_volumes: int, design: str = "block") -> LabelPreview:
    """The volume labels each run's events give after ``hrf_lag``, checking what loading would refuse.

    For an event-related design (``"lsa"``, ``"lss"``) events may overlap and each is one
    sample: the volumes are shown unlabelled (``rest``) under the events.

    Raises
    ------
    DecodingInputError
        A run whose TR differs from the others, a run without events, events without
        ``trial_type`` or outside the run, confounds with the wrong number of rows.
    """
    tr = runs.check_consistent()
    tables, labels = [], {}
    for label, bold, events_file, confounds, n_volumes in zip(
            runs.run_labels, runs.bold_files, runs.events_files, runs.confounds_files, runs.n_volumes):
        name = run_name(label)
        if events_file is None:
            raise DecodingInputError(
                f"The run {bold.name} has no events file ({bold.name.split('_bold')[0]}_events.tsv). Every run "
                "needs its events: onset, duration and trial_type.")
        table = events.read_events(events_file)
        if design == "block":
            labels[name] = events.events_to_volume_labels(
                table, n_volumes, tr, hrf_lag=hrf_lag, drop_edge_volumes=drop_edge_volumes,
                name=f"the events of {bold.name}")
        else:
            events.check_events_in_run(table, n_volumes, tr, f"the events of {bold.name}")
            labels[name] = np.full(n_volumes, events.REST_LABEL)
        _check_confound_rows(bold, confounds, n_volumes)
        tables.append(table[list(events.EVENT_COLUMNS)].assign(run=name))
    counts = pd.DataFrame({name: pd.Series(values).value_counts() for name, values in labels.items()})
    return LabelPreview(events=pd.concat(tables, ignore_index=True), volume_labels=labels, tr=tr,
                        counts=counts.fillna(0).astype(int))


def timeline_figure(preview: LabelPreview, hrf_lag: float):
    """The events timeline of `preview` (`decoding_core.plotting.plot_events_timeline`)."""
    return plotting.plot_events_timeline(preview.events, preview.volume_labels, preview.tr, hrf_lag=hrf_lag,
                                         edge_label=events.EDGE_LABEL)


# -- loading ----------------------------------------------------------------------------------------


def load_bids_dataset(session_token: str, root: Path, *, subject: str, task: str, session=None, space=None,
                      hrf_lag: float = 0.0, drop_edge_volumes: int = 0, design: str = "block", mask=None,
                      zip_entry: BidsZip | None = None, progress=None):
    """Load the chosen runs as the session's next data set, through the job queue.

    A zip's files, the runs joined from them and the betas stay in this session's
    folder (purged with the session); a server folder's joined runs go to the app's
    cache, named by their content digest.

    Parameters
    ----------
    session_token : str
    root : pathlib.Path
        The BIDS folder (a server folder, or ``zip_entry.root``).
    subject, task, session, space, hrf_lag, drop_edge_volumes, design, mask
        As for `decoding_core.datasets.bids.load_bids` (``mask``: a path or the bytes of an uploaded mask).
    zip_entry : BidsZip, optional
        The zip the folder came from: messages and the data set's description then say its name.

    Returns
    -------
    decoding_core.datasets.Dataset

    Raises
    ------
    DecodingInputError
        What `load_bids` refuses, with the zip's name instead of the session's folder.
    """
    cache_dir = None if zip_entry is None else upload_root(session_token) / "bids-cache"

    def compute():
        dataset = bids.load_bids(root, subject=subject, task=task, session=session, space=space, hrf_lag=hrf_lag,
                                 drop_edge_volumes=drop_edge_volumes, design=design, mask=mask, anat=None,
                                 cache_dir=cache_dir, progress=progress)
        # The Data page draws the background at once: compute it here, in the job.
        dataset.read_background()
        return dataset

    try:
        dataset = run_heavy(compute)
    except DecodingInputError as err:
        raise DecodingInputError(shown_path(str(err), zip_entry)) from None
    if zip_entry is None:
        return dataset
    return dataclasses.replace(dataset, description=shown_path(dataset.description, zip_entry),
                               source=shown_path(dataset.source, zip_entry))
