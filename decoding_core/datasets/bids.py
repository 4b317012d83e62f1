"""A data set from a BIDS folder: one bold file per run, events, sidecars, fMRIPrep derivatives.

A BIDS data set holds one ``*_bold.nii[.gz]`` per run, an ``*_events.tsv`` per run
(onset, duration, trial_type in seconds) and ``*_bold.json`` sidecars carrying
``RepetitionTime``, found by BIDS's inheritance principle (a sidecar applies to
every file below its folder whose name holds its entities). fMRIPrep derivatives
add ``*_space-X_desc-preproc_bold.nii.gz`` and ``*_desc-confounds_timeseries.tsv``,
either in the folder given or in its ``derivatives/<pipeline>/`` folders (their
events are then read from the raw data set).

The files are found and their names parsed with nilearn's BIDS helpers
(``nilearn.interfaces.bids.get_bids_files`` and ``parse_bids_filename``), not with
pybids: nilearn is already a requirement, the helpers are what nilearn's own
``first_level_from_bids`` uses, and a selection needs only a few globs and the
entities of each name. pybids would add a package (and its SQL index of the whole
tree, built on every load) for nothing more here.

The runs become one `Dataset` whose samples the rest of the app already knows how
to mask and decode: either every volume with a label from the events (a block
design; the runs are streamed into one 4D file in the cache, named by a content
digest of the run files, so masking reads one file as it always does), or one beta
per trial (an event-related design, `decoding_core.events.trial_betas`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode

import numpy as np
import pandas as pd

from decoding_core import events as events_module
from decoding_core.datasets._base import Dataset
from decoding_core.datasets._images import dataset_digest
from decoding_core.datasets.files import concatenate_runs, load_files
from decoding_core.errors import DecodingInputError
from decoding_core.io import nifti

#: How samples are made from the events: name -> what it is.
DESIGNS = {
    "block": "every volume, labelled by the event its acquisition time falls in (after the lag)",
    "lsa": "one beta per trial, least squares all (nilearn FirstLevelModel)",
    "lss": "one beta per trial, least squares separate (nilearn FirstLevelModel)",
}
#: Text that starts the name of a data set loaded from BIDS (`BidsSelection`).
BIDS_PREFIX = "bids:"
#: Bumped when the files written to the cache change.
_CACHE_VERSION = 1
#: Entities of a derivative's name that say how it was processed, not which acquisition it is.
_PROCESSING_ENTITIES = ("space", "res", "den", "desc", "hemi", "label")


@dataclass(frozen=True)
class BidsChoices:
    """What a BIDS folder holds, to choose from.

    Attributes
    ----------
    root : pathlib.Path
    subjects, tasks, sessions : tuple of str
        Labels found in the bold files' names (without ``sub-``, ``task-``, ``ses-``).
    spaces : tuple of str
        Spaces of fMRIPrep's ``*_space-X_desc-preproc_bold`` files; empty for raw data.
    has_raw : bool
        Whether there are raw bold files (no space).
    """

    root: Path
    subjects: tuple
    tasks: tuple
    sessions: tuple
    spaces: tuple
    has_raw: bool = True


@dataclass(frozen=True)
class BidsRuns:
    """The runs of one selection (subject, task, session, space), in run order.

    Attributes
    ----------
    root : pathlib.Path
    subject, task : str
    session, space : str or None
    bold_files : tuple of pathlib.Path
    events_files : tuple of (pathlib.Path or None)
        The events of each run (None where there are none).
    confounds_files : tuple of (pathlib.Path or None)
        fMRIPrep's ``*_desc-confounds_timeseries.tsv`` of each run (None where missing).
    tr : tuple of (float or None)
        Each run's repetition time in seconds: ``RepetitionTime`` of its sidecars
        (BIDS inheritance), else its header's 4th zoom.
    n_volumes : tuple of int
    run_labels : tuple of str
        ``run-`` entity of each file (with its session when several), or its position.
    shapes : tuple of tuple
        Each run's volume shape (x, y, z).
    affines : tuple of ndarray
    """

    root: Path
    subject: str
    task: str
    session: str | None
    space: str | None
    bold_files: tuple
    events_files: tuple
    confounds_files: tuple
    tr: tuple
    n_volumes: tuple
    run_labels: tuple
    shapes: tuple
    affines: tuple

    @property
    def n_runs(self) -> int:
        return len(self.bold_files)

    def check_consistent(self) -> float:
        """The common TR, after checking that every run has the first run's TR and grid.

        Raises
        ------
        DecodingInputError
            A run without a TR, a run whose TR or grid (volume shape and affine)
            differs from the first run's; the message names both files.
        """
        first = self.bold_files[0].name
        for path, tr in zip(self.bold_files, self.tr):
            if tr is None:
                raise DecodingInputError(
                    f"The run {path.name} has no repetition time: neither a sidecar JSON with RepetitionTime "
                    "nor a TR in its header. Add RepetitionTime to its *_bold.json."
                )
        for path, tr, shape, affine in zip(self.bold_files, self.tr, self.shapes, self.affines):
            if not math.isclose(tr, self.tr[0], rel_tol=0, abs_tol=1e-6):
                raise DecodingInputError(
                    f"The run {path.name} has a repetition time of {tr:g} s but {first} has {self.tr[0]:g} s. "
                    "Every run of a data set must share one TR: choose runs acquired alike."
                )
            if tuple(shape) != tuple(self.shapes[0]) or not np.allclose(affine, self.affines[0], atol=1e-3):
                raise DecodingInputError(
                    f"The run {path.name} is on another grid than {first}: volumes {tuple(shape)} vs "
                    f"{tuple(self.shapes[0])}, or a different affine. Every run must be on one grid: use "
                    "preprocessed runs in one space (e.g. --space with fMRIPrep derivatives)."
                )
        return float(self.tr[0])


@dataclass(frozen=True)
class BidsSelection:
    """What `load_bids` loaded, as a name: ``bids:<root>?sub=1&task=x&lag=0&edge=0&design=block``.

    It is the data set's `Dataset.name`, so the run history, the CLI and the exported
    ``reproduce.py`` know which files and settings made the samples.
    """

    root: str
    subject: str
    task: str
    session: str | None = None
    space: str | None = None
    hrf_lag: float = 0.0
    drop_edge_volumes: int = 0
    design: str = "block"

    def __str__(self) -> str:
        query = {"sub": self.subject, "task": self.task}
        if self.session is not None:
            query["ses"] = self.session
        if self.space is not None:
            query["space"] = self.space
        query.update(lag=f"{self.hrf_lag:g}", edge=str(self.drop_edge_volumes), design=self.design)
        return f"{BIDS_PREFIX}{quote(self.root, safe='/:')}?{urlencode(query)}"

    @classmethod
    def from_name(cls, name) -> BidsSelection | None:
        """The selection a data set's name records, or None when it is not a BIDS data set."""
        if not isinstance(name, str) or not name.startswith(BIDS_PREFIX) or "?" not in name:
            return None
        from urllib.parse import unquote

        root, _, query = name[len(BIDS_PREFIX):].rpartition("?")
        values = dict(parse_qsl(query))
        if values.get("design", "block") not in DESIGNS:  # e.g. a name cut short by an import's length limit
            return None
        try:
            return cls(root=unquote(root), subject=values["sub"], task=values["task"],
                       session=values.get("ses"), space=values.get("space"),
                       hrf_lag=float(values.get("lag", 0)), drop_edge_volumes=int(values.get("edge", 0)),
                       design=values.get("design", "block"))
        except (KeyError, ValueError):
            return None

    def load_arguments(self) -> dict:
        """Keyword arguments of `load_bids` (after the root) for this selection."""
        return {"subject": self.subject, "task": self.task, "session": self.session, "space": self.space,
                "hrf_lag": self.hrf_lag, "drop_edge_volumes": self.drop_edge_volumes, "design": self.design}


