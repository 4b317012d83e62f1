"""End to end in headless Chromium: twelve run files uploaded at once, loaded as one data set (issue 12).

The real subject-1 slice data as one 4D file per run (``tests/data/haxby2001-subj1-bids``),
with the per-volume labels table of the same data in one file; then a decoding on it.
Screenshot: ``test-output/screenshots/data-run-files.png``.
"""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

from decoding_core import decoding, masking
from decoding_core.config import DecodingConfig
from decoding_core.datasets import load_files

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 120_000
FUNC = "sub-1/func"


def test_run_files_upload_load_and_decode(page, helpers, haxby_bids_dir, haxby_slice_dir):
    runs = sorted((haxby_bids_dir / FUNC).glob("*_bold.nii.gz"))
    assert len(runs) == 12
    if not page.get_by_text("One file per run (upload)").is_visible():
        page.get_by_text("Choose the data set", exact=True).click()
    page.get_by_text("One file per run (upload)").click()
    helpers.wait_for_app(page)

    # In reverse order: the page puts them in run order by name.
    helpers.dropzone(page, "4D images, one per run").set_input_files([str(path) for path in reversed(runs)])
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)
    listed = page.get_by_text("Run files ready (12, in run order)")
    expect(listed).to_be_visible(timeout=RUN_TIMEOUT_MS)
    expect(listed).to_contain_text(f"first {runs[0].name}, last {runs[-1].name}")
    helpers.dropzone(page, "Labels: one table for all volumes").set_input_files(str(haxby_slice_dir / "labels.txt"))
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)
    helpers.dropzone(page, "Mask (optional").set_input_files(str(haxby_slice_dir / "mask.nii.gz"))
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)

    load = page.get_by_role("button", name="Load these 12 runs")
    expect(load).to_be_enabled(timeout=RUN_TIMEOUT_MS)
    load.click()
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    expect(page.locator("h3").filter(has_text="Your uploaded runs (12 run files)")).to_be_visible()
    metrics = helpers.metric_values(page, "Runs", "Volumes")
    assert metrics["Runs"] == "12" and metrics["Volumes"] == "1452", metrics
    helpers.screenshot(page, "data-run-files")

    helpers.navigate_to_page(page, "Configure")
    page.get_by_role("button", name="Run the decoding").click(timeout=RUN_TIMEOUT_MS)
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    shown = page.locator("[data-testid='stMetric']").filter(has_text="Mean").first
    expect(shown).to_be_visible()
    # The same data in one file with its labels table: the same mean score.
    one_file = load_files(haxby_slice_dir / "bold.nii.gz", haxby_slice_dir / "labels.txt",
                          mask=haxby_slice_dir / "mask.nii.gz")
    expected = decoding.decode(masking.mask_dataset(one_file, "uploaded"), DecodingConfig(mask_name="uploaded"))
    assert float(shown.locator("[data-testid='stMetricValue']").inner_text()) == pytest.approx(
        float(np.mean(expected.fold_scores)), abs=5e-4)
