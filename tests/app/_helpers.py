"""Shared helpers of the AppTest tests: start the app, move between pages, read what it shows."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui import state

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_PATH = REPO_ROOT / "app.py"

#: Generous: the first run of a test session generates the simulated data set.
TIMEOUT = 180


def start_app() -> AppTest:
    """The app after its first run (the Data page on the built-in data set)."""
    at = AppTest.from_file(str(APP_PATH), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def go_to(at: AppTest, page_file: str) -> AppTest:
    """Switch to ``pages/<page_file>`` and run it."""
    at.switch_page(f"pages/{page_file}")
    at.run()
    return at


def metric_value(at: AppTest, label_start: str) -> str:
    """The value of the first metric whose label starts with ``label_start``."""
    for metric in at.metric:
        if metric.label.startswith(label_start):
            return metric.value
    raise AssertionError(f"No metric labelled {label_start!r}; metrics: {[m.label for m in at.metric]}")


def error_texts(at: AppTest) -> list[str]:
    return [element.value for element in at.error]


def all_markdown(at: AppTest) -> str:
    return "\n".join(element.value for element in at.markdown)


def assert_no_traceback(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def run_from_configure(at: AppTest):
    """Press Run on the Configure page; the app moves to Results. Returns the result."""
    at.button(key=state.W_RUN).click()
    at.run()
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    assert at.title[0].value == "Results"
    # st.switch_page moved the browser to Results; tell AppTest so later runs stay there.
    at.switch_page("pages/results.py")
    return at.session_state[state.RESULT]


def upload_files(at: AppTest, func: tuple, labels: tuple, mask: tuple | None = None) -> AppTest:
    """Choose 'upload', put the files (name, bytes, type) in the uploaders, and press Load.

    A file refused as it arrives (not a 4D NIfTI, say) shows its error at once and keeps
    Load disabled, as in the browser: Load is then not pressed.
    """
    at.radio(key=state.W_SOURCE).set_value("upload")
    at.run()
    at.file_uploader(key=state.W_UPLOAD_FUNC).set_value(func)
    at.file_uploader(key=state.W_UPLOAD_LABELS).set_value(labels)
    if mask is not None:
        at.file_uploader(key=state.W_UPLOAD_MASK).set_value(mask)
    at.run()
    assert_no_traceback(at)
    load = at.button(key=state.W_UPLOAD_LOAD)
    if not load.disabled:
        load.click()
        at.run()
        assert_no_traceback(at)
    return at
