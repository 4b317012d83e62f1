"""Browser fixtures: a real ``streamlit run`` server and Debian's headless Chromium.

The server runs once per test session on a free loopback port, with its data and
history in a temporary folder; every test gets a fresh browser context (so a fresh
Streamlit session) with a 1400 x 1000 viewport. Screenshots go to
``test-output/screenshots/`` (gitignored).

Chromium comes from Debian (``/usr/bin/chromium``); ``playwright install`` is never
used (it downloads, and the machines that run this are offline). When Chromium is
missing the tests are skipped, except when ``DECODING_LAB_REQUIRE_BROWSER=1`` (CI),
where they fail.
"""

from __future__ import annotations

import types
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO_ROOT / "test-output" / "screenshots"
VIEWPORT = {"width": 1400, "height": 1000}

#: Milliseconds for the first page load (it generates the simulated data set) and for runs.
FIRST_LOAD_TIMEOUT_MS = 90_000
#: Milliseconds for ordinary reruns on a loaded 2-core machine.
RERUN_TIMEOUT_MS = 60_000

APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
APP_RUNNING = "[data-testid='stApp'][data-test-script-state='running']"


@pytest.fixture(scope="session")
def app_server(chromium_executable, tmp_path_factory):
    """Start ``streamlit run app.py`` on a free port; yield its base URL; stop it afterwards."""
    from tests.conftest import streamlit_server

    with streamlit_server(tmp_path_factory.mktemp("browser-server")) as base_url:
        yield base_url


@pytest.fixture
def page(browser, app_server):
    """A fresh browser context (a new Streamlit session) on the app's default page."""
    with open_app_page(browser, app_server) as tab:
        yield tab


@contextmanager
def open_app_page(browser, app_server, *, first_load_ms: int = FIRST_LOAD_TIMEOUT_MS,
                  default_ms: int = RERUN_TIMEOUT_MS):
    """A fresh browser context on the app, loaded; closed on exit.

    Tests whose work is slow on a loaded machine ask for longer ``first_load_ms`` (the
    first page load) and ``default_ms`` (every other wait of the page).
    """
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(default_ms)
    # Without the File System Access API a table's "Download as CSV" becomes an ordinary
    # download that Playwright can catch (see `dataframe_csv`).
    context.add_init_script("window.showSaveFilePicker = undefined;")
    tab = context.new_page()
    tab.goto(app_server, timeout=first_load_ms)
    wait_for_app(tab, timeout=first_load_ms)
    try:
        yield tab
    finally:
        context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing browser test also reports what its page showed and the server log's tail.

    CI keeps only the printed output, not the screenshots or the server's log file.
    """
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for value in item.funcargs.values():
        if hasattr(value, "locator") and hasattr(value, "url"):
            report.sections.append(("what the page showed", _page_summary(value)))
    from tests.conftest import SERVER_LOGS, _log_tail

    log_path = SERVER_LOGS.get(item.funcargs.get("app_server"))
    if log_path is not None:
        report.sections.append(("streamlit server log (tail)", _log_tail(log_path, 3000)))


def _page_summary(page) -> str:
    """The script state, alerts, progress bars and metrics on ``page``, as text."""
    selectors = {"script state": "[data-testid='stApp']", "alerts": "[data-testid='stAlert']",
                 "exceptions": "[data-testid='stException']", "progress": "[data-testid='stProgress']",
                 "metrics": "[data-testid='stMetric']"}
    lines = []
    try:
        for what, selector in selectors.items():
            locator = page.locator(selector)
            if what == "script state":
                texts = [locator.first.get_attribute("data-test-script-state", timeout=2000) or "?"]
            else:
                texts = [" ".join(text.split()) for text in locator.all_inner_texts()]
            lines.append(f"{what}: " + (" | ".join(texts) if texts else "none"))
    except Exception as err:  # the page may be closed or crashed: say so, never hide the test's failure
        lines.append(f"(could not read the page: {err})")
    return "\n".join(lines)


@pytest.fixture(scope="session")
def helpers():
    """This module: the page helpers below (``helpers.wait_for_app(page)``, ``helpers.screenshot(...)``).

    Named ``helpers``, not ``ui``, so that it never hides the app's ``ui`` package.
    """
    return types.SimpleNamespace(**globals())


# -- page helpers ------------------------------------------------------------------------------


def wait_for_app(page, timeout: int = RERUN_TIMEOUT_MS) -> None:
    """Wait until the script run triggered by the last action has finished and drawn.

    A rerun starts a moment after a click: first give it the chance to start (a short
    wait for the 'running' state that may time out harmlessly), then wait for
    'notRunning' and for every skeleton placeholder to be replaced.
    (``stStatusWidget`` is not used: it appears only after 500 ms of running.)
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    try:
        page.wait_for_selector(APP_RUNNING, timeout=1500)
    except PlaywrightTimeoutError:
        pass
    expect(page.locator(APP_IDLE)).to_have_count(1, timeout=timeout)
    expect(page.locator("[data-testid='stSkeleton']")).to_have_count(0, timeout=timeout)


def open_sidebar(page) -> None:
    """Expand the sidebar when a narrow window collapsed it."""
    link = page.locator("[data-testid='stSidebarNavLink']").first
    if not link.is_visible():
        expand = page.locator("[data-testid='stExpandSidebarButton']")
        if expand.count():
            expand.first.click()
        link.wait_for(state="visible")


def navigate_to_page(page, title: str, timeout: int = RERUN_TIMEOUT_MS) -> None:
    """Open the page called ``title`` through the sidebar menu and wait for it to draw."""
    from playwright.sync_api import expect

    open_sidebar(page)
    # The link holds the icon (its text is the icon's name) and a label with the title.
    link = page.locator("[data-testid='stSidebarNavLink']").filter(has=page.get_by_text(title, exact=True))
    expect(link).to_have_count(1)
    link.click()
    wait_for_page(page, title, timeout=timeout)


