"""Tests of decoding_core.plotting.group: the forest plot of a group."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from decoding_core.group import group_table
from decoding_core.plotting.group import plot_group_forest
from tests.core.test_group import _small_group


def test_forest_plot_draws_each_subject_with_its_interval_then_the_group():
    group = _small_group([1, 2, 3, 4], effect=0.6)
    table = group_table(group)
    fig = plot_group_forest(group, table)
    subjects, mean = fig.data
    assert list(subjects.y) == ["s1", "s2", "s3", "s4"]
    np.testing.assert_allclose(subjects.x, table["mean_score"])
    np.testing.assert_allclose(subjects.error_x.array, table["ci_high"] - table["mean_score"])
    scores = table["mean_score"].to_numpy()
    assert mean.x[0] == pytest.approx(scores.mean())
    half = scores.std(ddof=1) / 2 * stats.t.ppf(0.975, 3)
    assert mean.error_x.array[0] == pytest.approx(half)
    assert "sign-flip p = " in mean.y[0] and f"{group.t_test.p_value:.2g}" in mean.y[0]
    assert list(fig.layout.yaxis.categoryarray)[0] == mean.y[0]  # the group row at the bottom
    assert fig.layout.shapes[0].x0 == pytest.approx(table["chance_level"].mean())


def test_subject_names_from_a_folder_are_shown_as_written():
    group = _small_group([1, 2], effect=0.6)
    table = group_table(group)
    table.loc[0, "subject"] = "sub-<b>x</b>"
    fig = plot_group_forest(group, table)
    assert fig.data[0].y[0] == "sub-&lt;b&gt;x&lt;/b&gt;"
