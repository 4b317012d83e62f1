"""Figures of the data before decoding: conditions over time, counts, class balance, signal.

Each builder takes labels (and runs, a repetition time, or the masked data) and
returns a ``plotly.graph_objects.Figure``. `condition_colors` gives each
condition the colour it has in every figure (Haxby's categories keep theirs).
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from decoding_core._validation import as_labels, as_runs
from decoding_core.errors import DecodingInputError
from decoding_core.plotting._common import (
    FONT,
    KNOWN_CONDITIONS,
    PALETTE,
    REST_COLOR,
    REST_LABEL,
    check_positive,
    discrete_colorscale,
    ordered_conditions,
    run_name,
    sorted_unique,
)

__all__ = [
    "REST_COLOR",
    "REST_LABEL",
    "condition_colors",
    "plot_class_balance",
    "plot_condition_counts",
    "plot_condition_timeline",
    "plot_events_timeline",
    "plot_mean_timecourse",
]


def _checked_labels(labels) -> np.ndarray:
    """`as_labels`, refusing an empty sequence: a figure needs at least one volume."""
    array = as_labels(labels)
    if array.size == 0:
        raise DecodingInputError(
            f"'labels' must be a non-empty one-dimensional sequence. Got shape {array.shape}."
        )
    return array


def condition_colors(conditions) -> dict:
    """A colour per condition, the same in every figure.

    Haxby's eight categories keep fixed colours when only they occur; other
    conditions take colours in sorted order; ``"rest"`` is light grey.

    Parameters
    ----------
    conditions : iterable of str

    Returns
    -------
    dict of str to str
        Ordered as the figures list the conditions.
    """
    ordered = ordered_conditions(conditions)
    active = [c for c in ordered if c != REST_LABEL]
    if all(c in KNOWN_CONDITIONS for c in active):
        index = {c: KNOWN_CONDITIONS.index(c) for c in active}
    else:
        index = {c: n for n, c in enumerate(active)}
    colors = {c: PALETTE[index[c] % len(PALETTE)] for c in active}
    if REST_LABEL in ordered:
        colors[REST_LABEL] = REST_COLOR
    return colors


def _legend_swatch(name: str, color: str, group: str | None = None) -> go.Scatter:
    return go.Scatter(
        x=[None], y=[None], mode="markers", name=name, legendgroup=group or name,
        marker=dict(symbol="square", size=12, color=color), hoverinfo="skip", showlegend=True,
    )


def _template_text(text) -> str:
    """User text put inside a hover template: escaped, and its braces too (``%{x}`` stays literal)."""
    return html.escape(str(text)).replace("{", "&#123;").replace("}", "&#125;")


def _check_tr(tr):
    if tr is None:
        return None
    return check_positive(tr, "tr", allow_none=False)


def plot_condition_timeline(labels, runs=None, tr: float | None = None) -> go.Figure:
    """The condition of every volume, one row per run.

    Parameters
    ----------
    labels : sequence of str
        Condition of each volume, in acquisition order.
    runs : sequence, optional
        Run of each volume; None draws one row.
    tr : float, optional
        Repetition time in seconds: the x axis is then time within the run.

    Returns
    -------
    plotly.graph_objects.Figure
        A categorical heatmap (rows = runs) with a legend of the conditions.
    """
    labels = _checked_labels(labels)
    runs = as_runs(runs, labels.size)
    tr = _check_tr(tr)
    if runs is None:
        run_values = [None]
        members = [np.arange(labels.size)]
        row_names = ["all volumes"]
    else:
        run_values = sorted_unique(runs)
        members = [np.flatnonzero(runs == run) for run in run_values]
        row_names = [html.escape(run_name(run)) for run in run_values]  # run names come from the user's table
    colors = condition_colors(labels)
    order = list(colors)
    code_of = {c: n for n, c in enumerate(order)}
    length = max(len(m) for m in members)
    codes = np.full((len(members), length), np.nan, dtype=np.float32)
    text = [[""] * length for _ in members]
    for row, indices in enumerate(members):
        codes[row, : len(indices)] = [code_of[c] for c in labels[indices]]
        for col, index in enumerate(indices):
            text[row][col] = f"{html.escape(str(labels[index]))} (volume {index} of the image)"
    x = np.arange(length, dtype=np.float32) * (tr or 1.0)
    fig = go.Figure(
        go.Heatmap(
            z=codes,
            x=x,
            y=row_names,
            text=text,
            colorscale=discrete_colorscale([colors[c] for c in order]),
            zmin=-0.5,
            zmax=len(order) - 0.5,
            showscale=False,
            hoverongaps=False,
            xgap=0,
            ygap=2,
            hovertemplate="%{y}, " + ("t = %{x:.1f} s" if tr else "volume %{x}") + "<br>%{text}<extra></extra>",
        )
    )
    for condition in order:
        fig.add_trace(_legend_swatch(html.escape(condition), colors[condition]))
    fig.update_yaxes(autorange="reversed", type="category", title=None)
    fig.update_xaxes(
        title="time within run (s)" if tr else "volume within run", showgrid=False, zeroline=False
    )
    fig.update_layout(
        title=dict(text="Conditions over time", x=0.01, xanchor="left"),
        height=int(150 + 24 * len(members)),
        margin=dict(l=70, r=20, t=80, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0, title=None),
        plot_bgcolor="white",
        font=FONT,
    )
    return fig


def plot_condition_counts(labels, runs=None) -> go.Figure:
    """Number of volumes of each condition, per run when runs are given.

    Parameters
    ----------
    labels : sequence of str
    runs : sequence, optional
        Run of each volume: one stacked bar per run, stacked by condition.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    labels = _checked_labels(labels)
    runs = as_runs(runs, labels.size)
    colors = condition_colors(labels)
    fig = go.Figure()
    if runs is None:
        counts = pd.Series(labels).value_counts()
        order = list(colors)
        fig.add_trace(
            go.Bar(
                x=[html.escape(c) for c in order],
                y=[int(counts[c]) for c in order],
                marker_color=[colors[c] for c in order],
                text=[int(counts[c]) for c in order],
                textposition="outside",
                hovertemplate="%{x}: %{y} volumes<extra></extra>",
                showlegend=False,
            )
        )
        fig.update_xaxes(title="condition")
    else:
        run_values = sorted_unique(runs)
        names = [html.escape(run_name(r)) for r in run_values]
        table = pd.crosstab(pd.Series(runs, name="run"), pd.Series(labels, name="condition"))
        for condition in colors:
            column = table[condition] if condition in table.columns else pd.Series(dtype=int)
            fig.add_trace(
                go.Bar(
                    x=names,
                    y=[int(column.get(r, 0)) for r in run_values],
                    name=html.escape(condition),
                    marker_color=colors[condition],
                    hovertemplate=f"%{{x}}: %{{y}} {_template_text(condition)} volumes<extra></extra>",
                )
            )
        fig.update_layout(barmode="stack")
        fig.update_xaxes(title="run", type="category")
    fig.update_yaxes(title="volumes", rangemode="tozero")
    fig.update_layout(
        title=dict(text="Volumes per condition", x=0.01, xanchor="left"),
        height=380,
        margin=dict(l=60, r=20, t=60, b=60),
        legend=dict(title="condition"),
        font=FONT,
    )
    return fig


