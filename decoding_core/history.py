"""Run history: every finished run, with what is needed to compare, share and export it.

Two stores share one interface (`RunStore`):

- `SQLiteRunStore` keeps runs in an embedded SQLite database (local use: ``streamlit
  run app.py`` on a laptop). The history survives app restarts.
- `MemoryRunStore` keeps runs in memory, one store per browser session, and never
  touches the disk (shared deployments: nobody sees anybody else's runs).

`history_mode` says which one the app should use (``DECODING_LAB_SHARED=1`` turns
on the shared mode), `open_run_store` opens it.

History files (`RunStore.export_bytes` / `RunStore.import_bytes`) are zip archives::

    manifest.json                 {"format": "fmri-decoding-lab-history", "version": 1,
                                   "runs": ["<id>", ...]}
    runs/<id>/record.json         settings, scores and metadata of one run (JSON)
    runs/<id>/arrays.npz          weights, mask, affine, fold scores (numpy, no pickles)
    runs/<id>/predictions.csv     one row per tested sample and fold

Imports are validated (size, member names, JSON fields, array shapes and types)
and refused with a `DecodingInputError` when anything is off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import re
import sqlite3
import threading
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol, runtime_checkable

import nibabel as nib
import numpy as np
import pandas as pd

from decoding_core import environment, export, paths
from decoding_core.caching import BoundedCache
from decoding_core.config import DecodingConfig
from decoding_core.datasets import DatasetSpec
from decoding_core.datasets.bids import BidsSelection
from decoding_core.errors import DecodingInputError
from decoding_core.export import fold_names

#: Environment variable that turns on the shared-deployment mode (history in memory, per session).
SHARED_ENV = environment.SHARED
#: Environment variable naming the SQLite history file (local mode).
HISTORY_PATH_ENV = environment.HISTORY_PATH
#: Version of the SQLite schema and of the history file format.
SCHEMA_VERSION = 1
HISTORY_FORMAT = "fmri-decoding-lab-history"
#: Largest history file `import_bytes` accepts, compressed and uncompressed (sized for a 690 MB host).
MAX_IMPORT_BYTES = 64 * 1024 * 1024
#: Most runs one history file may hold.
MAX_IMPORT_RUNS = 1000
#: Longest run name kept (longer names are cut).
MAX_NAME_LENGTH = 200

_PREDICTION_COLUMNS = ("sample", "volume", "run", "fold", "true", "predicted", "correct")


def history_mode() -> str:
    """``"shared"`` when ``$DECODING_LAB_SHARED`` is 1/true/yes/on, else ``"local"``.

    In shared mode every browser session keeps its own runs in memory
    (`MemoryRunStore`) and nothing is written to a shared file.
    """
    return "shared" if environment.read(SHARED_ENV) else "local"


def default_history_path() -> Path:
    """``$DECODING_LAB_HISTORY_PATH`` when set, else ``<data dir>/history.sqlite3``."""
    return environment.read(HISTORY_PATH_ENV) or paths.data_dir() / "history.sqlite3"


def open_run_store(mode: str | None = None, path: str | Path | None = None) -> "RunStore":
    """The store the app should use: SQLite locally, memory in a shared deployment.

    Parameters
    ----------
    mode : {"local", "shared"} or None
        None reads `history_mode`.
    path : path or None
        SQLite file for the local mode; None uses `default_history_path`.

    Notes
    -----
    In shared mode, keep the returned store in the browser session's state (one per
    session); never share it between sessions (e.g. through a resource cache).
    """
    mode = mode or history_mode()
    if mode == "shared":
        return MemoryRunStore()
    if mode != "local":
        raise DecodingInputError(f"'mode' must be one of ['local', 'shared']. Got {mode!r}.")
    return SQLiteRunStore(path or default_history_path())


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def unique_run_name(name: str, taken) -> str:
    """``name``, or ``name #2``, ``name #3``... the first one not in ``taken`` (the history's names).

    Two automatic names can still meet (the same settings run twice, or two sets of
    eight conditions): the history never shows two runs under one name.
    """
    taken = {str(t) for t in taken}
    if name not in taken:
        return name
    number = 2
    while f"{name} #{number}" in taken:
        number += 1
    return f"{name} #{number}"


def _clean_name(name) -> str:
    if not isinstance(name, str):
        raise DecodingInputError(f"A run name must be text. Got {type(name).__name__}.")
    # Control characters would break tables and file names; collapse whitespace.
    cleaned = re.sub(r"[\x00-\x1f\x7f]+", " ", name)
    cleaned = " ".join(cleaned.split())[:MAX_NAME_LENGTH]
    if not cleaned:
        raise DecodingInputError("A run name cannot be empty. Type a few characters, e.g. 'VT, SVC, C=1'.")
    return cleaned


def _conditions_part(conditions) -> str:
    """The conditions in a run's name: ``face/cat`` for up to three, else ``8 conditions``."""
    conditions = [str(c) for c in conditions]
    return "/".join(conditions) if len(conditions) <= 3 else f"{len(conditions)} conditions"


