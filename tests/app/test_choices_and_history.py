"""Configure's "Categories (no rest)" and the History table (AppTest): issue 15, items 5 and 6."""

from __future__ import annotations

import pytest

import ui.history
from decoding_core import history
from tests.app._helpers import assert_no_traceback, go_to, run_from_configure, start_app
from ui import state

CATEGORIES = ["face", "house", "cat", "bottle", "scissors", "shoe", "chair", "scrambledpix"]


@pytest.fixture
def local_history(tmp_path, monkeypatch):
    """A fresh SQLite history file for this test (local mode)."""
    monkeypatch.delenv(history.SHARED_ENV, raising=False)
    monkeypatch.setenv(history.HISTORY_PATH_ENV, str(tmp_path / "history.sqlite3"))
    yield
    ui.history._sqlite_store.clear()


def test_categories_without_rest_selects_the_eight_categories():
    at = start_app()
    go_to(at, "configure.py")
    assert "rest" in at.multiselect(key=state.W_CONDITIONS).options
    next(b for b in at.button if b.label == "Categories (no rest)").click()
    at.run()
    assert_no_traceback(at)
    assert at.multiselect(key=state.W_CONDITIONS).value == CATEGORIES
    assert any(m.label == "Classes" and m.value == "8" for m in at.metric)


@pytest.mark.slow
def test_history_shows_the_score_first_and_tells_two_runs_apart(local_history):
    at = start_app()
    go_to(at, "configure.py")
    run_from_configure(at)  # face vs cat
    go_to(at, "configure.py")
    at.multiselect(key=state.W_CONDITIONS).set_value(CATEGORIES)
    at.run()
    run_from_configure(at)  # the 8 categories, otherwise the same settings
    go_to(at, "history.py")
    assert_no_traceback(at)
    table = at.dataframe[0].value
    assert list(table.columns[:3]) == ["mean score", "sd", "chance"]
    assert len(table) == 2 and table["name"].nunique() == 2, table["name"].tolist()
    assert any("face/cat" in name for name in table["name"]) and any("8 conditions" in n for n in table["name"])


def _cost_notes(at) -> list[str]:
    return [info.value for info in at.info if "liblinear fits one class of one fold" in info.value]


def test_the_l1_svm_says_what_many_classes_cost_before_the_run():
    """Issue 13: the L1 SVM takes minutes on the 8 categories, where the others take seconds."""
    at = start_app()
    go_to(at, "configure.py")
    at.selectbox(key=state.W_ESTIMATOR).set_value("svm_l1")
    at.run()
    assert_no_traceback(at)
    assert not _cost_notes(at)  # face vs cat: two classes, quick enough
    at.multiselect(key=state.W_CONDITIONS).set_value(CATEGORIES)
    at.run()
    assert_no_traceback(at)
    assert len(_cost_notes(at)) == 1 and "5 minutes" in _cost_notes(at)[0]
    at.selectbox(key=state.W_ESTIMATOR).set_value("svm_l2")
    at.run()
    assert not _cost_notes(at)  # the other estimators need no warning