# -- finding files ------------------------------------------------------------------------


def _check_root(root) -> Path:
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DecodingInputError(f"The BIDS folder {path} does not exist (or is not a folder). Check the path.")
    return path


def _derivative_roots(root: Path) -> list[Path]:
    """Pipeline folders under ``root/derivatives`` (fMRIPrep and others)."""
    folder = root / "derivatives"
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def _raw_root(root: Path) -> Path | None:
    """The raw data set above a derivatives folder given as the root, when there is one."""
    return root.parent.parent if root.parent.name == "derivatives" else None


def _bold_refs(root: Path, subject: str = "*") -> list[dict]:
    """Every usable bold file of ``root`` and its derivative folders, parsed by nilearn.

    Usable: a raw bold file (no ``desc``) or fMRIPrep's ``desc-preproc``.
    """
    from nilearn.interfaces.bids import get_bids_files, parse_bids_filename

    refs = []
    for folder in [root, *_derivative_roots(root)]:
        for path in get_bids_files(folder, file_tag="bold", file_type="nii*", sub_label=subject,
                                   modality_folder="func"):
            ref = parse_bids_filename(path)
            if ref["extension"] in ("nii", "nii.gz") and ref["entities"].get("desc", "preproc") == "preproc":
                refs.append(ref)
    return refs


