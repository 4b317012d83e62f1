"""Sweeps: run one configuration for several values of one setting, and tabulate the scores.

Example
-------
>>> from decoding_core.sweeps import parse_sweep_values
>>> parse_sweep_values("C", "0.001..100")
[0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
>>> parse_sweep_values("estimator", "svc, logistic_l2")
['svc', 'logistic_l2']
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

import numpy as np
import pandas as pd

from decoding_core import decoding
from decoding_core._validation import FALSE_WORDS, NONE_WORDS, TRUE_WORDS
from decoding_core.cleaning import SCOPES, scope_of
from decoding_core.config import SETTINGS, DecodingConfig, Setting, format_value
from decoding_core.errors import DecodingInputError
from decoding_core.progress import share
from decoding_core.masking import RawVoxelCache

#: Most values one sweep may run.
MAX_SWEEP_VALUES = 50


#: The settings a sweep can vary (those of `SETTINGS` with ``sweep_values``).
SWEEPABLE = {name: setting for name, setting in SETTINGS.items() if setting.sweep_values is not None}


def _check_setting(setting: str) -> Setting:
    if setting not in SWEEPABLE:
        raise DecodingInputError(f"'setting' must be one of {list(SWEEPABLE)}. Got {setting!r}.")
    return SWEEPABLE[setting]


def default_sweep_values(setting: str, dataset=None) -> list:
    """The values offered by default for ``setting`` (for masks: the data set's own masks)."""
    spec = _check_setting(setting)
    if setting == "mask_name" and dataset is not None:
        return list(dataset.masks)
    return list(spec.sweep_values)


def _range_values(setting: str, low: float, high: float, count: int | None, log_scale: bool) -> list:
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise DecodingInputError(f"A range of {setting} must go from a smaller to a larger number. Got {low}..{high}.")
    if count is None:
        if log_scale:
            if low <= 0:
                raise DecodingInputError(f"A log range of {setting} must start above 0. Got {low}.")
            low_exp, high_exp = math.log10(low), math.log10(high)
            if not (low_exp.is_integer() and high_exp.is_integer()):
                raise DecodingInputError(
                    f"'{low:g}..{high:g}' steps by powers of ten, so both ends must be powers of ten "
                    f"(e.g. 0.001..100), or give a count: '{low:g}..{high:g}:5'."
                )
            return [float(10.0**e) for e in range(int(low_exp), int(high_exp) + 1)]
        step_values = np.arange(low, high + 1e-9, 1.0)
        return [float(v) for v in step_values]
    if count < 2 or count > MAX_SWEEP_VALUES:
        raise DecodingInputError(f"A range needs between 2 and {MAX_SWEEP_VALUES} values. Got {count}.")
    if log_scale:
        if low <= 0:
            raise DecodingInputError(f"A log range of {setting} must start above 0. Got {low}.")
        values = np.logspace(math.log10(low), math.log10(high), count)
    else:
        values = np.linspace(low, high, count)
    return [float(f"{v:.6g}") for v in values]


def _shown(token: str, limit: int = 40) -> str:
    """A value the user typed, quoted and cut short so an error message stays readable."""
    return repr(token if len(token) <= limit else token[: limit - 3] + "...")


def parse_sweep_values(setting: str, text: str) -> list:
    """Parse the values a user typed for a sweep of ``setting``.

    Parameters
    ----------
    setting : str
        Key of `SWEEPABLE`.
    text : str
        Values separated by commas or spaces. Numeric settings also take ranges:
        ``0.001..100`` (C: every power of ten; others: steps of 1) and ``1..100:5``
        (5 values, log-spaced for C, evenly spaced otherwise). ``none`` stands for
        "no smoothing" / "no screening"; booleans take yes/no, true/false, 1/0.

    Returns
    -------
    list
        Distinct values in the order given, each valid for a `DecodingConfig`.

    Raises
    ------
    DecodingInputError
        Naming the value that cannot be used, and what is expected.
    """
    spec = _check_setting(setting)
    if not isinstance(text, str):
        raise DecodingInputError(f"Sweep values must be text. Got {type(text).__name__}.")
    if len(text) > 2000:
        raise DecodingInputError("The list of sweep values is too long (over 2000 characters).")
    tokens = [t for t in re.split(r"[,;\s]+", text.strip()) if t != ""]
    if not tokens and spec.kind == "optional_float" and text.strip().lower() in NONE_WORDS:
        tokens = ["none"]
    if not tokens:
        raise DecodingInputError(
            f"Give at least one value of {spec.title}, e.g. "
            f"{', '.join(format_value(v) for v in spec.sweep_values[:3])}."
        )
    values: list = []
    for token in tokens:
        lowered = token.lower()
        if spec.kind in ("float", "int", "optional_float") and ".." in token:
            body, _, count_text = lowered.partition(":")
            low_text, _, high_text = body.partition("..")
            try:
                low, high = float(low_text), float(high_text)
                count = int(count_text) if count_text else None
            except ValueError:
                raise DecodingInputError(
                    f"Cannot read the range {_shown(token)}: write it as LOW..HIGH or LOW..HIGH:COUNT (e.g. 0.001..100)."
                ) from None
            expanded = _range_values(setting, low, high, count, spec.log_scale)
            values.extend(int(v) if spec.kind == "int" else v for v in expanded)
            continue
        if spec.choices is SCOPES and lowered in TRUE_WORDS | FALSE_WORDS:
            # yes/no for standardize and detrend, as when they were yes/no settings: "series"/"none".
            values.append(scope_of(lowered in TRUE_WORDS, setting))
        elif spec.kind in ("choice", "text"):
            # Masks are checked against the data set by run_sweep.
            if spec.choices is not None and token not in spec.choices:
                raise DecodingInputError(f"{spec.title}: {_shown(token)} is not one of {list(spec.choices)}.")
            values.append(token)
        elif spec.kind == "bool":
            if lowered in TRUE_WORDS:
                values.append(True)
            elif lowered in FALSE_WORDS:
                values.append(False)
            else:
                raise DecodingInputError(f"{spec.title}: {_shown(token)} is not yes/no (true/false, 1/0).")
        elif spec.kind == "optional_float" and lowered in NONE_WORDS:
            values.append(None)
        else:
            try:
                number = float(token)
            except ValueError:
                raise DecodingInputError(f"{spec.title}: {_shown(token)} is not a number.") from None
            if spec.kind == "int":
                if not number.is_integer():
                    raise DecodingInputError(f"{spec.title}: {_shown(token)} is not a whole number.")
                number = int(number)
            values.append(number)
    distinct = list(dict.fromkeys(values))
    if len(distinct) > MAX_SWEEP_VALUES:
        raise DecodingInputError(
            f"A sweep runs at most {MAX_SWEEP_VALUES} values; these are {len(distinct)}. Give fewer values."
        )
    for value in distinct:
        if setting == "mask_name":
            continue  # checked against the data set by run_sweep
        try:
            DecodingConfig().replace(**{setting: value})
        except DecodingInputError as err:
            raise DecodingInputError(f"{spec.title} = {format_value(value)} cannot be used: {err}") from None
    return distinct


def sweep_configs(base_config: DecodingConfig, setting: str, values, dataset=None) -> list[DecodingConfig]:
    """One configuration per value: ``base_config`` with ``setting`` replaced (validated)."""
    _check_setting(setting)
    values = list(values)
    if not values:
        raise DecodingInputError("A sweep needs at least one value.")
    if len(values) > MAX_SWEEP_VALUES:
        raise DecodingInputError(f"A sweep runs at most {MAX_SWEEP_VALUES} values; got {len(values)}.")
    configs = []
    for value in values:
        if setting == "mask_name" and dataset is not None and value not in dataset.masks:
            raise DecodingInputError(
                f"The data set has no mask named {value!r}. Its masks are: {sorted(dataset.masks)}."
            )
        configs.append(base_config.replace(**{setting: value}))
    return configs


def run_sweep(dataset, base_config: DecodingConfig, setting: str, values, progress=None,
              should_stop: Callable[[], bool] | None = None, cache=None, scheduler: str | None = None) -> list:
    """Run ``base_config`` once per value of ``setting``.

    Parameters
    ----------
    dataset : Dataset
    base_config : DecodingConfig
    setting : str
        Key of `SWEEPABLE`.
    values : sequence
        Values of the setting (e.g. from `parse_sweep_values`).
    progress : callable, optional
        ``progress(fraction, message)`` over the whole sweep.
    should_stop : callable, optional
        Called before each run; when it returns True the sweep stops and returns
        the runs finished so far.
    cache : RawVoxelCache, optional
        Passed to the masking step; by default a new one for this sweep, so the
        image is read once and every run reuses the masked voxels.
    scheduler : str, optional
        ``tcp://HOST:PORT`` of a Dask scheduler: each run is masked here and decoded
        on the cluster (`decoding_core.cluster`), with the same results in the same order.

    Returns
    -------
    list of DecodingResult
        One per value, in the order of ``values`` (fewer when stopped).
    """
    configs = sweep_configs(base_config, setting, values, dataset)
    cache = RawVoxelCache() if cache is None else cache
    if scheduler is not None:
        return _run_sweep_on_cluster(dataset, configs, setting, scheduler, progress, should_stop, cache)
    results = []
    total = len(configs)
    for index, config in enumerate(configs):
        if should_stop is not None and should_stop():
            break
        label = f"{setting} = {format_value(getattr(config, setting))} ({index + 1}/{total})"
        if progress is not None:
            progress(index / total, f"{label}: starting")
        step_progress = share(progress, index / total, (index + 1) / total, prefix=f"{label}: ")
        results.append(decoding.run_decoding(dataset, config, progress=step_progress, cache=cache))
    if progress is not None and len(results) == total:
        progress(1.0, f"Sweep of {setting} done: {total} runs")
    return results


def _run_sweep_on_cluster(dataset, configs, setting, scheduler, progress, should_stop, cache) -> list:
    """Mask every run here (the user's files stay here), decode them on the Dask cluster."""
    from decoding_core import cluster

    tasks, masked_by_options = [], {}
    for index, config in enumerate(configs):
        # Runs that differ in a decoding setting only (C, the estimator) share one masked matrix.
        options = (config.mask_name, config.smoothing_fwhm, repr(config.cleaning_options()))
        if options not in masked_by_options:
            step = share(progress, 0.5 * index / len(configs), 0.5 * (index + 1) / len(configs), prefix="Masking: ")
            masked_by_options[options] = cluster.mask_for(dataset, config, step, cache)
        tasks.append((masked_by_options[options], config, dataset.tr))
    run = cluster.run_tasks(cluster.decode_masked, tasks, scheduler=scheduler, progress=share(progress, 0.5, 1.0),
                            should_stop=should_stop, what=f"runs of the sweep of {setting}")
    return list(run.results)


def sweep_table(results, setting: str) -> pd.DataFrame:
    """One row per run of a sweep: the value and the score's mean, spread and range across folds.

    Columns: ``value`` (as set), ``label`` (display text), ``mean_score``, ``std_score``
    (across folds, as the run reports it), ``sem``, ``min_score``, ``max_score``,
    ``n_folds``, ``chance_level``, ``n_voxels``, ``elapsed_seconds``, ``fold_scores``
    (list), and ``chosen_C`` when C was tuned.
    """
    _check_setting(setting)
    rows = []
    for result in results:
        value = getattr(result.config, setting)
        scores = np.asarray(result.fold_scores, dtype=float)
        n = scores.size
        rows.append({
            "value": value,
            "label": format_value(value),
            "mean_score": float(result.mean_score),
            "std_score": float(result.std_score),
            "sem": float(scores.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
            "min_score": float(scores.min()),
            "max_score": float(scores.max()),
            "n_folds": int(n),
            "chance_level": float(result.chance_level),
            "n_voxels": int(result.n_voxels),
            "elapsed_seconds": float(result.elapsed_seconds),
            "fold_scores": [float(s) for s in scores],
        })
    table = pd.DataFrame(rows, columns=["value", "label", "mean_score", "std_score", "sem", "min_score",
                                        "max_score", "n_folds", "chance_level", "n_voxels",
                                        "elapsed_seconds", "fold_scores"])
    table["value"] = table["value"].astype(object)
    return table


def sweep_fold_scores(results, setting: str) -> pd.DataFrame:
    """Long table for plotting the fold spread: one row per (value, fold) with ``label``, ``fold``, ``score``."""
    _check_setting(setting)
    rows = []
    for result in results:
        label = format_value(getattr(result.config, setting))
        for fold, score in enumerate(np.asarray(result.fold_scores, dtype=float)):
            rows.append({"label": label, "fold": fold + 1, "score": float(score)})
    return pd.DataFrame(rows, columns=["label", "fold", "score"])