def short_dataset_name(dataset_name: str) -> str:
    """A data set's name as run names say it: a BIDS selection without its folder's path.

    ``bids:/data/study?sub=1&task=x&lag=5&...`` becomes ``BIDS sub-1 task-x lag 5s``: the
    whole path made every run of a study start alike and hid what tells them apart.
    """
    selection = BidsSelection.from_name(dataset_name)
    if selection is None:
        return dataset_name
    parts = [f"sub-{selection.subject}", f"task-{selection.task}"]
    parts += [f"ses-{selection.session}"] if selection.session else []
    parts += [f"space-{selection.space}"] if selection.space else []
    parts += [f"lag {selection.hrf_lag:g}s"] if selection.hrf_lag else []
    parts += [f"edge {selection.drop_edge_volumes}"] if selection.drop_edge_volumes else []
    parts += [selection.design.upper()] if selection.design != "block" else []
    return "BIDS " + " ".join(parts)


def default_run_name(config: DecodingConfig, dataset_name: str = "") -> str:
    """A short name that tells runs apart: data set, conditions, mask, estimator, C, scheme."""
    parts = [short_dataset_name(dataset_name)] if dataset_name else []
    parts += [_conditions_part(config.conditions), config.mask_name, config.estimator, f"C={config.C:g}", config.cv]
    if config.cv == "kfold":
        parts[-1] = f"kfold{config.n_folds}"
    if config.screening_percentile is not None:
        parts.append(f"top{config.screening_percentile:g}%")
    if config.tune_C:
        parts.append("tuned C")
    if config.standardize == "none":
        parts.append("raw")
    elif config.standardize == "run":
        parts.append("z per run")
    if config.detrend != "none":
        parts.append(f"detrend per {config.detrend}")
    if config.high_pass is not None:
        parts.append(f"hp{config.high_pass:g}Hz")
    if config.confounds:
        parts.append("+".join(config.confounds))
    if config.smoothing_fwhm:
        parts.append(f"fwhm{config.smoothing_fwhm:g}")
    return ", ".join(parts)


def fold_signature(dataset_digest: str, predictions: pd.DataFrame) -> str:
    """Digest of which volumes each fold tested: equal signatures mean identical folds."""
    hasher = hashlib.sha256(str(dataset_digest).encode())
    if predictions is not None and {"fold", "volume"} <= set(predictions.columns):
        pairs = predictions[["fold", "volume"]].to_numpy(dtype=np.int64)
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
        hasher.update(np.ascontiguousarray(pairs).tobytes())
    return hasher.hexdigest()[:16]


def _json_safe(value):
    """Keep what JSON can hold (numbers, text, lists, dicts); drop arrays and objects."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            safe = _json_safe(item)
            if safe is not _DROP:
                out[str(key)] = safe
        return out
    if isinstance(value, (list, tuple)) and len(value) <= 1000:
        items = [_json_safe(v) for v in value]
        return [v for v in items if v is not _DROP]
    if isinstance(value, np.ndarray) and value.ndim <= 1 and value.size <= 1000:
        return _json_safe(value.tolist())
    if isinstance(value, pd.DataFrame) and value.size <= 10_000:
        # e.g. the confusion matrix and per-class metrics: {"index", "columns", "data"}
        return _json_safe(value.to_dict(orient="split"))
    return _DROP


_DROP = object()


def _voxel_rows(values, mask: np.ndarray, n_voxels: int) -> np.ndarray | None:
    """A (n_maps, n_voxels) float32 map of a result, or None when it has none that fits."""
    if values is None:
        return None
    if isinstance(values, nib.Nifti1Image):
        volume = np.asarray(values.dataobj)
        values = volume[mask] if volume.ndim == 3 else volume[mask].T
    values = np.atleast_2d(np.asarray(values, dtype=np.float32))
    return values if values.ndim == 2 and values.shape[1] == n_voxels else None


def _chosen_C_from(metrics) -> tuple:
    """``(chosen_C, final_C)`` from a stored record's ``"metrics"`` (missing or malformed: nothing)."""
    metrics = metrics if isinstance(metrics, dict) else {}
    chosen = metrics.get("chosen_C")
    final = metrics.get("final_C")
    numbers = isinstance(chosen, list) and all(isinstance(c, (int, float)) and not isinstance(c, bool)
                                               for c in chosen)
    final_ok = isinstance(final, (int, float)) and not isinstance(final, bool)
    return (tuple(float(c) for c in chosen) if numbers else ()), (float(final) if final_ok else None)


