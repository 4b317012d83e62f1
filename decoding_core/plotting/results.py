"""Figures of decoding results: fold scores, predictions, confusion, permutations, comparisons.

Each builder takes a `DecodingResult`, a permutation result or plain scores and returns
a ``plotly.graph_objects.Figure``. The confusion matrix draws the counts of
`decoding_core.summaries.confusion_table`, the one count of a result's predictions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from decoding_core.decoding.scoring import SCORINGS
from decoding_core.errors import DecodingInputError
from decoding_core.export import fold_names, fold_table
from decoding_core.plotting._common import (
    CHANCE_COLOR,
    CORRECT_COLOR,
    ERROR_COLOR,
    FONT,
    PALETTE,
    SCORE_COLOR,
    discrete_colorscale,
    ordered_conditions,
    plain_label,
    run_name,
    sorted_unique,
)
from decoding_core.summaries import confusion_table

__all__ = [
    "plot_confusion_matrix",
    "plot_fold_scores",
    "plot_null_distribution",
    "plot_paired_folds",
    "plot_predictions",
    "plot_score_comparison",
    "plot_score_vs_setting",
]


def _score_name(result) -> str:
    scoring = getattr(result.config, "scoring", "accuracy")
    return SCORINGS[scoring].short if scoring in SCORINGS else str(scoring)


def plot_fold_scores(result) -> go.Figure:
    """One bar per fold, with the chance level (dashed) and the mean (solid).

    Parameters
    ----------
    result : DecodingResult

    Returns
    -------
    plotly.graph_objects.Figure
        Bars named ``"run <r>"`` (the test run) for leave-one-run-out; a note
        when the scheme scores the training data (meaningless).
    """
    table = fold_table(result)
    names = [plain_label(name) for name in fold_names(result, table)]  # run names come from the user's table
    score_name = _score_name(result)
    scores = table["score"].to_numpy(dtype=float)
    fig = go.Figure(
        go.Bar(
            x=names,
            y=scores,
            marker_color="#bbbbbb" if result.meaningless else SCORE_COLOR,
            opacity=0.85,
            text=[f"{s:.2f}" if np.isfinite(s) else "n/a" for s in scores],
            textposition="inside",
            insidetextanchor="end",
            customdata=table["n_test"].to_numpy(dtype=np.int64),
            hovertemplate=f"%{{x}}<br>{score_name} %{{y:.3f}}<br>%{{customdata}} test samples<extra></extra>",
            name=score_name,
            showlegend=False,
        )
    )
    # Line labels sit in the right margin, where no bar can hide them.
    fig.add_hline(y=float(result.chance_level), line=dict(color=CHANCE_COLOR, dash="dash", width=2), name="chance")
    labels = [(float(result.chance_level), f"chance {result.chance_level:.2f}", CHANCE_COLOR)]
    if len(scores) > 1 and np.isfinite(result.mean_score):
        fig.add_hline(y=float(result.mean_score), line=dict(color="#ff7f0e", width=2), name="mean")
        labels.append((float(result.mean_score), f"mean {result.mean_score:.2f}<br>± {result.std_score:.2f}", "#d35400"))
    if len(labels) == 2 and abs(labels[0][0] - labels[1][0]) < 0.08:
        # Keep close labels apart: the lower one goes below its line.
        low, high = sorted(range(2), key=lambda n: labels[n][0])
        anchors = {low: "top", high: "bottom"}
    else:
        anchors = {n: "middle" for n in range(len(labels))}
    for n, (y, text, color) in enumerate(labels):
        fig.add_annotation(x=1.0, xref="paper", xanchor="left", y=y, yref="y", yanchor=anchors[n], text=text,
                           showarrow=False, font=dict(color=color, size=12), xshift=4)
    title = f"{score_name[:1].upper()}{score_name[1:]} per fold ({result.config.cv})"
    if result.meaningless:
        fig.add_annotation(
            text="Scored on the training samples themselves: says nothing about decoding new data.",
            xref="paper", yref="paper", x=0, y=1.0, xanchor="left", yanchor="bottom",
            showarrow=False, font=dict(color=ERROR_COLOR, size=12),
        )
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left", y=0.97),
        yaxis=dict(title=score_name, range=[0, 1]),
        xaxis=dict(title=None, type="category"),
        height=380,
        margin=dict(l=60, r=95, t=80, b=50),
        bargap=0.25,
        font=FONT,
    )
    return fig


def _add_run_bands(fig: go.Figure, x: np.ndarray, runs: np.ndarray) -> None:
    """Every other run on a grey band, each named at the top ("r3") when there are at most 24."""
    run_values = sorted_unique(runs)
    for n, run in enumerate(run_values):
        inside = x[runs == run]
        low, high = float(inside.min()) - 0.5, float(inside.max()) + 0.5
        if n % 2 == 0:
            fig.add_vrect(x0=low, x1=high, fillcolor="#eeeeee", line_width=0, layer="below")
        if len(run_values) <= 24:
            fig.add_annotation(
                x=(low + high) / 2, y=1.0, xref="x", yref="paper", yanchor="bottom",
                text=plain_label(run_name(run).replace("run ", "r")), showarrow=False, font=dict(size=10),
            )


#: Cell codes of the predictions grid, and their colours and legend names.
_PREDICTION_CELLS = (
    (CORRECT_COLOR, "correct: predicted the true condition"),
    ("#bdbdbd", "missed: the true condition"),
    (ERROR_COLOR, "wrong: the condition predicted"),
)


def plot_predictions(result) -> go.Figure:
    """True and predicted condition of every tested sample, grouped by run, as a grid of cells.

    One column per tested sample (in volume order), one row per condition: a correct
    sample is one green cell in its condition's row; a mistake is a grey cell in the
    true condition's row and a red one in the predicted condition's row. Cells never
    overlap, however many samples there are.

    Parameters
    ----------
    result : DecodingResult

    Returns
    -------
    plotly.graph_objects.Figure
        A heatmap whose ``z[row, column]`` is 0 (correct), 1 (missed) or 2 (wrong), NaN elsewhere;
        rows in the data set's category order; condition names escaped.
    """
    predictions = result.predictions
    needed = {"true", "predicted"}
    if not isinstance(predictions, pd.DataFrame) or needed - set(predictions.columns):
        raise DecodingInputError("The result has no predictions table with 'true' and 'predicted' columns.")
    fig = go.Figure()
    if predictions.empty:
        fig.add_annotation(text="No predictions", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return fig
    x_column = "volume" if "volume" in predictions else ("sample" if "sample" in predictions else None)
    order = np.argsort(predictions[x_column].to_numpy(), kind="stable") if x_column else np.arange(len(predictions))
    table = predictions.iloc[order]
    true = table["true"].to_numpy(dtype=str)
    predicted = table["predicted"].to_numpy(dtype=str)
    correct = true == predicted
    x = table[x_column].to_numpy() if x_column else np.arange(len(table))
    classes = ordered_conditions([str(c) for c in result.classes] or np.r_[true, predicted])
    classes += [c for c in ordered_conditions(np.r_[true, predicted]) if c not in classes]
    row_of = {name: n for n, name in enumerate(classes)}
    columns = np.arange(len(table))
    z = np.full((len(classes), len(table)), np.nan)
    true_rows = np.array([row_of[c] for c in true])
    predicted_rows = np.array([row_of[c] for c in predicted])
    z[true_rows, columns] = np.where(correct, 0.0, 1.0)
    z[predicted_rows[~correct], columns[~correct]] = 2.0
    runs = table["run"].to_numpy() if "run" in table else None
    folds = table["fold"].to_numpy() if "fold" in table else np.zeros(len(table), int)
    run_text = [run_name(r) + ", " for r in runs] if runs is not None else [""] * len(table)
    sample_text = [
        f"{plain_label(rt)}fold {f}, {x_column or 'sample'} {xv}<br>true {plain_label(t)}, predicted {plain_label(p)}"
        for rt, f, xv, t, p in zip(run_text, folds, x, true, predicted)
    ]
    fig.add_trace(go.Heatmap(
        z=z, x=columns, y=[plain_label(c) for c in classes],
        colorscale=discrete_colorscale([color for color, _ in _PREDICTION_CELLS]), zmin=-0.5, zmax=2.5,
        showscale=False, hoverongaps=False, xgap=0, ygap=2,
        customdata=np.tile(np.array(sample_text, dtype=object), (len(classes), 1)),
        hovertemplate="%{customdata}<extra></extra>", name="predictions",
    ))
    for color, name in _PREDICTION_CELLS:  # the legend: one swatch per kind of cell
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=name,
                                 marker=dict(symbol="square", size=12, color=color), hoverinfo="skip"))
    if runs is not None:
        _add_run_bands(fig, columns, runs)
    accuracy = correct.mean()
    title = f"Predictions: {int(correct.sum())} of {correct.size} correct ({accuracy:.0%})"
    if result.meaningless:
        title += " on the training data (meaningless)"
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left"),
        xaxis=dict(title=f"tested samples, in {x_column or 'sample'} order", showgrid=False, zeroline=False,
                   range=[-0.5, len(table) - 0.5]),
        yaxis=dict(title=None, type="category", categoryorder="array",
                   categoryarray=[plain_label(c) for c in classes], autorange="reversed", showgrid=False),
        height=int(230 + 36 * len(classes)),
        margin=dict(l=90, r=20, t=80, b=90),
        legend=dict(orientation="h", yanchor="top", y=-0.3, x=0),
        plot_bgcolor="white",
        font=FONT,
    )
    return fig


def plot_confusion_matrix(confusion_df, normalize: bool = True) -> go.Figure:
    """An annotated confusion matrix (rows: true condition, columns: predicted), with counts on hover.

    Parameters
    ----------
    confusion_df : pandas.DataFrame or DecodingResult
        Counts, indexed by true condition, columns by predicted condition; or
        a result, whose predictions are counted by
        `decoding_core.summaries.confusion_table`.
    normalize : bool, default=True
        Show each row as fractions of its true condition's samples (the recall of each
        class on the diagonal, readable when classes differ in size); False shows counts.
        The hover gives both.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if hasattr(confusion_df, "predictions") and hasattr(confusion_df, "classes"):
        confusion_df = confusion_table(confusion_df)
    if not isinstance(confusion_df, pd.DataFrame) or confusion_df.empty:
        raise DecodingInputError("'confusion_df' must be a non-empty DataFrame of counts (true x predicted).")
    counts = confusion_df.to_numpy(dtype=float)
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise DecodingInputError("'confusion_df' must hold non-negative counts.")
    row_totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    values = fractions if normalize else counts
    text = [[f"{f:.0%}" if normalize else f"{int(c)}" for c, f in zip(crow, frow)]
            for crow, frow in zip(counts, fractions)]
    rows = [plain_label(v) for v in confusion_df.index]
    cols = [plain_label(v) for v in confusion_df.columns]
    custom = np.stack([counts, fractions * 100], axis=-1)
    fig = go.Figure(
        go.Heatmap(
            z=values, x=cols, y=rows, text=text, texttemplate="%{text}", colorscale="Blues",
            zmin=0, zmax=1 if normalize else max(1.0, float(counts.max())),
            customdata=custom,
            hovertemplate="true %{y}, predicted %{x}<br>%{customdata[0]:.0f} samples "
                          "(%{customdata[1]:.0f}% of the row)<extra></extra>",
            colorbar=dict(title=dict(text="fraction" if normalize else "samples"), thickness=14),
        )
    )
    size = max(260, min(700, 80 + 55 * len(rows)))
    fig.update_layout(
        title=dict(text="Confusion matrix" + (" (fraction of each true condition)" if normalize else ""),
                   x=0.01, xanchor="left"),
        # Square cells shrink the plot area (constrain="domain") rather than pad it with
        # empty categories, so the row labels stay next to the matrix; no grid over the cells.
        xaxis=dict(title="predicted", type="category", side="bottom", constrain="domain", showgrid=False),
        yaxis=dict(title="true", type="category", autorange="reversed", scaleanchor="x", scaleratio=1,
                   showgrid=False),
        height=int(size + 80),
        margin=dict(l=100, r=20, t=60, b=80),
        font=FONT,
    )
    return fig


