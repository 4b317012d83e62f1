"""Tables and short summaries of data sets, selections, results and the run history.

These are what the app shows beside its figures (the counts per condition and run,
what a configuration will decode, per-class precision and recall, the history
table), computed from plain data with pandas and numpy. Nothing here draws or
reads app state, so the app, the command line and notebooks show the same numbers.

Examples
--------
>>> from decoding_core.datasets import load_simulated      # doctest: +SKIP
>>> dataset = load_simulated()                               # doctest: +SKIP
>>> selection_summary(dataset, ["face", "cat"], "vt").n_samples  # doctest: +SKIP
216
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from decoding_core.config import DecodingConfig
from decoding_core.datasets import HAXBY_CATEGORIES, MASK_TITLES
from decoding_core.export import fold_table
from decoding_core.sweeps import sweep_table

#: Masks a run uses by default, in order of preference (the tutorial's first).
PREFERRED_MASKS = ("vt", "uploaded", "epi")
#: The tutorial's pair of conditions.
TUTORIAL_CONDITIONS = ("face", "cat")


# -- data sets ------------------------------------------------------------------------
def condition_names(dataset) -> list[str]:
    """The data set's conditions, Haxby categories first in their usual order, then the rest sorted."""
    present = list(pd.unique(pd.Series(dataset.conditions)))
    return _haxby_order(present)


def _haxby_order(names) -> list[str]:
    known = [c for c in HAXBY_CATEGORIES if c in names]
    return known + sorted(c for c in names if c not in known)


#: The label of volumes without a stimulus (Haxby's "rest"), left out of "categories (no rest)".
REST_LABEL = "rest"


def categories_without_rest(conditions) -> list[str]:
    """Every condition but rest (compared without regard to case or spaces), in the order given.

    What "Categories (no rest)" selects on the Configure page: on Haxby's data the 8
    categories (chance 0.125 balanced), where "Select all" would add the 588 rest volumes.
    """
    return [c for c in conditions if str(c).strip().lower() != REST_LABEL]


def dataset_summary(dataset) -> dict[str, str]:
    """Shape, voxel size, TR, number of volumes and runs, as display strings.

    Returns
    -------
    dict
        Display label -> value, in display order (``"Image shape"``, ``"Voxel size (mm)"``,
        ``"TR (s)"``, ``"Volumes"``, ``"Runs"``).
    """
    voxel = " x ".join(f"{v:.3g}" for v in dataset.voxel_size)
    return {
        "Image shape": " x ".join(str(int(s)) for s in dataset.shape[:3]),
        "Voxel size (mm)": voxel,
        "TR (s)": "unknown" if dataset.tr is None else f"{float(dataset.tr):g}",
        "Volumes": str(dataset.n_volumes),
        "Runs": str(dataset.n_runs) if dataset.n_runs else "none",
    }


def mask_voxel_counts(dataset) -> dict[str, int]:
    """Number of voxels in each of the data set's masks, in the data set's order."""
    return {name: int(np.count_nonzero(np.asanyarray(img.dataobj))) for name, img in dataset.masks.items()}


def mask_label(name: str, counts: dict) -> str:
    """``"vt - Ventral temporal cortex (464 voxels)"``: a mask's name, title and size."""
    title = MASK_TITLES.get(name, name)
    count = counts.get(name)
    return f"{name} - {title} ({count} voxels)" if count is not None else f"{name} - {title}"


def condition_run_counts(dataset) -> pd.DataFrame:
    """Volumes per condition (rows) and run (columns), with totals.

    Without runs, one column ``volumes`` of counts per condition.
    """
    labels = pd.Series(dataset.conditions, name="condition")
    runs = dataset.runs
    if runs is None:
        return labels.value_counts().rename("volumes").to_frame()
    table = pd.crosstab(labels, pd.Series(runs, name="run"), margins=True, margins_name="total")
    table.columns = [str(c) for c in table.columns]
    table.index = [str(i) for i in table.index]
    return table


def _spellings(group) -> str:
    return " / ".join(repr(name) for name in group)


def label_variants_message(groups) -> str:
    """What the Data page says about condition names differing only by case or spaces (`label_variants`)."""
    listed = "; ".join(_spellings(group) for group in groups)
    return (f"Some condition names differ only in case or spaces, so they count as different conditions: "
            f"{listed}. If each group is one condition, tick 'Merge condition names that differ only in case "
            "or spaces': each group then takes its most frequent spelling (listed first).")


