"""End to end in headless Chromium: a searchlight map on the Results page, with its progress bar.

Screenshots (mid-run with the progress bar, and the finished map) go to ``test-output/screenshots/``.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 240_000
#: First load and runs on the shared 2-core machine under load (conftest's 90 s first load timed out there).
SLOW_TIMEOUT_MS = 600_000


@pytest.fixture
def slow_page(browser, app_server, helpers):
    """As conftest's ``page``, with first-load and default timeouts for a loaded machine."""
    with helpers.open_app_page(browser, app_server, first_load_ms=SLOW_TIMEOUT_MS,
                               default_ms=SLOW_TIMEOUT_MS) as tab:
        yield tab


def test_searchlight_map_with_progress(slow_page, helpers, simulated_dataset):
    page = slow_page
    helpers.navigate_to_page(page, "Configure")
    page.get_by_role("button", name="Run the decoding").click()
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)

    section = page.get_by_role("heading", name="Where is the information? A searchlight map")
    section.scroll_into_view_if_needed()
    radius = helpers.widget(page, "stNumberInput", "Sphere radius (mm)").locator("input")
    radius.fill("7.5")
    radius.press("Enter")
    helpers.wait_for_app(page)

    page.get_by_role("button", name="Run the searchlight").click()
    progress = page.locator("[data-testid='stProgress']").filter(has_text="spheres scored")
    expect(progress).to_be_visible(timeout=RUN_TIMEOUT_MS)
    progress.scroll_into_view_if_needed()
    helpers.screenshot(page, "searchlight-progress", full_page=False)

    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    n_spheres = int(sum(1 for value in simulated_dataset.masks["vt"].get_fdata().ravel() if value))
    metrics = helpers.metric_values(page, "Spheres scored", "Best accuracy", "Chance level")
    assert metrics["Spheres scored"] == f"{n_spheres} / {n_spheres}", metrics
    assert float(metrics["Best accuracy"]) > float(metrics["Chance level"]) + 0.2, metrics
    assert page.get_by_text("Partial map").count() == 0

    chart = page.locator(".st-key-w_searchlight_chart [data-testid='stPlotlyChart']")
    expect(chart).to_be_visible()
    expect(chart.locator(".gtitle")).to_contain_text("Searchlight (7.5 mm)")
    expect(page.locator("[data-testid='stDownloadButton']").filter(has_text="Searchlight map")).to_have_count(1)
    chart.scroll_into_view_if_needed()
    helpers.screenshot(page, "searchlight-map", full_page=False)


def test_stop_keeps_a_partial_map_marked_partial(slow_page, helpers):
    page = slow_page
    helpers.navigate_to_page(page, "Configure")
    page.get_by_role("button", name="Run the decoding").click()
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    radius = helpers.widget(page, "stNumberInput", "Sphere radius (mm)").locator("input")
    radius.fill("9.5")  # another radius than the first test's: not in the store yet
    radius.press("Enter")
    helpers.wait_for_app(page)

    page.get_by_role("button", name="Run the searchlight").click()
    expect(page.locator("[data-testid='stProgress']").filter(has_text="spheres scored")).to_be_visible(
        timeout=RUN_TIMEOUT_MS)
    page.locator(".st-key-w_searchlight_stop button").click()
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)

    warning = page.locator("[data-testid='stAlert']").filter(has_text="Partial map")
    expect(warning).to_have_count(1)
    done, total = helpers.metric_values(page, "Spheres scored")["Spheres scored"].split(" / ")
    assert 0 < int(done) < int(total)
    expect(page.locator("[data-testid='stDownloadButton']").filter(has_text="(partial)")).to_have_count(1)
    warning.scroll_into_view_if_needed()
    helpers.screenshot(page, "searchlight-partial", full_page=False)
    # The wait after Stop may have seen the moment between the stopped run and the Stop's
    # own run: let that run finish before the next click.
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)

    page.get_by_role("button", name="Run the searchlight").click()  # continues where it stopped
    # The app may look idle for a moment before the click's run starts: wait for the whole map.
    whole_map = page.locator("[data-testid='stMetricValue']").filter(has_text=f"{total} / {total}")
    expect(whole_map.or_(page.locator("[data-testid='stProgress']").filter(has_text="spheres scored")).first
           ).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(whole_map).to_have_count(1, timeout=RUN_TIMEOUT_MS)
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)
    metrics = helpers.metric_values(page, "Spheres scored")
    assert metrics["Spheres scored"] == f"{total} / {total}", metrics
    expect(page.locator("[data-testid='stAlert']").filter(has_text="Partial map")).to_have_count(0)
