"""Tests of decoding_core.decoding.design: the warnings about a design and its splits."""

from __future__ import annotations

import numpy as np

from decoding_core.config import DecodingConfig
from decoding_core.decoding import design_warnings, make_splits


def test_design_warnings(masked):
    labels, runs = masked.labels, masked.runs
    kfold = DecodingConfig(cv="kfold", n_folds=5)
    messages = design_warnings(kfold, labels, runs, make_splits(kfold, labels, runs))
    assert any("Leave-one-run-out is the honest scheme" in m for m in messages)
    # Not "likely optimistic": on the real data K-fold scores below leave-one-run-out.
    assert any("not an honest estimate" in m and "pessimistic" in m for m in messages)
    assert not any("likely optimistic" in m for m in messages)
    loro = DecodingConfig()
    assert design_warnings(loro, labels, runs, make_splits(loro, labels, runs)) == []
    # A test fold missing a class under ROC AUC.
    three = np.tile(np.repeat(["a", "b", "c"], 4), 3)
    three_runs = np.repeat(np.arange(3), 12)
    auc = DecodingConfig(conditions=("a", "b", "c"), cv="kfold", n_folds=6, scoring="roc_auc")
    messages = design_warnings(auc, three, three_runs, make_splits(auc, three, three_runs))
    assert any("miss some condition" in m for m in messages)
    # A class with a single training sample.
    few = np.array(["a"] * 10 + ["b"] * 2)
    holdout = DecodingConfig(conditions=("a", "b"), cv="holdout", holdout_size=1)
    messages = design_warnings(holdout, few, None, make_splits(holdout, few, None))
    assert any("fewer than two samples" in m for m in messages)
