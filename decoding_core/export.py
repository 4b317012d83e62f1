"""Exports of a decoding run: NIfTI bytes, CSV tables, JSON configuration and summary.

Every function returns bytes, text or plain Python data, so the app can hand
it to ``st.download_button`` and the command line can write it to a file.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from numbers import Integral, Real

import nibabel as nib
import numpy as np
import pandas as pd

from decoding_core.config import DecodingConfig
from decoding_core.errors import DecodingInputError, DecodingInputTypeError

__all__ = [
    "config_json",
    "csv_text",
    "fold_scores_csv",
    "fold_table",
    "image_to_nifti_bytes",
    "neutralise_formulas",
    "predictions_csv",
    "restore_formulas",
    "read_config_json",
    "result_summary",
]

#: Identifies the files `config_json` writes.
CONFIG_FORMAT = "fmri-decoding-lab/config"
CONFIG_FORMAT_VERSION = 1


def image_to_nifti_bytes(img, *, compresslevel: int = 6) -> bytes:
    """A NIfTI-1 image as the bytes of a ``.nii.gz`` file.

    Parameters
    ----------
    img : nibabel image
        Any nibabel spatial image (converted to NIfTI-1 when it is another format).
    compresslevel : int, default=6
        gzip level, 1 (fast) to 9 (small).

    Returns
    -------
    bytes
        A gzip stream with no file name and a zero time stamp, so the same
        image always gives the same bytes.

    Raises
    ------
    DecodingInputTypeError
        When ``img`` is not a nibabel image.
    """
    if not isinstance(img, nib.spatialimages.SpatialImage):
        raise DecodingInputTypeError(
            f"'img' must be a nibabel image (e.g. nibabel.Nifti1Image). Got {type(img).__name__}."
        )
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        img = nib.Nifti1Image(np.asanyarray(img.dataobj), img.affine)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=compresslevel, mtime=0, filename="") as stream:
        stream.write(img.to_bytes())
    return buffer.getvalue()


def _plain(value):
    """Numpy scalars and arrays as plain Python; NaN and infinities as None (strict JSON)."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, Integral):
        return int(value)
    if isinstance(value, Real):
        value = float(value)
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def fold_table(result) -> pd.DataFrame:
    """One row per fold: fold id, test run, number of test samples, score.

    Parameters
    ----------
    result : DecodingResult

    Returns
    -------
    pandas.DataFrame
        Columns ``fold`` (the fold id used in ``result.predictions``),
        ``test_run`` (only for leave-one-run-out: the run tested, or the runs
        joined with "+"), ``n_test`` and ``score``, in the order of
        ``result.fold_scores``.
    """
    scores = np.asarray(result.fold_scores, dtype=float).ravel()
    predictions = result.predictions
    has_folds = isinstance(predictions, pd.DataFrame) and "fold" in predictions
    fold_ids = sorted(pd.unique(predictions["fold"]).tolist()) if has_folds else []
    if len(fold_ids) != scores.size:
        # The predictions do not say which row belongs to which fold: number them.
        fold_ids = list(range(scores.size))
        has_folds = False
    table = pd.DataFrame({"fold": fold_ids})
    if result.config.cv == "leave-one-run-out":
        test_runs = []
        for fold in fold_ids:
            runs = (
                pd.unique(predictions.loc[predictions["fold"] == fold, "run"]).tolist()
                if has_folds and "run" in predictions
                else []
            )
            runs = [int(r) if isinstance(r, (float, np.floating)) and float(r).is_integer() else r for r in runs]
            test_runs.append(runs[0] if len(runs) == 1 else ("+".join(str(r) for r in runs) or None))
        table["test_run"] = test_runs
    if has_folds:
        counts = predictions.groupby("fold").size()
        table["n_test"] = [int(counts.get(f, 0)) for f in fold_ids]
    elif isinstance(predictions, pd.DataFrame) and scores.size == 1:
        table["n_test"] = [len(predictions)]
    else:
        table["n_test"] = [0] * scores.size
    table["score"] = scores
    return table


def fold_names(result, table: pd.DataFrame | None = None) -> list[str]:
    """One label per fold, as the Results page and the run history show them.

    Parameters
    ----------
    result : DecodingResult or RunRecord
    table : pandas.DataFrame, optional
        `fold_table` of ``result``, when already made.

    Returns
    -------
    list of str
        ``"run 3"`` (the run tested) for leave-one-run-out, ``"training data"``
        when the scheme scores the training data, ``"held-out samples"`` for the
        hold-out, else ``"fold 1"``, ``"fold 2"``, ...
    """
    table = fold_table(result) if table is None else table
    cv = result.config.cv
    if result.meaningless or cv == "train":
        return ["training data"]
    if cv == "holdout" and len(table) == 1:
        return ["held-out samples"]
    if cv == "leave-one-run-out" and "test_run" in table:
        return [f"run {run}" if run is not None and run == run else f"fold {n + 1}"
                for n, run in enumerate(table["test_run"])]
    return [f"fold {n + 1}" for n in range(len(table))]


#: First characters that make a spreadsheet (Excel, LibreOffice, Sheets) run a cell as a formula
#: (OWASP, "CSV Injection"): such a text cell is written with a leading apostrophe.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _neutralised_cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS + ("'",)):
        # A cell that already starts with an apostrophe gets one more only when the rest would be
        # taken for a neutralised formula, so that `restore_formulas` gives back the exact text.
        if not value.startswith("'") or value[1:].startswith(FORMULA_TRIGGERS + ("'",)):
            return "'" + value
    return value