def _labels(refs, entity: str) -> tuple:
    return tuple(sorted({ref["entities"][entity] for ref in refs if entity in ref["entities"]}))


def bids_choices(root) -> BidsChoices:
    """The subjects, tasks, sessions and spaces of a BIDS folder's bold files.

    Parameters
    ----------
    root : str or pathlib.Path
        A raw BIDS data set (its derivatives folders are searched too) or an
        fMRIPrep derivatives folder.

    Returns
    -------
    BidsChoices

    Raises
    ------
    DecodingInputError
        Not a folder, or no bold file in it.
    """
    root = _check_root(root)
    refs = _bold_refs(root)
    if not refs:
        raise DecodingInputError(
            f"The folder {root} holds no BIDS bold files (sub-*/[ses-*/]func/sub-*_bold.nii[.gz], or "
            "fMRIPrep's *_desc-preproc_bold.nii.gz). Choose the data set's top folder."
        )
    return BidsChoices(root=root, subjects=_labels(refs, "sub"), tasks=_labels(refs, "task"),
                       sessions=_labels(refs, "ses"), spaces=_labels(refs, "space"),
                       has_raw=any("space" not in ref["entities"] for ref in refs))


def _strip_prefix(label, prefix: str) -> str | None:
    if label is None:
        return None
    text = str(label).strip()
    return text[len(prefix):] if text.startswith(prefix) else text


def _what_is_there(root: Path) -> str:
    try:
        choices = bids_choices(root)
    except DecodingInputError:
        return "no bold files at all"
    parts = [f"subjects {', '.join(choices.subjects)}", f"tasks {', '.join(choices.tasks)}"]
    if choices.sessions:
        parts.append(f"sessions {', '.join(choices.sessions)}")
    if choices.spaces:
        parts.append(f"spaces {', '.join(choices.spaces)}" + (" (and raw)" if choices.has_raw else ""))
    return "; ".join(parts)


def _selected_refs(root: Path, subject: str, task: str, session, space) -> list[dict]:
    refs = [ref for ref in _bold_refs(root, subject) if ref["entities"].get("task") == task
            and ref["entities"].get("sub") == subject]
    if session is not None:
        refs = [ref for ref in refs if ref["entities"].get("ses") == session]
    refs = [ref for ref in refs if ref["entities"].get("space") == space]
    if not refs:
        chosen = f"subject {subject!r}, task {task!r}" + (f", session {session!r}" if session else "") \
            + (f", space {space!r}" if space else ", raw (no space)")
        raise DecodingInputError(
            f"The BIDS folder {root} has no bold files for {chosen}. It holds: {_what_is_there(root)}."
        )
    return sorted(refs, key=_run_order)


def _run_order(ref: dict):
    entities = ref["entities"]
    run = entities.get("run", "")
    return (entities.get("ses", ""), int(run) if run.isdigit() else math.inf, run, ref["file_basename"])


def _acquisition(entities: dict) -> dict:
    """The entities that name the acquisition (what the events and raw sidecars are named by)."""
    return {key: value for key, value in entities.items() if key not in _PROCESSING_ENTITIES}


