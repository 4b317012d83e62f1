"""Cleaning per run in the app: Configure's widgets read SETTINGS, Results states the cleaning,
Compare shows two runs that differ in standardize (series vs run)."""

from __future__ import annotations

import pytest

from decoding_core import history
from decoding_core.cleaning import CONFOUND_STRATEGIES, SCOPES
from decoding_core.config import SETTINGS
from tests.app._helpers import assert_no_traceback, error_texts, go_to, run_from_configure, start_app
import ui.history
from ui import state


@pytest.fixture
def local_history(tmp_path, monkeypatch):
    monkeypatch.delenv(history.SHARED_ENV, raising=False)
    monkeypatch.setenv(history.HISTORY_PATH_ENV, str(tmp_path / "history.sqlite3"))
    yield tmp_path / "history.sqlite3"
    ui.history._sqlite_store.clear()


def run_with_standardize(at, scope: str):
    go_to(at, "configure.py")
    at.selectbox(key=state.W_STANDARDIZE).set_value(scope)
    at.run()
    assert_no_traceback(at)
    return run_from_configure(at)


def test_configure_offers_the_cleaning_choices_of_settings(local_history):
    at = go_to(start_app(), "configure.py")
    assert_no_traceback(at)
    standardize, detrend = at.selectbox(key=state.W_STANDARDIZE), at.selectbox(key=state.W_DETREND)
    assert standardize.options == [SCOPES[name].title for name in SCOPES] == detrend.options
    assert (standardize.value, detrend.value) == ("series", "none")
    assert standardize.label == SETTINGS["standardize"].label
    high_pass = at.number_input(key=state.W_HIGH_PASS)
    assert high_pass.value is None and high_pass.label == SETTINGS["high_pass"].label
    confounds = at.multiselect(key=state.W_CONFOUNDS)
    assert confounds.options == [CONFOUND_STRATEGIES[name].title for name in CONFOUND_STRATEGIES]
    assert confounds.disabled  # the built-in data set has no fMRIPrep run files


@pytest.mark.slow
def test_results_state_the_cleaning_and_compare_shows_series_against_run(local_history):
    at = start_app()
    series = run_with_standardize(at, "series")
    by_run = run_with_standardize(at, "run")
    at.run()
    assert_no_traceback(at)
    assert by_run.config.standardize == "run" and series.config.standardize == "series"
    assert any("z-score of each voxel within each run" in info.value for info in at.info)

    go_to(at, "compare.py")
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    assert len(at.multiselect(key=state.W_COMPARE_RUNS).value) == 2
    markdown = "\n".join(m.value for m in at.markdown)
    assert "Settings that differ (highlighted): **Standardize**." in markdown
    # The settings table shows the two values side by side.
    rows = [set(row) for frame in at.dataframe for row in frame.value.astype(str).itertuples(index=False)]
    assert {"series", "run"} in [row & {"series", "run"} for row in rows]
    records = history.SQLiteRunStore(local_history).list()
    assert sorted(r.config.standardize for r in records) == ["run", "series"]
