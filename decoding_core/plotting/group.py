"""The forest plot of a group decoding: each subject's score with its interval, the group mean, chance."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from decoding_core.plotting._common import CHANCE_COLOR, FONT, SCORE_COLOR, plain_label

#: Colour of the group's diamond and line.
GROUP_COLOR = "#d35400"


def _group_line(group) -> str:
    """The y label of the group row: its mean and the two tests' p-values."""
    if group.t_test is None:
        return "group"
    return (f"<b>group mean</b><br>t-test p = {group.t_test.p_value:.2g}, "
            f"sign-flip p = {group.sign_flip.p_value:.2g}")


def plot_group_forest(group, table) -> go.Figure:
    """One row per subject (mean score and its 95 % interval across folds), the group mean, and chance.

    Parameters
    ----------
    group : decoding_core.group.GroupResult
    table : pandas.DataFrame
        ``decoding_core.group.group_table(group)``.

    Returns
    -------
    plotly.graph_objects.Figure
        Subjects from top to bottom in the group's order; the group mean (a diamond with
        the 95 % t interval of the subjects' scores) at the bottom; chance as a dashed line.
    """
    names = [plain_label(name) for name in table["subject"]]  # subject names may come from a user's folder
    scores = table["mean_score"].to_numpy(dtype=float)
    low = scores - table["ci_low"].to_numpy(dtype=float)
    high = table["ci_high"].to_numpy(dtype=float) - scores
    score_name = group.config.scoring.replace("_", " ")
    fig = go.Figure(go.Scatter(
        x=scores, y=names, mode="markers", name="subjects",
        marker=dict(color=SCORE_COLOR, size=11, symbol="square"),
        error_x=dict(type="data", symmetric=False, array=np.nan_to_num(high), arrayminus=np.nan_to_num(low),
                     color=SCORE_COLOR, thickness=2),
        customdata=np.stack([table["chance_level"], table["n_folds"]], axis=1),
        hovertemplate=(f"%{{y}}<br>{score_name} %{{x:.3f}}<br>chance %{{customdata[0]:.3f}}"
                       "<br>%{customdata[1]} folds<extra></extra>"),
    ))
    group_label = _group_line(group)
    if len(scores) >= 2:
        mean = float(np.mean(scores))
        half = float(np.std(scores, ddof=1) / math.sqrt(len(scores)) * _t_975(len(scores) - 1))
        fig.add_trace(go.Scatter(
            x=[mean], y=[group_label], mode="markers", name="group mean",
            marker=dict(color=GROUP_COLOR, size=16, symbol="diamond"),
            error_x=dict(type="data", array=[half], color=GROUP_COLOR, thickness=3),
            hovertemplate=f"group mean {score_name} %{{x:.3f}} ± {half:.3f}<extra></extra>",
        ))
    chance = float(np.mean(table["chance_level"]))
    fig.add_vline(x=chance, line=dict(color=CHANCE_COLOR, dash="dash", width=2))
    fig.add_annotation(x=chance, y=1.0, yref="paper", yanchor="bottom", text=f"chance {chance:.2f}",
                       showarrow=False, font=dict(color=CHANCE_COLOR, size=12))
    order = list(names) + ([group_label] if len(scores) >= 2 else [])
    fig.update_layout(
        title=dict(text=f"{score_name[:1].upper()}{score_name[1:]} per subject ({len(names)} subjects)",
                   x=0.01, xanchor="left"),
        xaxis=dict(title=score_name, range=[min(0.0, chance - 0.1), 1.02]),
        yaxis=dict(type="category", categoryorder="array", categoryarray=order[::-1], automargin=True),
        height=max(320, 120 + 46 * len(order)), margin=dict(l=20, r=30, t=70, b=50),
        showlegend=False, font=FONT, plot_bgcolor="white",
    )
    fig.update_xaxes(showgrid=True, gridcolor="#eeeeee")
    return fig


def _t_975(df: int) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, df))
