"""Tests of decoding_core.plotting.results: folds, predictions, confusion, permutations, comparisons."""

from __future__ import annotations

import dataclasses
import json

import nibabel as nib
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from decoding_core import plotting, summaries
from decoding_core.config import DecodingConfig
from decoding_core.decoding import DecodingResult
from decoding_core.errors import DecodingInputError

# -- results -------------------------------------------------------------------------


def _result(cv="leave-one-run-out", meaningless=False, seed=0):
    """A small decoding result: 3 runs of 6 samples, face vs cat, made-up predictions."""
    rng = np.random.default_rng(seed)
    runs = np.repeat([0, 1, 2], 6)
    true = np.tile(["face", "cat"], 9)
    predicted = np.where(rng.random(18) < 0.7, true, np.where(true == "face", "cat", "face"))
    fold = runs + 1 if cv == "leave-one-run-out" else np.ones(18, dtype=int)
    predictions = pd.DataFrame({
        "sample": np.arange(18), "volume": np.arange(18) * 2 + 1, "run": runs, "fold": fold,
        "true": true, "predicted": predicted, "correct": true == predicted,
    })
    scores = predictions.groupby("fold")["correct"].mean().to_numpy(dtype=float)
    weights = rng.normal(size=(1, 4))
    mask = np.zeros((3, 3, 3), dtype=bool)
    mask[1, 1, :] = mask[0, 0, 0] = True
    volume = np.zeros((3, 3, 3), dtype=np.float32)
    volume[mask] = weights[0]
    return DecodingResult(
        config=DecodingConfig(cv=cv), fold_scores=scores, mean_score=float(scores.mean()),
        std_score=float(scores.std()), chance_level=0.5, meaningless=meaningless, predictions=predictions,
        classes=("cat", "face"), weights=weights, weight_img=nib.Nifti1Image(volume, np.eye(4)),
        n_samples=18, n_voxels=4, warnings=["a warning"], elapsed_seconds=0.25,
    )


def test_fold_score_bars_are_the_result_scores_with_the_chance_line():
    result = _result()
    fig = plotting.plot_fold_scores(result)
    bars = fig.data[0]
    np.testing.assert_allclose(np.asarray(bars.y, dtype=float), result.fold_scores)
    assert list(bars.x) == ["run 0", "run 1", "run 2"]
    assert list(bars.customdata) == [6, 6, 6]  # test samples per fold, shown on hover
    chance = [s for s in fig.layout.shapes if s.name == "chance"]
    assert len(chance) == 1 and chance[0].y0 == chance[0].y1 == result.chance_level
    assert chance[0].line.dash == "dash"
    mean = [s for s in fig.layout.shapes if s.name == "mean"]
    assert mean[0].y0 == pytest.approx(result.mean_score)
    assert list(fig.layout.yaxis.range) == [0, 1]


def test_fold_scores_of_the_training_data_carry_a_warning():
    fig = plotting.plot_fold_scores(_result(cv="train", meaningless=True))
    assert list(fig.data[0].x) == ["training data"]
    assert any("training samples themselves" in (a.text or "") for a in fig.layout.annotations)


def test_predictions_grid_marks_every_mistake_without_overlap():
    result = _result()
    fig = plotting.plot_predictions(result)
    grid = next(t for t in fig.data if t.type == "heatmap")
    z = np.asarray(grid.z, dtype=float)
    predictions = result.predictions.sort_values("volume")
    wrong = ~predictions["correct"].to_numpy()
    # One column per sample: a correct sample has one green cell (0); a mistake one grey (1) and one red (2).
    assert z.shape == (2, 18)
    assert list(grid.y) == ["face", "cat"]  # Haxby's category order, as the Data page lists them
    assert np.array_equal(np.sum(~np.isnan(z), axis=0), np.where(wrong, 2, 1))
    rows = {name: n for n, name in enumerate(grid.y)}
    for column, (true, predicted) in enumerate(zip(predictions["true"], predictions["predicted"])):
        if true == predicted:
            assert z[rows[true], column] == 0
        else:
            assert z[rows[true], column] == 1 and z[rows[predicted], column] == 2
    assert f"{(~wrong).sum()} of 18 correct" in fig.layout.title.text


def test_confusion_matrix_is_normalised_by_true_class_with_counts_on_hover():
    result = _result()
    fig = plotting.plot_confusion_matrix(result)
    expected = pd.crosstab(result.predictions["true"], result.predictions["predicted"]).loc[
        ["face", "cat"], ["face", "cat"]].to_numpy()
    heatmap = fig.data[0]
    assert list(heatmap.y) == ["face", "cat"] and list(heatmap.x) == ["face", "cat"]
    np.testing.assert_allclose(np.asarray(heatmap.z), expected / expected.sum(axis=1, keepdims=True))
    np.testing.assert_array_equal(np.asarray(heatmap.customdata)[..., 0], expected)  # the counts, on hover
    assert "samples" in heatmap.hovertemplate
    counts = plotting.plot_confusion_matrix(summaries.confusion_table(result), normalize=False)
    np.testing.assert_array_equal(np.asarray(counts.data[0].z), expected)
    with pytest.raises(DecodingInputError, match="non-negative counts"):
        plotting.plot_confusion_matrix(pd.DataFrame([[1, -1], [0, 2]]))


HOSTILE_NAMES = ("<b>x</b>", "=cmd|' /C calc'!A0")


def _figure_texts(fig) -> str:
    """Every text of a figure (names, ticks, hovers, titles, annotations), as Plotly receives it."""
    return json.dumps(json.loads(fig.to_json()), ensure_ascii=False)