@dataclass(frozen=True, eq=False)
class RunRecord:
    """One finished run, as the history keeps it.

    It carries the attributes of a `decoding_core.decoding.DecodingResult` that
    exports and figures read (``config``, ``fold_scores``, ``mean_score``, ...,
    ``predictions``, ``weights``, ``weight_img``), so it can stand in for one.

    Attributes
    ----------
    id : str
        Unique identifier (12 hex characters).
    name : str
        Name shown to the user; editable.
    created_at : str
        ISO 8601 time (UTC) the run was recorded.
    dataset_name : str
        ``"simulated"``, ``"haxby:N"`` or ``"upload"`` (anything else for the user's files).
    dataset_digest : str
        Content digest of the data set (identifies uploads without naming them).
    dataset_title : str
    label_column, run_column : str, str or None
        Columns of the labels table the run used (needed to reproduce it).
    n_run_files : int
        Files the runs came from, one per run (0: one file for all volumes, or a
        built-in data set); the exported script then takes those files.
    label_renames : dict of str to str
        Condition names of that table the data set renamed (merged spellings).
    config : DecodingConfig
    fold_scores : ndarray of shape (n_folds,), float64
    fold_names : list of str
    mean_score, std_score, chance_level : float
    meaningless : bool
        True for ``cv="train"`` (scores of the training data).
    n_samples, n_voxels : int
    elapsed_seconds : float
    classes : tuple of str
    warnings : list of str
    notes : list of str
        How some numbers were computed (`decoding_core.decoding.DecodingResult.notes`).
    not_converged : int
        Fits of the run stopped by their iteration cap (0: every solver converged).
    chosen_C : tuple of float
        C used in each fold (chosen by the inner split when C was tuned); empty when unknown.
    final_C : float or None
        C of the classifier refitted on all samples.
    weights : ndarray of shape (n_maps, n_voxels), float32
    mask : ndarray of bool, 3D
        The decoding mask; ``weights`` columns are its nonzero voxels in C order.
    affine : ndarray of shape (4, 4)
    pattern, stability : ndarray of shape (n_maps, n_voxels), float32, or None
        The activation pattern and the sign stability of the weights (see
        `decoding_core.decoding.DecodingResult`).
    predictions : pandas.DataFrame
        Per-sample predictions (columns ``sample, volume, run, fold, true, predicted, correct``).
    fold_signature : str
        Equal signatures mean the runs tested the same volumes in the same folds.
    """

    id: str
    name: str
    created_at: str
    dataset_name: str
    dataset_digest: str
    dataset_title: str
    config: DecodingConfig
    fold_scores: np.ndarray
    fold_names: list
    mean_score: float
    std_score: float
    chance_level: float
    n_samples: int
    n_voxels: int
    elapsed_seconds: float
    classes: tuple
    weights: np.ndarray
    mask: np.ndarray
    affine: np.ndarray
    predictions: pd.DataFrame
    label_column: str = "labels"
    label_renames: dict = field(default_factory=dict)
    run_column: str | None = "chunks"
    n_run_files: int = 0
    meaningless: bool = False
    warnings: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    not_converged: int = 0
    chosen_C: tuple = ()
    final_C: float | None = None
    pattern: np.ndarray | None = None
    stability: np.ndarray | None = None
    fold_signature: str = ""

    # -- construction ------------------------------------------------------
    @classmethod
    def from_result(cls, result, dataset, name: str | None = None) -> "RunRecord":
        """Record a `DecodingResult` computed on ``dataset``.

        Parameters
        ----------
        result : DecodingResult
        dataset : Dataset
            The data set the run used (its mask ``result.config.mask_name`` gives
            the voxels of ``result.weights``).
        name : str or None
            None gives `default_run_name`.
        """
        config = result.config
        mask_img = dataset.masks.get(config.mask_name)
        if mask_img is None:
            raise DecodingInputError(
                f"The data set has no mask named {config.mask_name!r}; cannot record this run. "
                f"Its masks are: {sorted(dataset.masks)}."
            )
        mask = np.asarray(mask_img.dataobj) != 0
        weights = np.atleast_2d(np.asarray(result.weights, dtype=np.float32))
        if weights.shape[1] != int(mask.sum()):
            raise DecodingInputError(
                f"The run's weights have {weights.shape[1]} voxels but mask {config.mask_name!r} "
                f"has {int(mask.sum())}; cannot record this run."
            )
        predictions = result.predictions.copy() if result.predictions is not None else pd.DataFrame()
        fold_scores = np.asarray(result.fold_scores, dtype=np.float64).ravel()
        maps = {kind: _voxel_rows(getattr(result, kind, None), mask, weights.shape[1])
                for kind in ("pattern", "stability")}
        chosen_C = getattr(result, "chosen_C", None)
        final_C = getattr(result, "final_C", None)
        digest = str(dataset.digest)
        return cls(
            id=_new_id(),
            name=_clean_name(name) if name else default_run_name(config, dataset.name),
            created_at=_now_iso(),
            dataset_name=str(dataset.name),
            dataset_digest=digest,
            dataset_title=str(dataset.title),
            label_column=str(dataset.label_column),
            label_renames={str(k): str(v) for k, v in dataset.label_renames.items()},
            run_column=None if dataset.run_column is None else str(dataset.run_column),
            n_run_files=len(dataset.run_files),
            config=config,
            fold_scores=fold_scores,
            fold_names=fold_names(result),
            mean_score=float(result.mean_score),
            std_score=float(result.std_score),
            chance_level=float(result.chance_level),
            meaningless=bool(result.meaningless),
            n_samples=int(result.n_samples),
            n_voxels=int(result.n_voxels),
            elapsed_seconds=float(result.elapsed_seconds),
            classes=tuple(str(c) for c in result.classes),
            warnings=[str(w) for w in result.warnings],
            notes=[str(n) for n in result.notes],
            not_converged=int(result.not_converged),
            chosen_C=() if chosen_C is None else tuple(float(c) for c in np.ravel(chosen_C)),
            final_C=None if final_C is None else float(final_C),
            weights=weights,
            mask=mask,
            affine=np.asarray(dataset.affine if mask_img.affine is None else mask_img.affine, dtype=np.float64),
            pattern=maps["pattern"],
            stability=maps["stability"],
            predictions=predictions,
            fold_signature=fold_signature(digest, predictions),
        )

    # -- views ---------------------------------------------------------------
    @property
    def mask_img(self) -> nib.Nifti1Image:
        """The decoding mask as a 3D uint8 image."""
        return nib.Nifti1Image(self.mask.astype(np.uint8), self.affine)

    def map_img(self, values: np.ndarray) -> nib.Nifti1Image:
        """Put (n_maps, n_voxels) values back on the grid: 3D for one map, 4D for several."""
        values = np.atleast_2d(np.asarray(values, dtype=np.float32))
        volume = np.zeros(self.mask.shape + (values.shape[0],), dtype=np.float32)
        volume[self.mask] = values.T
        if values.shape[0] == 1:
            volume = volume[..., 0]
        return nib.Nifti1Image(volume, self.affine)

    @property
    def weight_img(self) -> nib.Nifti1Image:
        """The weight map rebuilt as a nibabel image (3D for two classes, 4D otherwise)."""
        return self.map_img(self.weights)

    @property
    def pattern_img(self) -> nib.Nifti1Image | None:
        """The activation pattern as an image, as `DecodingResult.pattern_img`; None if not kept."""
        return None if self.pattern is None else self.map_img(self.pattern)

    @property
    def stability_img(self) -> nib.Nifti1Image | None:
        """The sign-stability map as an image, as `DecodingResult.stability_img`; None if not kept."""
        return None if self.stability is None else self.map_img(self.stability)

    @property
    def dataset_spec(self) -> str | None:
        """``"simulated"`` or ``"haxby:N"`` when the data set can be reloaded by name, else None."""
        spec = DatasetSpec.from_name(self.dataset_name)
        return str(spec) if spec is not None and spec.shareable else None

    def summary_row(self) -> dict:
        """One row for a history table (see `summary_row_from_metadata`)."""
        return summary_row_from_metadata(self.metadata())

    # -- serialisation -------------------------------------------------------
    def metadata(self) -> dict:
        """Everything but the arrays and predictions, JSON-able."""
        return {
            "id": self.id, "name": self.name, "created_at": self.created_at,
            "dataset_name": self.dataset_name, "dataset_digest": self.dataset_digest,
            "dataset_title": self.dataset_title, "label_column": self.label_column,
            "label_renames": dict(self.label_renames),
            "run_column": self.run_column, "n_run_files": self.n_run_files, "config": self.config.to_dict(),
            "fold_names": list(self.fold_names), "mean_score": _json_safe(self.mean_score),
            "std_score": _json_safe(self.std_score), "chance_level": _json_safe(self.chance_level),
            "meaningless": self.meaningless, "n_samples": self.n_samples, "n_voxels": self.n_voxels,
            "elapsed_seconds": self.elapsed_seconds, "classes": list(self.classes),
            "warnings": list(self.warnings), "notes": list(self.notes),
            "not_converged": self.not_converged,
            # "metrics" is the layout of earlier exports, kept so that they import.
            "metrics": {"chosen_C": list(self.chosen_C), "final_C": self.final_C},
            "fold_signature": self.fold_signature,
        }

    def arrays_bytes(self) -> bytes:
        """The arrays as an ``.npz`` (no pickled objects)."""
        buffer = io.BytesIO()
        arrays = {"weights": self.weights, "mask": self.mask, "affine": self.affine,
                  "fold_scores": self.fold_scores}
        arrays.update({f"map__{kind}": values for kind, values in self.maps().items()})
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    def maps(self) -> dict:
        """The further voxel maps the record keeps (``"pattern"``, ``"stability"``) by name."""
        return {kind: values for kind, values in (("pattern", self.pattern), ("stability", self.stability))
                if values is not None}

    def predictions_bytes(self) -> bytes:
        # Safe to open in a spreadsheet (a label "=cmd|..." stays text); read back by `_checked_predictions`.
        return export.csv_text(self.predictions).encode()

    @classmethod
    def from_parts(cls, metadata: dict, arrays: bytes, predictions: bytes) -> "RunRecord":
        """Rebuild a record from `metadata`, `arrays_bytes` and `predictions_bytes`; validates all."""
        return _record_from_parts(metadata, arrays, predictions)


