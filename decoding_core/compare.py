"""Compare recorded runs: settings side by side, fold scores paired, weight-map differences.

All functions take `decoding_core.history.RunRecord` objects (or anything with the
same attributes, e.g. a `DecodingResult` for `paired_test`'s inputs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import stats

from decoding_core.config import SCORINGS, SETTINGS, DecodingConfig, format_value
from decoding_core.errors import DecodingInputError
from decoding_core.sweeps import default_sweep_values

#: Rows of `config_table`, in order, with their display names: the data set, then every setting.
SETTING_TITLES = {
    "dataset": "Data set",
    "dataset_digest": "Data digest",
    **{name: setting.title for name, setting in SETTINGS.items()},
}

#: Explains what the paired test can and cannot say; the page shows it next to the p-values.
PAIRED_TEST_NOTE = (
    "The folds are not independent samples: their training sets overlap, so the fold scores "
    "of a run are correlated and the p-values above are optimistic (Nadeau & Bengio, 2003, "
    "Machine Learning 52:239-281; Bouckaert & Frank, 2004). With few folds (e.g. 12 runs) the "
    "tests have little power, and accuracies on small test folds take few distinct values "
    "(ties, zero differences). The corrected t-test inflates the variance by n_test/n_train to "
    "account for the overlap. Read the mean difference and its interval, not only p < 0.05; "
    "a difference on one subject says nothing about a population."
)


def _run_labels(records) -> list[str]:
    """Column names for the runs: their names, made unique."""
    labels, seen = [], {}
    for record in records:
        label = str(getattr(record, "name", None) or getattr(record, "id", "run"))
        if label in seen:
            seen[label] += 1
            label = f"{label} ({seen[label]})"
        else:
            seen[label] = 1
        labels.append(label)
    return labels


def _check_records(records, minimum: int = 2) -> list:
    records = list(records)
    if len(records) < minimum:
        raise DecodingInputError(f"Pick at least {minimum} runs to compare. Got {len(records)}.")
    return records


def config_table(records) -> tuple[pd.DataFrame, pd.Series]:
    """The settings of several runs side by side.

    Parameters
    ----------
    records : sequence of RunRecord
        At least one run.

    Returns
    -------
    table : pandas.DataFrame
        One row per setting (index: display names of `SETTING_TITLES`), one column
        per run (the run names, made unique); values are display strings.
    differs : pandas.Series of bool
        Same index as ``table``: True where the runs do not all agree.

    Notes
    -----
    Settings that do not matter under a run's scheme (K outside k-fold, the
    hold-out size outside hold-out, C when it is tuned) are shown as "-".
    """
    records = _check_records(records, minimum=1)
    columns = {}
    for label, record in zip(_run_labels(records), records):
        config: DecodingConfig = record.config
        values = {"dataset": getattr(record, "dataset_title", "") or getattr(record, "dataset_name", ""),
                  "dataset_digest": str(getattr(record, "dataset_digest", ""))[:12]}
        values.update(config.to_dict())
        if config.cv != "kfold":
            values["n_folds"] = "-"
        if config.cv != "holdout":
            values["holdout_size"] = "-"
        if config.tune_C:
            values["C"] = "-"
        columns[label] = [format_value(values[key]) for key in SETTING_TITLES]
    table = pd.DataFrame(columns, index=list(SETTING_TITLES.values()), dtype=object)
    table.index.name = "setting"
    differs = table.nunique(axis=1) > 1
    differs.name = "differs"
    return table, differs


def style_config_table(table: pd.DataFrame, differs: pd.Series, color: str = "#fff3b0"):
    """A pandas Styler that highlights the rows where the runs differ (for ``st.dataframe``)."""
    def highlight(row):
        return [f"background-color: {color}; font-weight: bold" if differs.get(row.name, False) else ""
                for _ in row]

    return table.style.apply(highlight, axis=1)


def folds_are_paired(records) -> tuple[bool, str]:
    """Whether the runs were scored on the very same folds, and why (not).

    Folds pair when the runs used the same data (digest) and each fold tested the
    same volumes (`RunRecord.fold_signature`); mask, estimator, C and preprocessing
    may differ.
    """
    records = _check_records(records)
    first = records[0]
    for record in records[1:]:
        if record.dataset_digest != first.dataset_digest:
            return False, "The runs used different data sets, so their folds cannot be paired."
        if len(record.fold_scores) != len(first.fold_scores):
            return False, (f"The runs have different numbers of folds ({len(first.fold_scores)} and "
                           f"{len(record.fold_scores)}), so their folds cannot be paired.")
        if (not record.fold_signature or record.fold_signature != first.fold_signature):
            return False, ("The runs tested different samples in their folds (another evaluation scheme, "
                           "K or conditions), so their folds cannot be paired.")
    if len(first.fold_scores) < 2:
        return False, "Each run has a single score (no cross-validation folds), so there is nothing to pair."
    return True, "The runs were scored on the same folds (same data, same test samples in each fold)."


def paired_fold_scores(records) -> pd.DataFrame:
    """Per-fold scores of several runs side by side.

    Parameters
    ----------
    records : sequence of RunRecord
        At least two runs.

    Returns
    -------
    pandas.DataFrame
        One column per run (names made unique). When the folds pair (`folds_are_paired`),
        one row per fold, indexed by the fold names (e.g. ``run 3``); otherwise rows are
        fold positions ``1..n`` padded with NaN, and no row compares like with like.
        ``df.attrs["paired"]`` (bool) and ``df.attrs["reason"]`` (str) say which.
    """
    records = _check_records(records)
    paired, reason = folds_are_paired(records)
    labels = _run_labels(records)
    if paired:
        table = pd.DataFrame({label: np.asarray(r.fold_scores, dtype=float) for label, r in zip(labels, records)},
                             index=pd.Index([str(n) for n in records[0].fold_names], name="fold"))
    else:
        longest = max(len(r.fold_scores) for r in records)
        data = {}
        for label, record in zip(labels, records):
            column = np.full(longest, np.nan)
            column[: len(record.fold_scores)] = record.fold_scores
            data[label] = column
        table = pd.DataFrame(data, index=pd.Index(range(1, longest + 1), name="fold position"))
    table.attrs["paired"] = paired
    table.attrs["reason"] = reason
    return table


def _test_train_ratio(record) -> float | None:
    """Mean n_test / n_train over folds, from the record's predictions (None when unknown)."""
    predictions = getattr(record, "predictions", None)
    n_samples = getattr(record, "n_samples", None)
    if predictions is None or "fold" not in predictions or not n_samples:
        return None
    n_test = predictions.groupby("fold").size().to_numpy(dtype=float)
    n_train = n_samples - n_test
    if (n_train <= 0).any():
        return None
    return float(np.mean(n_test / n_train))


