"""Tests of decoding_core.decoding.scoring: fold scores against scikit-learn's scorers, chance levels."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.svm import SVC

from decoding_core.config import DecodingConfig
from decoding_core.decoding import decode

from tests.core.decoding._helpers import make_masked


@pytest.mark.parametrize("scoring", ["roc_auc", "balanced_accuracy"])
def test_scores_equal_sklearn_scorers(masked, scoring):
    result = decode(masked, DecodingConfig(scoring=scoring))
    expected = cross_val_score(SVC(kernel="linear"), masked.X, masked.labels, cv=LeaveOneGroupOut(),
                               groups=masked.runs, scoring=scoring)
    np.testing.assert_allclose(result.fold_scores, expected)


def test_chance_level_is_majority_rate():
    labels = np.array((["face"] * 8 + ["cat"] * 4) * 4)
    data = make_masked(labels=labels, n_runs=4)
    result = decode(data, DecodingConfig())
    assert result.chance_level == pytest.approx(2 / 3)
    assert any("balanced accuracy" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("scoring", "expected"),
    [("accuracy", 20 / 35), ("balanced_accuracy", 1 / 3), ("roc_auc", 0.5)],
)
def test_chance_level_follows_the_scoring(scoring, expected):
    from decoding_core.decoding import chance_level

    assert chance_level(scoring, [20, 10, 5]) == pytest.approx(expected)


def test_result_chance_level_is_that_of_its_scoring(simulated_dataset):
    from decoding_core.decoding import run_decoding

    config = DecodingConfig(conditions=("face", "cat", "house"), cv="kfold", n_folds=3)
    accuracy = run_decoding(simulated_dataset, config)
    balanced = run_decoding(simulated_dataset, config.replace(scoring="balanced_accuracy"))
    assert accuracy.chance_level == pytest.approx(accuracy.majority_rate)
    assert balanced.chance_level == pytest.approx(1 / 3)
    # The predictions carry time in seconds when the data set has a TR.
    assert np.allclose(accuracy.predictions["time"], accuracy.predictions["volume"] * simulated_dataset.tr)