def summary_row_from_metadata(metadata: dict) -> dict:
    """One row of a history table from a record's `RunRecord.metadata` (no arrays needed)."""
    config = metadata.get("config", {})
    return {
        "id": metadata.get("id"), "name": metadata.get("name"), "created": metadata.get("created_at"),
        "data set": metadata.get("dataset_title") or metadata.get("dataset_name"),
        "mask": config.get("mask_name"), "estimator": config.get("estimator"), "C": config.get("C"),
        "tuned C": config.get("tune_C"), "cv": config.get("cv"), "scoring": config.get("scoring"),
        "conditions": ", ".join(map(str, config.get("conditions", []))),
        "folds": len(metadata.get("fold_names", [])), "mean score": metadata.get("mean_score"),
        "sd": metadata.get("std_score"), "chance": metadata.get("chance_level"),
        "samples": metadata.get("n_samples"), "voxels": metadata.get("n_voxels"),
        "seconds": metadata.get("elapsed_seconds"),
    }


_SUMMARY_COLUMNS = list(summary_row_from_metadata({}).keys())


def _invalid_history(what: str) -> DecodingInputError:
    return DecodingInputError(
        f"This is not a valid fMRI Decoding Lab history: {what}. "
        "Import a file saved with 'Export history'."
    )


def _checked_metadata(metadata) -> DecodingConfig:
    """Check a stored run's metadata fields; its configuration."""
    bad = _invalid_history
    if not isinstance(metadata, dict):
        raise bad("a run's record is not a JSON object")
    required = {"id": str, "name": str, "created_at": str, "dataset_name": str, "dataset_digest": str,
                "config": dict, "mean_score": (int, float, type(None)), "n_samples": int, "n_voxels": int}
    for key, expected in required.items():
        if not isinstance(metadata.get(key), expected) or isinstance(metadata.get(key), bool) and expected is int:
            raise bad(f"field {key!r} is missing or of the wrong type")
    if not re.fullmatch(r"[0-9a-f]{6,32}", metadata["id"]):
        raise bad(f"run id {metadata['id'][:40]!r} is malformed")
    try:
        return DecodingConfig.from_dict(metadata["config"])
    except (DecodingInputError, TypeError) as err:
        raise bad(f"a run's configuration is invalid ({err})") from None


