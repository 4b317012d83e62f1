"""Shared argument checks with one message template.

Messages follow "'<name>' must be <expected>. Got <value!r>."
"""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Real

import numpy as np
import pandas as pd

from decoding_core.errors import DecodingInputError, DecodingInputTypeError

#: Words read as yes and no wherever a setting is typed (links, sweeps).
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "y"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", "n"})
#: Words read as "none" (no smoothing, no screening).
NONE_WORDS = frozenset({"", "none", "off", "null", "-"})


def check_in(value, allowed: Iterable, name: str) -> None:
    """Raise `DecodingInputError` (a ``ValueError``) unless ``value`` is one of ``allowed``."""
    allowed = list(allowed)
    if value not in allowed:
        raise DecodingInputError(f"'{name}' must be one of {allowed}. Got {value!r}.")


def check_type(value, expected_type, name: str) -> None:
    """Raise `DecodingInputTypeError` (a ``TypeError``) unless ``value`` is an instance of ``expected_type``."""
    if not isinstance(value, expected_type):
        if isinstance(expected_type, tuple):
            expected = " or ".join(t.__name__ for t in expected_type)
        else:
            expected = expected_type.__name__
        raise DecodingInputTypeError(f"'{name}' must be {expected}. Got {value!r}.")


def check_range(
    value,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    integer: bool = False,
) -> None:
    """Raise `DecodingInputError` (a ``ValueError``) unless ``value`` is a number in the given interval."""
    kind = "an integer" if integer else "a number"
    ok_type = (
        isinstance(value, int) if integer else isinstance(value, Real)
    ) and not isinstance(value, bool)
    left = "[" if low_inclusive else "("
    right = "]" if high_inclusive else ")"
    interval = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
    message = f"'{name}' must be {kind} in the range {interval}. Got {value!r}."
    if not ok_type or value != value:  # value != value catches NaN
        raise DecodingInputError(message)
    if low is not None and (value < low or (value == low and not low_inclusive)):
        raise DecodingInputError(message)
    if high is not None and (value > high or (value == high and not high_inclusive)):
        raise DecodingInputError(message)


_BYTE_UNITS = {
    "": 1, "B": 1,
    "K": 1000, "KB": 1000, "M": 1000**2, "MB": 1000**2, "G": 1000**3, "GB": 1000**3,
    "KI": 1024, "KIB": 1024, "MI": 1024**2, "MIB": 1024**2, "GI": 1024**3, "GIB": 1024**3,
}


def parse_byte_size(raw: str, name: str) -> int:
    """A positive number of bytes from text such as ``690M``, ``512MiB``, ``1.5G`` or ``629145600``.

    K, M and G (with or without B) are powers of 1000; Ki, Mi and Gi (KiB, ...) powers of 1024.
    Raises `DecodingInputError` naming ``name`` (usually an environment variable) otherwise.
    """
    text = str(raw).strip().upper().replace(" ", "")
    number = text.rstrip("KMGIB")
    unit = text[len(number):]
    try:
        value = int(float(number) * _BYTE_UNITS[unit])
    except (ValueError, KeyError, OverflowError):
        value = -1
    if not value > 0:
        raise DecodingInputError(
            f"{name} must be a positive number of bytes (e.g. 690M, 512MiB or 629145600). Got {raw!r}."
        )
    return value


def as_labels(labels) -> np.ndarray:
    """Labels as a plain numpy str array (pandas 3 hands out Arrow strings)."""
    if isinstance(labels, (pd.Series, pd.Index)):
        labels = labels.to_numpy(dtype=str)
    array = np.asarray(labels)
    if array.ndim != 1:
        raise DecodingInputError(f"The labels must be one label per sample (1D). Got shape {array.shape}.")
    if array.dtype.kind != "U":
        if any(value is None or (isinstance(value, float) and np.isnan(value)) for value in array):
            raise DecodingInputError("Some labels are missing (empty or NaN). Give every selected volume a label.")
        array = array.astype(str)
    return array


def as_runs(runs, n_samples: int) -> np.ndarray | None:
    """Runs as a plain numpy array (str or numbers), or None."""
    if runs is None:
        return None
    if isinstance(runs, (pd.Series, pd.Index)):
        runs = runs.to_numpy()
    array = np.asarray(runs)
    if array.ndim != 1 or len(array) != n_samples:
        raise DecodingInputError(
            f"'runs' must have one value per volume ({n_samples}). Got shape {array.shape}."
        )
    if array.dtype.kind in "fc" and np.isnan(array).any():
        raise DecodingInputError("Some runs are missing (NaN). Give every volume a run, or decode without runs.")
    if array.dtype.kind == "O":
        if any(value is None or (isinstance(value, float) and np.isnan(value)) for value in array):
            raise DecodingInputError("Some runs are missing. Give every volume a run, or decode without runs.")
        array = array.astype(str)
    return array


def parse_bool(text: str) -> bool | None:
    """``True``/``False`` for a yes/no word (`TRUE_WORDS`, `FALSE_WORDS`), None for anything else."""
    lowered = text.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    return None
