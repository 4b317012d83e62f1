"""End to end in headless Chromium: what a methods reviewer checks (issue "methods reviewer").

Eight categories instead of two, another classifier and balanced accuracy; the
confusion matrix and per-class table; one class's map; the Haufe activation
pattern instead of the raw weights; a small permutation test with its null
distribution and p-value. Screenshots go to ``test-output/screenshots/``.
"""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

RUN_TIMEOUT_MS = 180_000
N_PERMUTATIONS = 20


def weight_chart_title(page) -> str:
    title = page.locator(".st-key-w_weight_chart [data-testid='stPlotlyChart'] .gtitle")
    expect(title).to_have_count(1)
    return title.text_content()


def test_multiclass_review_with_pattern_map_and_permutation_test(page, helpers, simulated_dataset, tmp_path):
    categories = sorted({str(c) for c in simulated_dataset.conditions} - {"rest"})
    assert len(categories) == 8

    helpers.navigate_to_page(page, "Configure")
    conditions = helpers.widget(page, "stMultiSelect", "Conditions")
    for name in categories:
        if conditions.get_by_text(name, exact=True).count():
            continue  # already chosen (face and cat by default)
        conditions.locator("input").click()
        page.keyboard.type(name)
        page.keyboard.press("Enter")
        helpers.wait_for_app(page)
    page.keyboard.press("Escape")
    # The ridge classifier keeps the 20 permutations of 12 folds x 8 classes quick.
    helpers.choose_option(page, "Classifier", "Ridge classifier")
    helpers.choose_option(page, "Score", "Balanced accuracy")
    metrics = helpers.metric_values(page, "Classes", "Data to decode")
    assert metrics["Classes"] == "8", metrics
    n_samples = int(metrics["Data to decode (samples x voxels)"].split(" x ")[0])
    expected_samples = int(np.isin(np.asarray(simulated_dataset.conditions, dtype=str), categories).sum())
    assert n_samples == expected_samples
    helpers.assert_no_exception(page)
    helpers.screenshot(page, "methods-configure")

    page.get_by_role("button", name="Run the decoding").click()
    helpers.wait_for_page(page, "Results", timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    results = helpers.metric_values(page, "Mean balanced accuracy", "Chance level")
    score = float(results["Mean balanced accuracy"])
    chance = float(results["Chance level"])
    assert chance == pytest.approx(1 / 8, abs=0.01)
    assert score > chance + 0.2, results

    # Confusion matrix: one row and one column per category.
    page.get_by_role("tab", name="Confusion matrix").click()
    panel = page.locator("[data-testid='stTabPanel']:visible")
    confusion = panel.locator("[data-testid='stPlotlyChart']")
    expect(confusion).to_be_visible()
    expect(confusion.locator(".xtick text")).to_have_count(8)
    assert sorted(confusion.locator(".xtick text").all_text_contents()) == categories
    assert sorted(confusion.locator(".ytick text").all_text_contents()) == categories
    confusion.scroll_into_view_if_needed()
    helpers.screenshot(page, "methods-confusion", full_page=False)

    # Per-class precision and recall: eight rows, each class tested on all its samples.
    page.get_by_role("tab", name="Per-class precision and recall").click()
    table = helpers.dataframe_csv(
        page, page.locator("[data-testid='stTabPanel']:visible [data-testid='stDataFrame']").first,
        tmp_path / "per_class.csv",
    )
    assert sorted(table["class"]) == categories
    assert table["support"].sum() == n_samples
    assert table["recall"].between(0, 1).all() and table["precision"].between(0, 1).all()
    assert table["recall"].mean() == pytest.approx(score, abs=0.02)  # balanced accuracy = mean recall

    # One class's map, then the Haufe activation pattern instead of the raw weights.
    assert "vs rest" in weight_chart_title(page)
    helpers.choose_option(page, "Class", "house vs rest")
    assert "house vs rest" in weight_chart_title(page)
    page.locator(".st-key-w_map_kind").get_by_text("Activation pattern (Haufe et al. 2014)").click()
    helpers.wait_for_app(page)
    title = weight_chart_title(page)
    assert "Activation pattern" in title and "house vs rest" in title, title
    helpers.assert_no_exception(page)
    page.locator(".st-key-w_weight_chart").scroll_into_view_if_needed()
    helpers.screenshot(page, "methods-pattern-map", full_page=False)

    # A small permutation test.
    count = helpers.widget(page, "stNumberInput", "Number of permutations").locator("input")
    count.fill(str(N_PERMUTATIONS))
    count.press("Enter")
    helpers.wait_for_app(page)
    page.get_by_role("button", name="Run the permutation test").click()
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)
    expect(page.get_by_text(f"{N_PERMUTATIONS} / {N_PERMUTATIONS}")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    helpers.wait_for_app(page, timeout=RUN_TIMEOUT_MS)
    helpers.assert_no_exception(page)
    significance = helpers.metric_values(page, "Observed score", "p-value")
    assert float(significance["Observed score"]) == pytest.approx(score, abs=0.001)
    p_value = float(significance["p-value"])
    # A pattern this strong beats every shuffle: the smallest p-value 20 permutations allow.
    assert p_value == pytest.approx(1 / (N_PERMUTATIONS + 1), abs=1e-4)
    null_chart = page.locator("[data-testid='stPlotlyChart']").filter(has_text="Permutation test")
    expect(null_chart).to_have_count(1)
    expect(null_chart).to_be_visible()
    assert f"{N_PERMUTATIONS} permutations" in null_chart.locator(".gtitle").text_content()
    null_chart.scroll_into_view_if_needed()
    helpers.screenshot(page, "methods-permutation", full_page=False)
    helpers.screenshot(page, "methods-results")