def _checked_arrays(arrays_blob: bytes) -> dict:
    """A stored run's arrays (``.npz``, no pickles), checked against its mask."""
    bad = _invalid_history
    try:
        with np.load(io.BytesIO(arrays_blob), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception:  # np.load raises many types on junk; all mean the same here
        raise bad("a run's arrays are unreadable") from None
    for key in ("weights", "mask", "affine", "fold_scores"):
        if key not in arrays:
            raise bad(f"a run has no {key!r} array")
    weights, mask, affine = arrays["weights"], arrays["mask"], arrays["affine"]
    fold_scores = arrays["fold_scores"]
    if mask.ndim != 3 or mask.dtype != bool or affine.shape != (4, 4) or not np.isfinite(affine).all():
        raise bad("a run's mask or affine is malformed")
    n_voxels = int(mask.sum())
    if weights.ndim != 2 or weights.shape[1] != n_voxels or weights.dtype.kind != "f":
        raise bad("a run's weights do not match its mask")
    if fold_scores.ndim != 1 or fold_scores.dtype.kind != "f" or fold_scores.size == 0:
        raise bad("a run's fold scores are malformed")
    for key, value in arrays.items():
        if key.startswith("map__") and (value.ndim != 2 or value.shape[1] != n_voxels or value.dtype.kind != "f"):
            raise bad(f"a run's map {key[5:]!r} does not match its mask")
    return arrays


def _checked_predictions(predictions_blob: bytes) -> pd.DataFrame:
    bad = _invalid_history
    try:
        predictions = pd.read_csv(io.BytesIO(predictions_blob)) if predictions_blob else pd.DataFrame()
        predictions = export.restore_formulas(predictions)
    except Exception:
        raise bad("a run's predictions are not a readable CSV table") from None
    if len(predictions.columns) and not set(_PREDICTION_COLUMNS[:4]) <= set(predictions.columns):
        raise bad("a run's predictions table lacks the columns sample, volume, run, fold")
    for column in ("true", "predicted"):
        if column in predictions:
            predictions[column] = predictions[column].astype(str).to_numpy(dtype=object)
    return predictions


def _record_from_parts(metadata, arrays_blob: bytes, predictions_blob: bytes) -> RunRecord:
    config = _checked_metadata(metadata)
    arrays = _checked_arrays(arrays_blob)
    predictions = _checked_predictions(predictions_blob)
    fold_scores = arrays["fold_scores"]
    fold_names = metadata.get("fold_names") or [f"fold {i + 1}" for i in range(fold_scores.size)]
    if not isinstance(fold_names, list) or len(fold_names) != fold_scores.size:
        raise _invalid_history("a run's fold names do not match its fold scores")
    chosen_C, final_C = _chosen_C_from(metadata.get("metrics"))

    def number(key, default=float("nan")):
        value = metadata.get(key, default)
        if value is None:
            return float("nan")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _invalid_history(f"field {key!r} is not a number")
        return float(value)

    run_column = metadata.get("run_column", "chunks")
    return RunRecord(
        id=metadata["id"],
        name=_clean_name(metadata["name"]),
        created_at=metadata["created_at"][:40],
        dataset_name=metadata["dataset_name"][:200],
        dataset_digest=metadata["dataset_digest"][:128],
        dataset_title=str(metadata.get("dataset_title", ""))[:500],
        label_column=str(metadata.get("label_column", "labels")),
        label_renames=_renames(metadata.get("label_renames", {})),
        run_column=None if run_column is None else str(run_column),
        n_run_files=_count(metadata.get("n_run_files", 0), "n_run_files"),
        config=config,
        fold_scores=fold_scores.astype(np.float64),
        fold_names=[str(n) for n in fold_names],
        mean_score=number("mean_score"),
        std_score=number("std_score"),
        chance_level=number("chance_level"),
        meaningless=bool(metadata.get("meaningless", False)),
        n_samples=int(metadata["n_samples"]),
        n_voxels=int(metadata["n_voxels"]),
        elapsed_seconds=number("elapsed_seconds", 0.0),
        classes=tuple(str(c) for c in metadata.get("classes", [])),
        warnings=[str(w) for w in metadata.get("warnings", [])][:100],
        notes=[str(n) for n in metadata.get("notes", [])][:100],
        not_converged=_count(metadata.get("not_converged", 0)),
        chosen_C=chosen_C,
        final_C=final_C,
        weights=arrays["weights"].astype(np.float32),
        mask=arrays["mask"],
        affine=arrays["affine"].astype(np.float64),
        pattern=_stored_map(arrays, "pattern"),
        stability=_stored_map(arrays, "stability"),
        predictions=predictions,
        fold_signature=str(metadata.get("fold_signature", "")),
    )


def _renames(value) -> dict:
    """Stored condition renames (earlier exports have none); anything but text -> text is refused."""
    if not isinstance(value, dict) or len(value) > 10_000 or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise _invalid_history("field 'label_renames' is not a table of condition names")
    return dict(value)


def _count(value, field: str = "not_converged") -> int:
    """A stored count (earlier exports have none: 0); anything but a whole number is refused."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid_history(f"field {field!r} is not a count")
    return value


def _stored_map(arrays: dict, kind: str) -> np.ndarray | None:
    values = arrays.get(f"map__{kind}")
    return None if values is None else values.astype(np.float32)


# -- history files ------------------------------------------------------------
def records_to_bytes(records) -> bytes:
    """Write records as a history file (zip; see the module docstring)."""
    records = list(records)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        manifest = {"format": HISTORY_FORMAT, "version": SCHEMA_VERSION, "created_at": _now_iso(),
                    "runs": [r.id for r in records]}
        archive.writestr("manifest.json", json.dumps(manifest, indent=1))
        for record in records:
            archive.writestr(f"runs/{record.id}/record.json", json.dumps(record.metadata(), indent=1))
            archive.writestr(f"runs/{record.id}/arrays.npz", record.arrays_bytes())
            archive.writestr(f"runs/{record.id}/predictions.csv", record.predictions_bytes())
    return buffer.getvalue()


def records_from_bytes(data: bytes, *, max_bytes: int = MAX_IMPORT_BYTES) -> list[RunRecord]:
    """Read and validate a history file written by `records_to_bytes`.

    Raises
    ------
    DecodingInputError
        When the file is too large, not a zip, not a history, or any run is malformed.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise DecodingInputError(f"A history file must be bytes. Got {type(data).__name__}.")
    data = bytes(data)
    if len(data) > max_bytes:
        raise DecodingInputError(
            f"The history file is {len(data) / 1e6:.1f} MB; at most {max_bytes / 1e6:.0f} MB can be imported. "
            "Export fewer runs at a time."
        )
    not_history = DecodingInputError(
        "This file is not an fMRI Decoding Lab history (expected a .zip saved with 'Export history')."
    )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        raise not_history from None
    with archive:
        total = sum(info.file_size for info in infos)
        if total > max_bytes or len(infos) > 3 * MAX_IMPORT_RUNS + 1:
            raise DecodingInputError(
                f"The history file unpacks to {total / 1e6:.1f} MB in {len(infos)} members; "
                f"at most {max_bytes / 1e6:.0f} MB and {MAX_IMPORT_RUNS} runs can be imported."
            )
        names = {info.filename for info in infos}

        def read(member: str) -> bytes:
            if member not in names:
                raise DecodingInputError(f"The history file lacks {member!r}; it is incomplete or not a history.")
            try:
                with archive.open(member) as handle:
                    # Bounded read: the header's file_size could lie about a zip bomb.
                    content = handle.read(max_bytes + 1)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError):
                raise DecodingInputError(f"The history file's member {member!r} is corrupt.") from None
            if len(content) > max_bytes:
                raise DecodingInputError("The history file unpacks to more than the import limit.")
            return content

        if "manifest.json" not in names:
            raise not_history
        try:
            manifest = json.loads(read("manifest.json"))
        except (ValueError, UnicodeDecodeError):
            raise not_history from None
        if not isinstance(manifest, dict) or manifest.get("format") != HISTORY_FORMAT:
            raise not_history
        version = manifest.get("version")
        if not isinstance(version, int) or version > SCHEMA_VERSION or version < 1:
            raise DecodingInputError(
                f"The history file has format version {version!r}; this app reads versions 1 to "
                f"{SCHEMA_VERSION}. Update the app to import it."
            )
        run_ids = manifest.get("runs")
        if not isinstance(run_ids, list) or len(run_ids) > MAX_IMPORT_RUNS:
            raise not_history
        records = []
        for run_id in run_ids:
            if not isinstance(run_id, str) or not re.fullmatch(r"[0-9a-f]{6,32}", run_id):
                raise DecodingInputError("The history file names a malformed run id.")
            try:
                metadata = json.loads(read(f"runs/{run_id}/record.json"))
            except (ValueError, UnicodeDecodeError):
                raise DecodingInputError(f"Run {run_id}'s record in the history file is not valid JSON.") from None
            records.append(_record_from_parts(
                metadata, read(f"runs/{run_id}/arrays.npz"), read(f"runs/{run_id}/predictions.csv")
            ))
    return records