def test_user_text_is_escaped_in_every_results_figure():
    result = _result()
    renamed = {"face": HOSTILE_NAMES[0], "cat": HOSTILE_NAMES[1]}
    predictions = result.predictions.assign(
        true=result.predictions["true"].map(renamed), predicted=result.predictions["predicted"].map(renamed),
        run=result.predictions["run"].map({0: "<i>r0</i>", 1: "%{meta}", 2: "r2"}))
    result = dataclasses.replace(result, predictions=predictions, classes=tuple(sorted(renamed.values())))
    figures = [
        plotting.plot_fold_scores(result),
        plotting.plot_predictions(result),
        plotting.plot_confusion_matrix(result),
        plotting.plot_score_comparison({HOSTILE_NAMES[0]: [0.5, 0.6]}),
        plotting.plot_paired_folds([0.5, 0.6], [0.6, 0.7], HOSTILE_NAMES, fold_labels=["<i>r0</i>", "%{meta}"]),
        plotting.plot_score_vs_setting(list(HOSTILE_NAMES), [[0.5], [0.6]], "conditions"),
    ]
    for fig in figures:
        text = _figure_texts(fig)
        # Raw tags would be drawn as markup, a raw %{...} filled in by the hover template.
        assert "<b>x" not in text and "<i>r0" not in text and "%{meta}" not in text
        assert "&lt;b&gt;x&lt;/b&gt;" in text or "&lt;i&gt;r0" in text
    assert "&lt;b&gt;x&lt;/b&gt;" in plotting.plot_confusion_matrix(result).data[0].y


def test_log_axis_of_a_sweep_has_one_tick_per_decade():
    values = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
    fig = plotting.plot_score_vs_setting(values, [[0.5, 0.6]] * 6, "C", log_x=True)
    axis = fig.layout.xaxis
    assert axis.type == "log"
    assert list(axis.tickvals) == pytest.approx(values)
    assert list(axis.ticktext) == ["1e-3", "1e-2", "0.1", "1", "10", "100"]


def test_null_distribution_marks_the_observed_score():
    null = np.random.default_rng(0).normal(0.5, 0.05, size=200)
    fig = plotting.plot_null_distribution(null, observed=0.8, p_value=1 / 201, chance=0.5)
    np.testing.assert_allclose(np.asarray(fig.data[0].x), null)
    observed = [s for s in fig.layout.shapes if s.name == "observed"]
    assert observed[0].x0 == 0.8
    assert [s.x0 for s in fig.layout.shapes if s.name == "chance"] == [0.5]

    class Outcome:  # what significance.PermutationResult provides
        null_scores = null
        observed_score = 0.7
        p_value = 0.02

    from_result = plotting.plot_null_distribution(Outcome())
    assert [s.x0 for s in from_result.layout.shapes if s.name == "observed"] == [0.7]
    with pytest.raises(DecodingInputError, match="'observed' must be a finite number"):
        plotting.plot_null_distribution(null, observed=None, p_value=0.1)


def test_score_comparison_sweep_and_paired_folds():
    scores = {"SVC": [0.8, 0.9, 0.7], "most_frequent": [0.5, 0.5, 0.5]}
    comparison = plotting.plot_score_comparison(scores, chance=0.5)
    assert [t.name for t in comparison.data] == ["SVC", "most_frequent"]
    np.testing.assert_allclose(np.asarray(comparison.data[0].y), scores["SVC"])

    sweep = plotting.plot_score_vs_setting([0.01, 1, 100], [[0.5, 0.6], [0.8, 0.9], [0.7, 0.7]], "C", log_x=True)
    mean = next(t for t in sweep.data if t.name == "mean ± SD")
    np.testing.assert_allclose(np.asarray(mean.y), [0.55, 0.85, 0.7])
    assert sweep.layout.xaxis.type == "log"
    with pytest.raises(DecodingInputError, match="same non-zero length"):
        plotting.plot_score_vs_setting([1, 2], [[0.5]], "C")

    paired = plotting.plot_paired_folds([0.6, 0.7, 0.8], [0.7, 0.6, 0.9], ["raw", "smoothed"])
    assert len(paired.data) == 4
    assert "B - A = +0.033; 2 of 3 folds higher with B" in paired.layout.title.text
    assert list(paired.data[0].x) == ["A: raw", "B: smoothed"]
    with pytest.raises(DecodingInputError, match="same folds"):
        plotting.plot_paired_folds([0.6], [0.7, 0.8], ["a", "b"])


def test_every_builder_returns_serialisable_figures():
    result = _result()
    built = [
        plotting.plot_fold_scores(result),
        plotting.plot_predictions(result),
        plotting.plot_stat_slices(result.weight_img, display_mode="yx"),
        plotting.plot_roi(nib.Nifti1Image((np.asarray(result.weight_img.dataobj) != 0).astype(np.uint8), np.eye(4))),
    ]
    for fig in built:
        assert isinstance(fig, go.Figure)
        json.loads(fig.to_json())


@pytest.mark.parametrize("scoring, name", [("accuracy", "Accuracy"), ("balanced_accuracy", "Balanced accuracy"),
                                           ("roc_auc", "ROC AUC")])
def test_fold_score_title_names_the_score_as_written(scoring, name):
    result = dataclasses.replace(_result(), config=DecodingConfig(scoring=scoring))
    title = plotting.plot_fold_scores(result).layout.title.text
    assert title.startswith(f"{name} per fold"), title