@dataclass(frozen=True)
class PairedTest:
    """Paired comparison of two runs' scores across the same folds (see `paired_test`).

    Attributes
    ----------
    n_folds : int
    confidence : float
        Level of the intervals.
    mean_difference, sd_difference : float
        Of the fold-wise differences B - A (positive: B scored higher), the one sign
        convention of Compare (chart, metric, text and weight-map difference).
    ci_low, ci_high : float
        t interval of the mean difference.
    t_statistic : float or None
        Paired t statistic; None when every difference is the same (undefined).
    t_p_value : float
        Two-sided paired t-test.
    wilcoxon_statistic, wilcoxon_p_value : float or None
        Signed-rank test; None when all differences are zero.
    corrected_t_p_value, corrected_ci_low, corrected_ci_high : float or None
        Nadeau & Bengio's corrected resampled t-test; None without a test/train ratio.
    n_a_better, n_b_better, n_ties : int
        Folds in which A scored higher, B scored higher, or both the same.
    note : str
        What the test can and cannot say (`PAIRED_TEST_NOTE`).
    """

    n_folds: int
    confidence: float
    mean_difference: float
    sd_difference: float
    ci_low: float
    ci_high: float
    t_statistic: float | None
    t_p_value: float
    wilcoxon_statistic: float | None
    wilcoxon_p_value: float | None
    corrected_t_p_value: float | None
    corrected_ci_low: float | None
    corrected_ci_high: float | None
    n_a_better: int
    n_b_better: int
    n_ties: int
    note: str = PAIRED_TEST_NOTE