def wait_for_page(page, title: str, timeout: int = RERUN_TIMEOUT_MS) -> None:
    """Wait until the page whose title starts like ``title`` has finished drawing.

    A run that ends in ``st.switch_page`` reruns at once: the new page's heading can
    show while the old page's elements are still on screen, so wait for the heading
    and then for the run to end.
    """
    from playwright.sync_api import expect

    wait_for_app(page, timeout=timeout)
    expect(page.locator("h1").first).to_contain_text(title.split()[0], timeout=timeout)
    wait_for_app(page, timeout=timeout)


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    """Save a screenshot as ``test-output/screenshots/<name>.png`` and return its path.

    Streamlit scrolls inside ``stMain``, not the document, so Playwright's own
    full-page mode sees only one screen: for a full page the window is made as tall
    as the main column's content for the shot, then given its size back.
    """
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    viewport = page.viewport_size
    if not full_page or viewport is None:
        page.screenshot(path=str(path))
        return path
    content_height = page.evaluate(
        "() => { const main = document.querySelector(\"[data-testid='stMain']\");"
        " return main ? main.scrollHeight : document.documentElement.scrollHeight; }"
    )
    page.set_viewport_size({"width": viewport["width"], "height": int(min(max(content_height, viewport["height"]), 16000))})
    try:
        page.wait_for_timeout(700)  # let Streamlit and Plotly lay out again after the resize
        page.screenshot(path=str(path))
    finally:
        page.set_viewport_size(viewport)
    return path


def assert_no_exception(page) -> None:
    """No Streamlit exception box (a Python traceback shown to the user) on the page."""
    exceptions = page.locator("[data-testid='stException']")
    if exceptions.count():
        texts = "\n---\n".join(exceptions.all_inner_texts())
        raise AssertionError(f"The app shows an exception:\n{texts}")


# -- widget helpers ----------------------------------------------------------------------------


def widget(page, test_id: str, label: str):
    """The widget with data-testid ``test_id`` whose label starts with ``label`` (case as written).

    Not "contains, any case": "Score" would also pick "Z-score each voxel's time series".
    """
    import re

    return page.locator(f"[data-testid='{test_id}']").filter(
        has=page.locator("[data-testid='stWidgetLabel']", has_text=re.compile(rf"^\s*{re.escape(label)}"))
    )


def choose_option(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` and wait for the rerun."""
    box = widget(page, "stSelectbox", label)
    box.locator("input").first.click()
    page.locator("[role='option']").filter(has_text=option).first.click()
    wait_for_app(page)


def dropzone(page, box_label: str):
    """The file input of the upload box whose text contains ``box_label`` (for ``set_input_files``)."""
    return page.locator("[data-testid='stFileUploader']").filter(has_text=box_label).locator(
        "[data-testid='stFileUploaderDropzoneInput']")


def download(page, button_label: str, target_dir: Path, timeout: int = RERUN_TIMEOUT_MS) -> Path:
    """Click the download button whose text contains ``button_label``; return the saved file.

    A click that lands during a rerun can be lost (CI saw a download never start): the
    click waits for the app to be idle, and is made once more, after the next idle, when
    no download started within half of ``timeout``. Downloading twice is harmless.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    button = page.locator("[data-testid='stDownloadButton']").filter(has_text=button_label)
    expect(button).to_have_count(1)
    for attempt in range(2):
        wait_for_app(page, timeout=timeout)
        try:
            with page.expect_download(timeout=timeout // 2) as info:
                button.locator("button").click()
            break
        except PlaywrightTimeoutError:
            if attempt:
                raise
    saved = Path(target_dir) / info.value.suggested_filename
    info.value.save_as(saved)
    # The click reran the script to build the file: a click during that rerun can be lost.
    wait_for_app(page, timeout=timeout)
    return saved


def metric_values(page, *required: str, timeout: int = RERUN_TIMEOUT_MS) -> dict:
    """Every metric on the page: label -> value text.

    Metrics are drawn one by one as the script runs: first wait until a metric with
    each ``required`` label is on the page, so a test never reads a half-drawn page.
    """
    from playwright.sync_api import expect

    for label in required:
        labelled = page.locator("[data-testid='stMetric']").filter(
            has=page.locator("[data-testid='stMetricLabel']", has_text=label)
        )
        expect(labelled.first).to_be_visible(timeout=timeout)
    values = {}
    for metric in page.locator("[data-testid='stMetric']").all():
        label = metric.locator("[data-testid='stMetricLabel']").inner_text().strip()
        values[label] = metric.locator("[data-testid='stMetricValue']").inner_text().strip()
    return values


def number_input_value(page, label: str) -> int:
    """The integer shown in the number input labelled ``label``."""
    return int(float(widget(page, "stNumberInput", label).locator("input").input_value()))


def dataframe_csv(page, dataframe, target_path: Path):
    """The rows of an ``st.dataframe`` (drawn on a canvas) as a pandas DataFrame.

    Uses the table's own "Download as CSV" toolbar button, which shows on hover.
    """
    import pandas as pd

    dataframe.evaluate("element => element.scrollIntoView({block: 'center'})")
    dataframe.hover()
    with page.expect_download(timeout=RERUN_TIMEOUT_MS) as info:
        # The toolbar can sit under the app header: dispatch the click to the button itself.
        dataframe.get_by_role("button", name="Download as CSV").dispatch_event("click")
    info.value.save_as(target_path)
    return pd.read_csv(target_path, encoding="utf-8-sig")