def _restored_cell(value):
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_TRIGGERS + ("'",)):
        return value[1:]
    return value


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``table`` whose text cells a spreadsheet would run as formulas start with ``'``.

    OWASP's rule for CSV files: a text cell (or column name) that starts with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return is prefixed with an apostrophe, so a label like
    ``=cmd|' /C calc'!A0`` is shown as text. Numbers are left alone (-0.5 stays a number).
    `restore_formulas` undoes it exactly.

    Parameters
    ----------
    table : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
    """
    safe = table.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(_neutralised_cell).astype(object)
    safe.columns = [_neutralised_cell(c) for c in safe.columns]
    return safe


def restore_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """The table `neutralise_formulas` was given: the apostrophes it added removed."""
    restored = table.copy()
    for column in restored.columns:
        if restored[column].dtype == object or pd.api.types.is_string_dtype(restored[column]):
            restored[column] = restored[column].map(_restored_cell)
    restored.columns = [_restored_cell(c) for c in restored.columns]
    return restored


def csv_text(table: pd.DataFrame, **to_csv_options) -> str:
    """``table`` as CSV text safe to open in a spreadsheet (`neutralise_formulas`, no index)."""
    return neutralise_formulas(table).to_csv(index=False, **to_csv_options)


def fold_scores_csv(result) -> str:
    """The per-fold scores as CSV text (see `fold_table` for the columns); safe in a spreadsheet."""
    return csv_text(fold_table(result), float_format="%.6g")


def predictions_csv(result) -> str:
    """Every tested sample's true and predicted condition as CSV text.

    Columns as in ``DecodingResult.predictions`` (sample, volume, run, fold,
    true, predicted, correct).
    """
    predictions = result.predictions
    if not isinstance(predictions, pd.DataFrame):
        raise DecodingInputError("The result has no predictions table to export.")
    return csv_text(predictions, float_format="%.6g")


def _software_versions() -> dict:
    import nilearn
    import sklearn

    return {"nibabel": nib.__version__, "nilearn": nilearn.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "scikit-learn": sklearn.__version__}


def config_json(config: DecodingConfig, dataset=None) -> str:
    """The configuration of a run as pretty JSON, with the data set it ran on.

    Parameters
    ----------
    config : DecodingConfig
    dataset : Dataset, optional
        Its name, title and content digest are recorded, so the run can be
        matched to its data.

    Returns
    -------
    str
        ``{"format": ..., "version": 1, "config": config.to_dict(),
        "dataset": {"name", "title", "digest"} or null, "software": {...}}``.
        `read_config_json` reads it back (and also a bare ``config.to_dict()``).
    """
    if not isinstance(config, DecodingConfig):
        raise DecodingInputTypeError(f"'config' must be a DecodingConfig. Got {type(config).__name__}.")
    dataset_info = None
    if dataset is not None:
        dataset_info = {key: _plain(getattr(dataset, key, None)) for key in ("name", "title", "digest")}
    document = {
        "format": CONFIG_FORMAT,
        "version": CONFIG_FORMAT_VERSION,
        "config": config.to_dict(),
        "dataset": dataset_info,
        "software": _software_versions(),
    }
    return json.dumps(document, indent=2, allow_nan=False)


def read_config_json(text: str | bytes) -> tuple:
    """Read a configuration written by `config_json` (or a bare ``DecodingConfig.to_json``).

    Parameters
    ----------
    text : str or bytes

    Returns
    -------
    (DecodingConfig, dict or None)
        The configuration and the recorded data set (name, title, digest).

    Raises
    ------
    DecodingInputError
        Not JSON, not a configuration, or an invalid setting.
    """
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise DecodingInputError(f"The configuration file is not valid JSON: {err}.") from None
    if isinstance(document, dict) and document.get("format") == CONFIG_FORMAT:
        if not isinstance(document.get("config"), dict):
            raise DecodingInputError("The configuration file has no 'config' object.")
        dataset = document.get("dataset")
        return DecodingConfig.from_dict(document["config"]), dataset if isinstance(dataset, dict) else None
    return DecodingConfig.from_dict(document), None


def result_summary(result) -> dict:
    """The headline numbers of a run as plain, strictly JSON-able Python data.

    Parameters
    ----------
    result : DecodingResult

    Returns
    -------
    dict
        ``fold_scores`` (list), ``mean_score``, ``std_score``, ``chance_level``,
        ``meaningless``, ``n_samples``, ``n_voxels``, ``n_folds``, ``cv``,
        ``conditions``, ``classes``, ``mask_name``, ``estimator``, ``C``,
        ``scoring``, ``warnings``, ``notes`` (how some numbers were computed),
        ``not_converged`` (fits stopped by their iteration cap), ``elapsed_seconds``
        and ``folds`` (the rows of `fold_table`). Non-finite numbers become None, so
        ``json.dumps(summary, allow_nan=False)`` works.
    """
    config = result.config
    table = fold_table(result)
    return _plain({
        "fold_scores": np.asarray(result.fold_scores, dtype=float),
        "mean_score": result.mean_score,
        "std_score": result.std_score,
        "chance_level": result.chance_level,
        "meaningless": bool(result.meaningless),
        "n_samples": int(result.n_samples),
        "n_voxels": int(result.n_voxels),
        "n_folds": int(np.asarray(result.fold_scores).size),
        "cv": config.cv,
        "conditions": list(config.conditions),
        "classes": [str(c) for c in result.classes],
        "mask_name": config.mask_name,
        "estimator": config.estimator,
        "C": config.C,
        "scoring": config.scoring,
        "warnings": [str(w) for w in result.warnings],
        "notes": [str(n) for n in result.notes],
        "not_converged": int(result.not_converged),
        "elapsed_seconds": result.elapsed_seconds,
        "folds": table.to_dict(orient="records"),
    })
