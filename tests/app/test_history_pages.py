"""Run history, comparison and sweeps through the app (AppTest).

Each test points the history at its own SQLite file (``DECODING_LAB_HISTORY_PATH``)
or turns on the shared mode (``DECODING_LAB_SHARED=1``).
"""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.app._helpers import assert_no_traceback, error_texts, go_to, run_from_configure, start_app
from decoding_core import history
from decoding_core.config import DecodingConfig
import ui.history
from ui import state


@pytest.fixture
def local_history(tmp_path, monkeypatch):
    """A fresh SQLite history file for this test (local mode)."""
    path = tmp_path / "history.sqlite3"
    monkeypatch.delenv(history.SHARED_ENV, raising=False)
    monkeypatch.setenv(history.HISTORY_PATH_ENV, str(path))
    yield path
    ui.history._sqlite_store.clear()


@pytest.fixture
def shared_mode(tmp_path, monkeypatch):
    """Shared-deployment mode; the history path is set so a test can check nothing is written there."""
    path = tmp_path / "must-not-exist.sqlite3"
    monkeypatch.setenv(history.SHARED_ENV, "1")
    monkeypatch.setenv(history.HISTORY_PATH_ENV, str(path))
    return path


def run_configuration(at, **changes):
    """Set Configure's widgets (by key), press Run; returns the result. The app ends on Results."""
    go_to(at, "configure.py")
    widgets = {"C": (at.number_input, state.W_C), "cv": (at.selectbox, state.W_CV),
               "mask_name": (at.selectbox, state.W_MASK)}
    for name, value in changes.items():
        finder, key = widgets[name]
        finder(key=key).set_value(value)
        at.run()
    return run_from_configure(at)


def history_rows(at):
    """The History page's table (DataFrame); empty when the page shows no table."""
    go_to(at, "history.py")
    assert_no_traceback(at)
    return at.dataframe[0].value if at.dataframe else None


@pytest.mark.slow
def test_a_finished_run_is_recorded_and_survives_an_app_restart(local_history):
    at = start_app()
    result = run_configuration(at, C=0.5)
    assert local_history.exists()

    # "Restart": forget the process-wide store object, start a new session, reopen the file.
    ui.history._sqlite_store.clear()
    restarted = start_app()
    rows = history_rows(restarted)
    assert rows is not None and len(rows) == 1
    assert rows["C"].tolist() == ["0.5"]
    assert rows["mean score"].iloc[0] == pytest.approx(result.mean_score, abs=1e-3)
    assert rows["data set"].iloc[0] == restarted.session_state[state.DATASET].title
    # The whole record came back, fold scores included.
    record = history.SQLiteRunStore(local_history).list()[0]
    assert record.config == result.config
    assert list(record.fold_scores) == pytest.approx(list(result.fold_scores))


@pytest.mark.slow
def test_showing_a_cached_result_again_does_not_record_it_twice(local_history):
    at = start_app()
    run_configuration(at)
    run_configuration(at)
    assert len(history.SQLiteRunStore(local_history)) == 1
    run_configuration(at, C=0.01)
    assert len(history.SQLiteRunStore(local_history)) == 2


def test_shared_mode_sessions_do_not_see_each_other(shared_mode):
    first = start_app()
    first_result = run_configuration(first, C=0.25)
    second = start_app()
    assert history_rows(second) is None
    assert any("No runs yet" in info.value for info in second.info)

    second_result = run_configuration(second, C=4.0)
    first_rows, second_rows = history_rows(first), history_rows(second)
    assert first_rows["C"].tolist() == ["0.25"] and second_rows["C"].tolist() == ["4"]
    assert first_rows["mean score"].iloc[0] == pytest.approx(first_result.mean_score, abs=1e-3)
    assert second_rows["mean score"].iloc[0] == pytest.approx(second_result.mean_score, abs=1e-3)
    # Each session holds its own in-memory store, and nothing went to a shared file.
    first_store, second_store = first.session_state[state.RUN_STORE], second.session_state[state.RUN_STORE]
    assert isinstance(first_store, history.MemoryRunStore) and first_store is not second_store
    assert not shared_mode.exists()