def plot_class_balance(labels) -> go.Figure:
    """Counts of the selected conditions, with the majority-class rate.

    The majority-class rate is the accuracy of always guessing the most
    frequent condition: the chance level accuracy is measured against.

    Parameters
    ----------
    labels : sequence of str
        Condition of each selected sample.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    labels = _checked_labels(labels)
    counts = pd.Series(labels).value_counts()
    colors = condition_colors(labels)
    order = list(colors)
    values = np.array([int(counts[c]) for c in order])
    total = int(values.sum())
    majority = values.max() / total
    fig = go.Figure(
        go.Bar(
            x=[html.escape(c) for c in order],
            y=values,
            marker_color=[colors[c] for c in order],
            text=[f"{v} ({v / total:.0%})" for v in values],
            textposition="outside",
            hovertemplate="%{x}: %{y} samples<extra></extra>",
            showlegend=False,
        )
    )
    balanced = np.all(values == values[0])
    fig.update_layout(
        title=dict(
            text=f"Class balance: {total} samples, majority-class rate {majority:.1%}"
            + ("" if balanced else " (unbalanced)"),
            x=0.01,
            xanchor="left",
        ),
        height=340,
        margin=dict(l=60, r=20, t=60, b=50),
        yaxis=dict(title="samples", range=[0, values.max() * 1.2]),
        xaxis=dict(title="condition"),
        font=FONT,
    )
    return fig


def plot_mean_timecourse(X, labels=None, runs=None, tr: float | None = None, *,
                         volume_index=None) -> go.Figure:
    """Mean signal over the masked voxels: one line, each condition's blocks shaded behind it.

    Parameters
    ----------
    X : ndarray of shape (n_volumes, n_voxels) or MaskedData
        The masked data; a `MaskedData` also gives labels, runs and volume indices.
    labels : sequence of str, optional
        Condition of each row (required with an array).
    runs : sequence, optional
        Run of each row: runs are separated by dotted lines.
    tr : float, optional
        Repetition time in seconds: the x axis is then time.
    volume_index : sequence of int, optional
        Index of each row in the 4D image (default: 0, 1, ...); gaps between
        kept volumes break the line.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    X, labels, runs, volume_index = _unpack_masked(X, labels, runs, volume_index)
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise DecodingInputError(
            f"'X' must be a non-empty 2D array (volumes x voxels). Got shape {X.shape}."
        )
    labels = _checked_labels(labels)
    if labels.size != X.shape[0]:
        raise DecodingInputError(
            f"'labels' must have one value per row of X ({X.shape[0]}). Got {labels.size}."
        )
    runs = as_runs(runs, labels.size)
    tr = _check_tr(tr)
    volume_index = (
        np.arange(labels.size) if volume_index is None else np.asarray(volume_index, dtype=np.int64)
    )
    if volume_index.shape != labels.shape:
        raise DecodingInputError(
            f"'volume_index' must have one value per row of X ({X.shape[0]}). Got shape {volume_index.shape}."
        )
    mean = np.nanmean(X.astype(np.float64, copy=False), axis=1).astype(np.float32)
    position = volume_index * (tr or 1.0)
    # One line (1,452 dots were unreadable); each condition's blocks shaded behind it.
    fig = go.Figure(_broken_line(position, mean, volume_index, runs, labels))
    colors = condition_colors(labels)
    shapes = _condition_bands(position, labels, volume_index, runs, colors, tr or 1.0)
    for condition, color in colors.items():
        if condition != REST_LABEL:
            fig.add_trace(_legend_swatch(html.escape(condition), color))
    if runs is not None:
        shapes += _run_boundaries(position, runs, tr)
    # Every shape in one layout update: add_vrect/add_vline re-validate all shapes on each call
    # (the Haxby design's 96 blocks and 11 run boundaries took seconds at every draw).
    fig.update_layout(shapes=shapes)
    fig.update_layout(
        title=dict(text=f"Mean signal over {X.shape[1]} voxels", x=0.01, xanchor="left"),
        xaxis=dict(title="time (s)" if tr else "volume", showgrid=False),
        yaxis=dict(title="mean signal"),
        height=360,
        margin=dict(l=60, r=20, t=80, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0, itemsizing="constant"),
        hovermode="closest",
        font=FONT,
    )
    return fig


