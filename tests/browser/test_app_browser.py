"""End to end in headless Chromium: the Streamlit app's pages, a decoding run, downloads, clicks, uploads.

Issue "Streamlit app". Each test opens a fresh session of a real ``streamlit run``
server (see ``conftest.py``) on the built-in simulated data set, and saves full-page
screenshots to ``test-output/screenshots/``.
"""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

#: Decoding runs wait this long (milliseconds) on a loaded 2-core machine.
RUN_TIMEOUT_MS = 120_000


def run_default_decoding(page, helpers) -> None:
    """Configure (the defaults: face vs cat, vt, SVC, leave one run out) and run; land on Results."""
    helpers.navigate_to_page(page, "Configure")
    page.get_by_role("button", name="Run the decoding").click()
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)


def cut_position(page, helpers) -> tuple:
    return tuple(helpers.number_input_value(page, f"Cut {axis}") for axis in ("x", "y", "z"))


def test_data_page_shows_slices_and_metrics(page, helpers):
    expect(page.locator("h1").first).to_have_text("Data")
    chart = page.locator("[data-testid='stPlotlyChart']").first
    expect(chart).to_be_visible()
    # Plotly drew the slices: one drag layer per panel of the ortho view.
    expect(chart.locator(".nsewdrag")).to_have_count(3)
    metrics = helpers.metric_values(page, "Image shape", "Runs")
    for label in ("Image shape", "Voxel size (mm)", "TR (s)", "Volumes", "Runs"):
        assert label in metrics, metrics
    assert metrics["Runs"] == "12"
    assert len(metrics["Image shape"].split(" x ")) == 3
    helpers.assert_no_exception(page)
    helpers.screenshot(page, "data")

    # The other views of the data draw too (tabs).
    page.get_by_role("tab", name="Timeline").click()
    expect(page.locator("[data-testid='stTabPanel']:visible [data-testid='stPlotlyChart']")).to_be_visible()
    page.get_by_role("tab", name="Mean time course").click()
    helpers.wait_for_app(page)
    expect(page.locator("[data-testid='stTabPanel']:visible [data-testid='stPlotlyChart']")).to_be_visible()
    helpers.assert_no_exception(page)

    page.set_viewport_size({"width": 800, "height": 1000})
    helpers.wait_for_app(page)
    helpers.screenshot(page, "data-narrow-800")


def test_configure_run_results_downloads_and_voxel_click(page, helpers, simulated_dataset, tmp_path, timeout=RUN_TIMEOUT_MS):
    helpers.navigate_to_page(page, "Configure")
    metrics = helpers.metric_values(page, "Data to decode", "Classes")
    expected_voxels = int(np.count_nonzero(simulated_dataset.masks["vt"].get_fdata()))
    assert metrics["Data to decode (samples x voxels)"].endswith(f"x {expected_voxels}")
    assert metrics["Classes"] == "2"
    helpers.screenshot(page, "configure")

    page.get_by_role("button", name="Run the decoding").click()
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    results = helpers.metric_values(page, "Mean accuracy", "Chance level", "Folds")
    mean_score = float(results["Mean accuracy"])
    chance = float(results["Chance level"])
    assert chance == pytest.approx(0.5, abs=0.01)  # face vs cat, balanced blocks
    assert mean_score > chance + 0.15, results  # a planted pattern: well above chance
    assert results["Folds"] == "12"  # one fold per run
    weight_chart = page.locator(".st-key-w_weight_chart [data-testid='stPlotlyChart']")
    weight_chart.scroll_into_view_if_needed()
    expect(weight_chart).to_be_visible()
    expect(weight_chart.locator(".nsewdrag")).to_have_count(2)  # the tutorial's 'yx' view
    helpers.screenshot(page, "results")
    helpers.screenshot(page, "results-weight-map", full_page=False)
    page.get_by_role("heading", name="Downloads").scroll_into_view_if_needed()
    helpers.screenshot(page, "results-downloads", full_page=False)

    # The weight map: a 3D image on the data set's grid, nonzero exactly inside the mask.
    weights_path = helpers.download(page, "Weight map (.nii.gz)", tmp_path, timeout=RUN_TIMEOUT_MS)
    assert weights_path.name.endswith(".nii.gz")
    weights = nib.load(weights_path)
    assert weights.shape == tuple(simulated_dataset.shape[:3])
    np.testing.assert_allclose(weights.affine, simulated_dataset.masks["vt"].affine, atol=1e-4)
    data = np.asanyarray(weights.dataobj)
    assert np.all(np.isfinite(data))
    assert int(np.count_nonzero(data)) == expected_voxels
    assert not np.any(data[simulated_dataset.masks["vt"].get_fdata() == 0])

    scores = pd.read_csv(helpers.download(page, "Per-fold scores (CSV)", tmp_path, timeout=RUN_TIMEOUT_MS))
    assert len(scores) == 12
    assert scores["score"].between(0, 1).all()
    assert scores["score"].mean() == pytest.approx(mean_score, abs=0.001)

    exported = json.loads(helpers.download(page, "Configuration (JSON)", tmp_path, timeout=RUN_TIMEOUT_MS).read_text())
    assert exported["config"]["conditions"] == ["face", "cat"]
    assert exported["config"]["cv"] == "leave-one-run-out"
    assert exported["config"]["mask_name"] == "vt"
    assert exported["config"]["estimator"] == "svc"
    helpers.assert_no_exception(page)

    # A click on a voxel of the first slice moves the cut there.
    weight_chart.scroll_into_view_if_needed()
    before = cut_position(page, helpers)
    panel = weight_chart.locator(".nsewdrag").first.bounding_box()
    for fraction_x, fraction_y in ((0.3, 0.6), (0.7, 0.35)):  # two spots: one is not the current cut
        x = panel["x"] + panel["width"] * fraction_x
        y = panel["y"] + panel["height"] * fraction_y
        page.mouse.move(x, y)
        page.mouse.click(x, y)
        helpers.wait_for_app(page)
        if cut_position(page, helpers) != before:
            break
    after = cut_position(page, helpers)
    assert after != before, f"clicking the weight map left the cut at {before}"
    assert all(0 <= value < size for value, size in zip(after, simulated_dataset.shape[:3]))
    helpers.assert_no_exception(page)

    page.set_viewport_size({"width": 800, "height": 1000})
    helpers.wait_for_app(page)
    helpers.screenshot(page, "results-narrow-800")


