"""End to end in headless Chromium: a long permutation test tells the time, and Stop keeps every permutation done.

Issue 15, item 4: the bar said nothing of time, and a Stop after a few seconds showed
nothing because work was kept only in chunks of 50.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from ui import state

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 180_000
N_PERMUTATIONS = 5000
PROGRESS = re.compile(r"Permutation (\d+) of 5000 \((.+) elapsed")


def _permutations_shown(page) -> int:
    """The number of permutations the progress bar says are done (0 before the first)."""
    text = page.locator("[data-testid='stProgress']").first.text_content(timeout=RUN_TIMEOUT_MS) or ""
    match = PROGRESS.search(text)
    return int(match.group(1)) if match else 0


def test_stop_after_a_few_seconds_keeps_every_finished_permutation(page, helpers):
    helpers.navigate_to_page(page, "Configure")
    page.get_by_role("button", name="Run the decoding").click()
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)

    count = helpers.widget(page, "stNumberInput", "Number of permutations").locator("input")
    count.fill(str(N_PERMUTATIONS))
    count.press("Enter")
    helpers.wait_for_app(page)
    page.get_by_role("button", name="Run the permutation test").click()
    # A few seconds in: the bar names the permutations done and the time elapsed.
    expect(page.locator("[data-testid='stProgress']").filter(has_text="elapsed")).to_be_visible(
        timeout=RUN_TIMEOUT_MS)
    deadline = time.monotonic() + 60
    while _permutations_shown(page) < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(500)
    shown_before_stop = _permutations_shown(page)
    assert shown_before_stop >= 3, "the permutation test did not get going"
    page.locator(f".st-key-{state.W_PERMUTATION_STOP} button").click()
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)

    expect(page.get_by_text("Stopped early")).to_be_visible()
    done_text = helpers.metric_values(page, "Permutations done")["Permutations done"]
    kept, target = (int(part) for part in done_text.split(" / "))
    assert target == N_PERMUTATIONS
    # Everything the bar had counted is kept (not rounded down to a chunk), and the run did stop.
    assert shown_before_stop <= kept < N_PERMUTATIONS, (shown_before_stop, done_text)
    p_value = float(helpers.metric_values(page, "p-value")["p-value"])
    assert 1 / (kept + 1) - 1e-4 <= p_value <= 1.0
    helpers.screenshot(page, "long-runs-stopped", full_page=False)