def _condition_bands(position: np.ndarray, labels: np.ndarray, volume_index: np.ndarray,
                     runs, colors: dict, step: float) -> list:
    """A light band of the condition's colour behind each block of consecutive volumes (none for rest)."""
    starts = np.r_[True, (labels[1:] != labels[:-1]) | (np.diff(volume_index) != 1)]
    if runs is not None:
        starts[1:] |= runs[1:] != runs[:-1]
    first = np.flatnonzero(starts)
    last = np.r_[first[1:] - 1, labels.size - 1]
    return [
        dict(type="rect", xref="x", yref="paper", x0=float(position[start]) - step / 2,
             x1=float(position[end]) + step / 2, y0=0, y1=1, fillcolor=colors[labels[start]],
             opacity=0.3, line_width=0, layer="below")
        for start, end in zip(first, last)
        if labels[start] != REST_LABEL
    ]


def _unpack_masked(X, labels, runs, volume_index) -> tuple:
    """``(X, labels, runs, volume_index)``, the missing ones taken from a `MaskedData` ``X``."""
    if hasattr(X, "X") and hasattr(X, "labels"):
        masked = X
        X = masked.X
        labels = masked.labels if labels is None else labels
        runs = masked.runs if runs is None else runs
        volume_index = masked.volume_index if volume_index is None else volume_index
    return X, labels, runs, volume_index