def _matches(candidate: dict, entities: dict) -> bool:
    """Whether a file named by ``candidate``'s entities applies to a file with ``entities`` (BIDS inheritance)."""
    return all(entities.get(key) == value for key, value in candidate.items())


def _inherited_files(bold: Path, tops: list[Path], suffix: str, extension: str, entities: dict) -> list[Path]:
    """Files ``*_<suffix>.<extension>`` that apply to ``bold``, from the top folder down to its own.

    BIDS inheritance: a file in any folder from the data set's top to the bold file's
    folder applies when its entities are a subset of the bold file's; the nearer and
    more specific ones come last (they override).
    """
    from nilearn.interfaces.bids import parse_bids_filename

    found = []
    for top in tops:
        folders = [bold.parent, *bold.parent.parents]
        try:
            depth = folders.index(top)
        except ValueError:
            folders = [top]
            depth = 0
        for level, folder in enumerate(reversed(folders[: depth + 1])):
            for path in sorted(folder.glob(f"*_{suffix}.{extension}")):
                ref = parse_bids_filename(path)
                if ref["suffix"] == suffix and _matches(ref["entities"], entities):
                    found.append((level, len(ref["entities"]), path))
    return [path for _, _, path in sorted(found, key=lambda item: (item[0], item[1]))]


def _repetition_time(bold: Path, tops: list[Path], entities: dict, info) -> float | None:
    """``RepetitionTime`` from the sidecars (nearest wins), else the header's 4th zoom."""
    from decoding_core.datasets.files import _tr_from_header

    value = None
    for sidecar in _inherited_files(bold, tops, "bold", "json", entities):
        try:
            metadata = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DecodingInputError(f"The sidecar {sidecar.name} is not readable JSON ({error}). Fix it.") from None
        if isinstance(metadata, dict) and metadata.get("RepetitionTime") is not None:
            value = metadata["RepetitionTime"]
    if value is None:
        return _tr_from_header(info)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 60:
        raise DecodingInputError(
            f"RepetitionTime of {bold.name} is {value!r} in its sidecar JSON; it must be a number of seconds."
        )
    return float(value)


def _one_file(bold: Path, tops: list[Path], suffix: str, extension: str, entities: dict) -> Path | None:
    files = _inherited_files(bold, tops, suffix, extension, entities)
    return files[-1] if files else None


def _confounds_file(bold: Path, entities: dict) -> Path | None:
    """fMRIPrep's confounds of a run: next to its preprocessed bold file."""
    from nilearn.interfaces.bids import parse_bids_filename

    wanted = _acquisition(entities)
    for path in sorted(bold.parent.glob("*_desc-confounds_timeseries.tsv")):
        candidate = _acquisition(parse_bids_filename(path)["entities"])
        if candidate == wanted:
            return path
    return None


def _run_label(entities: dict, position: int, with_session: bool) -> str:
    run = entities.get("run", str(position + 1))
    return f"ses-{entities['ses']}_run-{run}" if with_session and "ses" in entities else run