def test_a_sweep_over_C_gives_one_recorded_run_per_value(local_history):
    at = start_app()
    go_to(at, "sweep.py")
    assert_no_traceback(at)
    assert at.selectbox(key=state.W_SWEEP_SETTING).value == "C"
    assert at.text_input(key=state.W_SWEEP_VALUES).value == "0.001, 0.01, 0.1, 1, 10, 100"
    at.text_input(key=state.W_SWEEP_VALUES).set_value("0.001..100")
    at.run()
    at.button(key=state.W_SWEEP_RUN).click()
    at.run()
    assert_no_traceback(at)
    assert not at.error, error_texts(at)

    sweep = at.session_state[state.SWEEP]
    expected = [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
    assert [r.config.C for r in sweep.results] == expected
    assert not sweep.running and not sweep.failures
    records = history.SQLiteRunStore(local_history).list()
    assert sorted(r.config.C for r in records) == expected
    assert {r.id for r in records} == set(sweep.run_ids)
    table = at.dataframe[0].value
    assert table["C"].tolist() == ["0.001", "0.01", "0.1", "1", "10", "100"]
    assert table["mean score"].tolist() == pytest.approx([round(r.mean_score, 4) for r in sweep.results])
    # Every other setting is the configuration's own.
    assert {r.config.replace(C=1.0) for r in sweep.results} == {DecodingConfig()}


def test_stopping_a_sweep_keeps_the_runs_finished_before_it(local_history, monkeypatch):
    import streamlit as st

    from ui import analysis

    real_run = analysis.run_decoding
    calls = []

    def run_then_press_stop(dataset, config, progress=None):
        result = real_run(dataset, config, progress=progress)
        calls.append(config.C)
        if len(calls) == 2:
            # What the Stop button's callback does when a click arrives during the second run.
            st.session_state[state.SWEEP].stop()
        return result

    monkeypatch.setattr(analysis, "run_decoding", run_then_press_stop)
    at = start_app()
    go_to(at, "sweep.py")
    at.button(key=state.W_SWEEP_RUN).click()
    at.run()
    assert_no_traceback(at)
    sweep = at.session_state[state.SWEEP]
    assert [r.config.C for r in sweep.results] == [0.001, 0.01] == calls
    assert any("Stopped after 2 of 6 runs" in info.value for info in at.info)
    assert len(at.dataframe[0].value) == 2
    assert sorted(r.config.C for r in history.SQLiteRunStore(local_history).list()) == [0.001, 0.01]
    # The sweep does not resume by itself on the next interaction.
    at.run()
    assert len(at.session_state[state.SWEEP].results) == 2 and len(calls) == 2


def test_sweep_values_follow_the_setting_and_bad_values_are_explained(local_history):
    at = start_app()
    go_to(at, "sweep.py")
    at.selectbox(key=state.W_SWEEP_SETTING).set_value("mask_name")
    at.run()
    dataset = at.session_state[state.DATASET]
    assert at.text_input(key=state.W_SWEEP_VALUES).value == ", ".join(dataset.masks)
    at.selectbox(key=state.W_SWEEP_SETTING).set_value("n_folds")
    at.run()
    at.text_input(key=state.W_SWEEP_VALUES).set_value("3, four")
    at.run()
    assert_no_traceback(at)
    assert any("'four' is not a number" in text for text in error_texts(at))
    assert at.button(key=state.W_SWEEP_RUN).disabled


def test_compare_pairs_the_folds_tests_them_and_highlights_the_difference(local_history):
    at = start_app()
    run_configuration(at, C=1.0)
    run_configuration(at, C=0.001)
    go_to(at, "compare.py")
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    assert len(at.multiselect(key=state.W_COMPARE_RUNS).value) == 2
    markdown = "\n".join(m.value for m in at.markdown)
    assert "Settings that differ (highlighted): **C**." in markdown
    labels = {m.label: m.value for m in at.metric}
    records = {r.config.C: r for r in history.SQLiteRunStore(local_history).list()}
    a, b = records[0.001], records[1.0]  # newest first: A is the last run
    expected = b.mean_score - a.mean_score  # one sign convention: B - A in the metric, the chart and the text
    assert float(labels["Mean difference (B - A)"]) == pytest.approx(expected, abs=1e-4)
    assert any("interval of the mean difference B - A" in c.value for c in at.caption)
    assert "Paired t-test p" in labels and "Wilcoxon signed-rank p" in labels
    assert any("not independent" in info.value for info in at.info)
    # Fold scores side by side, paired by run.
    folds = at.dataframe[2].value
    assert len(folds) == len(a.fold_scores)
    assert list(folds.index) == [str(n) for n in a.fold_names]


def test_runs_on_different_schemes_are_not_paired(local_history):
    at = start_app()
    run_configuration(at)
    run_configuration(at, cv="kfold")
    go_to(at, "compare.py")
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    assert any("cannot be paired" in info.value for info in at.info)
    assert "Paired t-test p" not in [m.label for m in at.metric]


@pytest.mark.slow
def test_change_one_setting_and_rerun_records_and_shows_the_new_run(local_history):
    at = start_app()
    run_configuration(at)
    go_to(at, "compare.py")
    assert any("Pick at least two runs" in info.value for info in at.info)
    at.selectbox(key=state.W_RERUN_SETTING).set_value("mask_name")
    at.run()
    at.selectbox(key=state.W_RERUN_VALUE).set_value("face")
    at.run()
    at.button(key=state.W_RERUN).click()
    at.run()
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    records = history.SQLiteRunStore(local_history).list()
    assert sorted(r.config.mask_name for r in records) == ["face", "vt"]
    assert records[0].config == DecodingConfig(mask_name="face")
    assert any("Reran" in s.value for s in at.success)
    assert at.multiselect(key=state.W_COMPARE_RUNS).value == [records[1].id, records[0].id]
    assert at.selectbox(key=state.W_COMPARE_B).value == records[0].id


def test_a_run_name_is_shown_as_text_not_markup(local_history):
    image = "![x](http://example.invalid/p.png)"
    at = start_app()
    run_configuration(at)
    history_rows(at)
    at.text_input(key=state.W_HISTORY_NAME).set_value(image)
    at.button(key=state.W_HISTORY_RENAME).click()
    at.run()
    assert_no_traceback(at)
    renamed = [s.value for s in at.success if "Renamed" in s.value]
    assert renamed and image not in renamed[0], renamed
    assert r"!\[x\](http://example.invalid/p.png)" in renamed[0]


def test_history_rename_delete_and_import(local_history, tmp_path):
    at = start_app()
    run_configuration(at)
    history_rows(at)
    run_id = at.selectbox(key=state.W_HISTORY_RUN).value
    at.text_input(key=state.W_HISTORY_NAME).set_value("  my\tbest run ")
    at.button(key=state.W_HISTORY_RENAME).click()
    at.run()
    assert_no_traceback(at)
    store = history.SQLiteRunStore(local_history)
    assert store.get(run_id).name == "my best run"
    assert at.dataframe[0].value["name"].tolist() == ["my best run"]

    # Import a history file exported from another store: its runs join this one.
    exported = store.export_bytes()
    at.file_uploader(key=state.W_HISTORY_IMPORT_FILE).set_value(("runs.zip", exported, "application/zip"))
    at.run()
    at.button(key=state.W_HISTORY_IMPORT).click()
    at.run()
    assert_no_traceback(at)
    assert any("Imported 1 run(s)" in s.value for s in at.success)
    assert len(store) == 2

    # A file that is not a history is refused with a clear message.
    at.file_uploader(key=state.W_HISTORY_IMPORT_FILE).set_value(("x.zip", b"not a zip", "application/zip"))
    at.run()
    at.button(key=state.W_HISTORY_IMPORT).click()
    at.run()
    assert_no_traceback(at)
    assert any("not an fMRI Decoding Lab history" in text for text in error_texts(at))
    assert len(store) == 2

    # Delete needs the confirmation.
    assert at.button(key=state.W_HISTORY_DELETE).disabled
    at.checkbox(key=state.W_HISTORY_DELETE_CONFIRM).check()
    at.run()
    at.button(key=state.W_HISTORY_DELETE).click()
    at.run()
    assert_no_traceback(at)
    assert len(store) == 1


def test_results_offer_the_reproducible_zip_of_the_recorded_run(local_history):
    at = start_app()
    result = run_configuration(at)
    labels = [element.proto.label for element in at.get("download_button")]
    assert "Everything to reproduce this run (.zip)" in labels
    record = history.SQLiteRunStore(local_history).list()[0]
    archive = zipfile.ZipFile(io.BytesIO(ui.history.record_zip(record)))
    names = set(archive.namelist())
    assert {"reproduce.py", "config.json", "fold_scores.csv", "weights.nii.gz", "mask.nii.gz"} <= names
    assert record.config == result.config