# -- stores -------------------------------------------------------------------
@runtime_checkable
class RunStore(Protocol):
    """What the app needs from a run history."""

    def add(self, result, dataset, name: str | None = None) -> RunRecord: ...
    def add_record(self, record: RunRecord) -> RunRecord: ...
    def list(self) -> list[RunRecord]: ...
    def summary_table(self) -> pd.DataFrame: ...
    def get(self, run_id: str) -> RunRecord: ...
    def rename(self, run_id: str, name: str) -> RunRecord: ...
    def delete(self, run_id: str) -> None: ...
    def export_bytes(self, ids=None) -> bytes: ...
    def import_bytes(self, data: bytes) -> list[RunRecord]: ...


class _StoreBase:
    """Shared behaviour of the stores: `add`, export and import."""

    def add(self, result, dataset, name: str | None = None) -> RunRecord:
        """Record a finished run; returns its `RunRecord` (with a new id)."""
        return self.add_record(RunRecord.from_result(result, dataset, name=name))

    def export_bytes(self, ids=None) -> bytes:
        """A history file (zip) of the runs ``ids`` (all runs when None), oldest first."""
        if ids is None:
            records = self.list()
        else:
            records = [self.get(run_id) for run_id in ids]
        return records_to_bytes(sorted(records, key=lambda r: r.created_at))

    def import_bytes(self, data: bytes) -> list[RunRecord]:
        """Add the runs of a history file; runs whose id is already here get a new id.

        Everything is validated before anything is added: a bad file adds nothing.
        """
        records = records_from_bytes(data)
        existing = {r.id for r in self.list()}
        added = []
        for record in records:
            if record.id in existing:
                record = dataclasses.replace(record, id=_new_id())
            existing.add(record.id)
            added.append(self.add_record(record))
        return added

    def summary_table(self) -> pd.DataFrame:
        """One row per run, newest first (id, name, created, data set, settings, scores)."""
        return pd.DataFrame([r.summary_row() for r in self.list()], columns=_SUMMARY_COLUMNS)

    def _missing(self, run_id) -> DecodingInputError:
        return DecodingInputError(
            f"No run with id {str(run_id)[:40]!r} in the history; it may have been deleted. "
            "Pick a run from the list."
        )