def find_runs(root, *, subject, task, session=None, space=None) -> BidsRuns:
    """The bold files of one subject and task (and session, space), with their events, confounds, TR.

    Parameters
    ----------
    root : str or pathlib.Path
        A raw BIDS data set or an fMRIPrep derivatives folder (see `bids_choices`).
    subject, task : str
        Labels, with or without ``sub-`` / ``task-``.
    session : str, optional
        Without it, every session's runs (sessions in order).
    space : str, optional
        fMRIPrep's space (``MNI152NLin2009cAsym``...) for ``*_desc-preproc_bold``
        files; without it, the raw bold files.

    Returns
    -------
    BidsRuns

    Raises
    ------
    DecodingInputError
        No such folder; no bold files for the selection (the message lists the
        subjects, tasks, sessions and spaces there are); two bold files for one
        run; a bold file that is not a 4D NIfTI image.
    """
    root = _check_root(root)
    subject, task = _strip_prefix(subject, "sub-"), _strip_prefix(task, "task-")
    session, space = _strip_prefix(session, "ses-"), _strip_prefix(space, "space-")
    refs = _selected_refs(root, subject, task, session, space)
    runs = [_acquisition(ref["entities"]) for ref in refs]
    for index in range(1, len(runs)):
        if runs[index] in runs[:index]:
            raise DecodingInputError(
                f"Several bold files for one run of {root}: {refs[index - 1]['file_basename']} and "
                f"{refs[index]['file_basename']}. Keep one file per run (e.g. one echo or acquisition)."
            )
    tops = [root] + ([_raw_root(root)] if _raw_root(root) else [])
    with_session = len({ref["entities"].get("ses") for ref in refs}) > 1
    columns = {key: [] for key in ("bold", "events", "confounds", "tr", "n", "label", "shape", "affine")}
    for position, ref in enumerate(refs):
        bold, entities = Path(ref["file_path"]), ref["entities"]
        info = nifti.inspect_nifti(bold, expected_ndim=4, kind="functional image")
        columns["bold"].append(bold)
        # The run's own folder in the raw data set first (fMRIPrep copies no events), then inherited ones.
        columns["events"].append(_raw_events(root, bold, _acquisition(entities))
                                 or _one_file(bold, tops, "events", "tsv", _acquisition(entities)))
        columns["confounds"].append(_confounds_file(bold, entities))
        columns["tr"].append(_repetition_time(bold, tops, entities, info))
        columns["n"].append(int(info.n_volumes))
        columns["label"].append(_run_label(entities, position, with_session))
        columns["shape"].append(tuple(int(v) for v in info.shape[:3]))
        columns["affine"].append(np.asarray(info.affine, dtype=float))
    return BidsRuns(root=root, subject=subject, task=task, session=session, space=space,
                    bold_files=tuple(columns["bold"]), events_files=tuple(columns["events"]),
                    confounds_files=tuple(columns["confounds"]), tr=tuple(columns["tr"]),
                    n_volumes=tuple(columns["n"]), run_labels=tuple(columns["label"]),
                    shapes=tuple(columns["shape"]), affines=tuple(columns["affine"]))


def _raw_events(root: Path, bold: Path, entities: dict) -> Path | None:
    """The events of a derivative bold file (fMRIPrep copies none), from the raw data set's run folder."""
    parts = bold.parts
    # The run's sub-X[/ses-Y]/func folders, the same under the raw data set's top folder.
    subject_index = max(i for i, part in enumerate(parts[:-1]) if part == f"sub-{entities['sub']}")
    for top in (root, _raw_root(root)):
        folder = None if top is None else top.joinpath(*parts[subject_index:-1])
        if folder is not None and folder.is_dir():
            found = _one_file(folder / bold.name, [top], "events", "tsv", entities)
            if found is not None:
                return found
    return None


# -- loading ------------------------------------------------------------------------------


def _events_of_runs(runs: BidsRuns) -> list[pd.DataFrame]:
    tables = []
    for bold, events_file in zip(runs.bold_files, runs.events_files):
        if events_file is None:
            raise DecodingInputError(
                f"The run {bold.name} has no events file ({bold.name.split('_bold')[0]}_events.tsv, or one "
                "its name inherits from). Every run needs its events: onset, duration and trial_type."
            )
        tables.append(events_module.read_events(events_file))
    return tables


def runs_sha256(paths) -> str:
    """sha256 of the run files' sha256s, one a line, in run order: what an exported script checks it read."""
    return hashlib.sha256("\n".join(nifti.file_digest(path) for path in paths).encode()).hexdigest()


def _cache_folder(cache_dir) -> Path:
    from decoding_core.paths import data_dir

    folder = Path(cache_dir) if cache_dir is not None else data_dir() / "bids"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _events_name(runs: BidsRuns, position: int) -> str:
    """How messages name a run's events: its file, and the run it was read for."""
    return f"the events file {runs.events_files[position].name} (of {runs.bold_files[position].name})"


