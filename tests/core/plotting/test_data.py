"""Tests of decoding_core.plotting.data: the design and data figures and the condition colours."""

from __future__ import annotations

import nibabel as nib
import json

import numpy as np
import pandas as pd
import pytest

from decoding_core import plotting
from decoding_core.errors import DecodingInputError
from decoding_core.masking import MaskedData

# -- design and data figures ------------------------------------------------------------


def test_condition_timeline_has_one_row_per_run_coloured_by_condition():
    labels = np.array(["rest", "face", "face", "cat", "rest", "cat", "house", "rest"])
    runs = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    fig = plotting.plot_condition_timeline(labels, runs, tr=2.5)
    heatmap = fig.data[0]
    z = np.asarray(heatmap.z)
    assert list(heatmap.y) == ["run 0", "run 1"]
    np.testing.assert_allclose(np.asarray(heatmap.x), [0.0, 2.5, 5.0, 7.5])
    order = [t.name for t in fig.data[1:]]
    assert order[-1] == "rest"
    decoded = [[order[int(code)] for code in row] for row in z]
    assert decoded == [list(labels[:4]), list(labels[4:])]
    colors = {t.name: t.marker.color for t in fig.data[1:]}
    assert colors["rest"] == plotting.REST_COLOR
    assert len(set(colors.values())) == len(colors)
    assert "s" in fig.layout.xaxis.title.text


def test_condition_timeline_pads_unequal_runs_and_refuses_mismatched_runs():
    fig = plotting.plot_condition_timeline(pd.Series(["a", "b", "a"]), [1, 1, 2])
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2, 2) and np.isnan(z[1, 1])
    with pytest.raises(DecodingInputError, match="'runs' must have one value per volume"):
        plotting.plot_condition_timeline(["a", "b"], [0])


def test_condition_counts_per_run_add_up():
    labels = ["face", "cat", "face", "rest", "face", "cat"]
    runs = [0, 0, 0, 1, 1, 1]
    fig = plotting.plot_condition_counts(labels, runs)
    by_condition = {t.name: list(t.y) for t in fig.data}
    assert by_condition == {"face": [2, 1], "cat": [1, 1], "rest": [0, 1]}
    assert fig.layout.barmode == "stack"
    single = plotting.plot_condition_counts(labels)
    assert dict(zip(single.data[0].x, single.data[0].y)) == {"face": 3, "cat": 2, "rest": 1}


def test_class_balance_reports_the_majority_rate():
    fig = plotting.plot_class_balance(["face"] * 6 + ["cat"] * 2)
    assert dict(zip(fig.data[0].x, fig.data[0].y)) == {"face": 6, "cat": 2}
    assert "75.0%" in fig.layout.title.text and "unbalanced" in fig.layout.title.text


def test_mean_timecourse_plots_the_voxel_mean_by_condition():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(8, 5)).astype(np.float32)
    labels = np.array(["face", "face", "cat", "cat", "face", "cat", "face", "cat"])
    runs = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    volume_index = np.array([0, 1, 2, 3, 10, 11, 13, 14])
    mask = nib.Nifti1Image(np.ones((5, 1, 1), dtype=np.uint8), np.eye(4))
    masked = MaskedData(X=X, labels=labels, runs=runs, volume_index=volume_index, mask_img=mask, mask_name="vt")
    fig = plotting.plot_mean_timecourse(masked, tr=2.0)
    line = fig.data[0]
    # One line, not a dot per volume: the mean of each volume at its time, broken at the gaps.
    assert line.mode == "lines" and not [t for t in fig.data if t.mode == "markers" and t.x[0] is not None]
    y = np.asarray(line.y, dtype=float)
    np.testing.assert_allclose(y[np.isfinite(y)], X.mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(np.asarray(line.x, dtype=float)[np.isfinite(y)], volume_index * 2.0)
    assert np.isnan(y).sum() == 2  # the run change and the dropped volume 12
    # Each block of a condition is a shaded band: face 0-1, cat 2-3, face 10, cat 11, face 13, cat 14.
    bands = [(s.x0, s.x1) for s in fig.layout.shapes if s.type == "rect"]
    assert bands == [(-1.0, 3.0), (3.0, 7.0), (19.0, 21.0), (21.0, 23.0), (25.0, 27.0), (27.0, 29.0)]
    assert {t.name for t in fig.data if t.showlegend} == {"face", "cat"}
    same = plotting.plot_mean_timecourse(X, labels, runs, 2.0, volume_index=volume_index)
    np.testing.assert_allclose(np.asarray(same.data[0].y, dtype=float), np.asarray(line.y, dtype=float))
    with pytest.raises(DecodingInputError, match="one value per row of X"):
        plotting.plot_mean_timecourse(X, labels[:3])


def test_condition_colours_are_stable_across_subsets():
    every = plotting.condition_colors(["face", "house", "cat", "rest"])
    subset = plotting.condition_colors(["cat", "face"])
    assert every["cat"] == subset["cat"] and every["face"] == subset["face"]
    assert list(plotting.condition_colors(["b", "rest", "a"])) == ["a", "b", "rest"]


def test_condition_and_run_names_are_escaped_in_every_data_figure():
    labels = np.array(["<b>x</b>", "<b>x</b>", "=cmd|' /C calc'!A0", "%{meta}"] * 2)
    runs = np.array(["<i>r0</i>"] * 4 + ["r1"] * 4)
    X = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
    figures = [plotting.plot_condition_timeline(labels, runs), plotting.plot_condition_counts(labels),
               plotting.plot_condition_counts(labels, runs), plotting.plot_class_balance(labels),
               plotting.plot_mean_timecourse(X, labels, runs)]
    for fig in figures:
        text = json.dumps(json.loads(fig.to_json()), ensure_ascii=False)
        # Raw tags would be drawn as markup; a raw %{...} in a hover template would be filled in.
        assert "<b>x" not in text and "<i>r0" not in text
        assert "&lt;b&gt;x&lt;/b&gt;" in text
        assert not any("%{meta}" in (trace.hovertemplate or "") for trace in fig.data)