class MemoryRunStore(_StoreBase):
    """Runs kept in memory, for one browser session; nothing is written to disk.

    Parameters
    ----------
    max_runs : int, default=200
        When more runs are added, the oldest are dropped (bounds a session's memory).
    """

    def __init__(self, max_runs: int = 200):
        self.max_runs = int(max_runs)
        # In the order runs were added: reading a run does not make it newer.
        self._records = BoundedCache(max_entries=self.max_runs, refresh_on_read=False)
        self._lock = threading.Lock()

    def add_record(self, record: RunRecord) -> RunRecord:
        self._records.put(record.id, record)
        return record

    def list(self) -> list[RunRecord]:
        """All runs, newest first."""
        return list(reversed(self._records.values()))

    def get(self, run_id: str) -> RunRecord:
        record = self._records.get(run_id)
        if record is None:
            raise self._missing(run_id)
        return record

    def rename(self, run_id: str, name: str) -> RunRecord:
        name = _clean_name(name)
        with self._lock:  # read and replace as one step
            record = self._records.get(run_id)
            if record is None:
                raise self._missing(run_id)
            record = dataclasses.replace(record, name=name)
            self._records.update(run_id, record)
        return record

    def delete(self, run_id: str) -> None:
        if self._records.pop(run_id) is None:
            raise self._missing(run_id)

    def __len__(self) -> int:
        return len(self._records)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    dataset_name TEXT NOT NULL,
    dataset_digest TEXT NOT NULL,
    metadata_json TEXT NOT NULL,
    arrays_npz BLOB NOT NULL,
    predictions_csv BLOB NOT NULL
);
"""


class SQLiteRunStore(_StoreBase):
    """Runs kept in an SQLite database file; the history survives app restarts.

    One connection per call (safe from Streamlit's threads and from several app
    processes), write-ahead logging, schema version in ``PRAGMA user_version``.

    Parameters
    ----------
    path : str or Path
        The database file; its directory is created when missing.

    Raises
    ------
    DecodingInputError
        When the file is not an SQLite database, or was written by a newer app.
    """

    def __init__(self, path):
        self.path = Path(path).expanduser()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DecodingInputError(
                f"Cannot create the history directory {self.path.parent}: {err.strerror}. "
                f"Set {HISTORY_PATH_ENV} to a writable file path."
            ) from None
        try:
            with self._connect() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise DecodingInputError(
                        f"The history file {self.path} was written by a newer version of the app "
                        f"(schema {version}; this app knows {SCHEMA_VERSION}). Update the app, or set "
                        f"{HISTORY_PATH_ENV} to another file."
                    )
                conn.execute("PRAGMA journal_mode=WAL")
                conn.executescript(_SCHEMA)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as err:
            raise DecodingInputError(
                f"The history file {self.path} is not a usable SQLite database ({err}). "
                f"Move it away, or set {HISTORY_PATH_ENV} to another file."
            ) from None

    @contextlib.contextmanager
    def _connect(self):
        conn = sqlite3.connect(self.path, timeout=30.0)
        try:
            with conn:  # commits on success, rolls back on error
                yield conn
        finally:
            conn.close()

    def add_record(self, record: RunRecord) -> RunRecord:
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO runs (id, name, created_at, dataset_name, dataset_digest, metadata_json, "
                "arrays_npz, predictions_csv) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (record.id, record.name, record.created_at, record.dataset_name, record.dataset_digest,
                 json.dumps(record.metadata()), record.arrays_bytes(), record.predictions_bytes()),
            )
        return record

    @staticmethod
    def _from_row(row) -> RunRecord:
        name, metadata_json, arrays, predictions = row
        metadata = json.loads(metadata_json)
        metadata["name"] = name  # renames touch only the column
        return _record_from_parts(metadata, arrays, predictions)

    def list(self) -> list[RunRecord]:
        """All runs, newest first."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT name, metadata_json, arrays_npz, predictions_csv FROM runs ORDER BY seq DESC"
            ).fetchall()
        return [self._from_row(row) for row in rows]

    def summary_table(self) -> pd.DataFrame:
        """One row per run, newest first; reads no arrays (fast for a long history)."""
        with self._connect() as conn:
            rows = conn.execute("SELECT name, metadata_json FROM runs ORDER BY seq DESC").fetchall()
        summaries = []
        for name, metadata_json in rows:
            metadata = json.loads(metadata_json)
            metadata["name"] = name
            summaries.append(summary_row_from_metadata(metadata))
        return pd.DataFrame(summaries, columns=_SUMMARY_COLUMNS)

    def get(self, run_id: str) -> RunRecord:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT name, metadata_json, arrays_npz, predictions_csv FROM runs WHERE id = ?", (run_id,)
            ).fetchone()
        if row is None:
            raise self._missing(run_id)
        return self._from_row(row)

    def rename(self, run_id: str, name: str) -> RunRecord:
        name = _clean_name(name)
        with self._connect() as conn:
            changed = conn.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id)).rowcount
        if not changed:
            raise self._missing(run_id)
        return self.get(run_id)

    def delete(self, run_id: str) -> None:
        with self._connect() as conn:
            deleted = conn.execute("DELETE FROM runs WHERE id = ?", (run_id,)).rowcount
        if not deleted:
            raise self._missing(run_id)

    def __len__(self) -> int:
        with self._connect() as conn:
            return conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