def _checked_pair(a_scores, b_scores, confidence: float) -> tuple:
    a = np.asarray(a_scores, dtype=float).ravel()
    b = np.asarray(b_scores, dtype=float).ravel()
    if a.shape != b.shape:
        raise DecodingInputError(
            f"A paired test needs the same folds in both runs; got {a.size} and {b.size} fold scores. "
            "Compare runs evaluated with the same scheme on the same data."
        )
    if a.size < 2:
        raise DecodingInputError("A paired test needs at least two folds; these runs have one score each.")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise DecodingInputError("Some fold scores are missing (NaN); a paired test needs a score in every fold.")
    if not 0 < confidence < 1:
        raise DecodingInputError(f"'confidence' must be in (0, 1). Got {confidence!r}.")
    return a, b


def paired_test(a_scores, b_scores, *, confidence: float = 0.95,
                test_train_ratio: float | None = None) -> PairedTest:
    """Paired comparison of two runs' scores across the same folds.

    Parameters
    ----------
    a_scores, b_scores : array-like of shape (n_folds,)
        Scores of the same folds under two runs (paired by position).
    confidence : float, default=0.95
        Level of the interval on the mean difference (of B - A).
    test_train_ratio : float or None
        n_test / n_train of the folds; when given, adds Nadeau & Bengio's corrected
        resampled t-test (variance inflated by ``1/k + n_test/n_train``).

    Returns
    -------
    PairedTest

    Raises
    ------
    DecodingInputError
        When the score lists differ in length, hold fewer than two folds or non-finite values.
    """
    a, b = _checked_pair(a_scores, b_scores, confidence)
    diff = b - a  # B - A everywhere in Compare: positive when B, the second run, scores higher
    k = diff.size
    mean = float(diff.mean())
    sd = float(diff.std(ddof=1))
    t_crit = float(stats.t.ppf(0.5 + confidence / 2, df=k - 1))
    fields = {
        "n_folds": int(k), "mean_difference": mean, "sd_difference": sd,
        "n_a_better": int((diff < 0).sum()), "n_b_better": int((diff > 0).sum()),
        "n_ties": int((diff == 0).sum()), "confidence": confidence,
        "corrected_t_p_value": None, "corrected_ci_low": None, "corrected_ci_high": None,
    }
    if sd == 0:
        # Constant differences: the t statistic is undefined (0/0 or inf); say so rather than print nan.
        fields.update(ci_low=mean, ci_high=mean, t_statistic=None, t_p_value=1.0 if mean == 0 else 0.0)
    else:
        sem = sd / math.sqrt(k)
        t_result = stats.ttest_rel(b, a)
        fields.update(ci_low=mean - t_crit * sem, ci_high=mean + t_crit * sem,
                      t_statistic=float(t_result.statistic), t_p_value=float(t_result.pvalue))
        if test_train_ratio is not None and test_train_ratio > 0:
            corrected_se = sd * math.sqrt(1.0 / k + float(test_train_ratio))
            t_corrected = mean / corrected_se
            fields.update(corrected_t_p_value=float(2 * stats.t.sf(abs(t_corrected), df=k - 1)),
                          corrected_ci_low=mean - t_crit * corrected_se,
                          corrected_ci_high=mean + t_crit * corrected_se)
    if np.all(diff == 0):
        fields.update(wilcoxon_statistic=None, wilcoxon_p_value=None)
    else:
        w_result = stats.wilcoxon(b, a, zero_method="wilcox")
        fields.update(wilcoxon_statistic=float(w_result.statistic), wilcoxon_p_value=float(w_result.pvalue))
    return PairedTest(**fields)