def _as_scores(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel() if values is not None else np.array([])
    if array.size == 0:
        raise DecodingInputError(f"'{name}' must hold at least one score.")
    return array


def plot_null_distribution(null_scores, observed: float | None = None, p_value: float | None = None,
                           chance: float | None = None) -> go.Figure:
    """Histogram of permutation scores with the observed score marked.

    Parameters
    ----------
    null_scores : sequence of float or PermutationResult
        Scores with shuffled labels; or a permutation result, which gives
        the null scores, observed score and p-value.
    observed : float
        Score with the true labels (taken from a PermutationResult when omitted).
    p_value : float
        (taken from a PermutationResult when omitted).
    chance : float, optional
        Drawn as a dashed line.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if hasattr(null_scores, "null_scores"):
        outcome = null_scores
        observed = getattr(outcome, "observed_score", getattr(outcome, "observed", None)) if observed is None else observed
        p_value = outcome.p_value if p_value is None else p_value
        null_scores = outcome.null_scores
    for name, value in (("observed", observed), ("p_value", p_value)):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise DecodingInputError(f"'{name}' must be a finite number. Got {value!r}.")
    null = _as_scores(null_scores, "null_scores")
    null = null[np.isfinite(null)]
    if null.size == 0:
        raise DecodingInputError("'null_scores' has no finite score.")
    fig = go.Figure(
        go.Histogram(x=null, nbinsx=min(60, max(10, null.size // 10)), marker_color="#9ecae1",
                     name="shuffled labels", hovertemplate="score %{x}<br>%{y} permutations<extra></extra>")
    )
    fig.add_vline(x=float(observed), line=dict(color=ERROR_COLOR, width=3), name="observed",
                  annotation_text=f"observed {observed:.3f}<br>p = {p_value:.3g}",
                  annotation_position="top left" if observed > np.median(null) else "top right")
    if chance is not None:
        fig.add_vline(x=float(chance), line=dict(color=CHANCE_COLOR, dash="dash"), name="chance",
                      annotation_text="chance", annotation_position="bottom right")
    # Room on both sides, so neither the null bars nor the observed line sit on the plot's edge.
    marks = [float(null.min()), float(null.max()), float(observed)] + ([float(chance)] if chance is not None else [])
    pad = max(0.1 * (max(marks) - min(marks)), 0.01)
    fig.update_layout(
        title=dict(text=f"Permutation test: {null.size} permutations", x=0.01, xanchor="left"),
        xaxis=dict(title="score", range=[min(marks) - pad, max(marks) + pad]), yaxis=dict(title="permutations"),
        height=360, margin=dict(l=60, r=20, t=70, b=50), bargap=0.05, showlegend=False, font=FONT,
    )
    return fig


def plot_score_comparison(scores: Mapping, chance: float | None = None) -> go.Figure:
    """Fold scores of several classifiers side by side (e.g. real vs dummy).

    Parameters
    ----------
    scores : mapping of str to sequence of float
        Fold scores of each classifier, in display order.
    chance : float, optional

    Returns
    -------
    plotly.graph_objects.Figure
        A box per name, with every fold as a point and the mean as a diamond.
    """
    if not isinstance(scores, Mapping) or not scores:
        raise DecodingInputError("'scores' must map each classifier's name to its fold scores.")
    fig = go.Figure()
    for n, (name, values) in enumerate(scores.items()):
        array = _as_scores(values, f"scores[{name!r}]")
        color = PALETTE[n % len(PALETTE)]
        name = plain_label(name)
        fig.add_trace(go.Box(
            y=array, name=name, boxpoints="all", jitter=0.35, pointpos=0, marker_color=color,
            boxmean=True, hovertemplate=f"{name}<br>fold score %{{y:.3f}}<extra></extra>",
        ))
    if chance is not None:
        fig.add_hline(y=float(chance), line=dict(color=CHANCE_COLOR, dash="dash"), name="chance",
                      annotation_text=f"chance {chance:.2f}", annotation_position="bottom right")
    fig.update_layout(
        title=dict(text="Fold scores by classifier", x=0.01, xanchor="left"),
        yaxis=dict(title="score", range=[0, 1.02]), showlegend=False,
        height=380, margin=dict(l=60, r=20, t=60, b=60), font=FONT,
    )
    return fig


def plot_score_vs_setting(values, fold_scores_list, setting_name: str, log_x: bool = False,
                          chance: float | None = None) -> go.Figure:
    """Mean fold score as a setting varies (a sweep), with the spread over folds.

    Parameters
    ----------
    values : sequence
        The setting's values (numbers, or names drawn as categories).
    fold_scores_list : sequence of sequences of float
        The fold scores obtained at each value.
    setting_name : str
    log_x : bool, default=False
        Logarithmic x axis (e.g. for C); needs positive numeric values.
    chance : float, optional

    Returns
    -------
    plotly.graph_objects.Figure
    """
    values = list(values)
    fold_scores_list = list(fold_scores_list)
    if not values or len(values) != len(fold_scores_list):
        raise DecodingInputError(
            f"'values' and 'fold_scores_list' must have the same non-zero length. "
            f"Got {len(values)} and {len(fold_scores_list)}."
        )
    numeric = all(isinstance(v, Real) and not isinstance(v, bool) for v in values)
    if log_x and not (numeric and all(v > 0 for v in values)):
        raise DecodingInputError("'log_x' needs positive numeric setting values.")
    arrays = [_as_scores(s, "fold_scores_list") for s in fold_scores_list]
    x = [float(v) for v in values] if numeric else [plain_label(v) for v in values]
    setting_name = plain_label(setting_name)
    means = np.array([np.nanmean(a) for a in arrays])
    stds = np.array([np.nanstd(a) for a in arrays])
    fig = go.Figure()
    points_x = [xv for xv, a in zip(x, arrays) for _ in a]
    points_y = np.concatenate(arrays)
    fig.add_trace(go.Scatter(
        x=points_x, y=points_y, mode="markers", name="fold", marker=dict(color="#9ecae1", size=6),
        hovertemplate=f"{setting_name} = %{{x}}<br>fold score %{{y:.3f}}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=x, y=means, mode="lines+markers", name="mean ± SD", line=dict(color=SCORE_COLOR, width=2),
        error_y=dict(type="data", array=stds, visible=True, thickness=1.2),
        hovertemplate=f"{setting_name} = %{{x}}<br>mean %{{y:.3f}}<extra></extra>",
    ))
    if chance is not None:
        fig.add_hline(y=float(chance), line=dict(color=CHANCE_COLOR, dash="dash"), name="chance",
                      annotation_text=f"chance {chance:.2f}", annotation_position="bottom right")
    fig.update_layout(
        title=dict(text=f"Score vs {setting_name}", x=0.01, xanchor="left"),
        xaxis=dict(title=setting_name, type="log" if log_x else ("linear" if numeric else "category"),
                   **(_decade_ticks(x) if log_x else {})),
        yaxis=dict(title="score", range=[0, 1.02]),
        height=380, margin=dict(l=60, r=20, t=60, b=60),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"), font=FONT,
    )
    return fig


def _decade_ticks(values) -> dict:
    """Ticks of a log axis at the powers of ten only (1e-3, 1e-2, 0.1, 1, 10, ...), none at 2 and 5."""
    low = math.floor(math.log10(min(values)) + 1e-9)
    high = math.ceil(math.log10(max(values)) - 1e-9)
    exponents = range(low, max(high, low) + 1)
    return dict(
        tickmode="array",
        tickvals=[10.0 ** k for k in exponents],
        ticktext=[_power_of_ten(k) for k in exponents],
        minor=dict(showgrid=False, ticks=""),
    )


def _power_of_ten(exponent: int) -> str:
    """``10 ** exponent`` as written on an axis: 0.1, 1, 10 and 100 plainly, others as 1e-3, 1e3."""
    return f"{10.0 ** exponent:g}" if -1 <= exponent <= 2 else f"1e{exponent}"


def plot_paired_folds(run_a_scores, run_b_scores, names, fold_labels=None) -> go.Figure:
    """Two settings compared fold by fold: one line per fold joining its two scores.

    Parameters
    ----------
    run_a_scores, run_b_scores : sequence of float
        Fold scores of the two settings, on the same folds in the same order.
    names : sequence of 2 str
        Names of the two settings.
    fold_labels : sequence of str, optional
        Names of the folds (default "fold 1", ...).

    Returns
    -------
    plotly.graph_objects.Figure
        Lines that rise show folds where the second setting scored higher; the title
        gives the mean difference and how many folds improved.
    """
    a = _as_scores(run_a_scores, "run_a_scores")
    b = _as_scores(run_b_scores, "run_b_scores")
    if a.size != b.size:
        raise DecodingInputError(
            f"Paired scores need the same folds: got {a.size} and {b.size} fold scores."
        )
    if isinstance(names, str) or len(names) != 2:
        raise DecodingInputError(f"'names' must hold the two settings' names. Got {names!r}.")
    # "A: ..." and "B: ..." so the title's "B - A" reads against the axis.
    names = [f"A: {plain_label(names[0])}", f"B: {plain_label(names[1])}"]
    fold_labels = ([f"fold {n + 1}" for n in range(a.size)] if fold_labels is None
                   else [plain_label(f) for f in fold_labels])
    if len(fold_labels) != a.size:
        raise DecodingInputError(f"'fold_labels' must name each of the {a.size} folds.")
    fig = go.Figure()
    for label, score_a, score_b in zip(fold_labels, a, b):
        color = CORRECT_COLOR if score_b > score_a else (ERROR_COLOR if score_b < score_a else "#999999")
        fig.add_trace(go.Scatter(
            x=names, y=[score_a, score_b], mode="lines+markers", line=dict(color=color, width=1),
            marker=dict(size=6), name=label, showlegend=False,
            hovertemplate=f"{label}<br>%{{x}}: %{{y:.3f}}<extra></extra>",
        ))
    fig.add_trace(go.Scatter(
        x=names, y=[np.nanmean(a), np.nanmean(b)], mode="lines+markers", name="mean",
        line=dict(color="black", width=3), marker=dict(size=10, symbol="diamond"),
        hovertemplate="mean %{x}: %{y:.3f}<extra></extra>",
    ))
    difference = np.nanmean(b - a)
    improved = int(np.sum(b > a))
    fig.update_layout(
        title=dict(text=f"Paired folds: mean difference B - A = {difference:+.3f}; {improved} of {a.size} folds higher with B", x=0.01, xanchor="left"),
        yaxis=dict(title="score", range=[0, 1.02]), xaxis=dict(type="category"),
        height=380, margin=dict(l=60, r=20, t=60, b=50), font=FONT,
    )
    return fig
