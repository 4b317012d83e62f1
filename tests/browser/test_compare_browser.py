"""End to end in headless Chromium: two runs, the Compare page, the reproducible export, a shared link.

Issue "What-if comparisons, shareable configurations and reproducible exports". Uses the
server, browser and page helpers of ``conftest.py`` (a real ``streamlit run`` with its
history in a temporary folder; a fresh Streamlit session per test).
"""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from playwright.sync_api import expect

from decoding_core.config import DecodingConfig
from decoding_core.urlstate import config_to_query_string

pytestmark = pytest.mark.browser

#: Decoding runs wait this long (milliseconds) on a loaded 2-core machine.
RUN_TIMEOUT_MS = 120_000


def run_with_C(page, helpers, C: float) -> None:
    """On Configure, set C and run; land on Results."""
    helpers.navigate_to_page(page, "Configure")
    box = helpers.widget(page, "stNumberInput", "Regularisation C").locator("input")
    box.fill(f"{C:g}")
    box.press("Enter")
    helpers.wait_for_app(page)
    page.get_by_role("button", name="Run the decoding").click()
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)


def test_two_runs_compared_and_exported(page, helpers, tmp_path):
    run_with_C(page, helpers, 1.0)
    run_with_C(page, helpers, 0.001)

    helpers.navigate_to_page(page, "Compare", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    expect(page.locator("[data-testid='stAlert']").filter(has_text="Something went wrong")).to_have_count(0)
    # Both runs are picked (the two newest), their names tell them apart.
    picked = helpers.widget(page, "stMultiSelect", "Runs to compare")
    expect(picked).to_contain_text("C=1,")
    expect(picked).to_contain_text("C=0.001,")
    expect(page.get_by_text("Settings that differ (highlighted):")).to_be_visible()
    metrics = helpers.metric_values(page, "Mean difference (B - A)", "Paired t-test p")
    assert "Mean difference (B - A)" in metrics, metrics
    assert "Paired t-test p" in metrics, metrics
    expect(page.locator("[data-testid='stAlert']").filter(has_text="Limits of this test")).to_have_count(1)
    # Fold spread, paired folds and the weight-map difference are drawn by Plotly.
    expect(page.locator("[data-testid='stPlotlyChart']")).to_have_count(3, timeout=RUN_TIMEOUT_MS)
    helpers.screenshot(page, "compare")

    saved = helpers.download(page, "Run A:", tmp_path, timeout=RUN_TIMEOUT_MS)
    assert saved.name.startswith("decoding-run-") and saved.suffix == ".zip"
    with zipfile.ZipFile(io.BytesIO(saved.read_bytes())) as archive:
        names = set(archive.namelist())
        assert {"reproduce.py", "config.json", "run.json", "fold_scores.csv", "weights.nii.gz"} <= names
        run = json.loads(archive.read("run.json"))
    assert run["config"]["C"] == 0.001  # A is the newest run

    # The History lists both runs; the whole history exports as one file.
    helpers.navigate_to_page(page, "History")
    helpers.assert_no_exception(page)
    table = page.locator("[data-testid='stDataFrame']").first
    expect(table).to_be_visible()
    history_file = helpers.download(page, "Export all", tmp_path, timeout=RUN_TIMEOUT_MS)
    with zipfile.ZipFile(history_file) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["format"] == "fmri-decoding-lab-history"
    assert len(manifest["runs"]) >= 2


def test_a_shared_link_restores_the_configuration_and_runs_it(page, helpers, app_server):
    config = DecodingConfig(C=0.05, cv="kfold", n_folds=4, mask_name="house")
    page.goto(f"{app_server}/?{config_to_query_string(config, 'simulated')}")
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    expect(page.get_by_text("Restored the configuration from the link")).to_be_visible()
    # The address bar still carries the configuration.
    assert "C=0.05" in page.url and "data=simulated" in page.url
    metrics = helpers.metric_values(page, "Folds", timeout=RUN_TIMEOUT_MS)
    assert metrics["Folds"] == "4"

    helpers.navigate_to_page(page, "Configure")
    assert float(helpers.widget(page, "stNumberInput", "Regularisation C").locator("input").input_value()) == 0.05
    assert helpers.number_input_value(page, "K (number of folds)") == 4
