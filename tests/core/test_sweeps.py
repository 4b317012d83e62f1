"""Sweeps: parsing the values, one run per value, the image read once, the score table."""

from __future__ import annotations

import numpy as np
import pytest

from decoding_core import decoding, masking
from decoding_core.config import ESTIMATORS, DecodingConfig
from decoding_core.errors import DecodingInputError
from decoding_core.sweeps import (
    MAX_SWEEP_VALUES,
    SWEEPABLE,
    default_sweep_values,
    parse_sweep_values,
    run_sweep,
    sweep_fold_scores,
    sweep_table,
)


@pytest.mark.parametrize(
    ("setting", "text", "expected"),
    [
        ("C", "0.001..100", [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]),
        ("C", "0.01, 0.1;1 10", [0.01, 0.1, 1.0, 10.0]),
        ("C", "0.01..100:3", [0.01, 1.0, 100.0]),
        ("C", "1, 1.0, 1e0", [1.0]),
        ("n_folds", "2..5", [2, 3, 4, 5]),
        ("n_folds", "3, 10", [3, 10]),
        ("screening_percentile", "none, 5, 10", [None, 5.0, 10.0]),
        ("smoothing_fwhm", "0..8:3", [0.0, 4.0, 8.0]),
        ("standardize", "yes, no", ["series", "none"]),
        ("standardize", "series run none", ["series", "run", "none"]),
        ("detrend", "run, 1", ["run", "series"]),
        ("high_pass", "none 0.01", [None, 0.01]),
        ("estimator", "svc logistic_l2", ["svc", "logistic_l2"]),
        ("mask_name", "vt, face", ["vt", "face"]),
    ],
)
def test_parse_sweep_values(setting, text, expected):
    assert parse_sweep_values(setting, text) == expected


@pytest.mark.parametrize(
    ("setting", "text", "message"),
    [
        ("C", "", "Give at least one value"),
        ("C", "abc", "'abc' is not a number"),
        ("C", "0", "cannot be used: 'C' must be a number in the range"),
        ("C", "0.002..100", "both ends must be powers of ten"),
        ("C", "100..1", "from a smaller to a larger number"),
        ("C", "1..10:1", "between 2 and"),
        ("C", "1..x", "Cannot read the range"),
        ("n_folds", "2.5", "not a whole number"),
        ("n_folds", "1", "'n_folds' must be an integer"),
        ("estimator", "svc, deep_net", "'deep_net' is not one of"),
        ("standardize", "perhaps", r"'perhaps' is not one of \['series', 'run', 'none'\]"),
        ("screening_percentile", "150", "'screening_percentile' must be a number"),
        ("conditions", "face", "'setting' must be one of"),
        ("C", f"1..{10 ** 60}:51", "between 2 and"),
    ],
)
def test_parse_sweep_values_refuses_junk(setting, text, message):
    with pytest.raises(DecodingInputError, match=message):
        parse_sweep_values(setting, text)


def test_a_long_bad_value_is_cut_short_in_the_message():
    with pytest.raises(DecodingInputError) as caught:
        parse_sweep_values("standardize", "x" * 500)
    message = str(caught.value)
    assert "'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...' is not one of" in message
    assert len(message) < 120


def test_too_many_values_are_refused():
    text = ",".join(str(v) for v in range(1, MAX_SWEEP_VALUES + 2))
    with pytest.raises(DecodingInputError, match=f"at most {MAX_SWEEP_VALUES} values"):
        parse_sweep_values("n_folds", text)


def test_default_values(simulated_dataset):
    assert default_sweep_values("C") == [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
    assert default_sweep_values("estimator") == list(ESTIMATORS)
    assert default_sweep_values("mask_name", simulated_dataset) == list(simulated_dataset.masks)
    for setting, spec in SWEEPABLE.items():
        for value in spec.sweep_values:  # every default is a valid setting
            if setting != "mask_name":
                DecodingConfig().replace(**{setting: value})


def test_a_sweep_over_C_gives_one_run_per_value_and_reads_the_image_once(simulated_dataset, masked_voxel_reads):
    reads = masked_voxel_reads
    values = [0.001, 0.1, 10.0]
    progress = []
    base = DecodingConfig(cv="kfold", n_folds=4)
    results = run_sweep(simulated_dataset, base, "C", values, progress=lambda f, m: progress.append((f, m)),
                        cache=masking.RawVoxelCache())
    assert [r.config.C for r in results] == values
    assert all(r.config.replace(C=1.0) == base for r in results)
    assert len(reads) == 1  # masked once, reused for every value
    # Each run is the run the app would make for that configuration.
    single = decoding.run_decoding(simulated_dataset, base.replace(C=0.1))
    np.testing.assert_array_equal(results[1].fold_scores, single.fold_scores)
    fractions = [f for f, _ in progress]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and 0 <= fractions[0]
    assert any("C = 10 (3/3)" in message for _, message in progress)

    table = sweep_table(results, "C")
    assert list(table["value"]) == values and list(table["label"]) == ["0.001", "0.1", "10"]
    for row, result in zip(table.itertuples(), results):
        assert row.mean_score == pytest.approx(result.fold_scores.mean())
        assert row.min_score == result.fold_scores.min() and row.n_folds == 4
    long = sweep_fold_scores(results, "C")
    assert len(long) == 12 and set(long["label"]) == {"0.001", "0.1", "10"}


def test_a_sweep_can_be_stopped_between_runs(simulated_dataset):
    calls = []

    def stop_after_one():
        calls.append(1)
        return len(calls) > 1

    results = run_sweep(simulated_dataset, DecodingConfig(cv="kfold", n_folds=3), "estimator",
                        ["svc", "ridge", "logistic_l2"], should_stop=stop_after_one)
    assert [r.config.estimator for r in results] == ["svc"]


def test_a_sweep_over_masks_checks_them_first(simulated_dataset):
    with pytest.raises(DecodingInputError, match="no mask named 'amygdala'"):
        run_sweep(simulated_dataset, DecodingConfig(), "mask_name", ["vt", "amygdala"])
    results = run_sweep(simulated_dataset, DecodingConfig(cv="kfold", n_folds=3), "mask_name", ["face", "house"])
    assert [r.n_voxels for r in results] == [
        int(np.count_nonzero(np.asarray(simulated_dataset.masks[name].dataobj))) for name in ("face", "house")
    ]
