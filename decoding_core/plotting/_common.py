"""The look and the small checks that the slice, data and result figures share.

Private to `decoding_core.plotting`: colours, fonts and the fixed order of conditions
live here once, so that a condition or a score keeps its colour in every figure.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from numbers import Real

import numpy as np
import pandas as pd
import plotly.colors

from decoding_core.datasets import HAXBY_CATEGORIES
from decoding_core.errors import DecodingInputError

#: The label of volumes without a stimulus; drawn in light gray everywhere.
REST_LABEL = "rest"
REST_COLOR = "#d9d9d9"
#: Fixed colour order (Haxby's categories), so that a category keeps its colour across figures.
KNOWN_CONDITIONS = HAXBY_CATEGORIES
PALETTE = tuple(plotly.colors.qualitative.D3) + tuple(plotly.colors.qualitative.Dark24)
SCORE_COLOR = "#1f77b4"
CHANCE_COLOR = "#7f7f7f"
ERROR_COLOR = "#d62728"
CORRECT_COLOR = "#2ca02c"
FONT = dict(size=13)


def check_positive(value, name, *, allow_none=True, allow_zero=False):
    """``value`` as a float; raise `DecodingInputError` unless it is a positive (or non-negative) number."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or (
        value < 0 or (value == 0 and not allow_zero)
    ):
        expected = "a non-negative number" if allow_zero else "a positive number"
        raise DecodingInputError(f"'{name}' must be {expected}. Got {value!r}.")
    return float(value)


def discrete_colorscale(colors: Sequence[str]) -> list:
    """A Plotly colour scale that gives integer code ``k`` (from 0) the colour ``colors[k]``."""
    n = len(colors)
    scale = []
    for k, color in enumerate(colors):
        scale.append([k / n, color])
        scale.append([(k + 1) / n, color])
    return scale


def sorted_unique(values: np.ndarray) -> list:
    """The distinct values, sorted (by their text when they cannot be compared)."""
    unique = pd.unique(pd.Series(values))
    try:
        return sorted(unique.tolist())
    except TypeError:
        return sorted(unique.tolist(), key=str)


def run_name(run) -> str:
    """``"run 3"``; a whole float (a run column read as numbers) is written as an integer."""
    if isinstance(run, (float, np.floating)) and float(run).is_integer():
        run = int(run)
    return f"run {run}"


def ordered_conditions(conditions) -> list:
    """Known (Haxby) categories in their fixed order, others sorted, rest last."""
    unique = list(dict.fromkeys(str(c) for c in conditions))
    known = [c for c in KNOWN_CONDITIONS if c in unique]
    others = sorted(c for c in unique if c not in KNOWN_CONDITIONS and c != REST_LABEL)
    return known + others + ([REST_LABEL] if REST_LABEL in unique else [])


def plain_label(text) -> str:
    """User text (a condition, run or file name) made safe for any Plotly text: shown as written.

    Plotly draws titles, ticks, legends and hover labels as a subset of HTML and fills
    ``%{...}`` in hover templates: ``<b>x</b>`` would be bold and ``%{x}`` replaced.
    Escaped (``&lt;``, ``&amp;``, and ``{`` as ``&#123;``), the text is displayed literally.
    """
    return html.escape(str(text), quote=False).replace("{", "&#123;").replace("}", "&#125;")