def _broken_line(position: np.ndarray, mean: np.ndarray, volume_index: np.ndarray, runs,
                 labels: np.ndarray) -> go.Scatter:
    """The mean signal as a dark line, broken where volumes were dropped or a run changes.

    Its hover names each volume's condition (escaped: condition names are the user's text).
    """
    breaks = np.diff(volume_index) != 1
    if runs is not None:
        breaks |= runs[1:] != runs[:-1]
    at = np.flatnonzero(breaks) + 1
    line_x = np.insert(position.astype(np.float64), at, np.nan)
    line_y = np.insert(mean.astype(np.float64), at, np.nan)
    hover = np.array([f"{html.escape(str(c))}, volume {v}" for c, v in zip(labels, volume_index)], dtype=object)
    return go.Scatter(
        x=line_x.astype(np.float32), y=line_y.astype(np.float32), mode="lines",
        line=dict(color="#333333", width=1.2), name="mean signal", showlegend=False,
        customdata=np.insert(hover, at, ""), hovertemplate="%{customdata}<br>mean %{y:.3f}<extra></extra>",
        connectgaps=False,
    )


def _run_boundaries(position: np.ndarray, runs: np.ndarray, tr: float | None) -> list:
    """A dotted vertical line half a volume before the first volume of each run but the first."""
    starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
    return [
        dict(type="line", xref="x", yref="paper", x0=float(position[start]) - 0.5 * (tr or 1.0),
             x1=float(position[start]) - 0.5 * (tr or 1.0), y0=0, y1=1,
             line=dict(color="#999999", width=1, dash="dot"))
        for start in starts[1:]
    ]


# -- events of a BIDS data set -----------------------------------------------------------------

#: Colour of the volumes dropped at the edges of a block.
EDGE_COLOR = "#444444"


