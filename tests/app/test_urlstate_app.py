"""Shareable links: the app writes the configuration into the URL, and a URL restores it (AppTest)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.app._helpers import APP_PATH, TIMEOUT, assert_no_traceback, error_texts, go_to, start_app
from decoding_core import history
from decoding_core.config import DecodingConfig
from decoding_core.urlstate import config_from_query_params, config_to_query_params
import ui.history
from ui import state

#: Every setting away from its default (smoothing has no Configure widget but must survive too).
SHARED_CONFIG = DecodingConfig(
    conditions=("house", "face", "cat"), mask_name="face", standardize="run", detrend="series",
    high_pass=0.01, smoothing_fwhm=6.0, estimator="logistic_l2", C=0.05, cv="kfold", n_folds=4, holdout_size=12,
    tune_C=False, screening_percentile=50.0, scoring="balanced_accuracy",
)


@pytest.fixture(autouse=True)
def private_history(tmp_path, monkeypatch):
    monkeypatch.delenv(history.SHARED_ENV, raising=False)
    monkeypatch.setenv(history.HISTORY_PATH_ENV, str(tmp_path / "history.sqlite3"))
    yield tmp_path / "history.sqlite3"
    ui.history._sqlite_store.clear()


def open_link(params: dict) -> AppTest:
    """A new session opened on a URL with these query parameters."""
    at = AppTest.from_file(str(APP_PATH), default_timeout=TIMEOUT)
    at.query_params = dict(params)
    at.run()
    assert_no_traceback(at)
    return at


def configure_widget_values(at) -> dict:
    go_to(at, "configure.py")
    assert_no_traceback(at)
    values = {
        "conditions": tuple(at.multiselect(key=state.W_CONDITIONS).value),
        "mask_name": at.selectbox(key=state.W_MASK).value,
        "standardize": at.selectbox(key=state.W_STANDARDIZE).value,
        "detrend": at.selectbox(key=state.W_DETREND).value,
        "high_pass": at.number_input(key=state.W_HIGH_PASS).value,
        "confounds": tuple(at.multiselect(key=state.W_CONFOUNDS).value),
        "estimator": at.selectbox(key=state.W_ESTIMATOR).value,
        "C": at.number_input(key=state.W_C).value,
        "tune_C": at.checkbox(key=state.W_TUNE_C).value,
        "screening_percentile": float(at.slider(key=state.W_SCREENING).value),
        "scoring": at.selectbox(key=state.W_SCORING).value,
        "cv": at.selectbox(key=state.W_CV).value,
    }
    if values["cv"] == "kfold":  # K is asked only for k-fold
        values["n_folds"] = at.number_input(key=state.W_N_FOLDS).value
    return values


@pytest.mark.slow
def test_a_link_to_the_simulated_data_restores_every_setting_and_runs_it(private_history):
    params = config_to_query_params(SHARED_CONFIG, "simulated")
    at = open_link(params)
    assert not at.error, error_texts(at)
    # It ran, on the built-in data set, and shows the result on Results.
    assert at.title[0].value == "Results"
    result = at.session_state[state.RESULT]
    assert result is not None and result.config == SHARED_CONFIG
    assert at.session_state[state.DATASET_SPEC] == "simulated"
    assert any("Restored the configuration from the link" in s.value for s in at.success)
    # The URL still holds the configuration, and the run is in the history.
    assert config_from_query_params(at.query_params) == (SHARED_CONFIG, "simulated")
    records = history.SQLiteRunStore(private_history).list()
    assert [r.config for r in records] == [SHARED_CONFIG]

    at.switch_page("pages/results.py")
    widgets = configure_widget_values(at)
    assert widgets == {name: getattr(SHARED_CONFIG, name) for name in widgets}
    assert at.session_state[state.CONFIG_VALUES] == SHARED_CONFIG.to_dict()


def test_the_link_the_app_writes_round_trips_through_a_new_session():
    at = start_app()
    go_to(at, "configure.py")
    at.number_input(key=state.W_C).set_value(0.3)
    at.run()
    at.selectbox(key=state.W_CV).set_value("kfold")
    at.run()
    at.selectbox(key=state.W_MASK).set_value("house")
    at.run()
    assert_no_traceback(at)
    written = dict(at.query_params)
    expected = DecodingConfig(C=0.3, cv="kfold", mask_name="house")
    assert config_from_query_params(written) == (expected, "simulated")
    # The same link appears as text to copy.
    assert any(code.value.endswith("?" + "&".join(f"{k}={v}" for k, v in written.items()).replace(",", "%2C"))
               for code in at.code)

    reopened = open_link(written)
    assert reopened.session_state[state.RESULT].config == expected
    assert configure_widget_values(reopened)["C"] == 0.3


def test_a_link_without_a_data_set_restores_the_settings_only():
    params = config_to_query_params(DecodingConfig(C=7.0, conditions=("face", "house")))
    assert "data" not in params
    at = open_link(params)
    assert at.session_state[state.RESULT] is None
    assert any("names no built-in data set" in info.value for info in at.info)
    widgets = configure_widget_values(at)
    assert widgets["C"] == 7.0 and widgets["conditions"] == ("face", "house")


def test_a_damaged_link_is_explained_and_the_defaults_are_kept():
    at = open_link({"v": "1", "data": "simulated", "C": "lots", "cv": "kfold"})
    assert any("'C' must be a number" in text for text in error_texts(at))
    assert at.session_state[state.RESULT] is None
    assert at.session_state[state.CONFIG_VALUES] == DecodingConfig().to_dict()


def test_a_link_cannot_name_a_file_on_the_server():
    at = open_link({"v": "1", "data": "/etc/passwd", "C": "2"})
    assert any("links can only name 'simulated'" in text for text in error_texts(at))
    assert at.session_state[state.RESULT] is None


def test_an_uploaded_data_set_is_never_put_in_the_url():
    at = start_app()
    at.session_state[state.DATASET_SPEC] = "upload"
    go_to(at, "configure.py")
    assert_no_traceback(at)
    assert "data" not in at.query_params
    assert at.query_params["C"] == "1.0"
    assert all("data=" not in code.value for code in at.code)


@pytest.mark.parametrize("field", ["cond", "mask", "data"])
def test_a_link_cannot_put_links_or_images_in_the_page(field):
    # Whoever opens a link sees what it carries quoted as text: a Markdown image would
    # make the visitor's browser fetch another site.
    image = "![x](http://example.invalid/p.png)"
    params = config_to_query_params(DecodingConfig(), "simulated")
    params[field] = f"{image},cat" if field == "cond" else image
    at = open_link(params)
    shown = [element.value for element in (*at.error, *at.warning, *at.info, *at.success, *at.markdown)]
    assert shown
    assert not any(image in text for text in shown), shown
    if field == "data":  # the only value a message quotes back
        assert any(r"!\[x\](http://example.invalid/p.png)" in text for text in shown), shown
    else:
        assert any(f"The link's {'conditions' if field == 'cond' else 'mask'} (not in 'simulated') were "
                   "replaced" in text for text in shown), shown