def _block_samples(runs: BidsRuns, tables, tr, hrf_lag, drop_edge_volumes, folder, progress):
    """Every volume of every run, labelled from its events; the runs joined into one file."""
    labels, run_column = [], []
    for position, (n_volumes, table) in enumerate(zip(runs.n_volumes, tables)):
        labels.append(events_module.events_to_volume_labels(
            table, n_volumes, tr, hrf_lag=hrf_lag, drop_edge_volumes=drop_edge_volumes,
            name=_events_name(runs, position)))
        run_column.append(np.full(n_volumes, position))
    func_path = runs.bold_files[0] if runs.n_runs == 1 else concatenate_runs(runs.bold_files, folder, progress)
    table = pd.DataFrame({"labels": np.concatenate(labels), "run": np.concatenate(run_column)})
    return func_path, table


def _beta_samples(runs: BidsRuns, tables, tr, method, mask, folder, progress):
    """One beta per trial (`decoding_core.events.trial_betas`), stored in the cache by content digest."""
    from decoding_core.datasets.simulation import write_nifti_gz_atomic

    for position, (n_volumes, table) in enumerate(zip(runs.n_volumes, tables)):
        events_module.check_events_in_run(table, n_volumes, tr, _events_name(runs, position))
    mask_img = None
    digest = hashlib.sha256(f"decoding-lab-bids-betas-v{_CACHE_VERSION}\0{method}\0{tr!r}\0".encode())
    for bold, table in zip(runs.bold_files, tables):
        digest.update(nifti.file_digest(bold).encode())
        digest.update(table.to_csv(index=False).encode())
    if mask is not None:
        mask_img = nifti.load_image(mask, expected_ndim=3, kind="mask")
        digest.update(np.packbits(np.asanyarray(mask_img.dataobj) != 0).tobytes())
    stem = f"bids-betas-{digest.hexdigest()[:32]}"
    func_path, labels_path = folder / f"{stem}.nii.gz", folder / f"{stem}.tsv"
    if not (func_path.is_file() and labels_path.is_file()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", (DeprecationWarning, FutureWarning, UserWarning))
            betas, labels = events_module.trial_betas(
                [str(path) for path in runs.bold_files], tables, tr, method=method, mask_img=mask_img,
                run_labels=list(range(runs.n_runs)), progress=progress)
        write_nifti_gz_atomic(np.asarray(betas.dataobj, dtype=np.float32), betas.affine, func_path)
        labels.to_csv(labels_path, sep="\t", index=False)
    labels = pd.read_csv(labels_path, sep="\t", keep_default_na=False, dtype={"trial_type": str})
    table = pd.DataFrame({"labels": labels["trial_type"].astype(str).to_numpy(), "run": labels["run"].to_numpy()})
    return func_path, table


def _check_design(design, hrf_lag, drop_edge_volumes) -> str:
    if design not in DESIGNS:
        raise DecodingInputError(f"'design' must be one of {', '.join(DESIGNS)}. Got {design!r}.")
    if design != "block" and (hrf_lag or drop_edge_volumes):
        raise DecodingInputError(
            "The haemodynamic lag and dropped edge volumes apply to block designs only: trial betas model "
            "the haemodynamic response themselves. Leave --hrf-lag and --drop-edge-volumes out."
        )
    return design


def load_bids(root, *, subject, task, session=None, space=None, hrf_lag: float = 0.0,
              drop_edge_volumes: int = 0, design: str = "block", mask=None, anat=None,
              cache_dir=None, progress=None) -> Dataset:
    """A data set from the runs of one subject and task of a BIDS folder.

    Parameters
    ----------
    root, subject, task, session, space
        The selection (see `find_runs`).
    hrf_lag : float, default=0.0
        Seconds added to every event's onset before labelling volumes (block
        design; see `decoding_core.events.events_to_volume_labels`). 0 labels
        each volume by the stimulus shown at its acquisition.
    drop_edge_volumes : int, default=0
        Volumes at each block's start and end labelled ``"edge"`` (left out of
        decoding), block design only.
    design : {"block", "lsa", "lss"}, default="block"
        ``"block"``: every volume a sample, labelled from the events; the
        runs are joined into one 4D file in the cache. ``"lsa"``/``"lss"``: one
        sample per trial, its beta from nilearn's ``FirstLevelModel`` (see
        `decoding_core.events.trial_betas`). See `DESIGNS`.
    mask : str, pathlib.Path or bytes, optional
        A 3D mask on the runs' grid; default an EPI mask computed from the mean image.
    anat : str, pathlib.Path or bytes, optional
        An anatomical background; default the mean image.
    cache_dir : str or pathlib.Path, optional
        Where the joined runs and the betas are written (named by content digests);
        default ``<data directory>/bids`` (`decoding_core.paths.data_dir`).
    progress : callable, optional

    Returns
    -------
    Dataset
        Named by its `BidsSelection`; labels in column ``labels``, runs (0, 1, ...
        in run order) in column ``run``; ``run_files`` the bold files in run
        order; ``events`` every run's events with a ``run`` column.

    Raises
    ------
    DecodingInputError
        No bold files for the selection (the message lists what there is), a run
        without events, events with no ``trial_type``, events outside the run, a
        run whose TR or grid differs from the others, a bad design, lag or mask.
    """
    design = _check_design(design, hrf_lag, drop_edge_volumes)
    runs = find_runs(root, subject=subject, task=task, session=session, space=space)
    tr = runs.check_consistent()
    tables = _events_of_runs(runs)
    folder = _cache_folder(cache_dir)
    if design == "block":
        func_path, table = _block_samples(runs, tables, tr, hrf_lag, drop_edge_volumes, folder, progress)
    else:
        func_path, table = _beta_samples(runs, tables, tr, design, mask, folder, progress)
    dataset = load_files(func_path, table.to_csv(index=False).encode(), label_column="labels", run_column="run",
                         mask=mask, anat=anat, tr=tr if design == "block" else None)
    if design != "block":
        dataset = dataclasses.replace(dataset, tr=None)
    selection = BidsSelection(root=str(runs.root.resolve()), subject=runs.subject, task=runs.task,
                              session=runs.session, space=runs.space, hrf_lag=float(hrf_lag),
                              drop_edge_volumes=int(drop_edge_volumes), design=design)
    all_events = pd.concat([events.assign(run=position) for position, events in enumerate(tables)],
                           ignore_index=True)
    return dataclasses.replace(
        dataset,
        name=str(selection),
        title=_title(runs),
        description=_description(runs, design, hrf_lag, drop_edge_volumes, tr, mask is not None),
        source=f"BIDS data set {runs.root}: " + ", ".join(path.name for path in runs.bold_files),
        digest=dataset_digest(nifti.file_digest(dataset.func_path), dataset.labels, dataset.masks, "bids",
                              str(selection)),
        run_files=tuple(runs.bold_files),
        events=all_events,
    )


def _title(runs: BidsRuns) -> str:
    parts = [f"sub-{runs.subject}", f"task-{runs.task}"]
    if runs.session:
        parts.append(f"ses-{runs.session}")
    if runs.space:
        parts.append(f"space-{runs.space}")
    return f"BIDS: {' '.join(parts)} ({runs.n_runs} runs)"


def _description(runs: BidsRuns, design, hrf_lag, drop_edge_volumes, tr, has_mask) -> str:
    shape = runs.shapes[0]
    if design == "block":
        samples = (f"every volume labelled by the event its acquisition time falls in, {hrf_lag:g} s after the "
                   "onset" + (f", the first and last {drop_edge_volumes} volumes of each block left out as 'edge'"
                              if drop_edge_volumes else ""))
    else:
        samples = f"one beta per trial ({DESIGNS[design]})"
    return (
        f"BIDS data set {runs.root.name}: {runs.n_runs} runs ({', '.join(map(str, runs.n_volumes))} volumes) of "
        f"{shape[0]} x {shape[1]} x {shape[2]} voxels, TR {tr:g} s. Samples: {samples}. Mask: "
        + ("the mask given." if has_mask else "an EPI mask computed from the mean image.")
    )


__all__ = ["BIDS_PREFIX", "DESIGNS", "BidsChoices", "BidsRuns", "BidsSelection", "bids_choices",
           "find_runs", "load_bids", "runs_sha256"]