def plot_events_timeline(events: pd.DataFrame, volume_labels, tr: float, *, hrf_lag: float = 0.0,
                         run_column: str = "run", rest_label: str = REST_LABEL,
                         edge_label: str = "edge") -> go.Figure:
    """The events of each run and the label each volume gets from them, one row per run.

    Each run's row shows its events as bars (from onset to onset + duration, coloured by
    ``trial_type``) and, just under them, one square per volume at its acquisition time,
    coloured by the label it received after the haemodynamic lag: the shift between a
    bar and its squares is the lag. Volumes dropped at block edges are drawn as grey
    crosses, ``rest`` volumes as light grey squares. Every text the user wrote (condition
    and run names) is HTML-escaped: Plotly draws hover labels, legends and ticks as HTML.

    Parameters
    ----------
    events : pandas.DataFrame
        ``onset``, ``duration`` (seconds from the run's first volume), ``trial_type`` and
        ``run_column``.
    volume_labels : mapping
        Run -> the label of each of its volumes (as
        `decoding_core.events.events_to_volume_labels` returns them), in the order the
        rows are drawn; its keys are the values of ``events[run_column]``.
    tr : float
        Repetition time in seconds: volume ``i`` is acquired at ``i * tr``.
    hrf_lag : float, default=0.0
        The lag the labels were made with (said in the title).
    run_column : str, default="run"
    rest_label, edge_label : str
        The labels of volumes in no event and of volumes dropped at block edges.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    tr = check_positive(tr, "tr", allow_none=False)
    hrf_lag = check_positive(hrf_lag, "hrf_lag", allow_none=False, allow_zero=True)
    runs = list(volume_labels)
    if not runs:
        raise DecodingInputError("'volume_labels' must hold at least one run.")
    missing = [c for c in ("onset", "duration", "trial_type", run_column) if c not in events.columns]
    if missing:
        raise DecodingInputError(f"'events' has no {', '.join(map(repr, missing))} column.")
    labels = {run: as_labels(volume_labels[run]) for run in runs}
    trial_types = events["trial_type"].to_numpy(dtype=str)
    # The edge label is not a condition: left out, Haxby's categories keep their usual colours.
    shown = np.concatenate([trial_types, *labels.values()])
    colors = condition_colors(shown[shown != edge_label])
    fig = go.Figure()
    _add_event_bars(fig, events, runs, run_column, colors)
    _add_volume_marks(fig, labels, tr, colors, rest_label, edge_label)
    n_edges = sum(int((values == edge_label).sum()) for values in labels.values())
    title = f"Events (bars) and the label of each volume (squares), lag {hrf_lag:g} s"
    title += f", {n_edges} edge volumes dropped" if n_edges else ""
    longest = max(values.size for values in labels.values()) * tr
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(runs))),
                     ticktext=[html.escape(str(run)) for run in runs], autorange="reversed",
                     showgrid=False, zeroline=False, title=None)
    fig.update_xaxes(title="time within run (s)", range=[-0.5 * tr, longest + 0.5 * tr], showgrid=True,
                     gridcolor="#eeeeee", zeroline=False)
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left"),
        barmode="overlay",
        height=int(170 + 40 * len(runs)),
        margin=dict(l=110, r=20, t=100, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0, title=None),
        plot_bgcolor="white",
        hovermode="closest",
        font=FONT,
    )
    return fig


def _add_event_bars(fig: go.Figure, events: pd.DataFrame, runs: list, run_column: str, colors: dict) -> None:
    """One horizontal bar per event (a trace per trial_type, for the legend), in the upper half of its row."""
    row_of = {run: row for row, run in enumerate(runs)}
    rows = events[events[run_column].isin(row_of)]
    for condition, color in colors.items():
        chosen = rows[rows["trial_type"].astype(str) == condition]
        if chosen.empty:
            continue
        onsets = chosen["onset"].to_numpy(dtype=float)
        durations = chosen["duration"].to_numpy(dtype=float)
        run_text = [html.escape(str(run)) for run in chosen[run_column]]
        fig.add_trace(go.Bar(
            x=durations, base=onsets, y=[row_of[run] - 0.17 for run in chosen[run_column]], orientation="h",
            width=0.32, marker=dict(color=color, line=dict(width=0)), name=html.escape(condition),
            legendgroup=html.escape(condition),
            customdata=np.column_stack([run_text, onsets, onsets + durations]),
            hovertemplate=f"%{{customdata[0]}}<br>event {html.escape(condition)}: "
                          "%{customdata[1]:.1f} to %{customdata[2]:.1f} s<extra></extra>",
        ))


def _add_volume_marks(fig: go.Figure, labels: dict, tr: float, colors: dict, rest_label: str,
                      edge_label: str) -> None:
    """A square per volume at its acquisition time, coloured by its label, in the lower half of its row."""
    rows, times, values, volumes, run_text = [], [], [], [], []
    for row, (run, run_labels) in enumerate(labels.items()):
        rows.append(np.full(run_labels.size, row + 0.2))
        times.append(np.arange(run_labels.size) * tr)
        values.append(run_labels)
        volumes.append(np.arange(run_labels.size))
        run_text.extend([html.escape(str(run))] * run_labels.size)
    rows, times, values, volumes = map(np.concatenate, (rows, times, values, volumes))
    run_text = np.asarray(run_text, dtype=object)
    kinds = [c for c in colors if c != rest_label] + [rest_label, edge_label]
    for condition in dict.fromkeys(kinds):
        chosen = values == condition
        if not chosen.any():
            continue
        edge = condition == edge_label
        name = "dropped (block edge)" if edge else html.escape(condition)
        fig.add_trace(go.Scatter(
            x=times[chosen], y=rows[chosen], mode="markers", name=name, legendgroup=name,
            showlegend=edge or condition == rest_label or condition not in _bar_names(fig),
            marker=dict(symbol="x-thin-open" if edge else "square", size=7 if edge else 6,
                        color=EDGE_COLOR if edge else colors.get(condition, REST_COLOR),
                        line=dict(width=1.5, color=EDGE_COLOR) if edge else dict(width=0)),
            customdata=np.column_stack([run_text[chosen], volumes[chosen]]),
            hovertemplate=(f"%{{customdata[0]}}, volume %{{customdata[1]}} (t = %{{x:.1f}} s)"
                           f"<br>label: {name}<extra></extra>"),
        ))


def _bar_names(fig: go.Figure) -> set:
    return {trace.name for trace in fig.data if isinstance(trace, go.Bar)}
