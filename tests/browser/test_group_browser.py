"""End to end in headless Chromium: a group of simulated subjects on the Group page, with the forest plot.

Uses the server, browser and page helpers of ``conftest.py`` (a real ``streamlit run``; a fresh
Streamlit session per test). The five default subjects (seeds 0 to 4) are generated on first use,
so the run may take minutes on a loaded 2-core machine.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

#: Generating and decoding five simulated subjects on a loaded machine (milliseconds).
GROUP_TIMEOUT_MS = 900_000


@pytest.fixture
def slow_page(browser, app_server, helpers):
    """As conftest's ``page``, with first-load and run timeouts for five subjects on a loaded machine."""
    with helpers.open_app_page(browser, app_server, first_load_ms=GROUP_TIMEOUT_MS,
                               default_ms=GROUP_TIMEOUT_MS) as tab:
        yield tab


def test_group_of_simulated_subjects_with_forest_plot(slow_page, helpers):
    page = slow_page
    helpers.navigate_to_page(page, "Group", timeout=GROUP_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    expect(page.get_by_text("Runs here, subject by subject.")).to_be_visible()
    page.get_by_role("button", name="Run the group").click()
    helpers.wait_for_app(page, timeout=GROUP_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    metrics = helpers.metric_values(page, "Subjects", "t-test p (one-sided)", "Sign-flip p",
                                    timeout=GROUP_TIMEOUT_MS)
    assert metrics["Subjects"] == "5"
    # Five subjects all above chance: 1 of the 32 sign patterns has a mean as large (exact test).
    assert metrics["Sign-flip p"] == "0.0312"
    assert float(metrics["t-test p (one-sided)"]) < 0.01
    chart = page.locator("[data-testid='stPlotlyChart']")
    expect(chart).to_have_count(1)
    expect(chart).to_contain_text("simulated:4")
    expect(chart).to_contain_text("group mean")
    expect(page.get_by_text("Mean of the weight maps of 5 subjects")).to_be_visible()
    expect(page.locator("[data-testid='stDownloadButton']").filter(has_text="Group mean weight map")).to_have_count(1)
    helpers.screenshot(page, "group")