def selected_variants_message(groups, conditions) -> str | None:
    """What the Configure page says when a chosen condition has other spellings; None when none has."""
    chosen = set(conditions)
    touched = [group for group in groups if chosen.intersection(group)]
    if not touched:
        return None
    listed = "; ".join(_spellings(group) for group in touched)
    return (f"The chosen conditions have other spellings in this data set ({listed}): each spelling is a "
            "class of its own. To decode them as one condition, tick 'Merge condition names that differ "
            "only in case or spaces' on the Data page.")


def nonfinite_message(scan) -> str:
    """What the Data page says about voxels holding NaN or infinite values (`masking.scan_nonfinite`)."""
    where = "; ".join(found.describe() for found in scan.by_mask.values())
    return (f"The image holds NaN or infinite values: {where}. Decoding on a mask with such voxels stops "
            "(counting them as 0 would distort the z-scores) unless you tick 'Drop the voxels with NaN or "
            "infinite values': they are then left out of the masks, and the maps hold 0 there.")


def labels_preview(dataset) -> pd.DataFrame:
    """The labels table with the volume index (and its onset time when the TR is known)."""
    table = dataset.labels.copy()
    table.insert(0, "volume", np.arange(len(table)))
    if dataset.tr:
        table.insert(1, "time (s)", np.round(np.arange(len(table)) * float(dataset.tr), 3))
    return table


# -- what a configuration will decode --------------------------------------------------
@dataclass(frozen=True)
class SelectionSummary:
    """What a run on some conditions and a mask will decode, known before any masking.

    Attributes
    ----------
    n_samples : int
        Volumes labelled with one of the conditions.
    n_voxels : int
        Voxels of the mask (0 for a mask the data set lacks).
    class_counts : pandas.DataFrame
        Columns ``condition``, ``volumes``, ``share`` (of the selected volumes), in the
        order the conditions were given.
    n_runs : int
        Runs holding at least one selected volume (0 without runs).
    """

    n_samples: int
    n_voxels: int
    class_counts: pd.DataFrame
    n_runs: int


def selection_summary(dataset, conditions, mask_name: str) -> SelectionSummary:
    """What a run on ``conditions`` in the mask ``mask_name`` will decode (see `SelectionSummary`)."""
    labels = dataset.conditions
    keep = np.isin(labels, list(conditions))
    selected = pd.Series(labels[keep], name="condition")
    counts = selected.value_counts().reindex(list(conditions), fill_value=0)
    table = pd.DataFrame({"condition": counts.index.astype(str), "volumes": counts.to_numpy()})
    total = max(int(keep.sum()), 1)
    table["share"] = (table["volumes"] / total).round(3)
    runs = dataset.runs
    n_runs = 0 if runs is None else int(len(np.unique(runs[keep])))
    return SelectionSummary(
        n_samples=int(keep.sum()),
        n_voxels=int(mask_voxel_counts(dataset).get(mask_name, 0)),
        class_counts=table,
        n_runs=n_runs,
    )


def default_mask_name(dataset) -> str:
    """``vt`` when the data set has it (the tutorial's mask), else ``uploaded``, ``epi``, else its first mask."""
    for name in PREFERRED_MASKS:
        if name in dataset.masks:
            return name
    return next(iter(dataset.masks))


def default_conditions(dataset) -> list[str]:
    """Face and cat when present (the tutorial's pair), else the first two conditions that are not rest."""
    names = condition_names(dataset)
    if all(c in names for c in TUTORIAL_CONDITIONS):
        return list(TUTORIAL_CONDITIONS)
    candidates = [c for c in names if c.lower() != "rest"] or names
    return candidates[:2]


def sanitize_config_values(values: dict, dataset) -> dict:
    """Adapt stored settings (`DecodingConfig.to_dict` layout) to a data set.

    A mask the data set lacks is replaced by `default_mask_name`; conditions it lacks
    are dropped, and when fewer than two of the chosen ones remain, `default_conditions`
    replace them. A choice the user made on purpose (one condition only) is kept, so the
    Configure page can tell them to fix it.

    Returns
    -------
    dict
        A new dict; ``values`` is not changed.
    """
    values = dict(values)
    if values.get("mask_name") not in dataset.masks:
        values["mask_name"] = default_mask_name(dataset)
    present = set(condition_names(dataset))
    conditions = [c for c in values.get("conditions", ()) if c in present]
    if len(conditions) < len(values.get("conditions", ())) and len(conditions) < 2:
        conditions = default_conditions(dataset)
    values["conditions"] = list(conditions)
    return values


