"""The tutorial page shows every step of nilearn's tutorial with its live output."""

from __future__ import annotations

import pytest

from tests.app._helpers import all_markdown, assert_no_traceback, go_to, start_app
from decoding_core import decoding, masking
from decoding_core.config import DecodingConfig
from ui import state

STEP_TITLES = [
    "1. Load the data",
    "2. Turn the images into a data matrix",
    "3. The labels",
    "4. Keep only face and cat",
    "5. Fit a linear SVC and predict the training data",
    "6. Leave out the last 30 samples",
    "7. A 5-fold cross-validation loop",
    "8. The same with cross_val_score",
    "9. Leave one run out",
    "10. The weights, back in the brain",
]


@pytest.fixture(scope="module")
def tutorial_app():
    at = start_app()
    go_to(at, "tutorial.py")
    assert_no_traceback(at)
    return at


def test_every_step_is_shown_in_order(tutorial_app):
    subheaders = [element.value for element in tutorial_app.subheader]
    assert subheaders == STEP_TITLES
    assert not tutorial_app.error, [e.value for e in tutorial_app.error]
    # Every step shows the tutorial's code.
    assert len(tutorial_app.code) == len(STEP_TITLES)


def test_outputs_are_the_core_results_on_the_built_in_data(tutorial_app):
    dataset = tutorial_app.session_state[state.DATASET]
    text = all_markdown(tutorial_app)
    full = masking.mask_dataset(dataset, "vt")
    assert dataset.n_volumes == 1452
    assert f"`{tuple(full.shape)}`" in text
    selected = masking.select_conditions(full, ("face", "cat"))
    assert selected.shape[0] == 216
    assert f"`{tuple(selected.shape)}`" in text

    base = DecodingConfig()
    train = decoding.decode(full, base.replace(cv="train"))
    assert train.mean_score == pytest.approx(1.0)
    assert f"training accuracy **{train.mean_score:.3f}**" in text
    holdout = decoding.decode(full, base.replace(cv="holdout", holdout_size=30))
    assert f"held-out samples **{holdout.mean_score:.3f}**" in text
    kfold = decoding.decode(full, base.replace(cv="kfold", n_folds=5))
    for fold, score in enumerate(kfold.fold_scores, start=1):
        assert f"CV Fold {fold} | Prediction Accuracy: {score:.2f}" in text
    default = decoding.decode(full, base.replace(cv="default"))
    assert f"mean {default.mean_score:.3f}" in text
    loro = decoding.decode(full, base)
    assert f"mean {loro.mean_score:.3f}" in text
    assert loro.mean_score > loro.chance_level + 0.25
    assert f"`{(1, selected.shape[1])}`" in text
    assert tuple(loro.weights.shape) == (1, selected.shape[1])


def test_each_step_links_to_the_page_that_changes_it(tutorial_app):
    links = [link.proto.page for link in tutorial_app.get("page_link")]
    assert len(links) >= len(STEP_TITLES)
