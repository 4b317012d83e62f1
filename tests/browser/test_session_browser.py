"""End to end in headless Chromium: a session that survives a reload, upload boxes that survive
leaving the Data page, History reopening a run's Results, and shared links that never open an upload.

Issue 15, item 2. Each test uploads subject 1's real ventral temporal files (``tests/data/``)
in a fresh browser context (a fresh Streamlit session) of a real ``streamlit run`` server.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

#: Loading and decoding wait this long (milliseconds) on a loaded 2-core machine.
RUN_TIMEOUT_MS = 120_000
UPLOADED_TITLE = "Your uploaded data set (bold_vt.nii.gz)"


def choose_upload_source(page, helpers) -> None:
    expander = page.get_by_text("Choose the data set", exact=True)
    if not page.get_by_text("Your own files (upload)").is_visible():
        expander.click()
    page.get_by_text("Your own files (upload)").click()
    helpers.wait_for_app(page)


def put_files(page, helpers, haxby_vt_dir, *, func: bool = True, mask: bool = True) -> None:
    """Put subject 1's VT files in the upload boxes (each one is stored as it arrives)."""
    choose_upload_source(page, helpers)
    boxes = [("Labels table", "labels.txt")]
    if func:
        boxes.insert(0, ("4D functional image", "bold_vt.nii.gz"))
    if mask:
        boxes.append(("Mask (optional", "mask_vt.nii.gz"))
    for label, file_name in boxes:
        helpers.dropzone(page, label).set_input_files(str(haxby_vt_dir / file_name))
        helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)


def upload_and_load(page, helpers, haxby_vt_dir) -> None:
    put_files(page, helpers, haxby_vt_dir)
    load = page.get_by_role("button", name="Load these files")
    expect(load).to_be_enabled(timeout=RUN_TIMEOUT_MS)
    load.click()
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)
    expect(page.locator("h3").filter(has_text=UPLOADED_TITLE)).to_be_visible()
    helpers.assert_no_exception(page)


def run_decoding(page, helpers) -> str:
    """Run the default decoding (face vs cat, the uploaded mask); return the mean score shown."""
    helpers.navigate_to_page(page, "Configure")
    page.get_by_role("button", name="Run the decoding").click(timeout=RUN_TIMEOUT_MS)
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    return mean_score(page)


def mean_score(page) -> str:
    metric = page.locator("[data-testid='stMetric']").filter(has_text="Mean").first
    expect(metric).to_be_visible()
    return metric.locator("[data-testid='stMetricValue']").inner_text()


def stored_file_line(page, title: str, file_name: str):
    return page.get_by_text(re.compile(rf"^{re.escape(title)} ready: {re.escape(file_name)} \("))


def test_a_reload_keeps_the_upload_and_its_results(page, helpers, haxby_vt_dir):
    upload_and_load(page, helpers, haxby_vt_dir)
    score = run_decoding(page, helpers)

    page.reload()
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    assert mean_score(page) == score
    expect(page.get_by_text("These results come from a data set other than")).to_have_count(0)

    helpers.navigate_to_page(page, "Data")
    expect(page.locator("h3").filter(has_text=UPLOADED_TITLE)).to_be_visible()
    choose_upload_source(page, helpers)
    for title, file_name in (("4D image", "bold_vt.nii.gz"), ("Labels table", "labels.txt"),
                             ("Mask", "mask_vt.nii.gz")):
        expect(stored_file_line(page, title, file_name)).to_be_visible()
    helpers.navigate_to_page(page, "History")
    # The run chooser names the stored run by its score (the table is a canvas grid whose
    # off-screen cells, such as the data set column, need not be in the page at all).
    run_box = page.get_by_role("combobox", name="Run", exact=True)
    expect(run_box).to_have_value(re.compile(rf"\(score {re.escape(score)}, "), timeout=RUN_TIMEOUT_MS)
    helpers.screenshot(page, "session-after-reload-history")


def test_leaving_the_data_page_keeps_the_upload_boxes_files(page, helpers, haxby_vt_dir):
    put_files(page, helpers, haxby_vt_dir, func=False)
    helpers.navigate_to_page(page, "Configure")
    helpers.navigate_to_page(page, "Data")
    choose_upload_source(page, helpers)
    expect(stored_file_line(page, "Labels table", "labels.txt")).to_be_visible()
    expect(stored_file_line(page, "Mask", "mask_vt.nii.gz")).to_be_visible()
    # The stored table still feeds the column pickers, and Remove forgets it.
    expect(page.get_by_text("Column with the conditions")).to_be_visible()
    # The labels table's Remove comes first (left column; the mask's is in the right one).
    page.get_by_role("button", name="Remove").first.click()
    helpers.wait_for_app(page)
    expect(stored_file_line(page, "Labels table", "labels.txt")).to_have_count(0)
    expect(stored_file_line(page, "Mask", "mask_vt.nii.gz")).to_be_visible()
    helpers.screenshot(page, "session-data-boxes-kept")


def test_history_reopens_a_past_runs_results(page, helpers, haxby_vt_dir):
    upload_and_load(page, helpers, haxby_vt_dir)
    first_score = run_decoding(page, helpers)
    # A second run (another estimator) becomes the one Results shows.
    helpers.navigate_to_page(page, "Configure")
    estimator = page.locator("[data-testid='stSelectbox']").filter(has_text="Classifier")
    estimator.click()
    page.get_by_role("option", name=re.compile("logistic", re.IGNORECASE)).first.click()
    helpers.wait_for_app(page)
    page.get_by_role("button", name="Run the decoding").click(timeout=RUN_TIMEOUT_MS)
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    second_title = page.locator("[data-testid='stMarkdown']").filter(has_text="vs").first.inner_text()

    helpers.navigate_to_page(page, "History")
    run_box = page.locator("[data-testid='stSelectbox']").filter(has_text="Run")
    run_box.click()
    # The history lists the newest run first: the first run is the second option.
    page.get_by_role("option").nth(1).click()
    helpers.wait_for_app(page)
    page.get_by_role("button", name="Open on the Results page").click()
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    assert mean_score(page) == first_score
    assert page.locator("[data-testid='stMarkdown']").filter(has_text="vs").first.inner_text() != second_title
    expect(page.locator("[data-testid='stPlotlyChart']").first).to_be_visible()
    helpers.screenshot(page, "session-history-reopened")


def test_a_shared_link_never_opens_the_upload(page, helpers, haxby_vt_dir, browser):
    upload_and_load(page, helpers, haxby_vt_dir)
    run_decoding(page, helpers)
    page.get_by_text("Copy link to this configuration").click()
    shared = page.locator("[data-testid='stCode']").filter(has_text="?v=").first.inner_text().strip()
    addresses = {"the link offered": shared, "the address bar": page.url}
    for where, address in addresses.items():
        assert "bold_vt" not in address and "session" not in address, (where, address)
        with helpers.open_app_page(browser, address) as other:
            helpers.assert_no_exception(other)
            expect(other.get_by_text(UPLOADED_TITLE)).to_have_count(0)
            expect(other.get_by_text("bold_vt.nii.gz")).to_have_count(0)
            helpers.navigate_to_page(other, "Data")
            expect(other.get_by_text(UPLOADED_TITLE)).to_have_count(0)
            expect(other.get_by_text(re.compile("ready: "))).to_have_count(0)
    # The person who shared still has everything.
    page.reload()
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.navigate_to_page(page, "Data")
    expect(page.locator("h3").filter(has_text=UPLOADED_TITLE)).to_be_visible()