def compare_two_runs(record_a, record_b, *, confidence: float = 0.95) -> PairedTest:
    """`paired_test` of two recorded runs, when their folds pair (DecodingInputError otherwise)."""
    paired, reason = folds_are_paired([record_a, record_b])
    if not paired:
        raise DecodingInputError(f"{reason} A paired test is not possible; compare the mean scores instead.")
    return paired_test(record_a.fold_scores, record_b.fold_scores, confidence=confidence,
                       test_train_ratio=_test_train_ratio(record_a))


def weight_difference_img(record_a, record_b, *, normalize: bool = False) -> nib.Nifti1Image:
    """The weight map of run B minus that of run A (B - A, as everywhere in Compare), on the union of their masks.

    Parameters
    ----------
    record_a, record_b : RunRecord
    normalize : bool, default=False
        Divide each run's weights by their largest absolute value first. Weights of
        different estimators or C values live on different scales; normalizing
        compares their shapes rather than their sizes.

    Returns
    -------
    nibabel.Nifti1Image
        3D (two classes) or 4D (one map per class); zero outside both masks. A voxel in
        only one mask counts the other run's weight as zero there.

    Raises
    ------
    DecodingInputError
        When the runs' grids (shape, affine) or their classes differ.
    """
    if record_a.mask.shape != record_b.mask.shape or not np.allclose(record_a.affine, record_b.affine, atol=1e-4):
        raise DecodingInputError(
            "The two runs' weight maps are on different image grids (shape or affine differ), so they "
            "cannot be subtracted. Compare runs on the same data set."
        )
    if record_a.weights.shape[0] != record_b.weights.shape[0] or tuple(record_a.classes) != tuple(record_b.classes):
        raise DecodingInputError(
            f"The two runs decode different classes ({', '.join(record_a.classes)} vs "
            f"{', '.join(record_b.classes)}), so their weight maps do not correspond. Compare runs "
            "with the same conditions."
        )

    def volume(record):
        weights = np.asarray(record.weights, dtype=np.float64)
        if normalize:
            scale = np.abs(weights).max()
            weights = weights / scale if scale > 0 else weights
        out = np.zeros(record.mask.shape + (weights.shape[0],), dtype=np.float64)
        out[record.mask] = weights.T
        return out

    difference = (volume(record_b) - volume(record_a)).astype(np.float32)
    union = record_a.mask | record_b.mask
    difference[~union] = 0.0
    if difference.shape[-1] == 1:
        difference = difference[..., 0]
    return nib.Nifti1Image(difference, record_a.affine)


def summary_table(records) -> pd.DataFrame:
    """One row per run: name, mean and sd of the score, chance, folds, samples, voxels, time."""
    records = _check_records(records, minimum=1)
    rows = []
    for label, record in zip(_run_labels(records), records):
        rows.append({
            "run": label, "scoring": (SCORINGS[record.config.scoring].title if record.config.scoring in SCORINGS else record.config.scoring),
            "mean score": record.mean_score, "sd": record.std_score, "chance": record.chance_level,
            "folds": len(record.fold_scores), "samples": record.n_samples, "voxels": record.n_voxels,
            "seconds": record.elapsed_seconds,
        })
    return pd.DataFrame(rows).set_index("run")


def setting_choices(setting: str, dataset=None) -> list:
    """Values offered for "change one setting and rerun" (delegates to `sweeps`)."""
    return default_sweep_values(setting, dataset)


__all__ = [
    "PAIRED_TEST_NOTE", "SETTING_TITLES", "PairedTest", "compare_two_runs", "config_table",
    "folds_are_paired", "paired_fold_scores", "paired_test", "setting_choices", "style_config_table",
    "summary_table", "weight_difference_img",
]