def check_design(dataset, config: DecodingConfig) -> list[str]:
    """Problems that would stop a run, found before running (empty when none).

    Looks at the selected samples' labels and runs only, never at the image: a mask
    or conditions the data set lacks, and leave-one-run-out with fewer than two runs.

    Returns
    -------
    list of str
        One message per problem, each saying what to do.
    """
    problems = []
    if config.mask_name not in dataset.masks:
        problems.append(
            f"The data set has no mask named {config.mask_name!r}; choose one of {sorted(dataset.masks)}."
        )
    present = set(dataset.conditions)
    missing = [c for c in config.conditions if c not in present]
    if missing:
        problems.append(f"The data set has no volumes labelled {missing}; choose among {sorted(present)}.")
    if config.cv == "leave-one-run-out":
        runs = dataset.runs
        keep = np.isin(dataset.conditions, list(config.conditions))
        n_runs = 0 if runs is None else len(np.unique(runs[keep]))
        if n_runs < 2:
            problems.append(
                f"Leave-one-run-out needs at least two runs, but the selected samples come from {n_runs} run(s). "
                "Choose another evaluation scheme (K-fold or hold-out), or load a labels table with a run column."
            )
    return problems


# -- results ----------------------------------------------------------------------------
#: How the design check's warning about scoring the training data begins
#: (`decoding_core.decoding.design`); the Results page explains it at length itself.
_TRAINING_WARNING_START = "Training accuracy is meaningless"


def warnings_to_show(result) -> list[str]:
    """The result's warnings, each once, without the training-accuracy one when the page explains it.

    A result scored on its training data (``result.meaningless``) carries the design
    check's warning, which the Results page replaces with its own longer explanation.
    """
    shown = []
    for warning in result.warnings:
        if result.meaningless and str(warning).startswith(_TRAINING_WARNING_START):
            continue
        if warning not in shown:
            shown.append(warning)
    return shown


def fold_scores_table(result) -> pd.DataFrame:
    """One row per fold: fold, test run (leave-one-run-out), test samples, score, chance level.

    Scores and chance are rounded to 4 decimals (see `decoding_core.export.fold_table`
    for the unrounded table).
    """
    table = fold_table(result)
    table["score"] = table["score"].round(4)
    table["chance"] = round(float(result.chance_level), 4)
    return table


def _true_and_predicted(result) -> tuple[np.ndarray, np.ndarray]:
    predictions = result.predictions
    return predictions["true"].to_numpy(dtype=str), predictions["predicted"].to_numpy(dtype=str)


def _class_order(result, true: np.ndarray, predicted: np.ndarray) -> list[str]:
    """The classes in the data set's category order (Haxby's categories first, as the Data page lists them)."""
    classes = [str(c) for c in result.classes]
    return _haxby_order(classes or list(dict.fromkeys(np.r_[true, predicted].tolist())))


def class_metrics(result) -> pd.DataFrame:
    """Per-class precision, recall and support from the out-of-sample predictions.

    Counted over every tested sample of every fold (as ``result.predictions`` holds them).

    Returns
    -------
    pandas.DataFrame
        One row per class of ``result.classes`` (in the data set's category order):
        ``class``, ``precision`` and ``recall``
        (rounded to 3 decimals; NaN when nothing was predicted as, or truly is, that
        class) and ``support`` (samples truly of that class).
    """
    true, predicted = _true_and_predicted(result)
    rows = []
    for name in _class_order(result, true, predicted):
        predicted_as = predicted == name
        truly = true == name
        hits = int(np.sum(predicted_as & truly))
        rows.append({
            "class": name,
            "precision": round(hits / predicted_as.sum(), 3) if predicted_as.any() else float("nan"),
            "recall": round(hits / truly.sum(), 3) if truly.any() else float("nan"),
            "support": int(truly.sum()),
        })
    return pd.DataFrame(rows, columns=["class", "precision", "recall", "support"])