def test_tutorial_page_shows_every_step(page, helpers):
    helpers.navigate_to_page(page, "Tutorial", timeout=RUN_TIMEOUT_MS)
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    headings = page.locator("h3").all_inner_texts()
    numbers = sorted(int(text.split(".")[0]) for text in headings if text.split(".")[0].isdigit())
    assert numbers == list(range(1, 11)), headings
    # Each step shows the tutorial's code and its live output.
    assert page.locator("[data-testid='stCode']").count() >= 10
    body = page.locator("[data-testid='stMain']").inner_text()
    assert "training accuracy" in body and "CV Fold 5" in body
    expect(page.locator(".st-key-w_tutorial_weights_chart [data-testid='stPlotlyChart']")).to_be_visible()
    helpers.screenshot(page, "tutorial")


def test_bad_upload_shows_an_error_not_a_traceback(page, helpers, tmp_path, timeout=RUN_TIMEOUT_MS):
    page.get_by_text("Choose the data set").click()
    page.get_by_text("Your own files (upload)").click()
    helpers.wait_for_app(page)
    not_nifti = tmp_path / "bold.nii.gz"
    not_nifti.write_bytes(b"This is a text file, not a NIfTI image.\n" * 20)
    labels = tmp_path / "labels.txt"
    labels.write_text("labels chunks\n" + "".join(f"{'face' if i % 2 else 'cat'} {i // 4}\n" for i in range(16)))

    uploaders = page.locator("[data-testid='stFileUploader']")
    uploaders.filter(has_text="4D functional image").locator(
        "[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(not_nifti))
    helpers.wait_for_app(page)
    # Checked as it arrives (issue 15): an error naming the file, never "ready".
    alert = page.locator("[data-testid='stAlert']").filter(has_text="NIfTI")
    expect(alert.first).to_be_visible()
    expect(alert.first).to_contain_text("'bold.nii.gz'")
    expect(page.get_by_text("4D image ready")).to_have_count(0)
    # The data set loaded before stays in use.
    expect(page.get_by_text("The data set loaded before is still in use")).to_be_visible()
    uploaders.filter(has_text="Labels table").locator(
        "[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(labels))
    helpers.wait_for_app(page)
    expect(page.get_by_role("button", name="Load these files")).to_be_disabled()
    helpers.assert_no_exception(page)
    expect(page.locator("[data-testid='stPlotlyChart']").first).to_be_visible()
    helpers.screenshot(page, "data-bad-upload")
