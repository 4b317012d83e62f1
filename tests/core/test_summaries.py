"""Tables and summaries of data sets, selections, results and the history (decoding_core.summaries)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from decoding_core import summaries
from decoding_core.config import DecodingConfig


def _result(true, predicted, classes):
    predictions = pd.DataFrame({"true": true, "predicted": predicted,
                                "correct": [t == p for t, p in zip(true, predicted)]})
    return SimpleNamespace(predictions=predictions, classes=tuple(classes))


@pytest.fixture(scope="module")
def small_result():
    return _result(["face", "face", "cat", "cat", "cat", "house"],
                   ["face", "cat", "cat", "cat", "face", "face"],
                   ["face", "cat", "house"])


def test_class_metrics_are_precision_recall_and_support_per_class(small_result):
    table = summaries.class_metrics(small_result)
    assert list(table["class"]) == ["face", "house", "cat"]  # Haxby's category order, as the data set lists them
    face = table.set_index("class").loc["face"]
    assert face["precision"] == pytest.approx(round(1 / 3, 3)) and face["recall"] == 0.5 and face["support"] == 2
    cat = table.set_index("class").loc["cat"]
    assert cat["precision"] == pytest.approx(round(2 / 3, 3)) and cat["recall"] == pytest.approx(round(2 / 3, 3))
    house = table.set_index("class").loc["house"]
    assert np.isnan(house["precision"]) and house["recall"] == 0 and house["support"] == 1


def test_class_metrics_agree_with_scikit_learn(small_result):
    from sklearn.metrics import precision_recall_fscore_support

    table = summaries.class_metrics(small_result).set_index("class").loc[["face", "cat"]]
    true = small_result.predictions["true"]
    predicted = small_result.predictions["predicted"]
    precision, recall, _, support = precision_recall_fscore_support(
        true, predicted, labels=["face", "cat"], zero_division=0)
    np.testing.assert_allclose(table["precision"], precision.round(3))
    np.testing.assert_allclose(table["recall"], recall.round(3))
    assert list(table["support"]) == list(support)


def test_confusion_table_counts_true_by_predicted_in_the_data_sets_category_order(small_result):
    table = summaries.confusion_table(small_result)
    assert list(table.index) == list(table.columns) == ["face", "house", "cat"]
    assert table.index.name == "true" and table.columns.name == "predicted"
    assert table.loc["cat", "cat"] == 2 and table.loc["cat", "face"] == 1 and table.loc["house", "house"] == 0
    assert int(table.to_numpy().sum()) == 6
    # Rows add up to the support of class_metrics: one count of each tested sample.
    support = summaries.class_metrics(small_result).set_index("class")["support"]
    assert table.sum(axis=1).to_dict() == support.to_dict()


def test_confusion_table_puts_other_names_sorted_after_the_known_categories():
    result = _result(["zebra", "apple", "cat"], ["zebra", "apple", "cat"], ["apple", "cat", "zebra"])
    assert list(summaries.confusion_table(result).index) == ["cat", "apple", "zebra"]


def test_the_training_accuracy_warning_is_shown_once():
    training = "Training accuracy is meaningless: the classifier is scored on the samples it was fitted on."
    result = SimpleNamespace(meaningless=True, warnings=[training, "Few samples.", "Few samples."])
    assert summaries.warnings_to_show(result) == ["Few samples."]
    honest = SimpleNamespace(meaningless=False, warnings=["Few samples."])
    assert summaries.warnings_to_show(honest) == ["Few samples."]


def test_misclassified_keeps_only_the_wrong_rows(small_result):
    wrong = summaries.misclassified(small_result)
    assert len(wrong) == 3 and not wrong["correct"].any()
    assert list(wrong.index) == [0, 1, 2]


def test_dummy_score_table_means_each_strategy():
    table = summaries.dummy_score_table({"most_frequent": [0.5, 0.5], "stratified": [0.4, 0.61234]})
    assert list(table["strategy"]) == ["most_frequent", "stratified"]
    assert list(table["mean score"]) == [0.5, round((0.4 + 0.61234) / 2, 4)]


def test_dataset_tables_on_the_built_in_data(simulated_dataset):
    dataset = simulated_dataset
    names = summaries.condition_names(dataset)
    assert names[:8] == ["face", "house", "cat", "bottle", "scissors", "shoe", "chair", "scrambledpix"]
    assert "rest" in names
    summary = summaries.dataset_summary(dataset)
    assert list(summary) == ["Image shape", "Voxel size (mm)", "TR (s)", "Volumes", "Runs"]
    assert summary["Volumes"] == str(dataset.n_volumes) and summary["Runs"] == "12"
    counts = summaries.mask_voxel_counts(dataset)
    assert summaries.mask_label("vt", counts) == f"vt - Ventral temporal cortex ({counts['vt']} voxels)"
    table = summaries.condition_run_counts(dataset)
    assert table.loc["total", "total"] == dataset.n_volumes
    preview = summaries.labels_preview(dataset)
    assert list(preview.columns[:2]) == ["volume", "time (s)"] and len(preview) == dataset.n_volumes


def test_selection_summary_counts_samples_voxels_and_runs(simulated_dataset):
    selection = summaries.selection_summary(simulated_dataset, ["face", "cat"], "vt")
    assert selection.n_samples == 216 and selection.n_runs == 12
    assert selection.n_voxels == summaries.mask_voxel_counts(simulated_dataset)["vt"]
    assert list(selection.class_counts["condition"]) == ["face", "cat"]
    assert list(selection.class_counts["share"]) == [0.5, 0.5]
    assert summaries.selection_summary(simulated_dataset, ["face"], "no such mask").n_voxels == 0


def test_defaults_and_sanitized_settings_follow_the_data_set(simulated_dataset):
    dataset = simulated_dataset
    assert summaries.default_mask_name(dataset) == "vt"
    assert summaries.default_conditions(dataset) == ["face", "cat"]
    values = {**DecodingConfig().to_dict(), "mask_name": "gone", "conditions": ["face", "unicorn"]}
    cleaned = summaries.sanitize_config_values(values, dataset)
    assert cleaned["mask_name"] == "vt" and cleaned["conditions"] == ["face", "cat"]
    assert values["mask_name"] == "gone"  # the input is not changed
    # One condition chosen on purpose stays, so Configure can say what to fix.
    assert summaries.sanitize_config_values({**values, "conditions": ["house"]}, dataset)["conditions"] == ["house"]


def test_check_design_names_each_problem_and_what_to_do(simulated_dataset):
    dataset = simulated_dataset
    assert summaries.check_design(dataset, DecodingConfig()) == []
    problems = summaries.check_design(dataset, DecodingConfig(mask_name="brainstem", conditions=("face", "unicorn")))
    assert len(problems) == 2
    assert "no mask named 'brainstem'" in problems[0] and "no volumes labelled ['unicorn']" in problems[1]
    one_run = SimpleNamespace(masks=dataset.masks, conditions=dataset.conditions,
                              runs=np.zeros(dataset.n_volumes, dtype=int))
    (problem,) = summaries.check_design(one_run, DecodingConfig())
    assert "at least two runs" in problem and "K-fold" in problem
    assert summaries.check_design(one_run, DecodingConfig(cv="kfold")) == []


def test_history_table_and_labels():
    summary = pd.DataFrame([{
        "id": "abc", "name": "first", "data set": "Simulated", "conditions": "face vs cat", "mask": "vt",
        "estimator": "svc", "C": 0.5, "tuned C": False, "cv": "kfold", "mean score": 0.81234, "sd": 0.1,
        "chance": 0.5, "folds": 5, "created": "2025-11-25T17:03:09+00:00",
    }])
    table = summaries.history_table(summary)
    assert list(table.columns) == summaries.HISTORY_COLUMNS
    assert list(table.columns[:2]) == ["mean score", "sd"]  # the score first, never off-screen
    assert table.loc[0, "C"] == "0.5" and table.loc[0, "mean score"] == 0.812
    assert table.loc[0, "date (UTC)"] == "2025-11-25 17:03"
    assert summaries.run_labels(summary) == {"abc": "first (score 0.812, 2025-11-25 17:03)"}
    assert list(summaries.history_table(summary.iloc[:0]).columns) == summaries.HISTORY_COLUMNS
    assert summaries.format_date("not a date") == "not a date"


def test_label_variants_message_names_each_group_and_the_control():
    message = summaries.label_variants_message([("face", "Face"), ("cat", "cat ")])
    assert "'face' / 'Face'; 'cat' / 'cat '" in message
    assert "'Merge condition names that differ only in case or spaces'" in message
    assert "most frequent spelling" in message


def test_selected_variants_message_only_when_a_chosen_condition_has_other_spellings():
    groups = [("face", "Face"), ("cat", "cat ")]
    assert summaries.selected_variants_message(groups, ["house", "shoe"]) is None
    message = summaries.selected_variants_message(groups, ["Face", "house"])
    assert "('face' / 'Face')" in message and "cat" not in message and "Data page" in message


def test_nonfinite_message_gives_the_counts_of_each_mask():
    from decoding_core.masking import NonFiniteScan, NonFiniteVoxels

    found = NonFiniteVoxels(mask_name="vt", n_voxels=3, n_volumes=4, n_mask_voxels=577, n_total_volumes=864,
                            columns=np.zeros(577, bool))
    message = summaries.nonfinite_message(NonFiniteScan(voxels=np.zeros((2, 2, 2), bool), by_mask={"vt": found}))
    assert "3 of the 577 voxels of the mask 'vt' (in 4 of the 864 volumes)" in message
    assert "'Drop the voxels with NaN or infinite values'" in message


def test_categories_without_rest_keep_every_other_condition_in_order():
    names = ["face", "house", "cat", "rest", "Rest ", "chair"]
    assert summaries.categories_without_rest(names) == ["face", "house", "cat", "chair"]