def confusion_table(result) -> pd.DataFrame:
    """Counts of (true, predicted) conditions over all tested samples of a result.

    Returns
    -------
    pandas.DataFrame
        Indexed by true condition (index name ``true``), one column per predicted
        condition (columns name ``predicted``), both in the data set's category order
        (Haxby's categories in their usual order, then the others sorted), as `condition_names`.
    """
    true, predicted = _true_and_predicted(result)
    classes = _class_order(result, true, predicted)
    table = pd.crosstab(pd.Series(true, name="true"), pd.Series(predicted, name="predicted"))
    return table.reindex(index=classes, columns=classes, fill_value=0).astype(int)


def misclassified(result) -> pd.DataFrame:
    """The rows of ``result.predictions`` that were wrong, renumbered from 0."""
    predictions = result.predictions
    wrong = predictions[~predictions["correct"].to_numpy(dtype=bool)]
    return wrong.reset_index(drop=True)


def dummy_score_table(fold_scores: dict) -> pd.DataFrame:
    """Mean score of each dummy strategy (``strategy``, ``mean score`` rounded to 4 decimals).

    Parameters
    ----------
    fold_scores : dict
        Strategy name -> per-fold scores (see `decoding_core.significance.dummy_scores`).
    """
    return pd.DataFrame({
        "strategy": list(fold_scores),
        "mean score": [round(float(np.mean(v)), 4) for v in fold_scores.values()],
    })


# -- the run history --------------------------------------------------------------------
#: The score first: a history of long names and settings must never push it off-screen.
HISTORY_COLUMNS = ["mean score", "sd", "chance", "name", "conditions", "estimator", "C", "cv", "mask",
                   "data set", "folds", "date (UTC)"]


def history_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The history for display: name, data set, key settings, scores, date (newest first).

    Parameters
    ----------
    summary : pandas.DataFrame
        `decoding_core.history.RunStore.summary_table`.
    """
    if summary.empty:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    table = pd.DataFrame({
        "name": summary["name"].astype(str),
        "data set": summary["data set"].astype(str),
        "conditions": summary["conditions"].astype(str),
        "mask": summary["mask"].astype(str),
        "estimator": summary["estimator"].astype(str),
        "C": ["tuned" if tuned else f"{float(c):g}" for c, tuned in zip(summary["C"], summary["tuned C"])],
        "cv": summary["cv"].astype(str),
        "mean score": pd.to_numeric(summary["mean score"], errors="coerce").round(3),
        "sd": pd.to_numeric(summary["sd"], errors="coerce").round(3),
        "chance": pd.to_numeric(summary["chance"], errors="coerce").round(3),
        "folds": summary["folds"],
        "date (UTC)": [format_date(v) for v in summary["created"]],
    })
    return table[HISTORY_COLUMNS].reset_index(drop=True)


def format_date(created) -> str:
    """``2025-11-25 17:03`` (UTC) from a record's ISO time; other text is returned as it is."""
    try:
        moment = datetime.fromisoformat(str(created))
    except ValueError:
        return str(created)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M")


def run_labels(summary: pd.DataFrame) -> dict[str, str]:
    """History id -> ``"name (score 0.812, 2025-11-25 17:03)"``, for pickers."""
    return {row["id"]: _run_label(row) for row in summary.to_dict("records")}


def _run_label(row: dict) -> str:
    score = row.get("mean_score", row.get("mean score"))
    score_text = f"{float(score):.3f}" if score is not None and pd.notna(score) else "n/a"
    return f"{row.get('name')} (score {score_text}, {format_date(row.get('created'))})"


# -- sweeps -------------------------------------------------------------------------------
def sweep_score_table(results, setting: str) -> pd.DataFrame:
    """One row per run of a sweep, for display: the value, mean, sd, range over folds, chance, voxels, time.

    Parameters
    ----------
    results : list of DecodingResult
        The runs of the sweep, in order.
    setting : str
        The swept setting (a key of `decoding_core.sweeps.SWEEPABLE`); it names the first column.
    """
    table = sweep_table(results, setting).drop(columns=["value", "fold_scores"])
    for column in ("mean_score", "std_score", "sem", "min_score", "max_score", "chance_level"):
        table[column] = table[column].round(4)
    table["elapsed_seconds"] = table["elapsed_seconds"].round(2)
    return table.rename(columns={
        "label": setting, "mean_score": "mean score", "std_score": "sd over folds",
        "sem": "sem", "min_score": "lowest fold", "max_score": "highest fold", "n_folds": "folds",
        "chance_level": "chance", "n_voxels": "voxels", "elapsed_seconds": "seconds",
    })
