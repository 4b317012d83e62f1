"""AppTest of the Group page: simulated subjects decoded, the table and the group tests shown."""

from __future__ import annotations

import pytest
from scipy import stats

from tests.app._helpers import assert_no_traceback, error_texts, go_to, metric_value, start_app
from ui import state


def _group_page():
    at = start_app()
    go_to(at, "group.py")
    assert_no_traceback(at)
    assert at.title[0].value == "Group: several subjects"
    return at


def test_the_page_offers_five_simulated_subjects_and_runs_here_by_default(monkeypatch):
    monkeypatch.delenv("DECODING_LAB_SCHEDULER", raising=False)
    at = _group_page()
    assert at.multiselect(key=state.W_GROUP_SEEDS).value == [0, 1, 2, 3, 4]
    assert any("Runs here, subject by subject." in caption.value for caption in at.caption)
    assert not at.button(key=state.W_GROUP_RUN).disabled
    assert at.button(key=state.W_GROUP_STOP).disabled


def test_one_subject_is_not_a_group():
    at = _group_page()
    at.multiselect(key=state.W_GROUP_SEEDS).set_value([3]).run()
    assert at.button(key=state.W_GROUP_RUN).disabled
    assert any("at least two subjects" in caption.value for caption in at.caption)


def test_a_bad_scheduler_setting_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("DECODING_LAB_SCHEDULER", "localhost:8786")
    at = _group_page()
    assert any("DECODING_LAB_SCHEDULER" in text and "tcp://HOST:PORT" in text for text in error_texts(at))
    assert_no_traceback(at)


@pytest.mark.slow
def test_two_simulated_subjects_give_the_table_and_the_group_tests(monkeypatch):
    monkeypatch.delenv("DECODING_LAB_SCHEDULER", raising=False)
    at = _group_page()
    at.multiselect(key=state.W_GROUP_SEEDS).set_value([0, 1]).run()
    at.button(key=state.W_GROUP_RUN).click().run()
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    run = at.session_state[state.GROUP_RUN]
    assert not run.running and [r.config for r in run.results] == [run.config, run.config]
    table = at.dataframe[0].value
    assert list(table["subject"]) == ["simulated:0", "simulated:1"]
    differences = table["mean_score"] - table["chance_level"]
    expected = stats.ttest_1samp(differences, 0.0, alternative="greater").pvalue
    assert metric_value(at, "t-test p") == f"{expected:.3g}"
    assert metric_value(at, "Sign-flip p") == "0.25"  # 2 subjects, both above chance: 1 of 4 sign patterns
    assert metric_value(at, "Subjects") == "2"
    assert any("Mean of the weight maps of 2 subjects" in caption.value for caption in at.caption)
