"""Tests of decoding_core.group: per-subject scores, the group tests, the group map."""

from __future__ import annotations

import itertools

import nibabel as nib
import numpy as np
import pytest
from scipy import stats

from decoding_core import group, masking
from decoding_core.config import DecodingConfig
from decoding_core.datasets._base import Dataset
from decoding_core.decoding import run_decoding
from decoding_core.errors import DecodingInputError
from decoding_core.group import (
    GroupResult,
    Subject,
    group_summary,
    group_table,
    group_t_test,
    run_group,
    sign_flip_test,
    simulated_subjects,
    subjects_from_specs,
)

# ---------------------------------------------------------------------------
# Small synthetic subjects: a planted face/cat difference, or none
# ---------------------------------------------------------------------------

N_RUNS, PER_CLASS_PER_RUN, N_VOXELS = 6, 6, 30
SMALL_CONFIG = DecodingConfig(conditions=("face", "cat"), mask_name="small")


def _small_masked(seed: int, effect: float) -> masking.MaskedData:
    """Samples x voxels with ``effect`` added to the face samples' first 10 voxels (0: no effect)."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.repeat(["face", "cat"], PER_CLASS_PER_RUN), N_RUNS)
    runs = np.repeat(np.arange(N_RUNS), 2 * PER_CLASS_PER_RUN)
    X = rng.standard_normal((labels.size, N_VOXELS)).astype(np.float32)
    X[labels == "face", :10] += effect
    mask = np.zeros((5, 6, 1), dtype=np.uint8)
    mask.flat[:N_VOXELS] = 1
    return masking.MaskedData(X=X, labels=labels, runs=runs, volume_index=np.arange(labels.size),
                              mask_img=nib.Nifti1Image(mask, np.eye(4)), mask_name="small")


def _small_group(seeds, effect: float, **options) -> GroupResult:
    """The group of small subjects, each decoded as `run_group` decodes (`decode` after masking)."""
    from decoding_core.decoding import decode

    names = tuple(f"s{seed}" for seed in seeds)
    results = tuple(decode(_small_masked(seed, effect), SMALL_CONFIG) for seed in seeds)
    return group.group_from_results(SMALL_CONFIG, names, results, **options)


# ---------------------------------------------------------------------------
# The tests against chance
# ---------------------------------------------------------------------------


def test_t_test_equals_scipy():
    differences = [0.12, 0.03, -0.02, 0.2, 0.07, 0.11]
    ours = group_t_test(differences)
    theirs = stats.ttest_1samp(differences, 0.0, alternative="greater")
    assert ours.statistic == pytest.approx(theirs.statistic, rel=1e-12)
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-12)
    assert ours.df == 5 and ours.mean_difference == pytest.approx(np.mean(differences))


def test_exact_sign_flip_equals_counting_every_sign_pattern():
    differences = np.array([0.12, 0.03, -0.02, 0.2, 0.07])
    observed = differences.mean()
    means = [np.mean(np.array(signs) * differences) for signs in itertools.product((1, -1), repeat=5)]
    expected = sum(m >= observed - 1e-12 for m in means) / 32
    result = sign_flip_test(differences, n_flips=10_000)
    assert result.exact and result.n_flips == 32
    assert result.p_value == pytest.approx(expected)
    assert result.p_value == pytest.approx(2 / 32)  # all positive but -0.02: only it may flip with equal or more
    assert result.observed == pytest.approx(observed)


def test_random_sign_flip_equals_an_independent_computation():
    rng = np.random.default_rng(3)
    differences = rng.normal(0.05, 0.1, size=14)  # 2**14 patterns > 2000 flips: random draws
    result = sign_flip_test(differences, n_flips=2000, seed=42)
    signs = np.random.default_rng(42).choice([-1.0, 1.0], size=(2000, 14))
    null = np.array([np.mean(row * differences) for row in signs])
    expected = (1 + np.sum(null >= differences.mean() - 1e-12)) / 2001
    assert not result.exact and result.n_flips == 2000 and result.seed == 42
    assert result.p_value == pytest.approx(expected)
    np.testing.assert_allclose(result.null_means, null, rtol=0, atol=1e-12)
    assert sign_flip_test(differences, n_flips=2000, seed=42).p_value == result.p_value  # seeded


@pytest.mark.parametrize("differences, message", [([0.1], "at least 2"), ([0.1, np.nan], "finite")])
def test_group_tests_refuse_too_few_or_missing_values(differences, message):
    with pytest.raises(DecodingInputError, match=message):
        group_t_test(differences)
    with pytest.raises(DecodingInputError, match=message):
        sign_flip_test(differences)


def test_sign_flip_refuses_a_bad_number_of_flips():
    with pytest.raises(DecodingInputError, match=r"'n_flips' must be an integer in the range \[1, "):
        sign_flip_test([0.1, 0.2], n_flips=0)


# ---------------------------------------------------------------------------
# Groups with and without a planted effect
# ---------------------------------------------------------------------------


def test_a_planted_effect_gives_a_small_group_p_value():
    result = _small_group(range(8), effect=0.8)
    assert (result.differences > 0).all()
    assert result.t_test.p_value < 0.001
    assert result.sign_flip.exact and result.sign_flip.p_value == pytest.approx(1 / 256)


@pytest.mark.slow
def test_without_an_effect_group_p_values_spread_over_zero_to_one():
    """20 groups of 8 subjects without any effect: the p-values are not all small."""
    t_values, flip_values = [], []
    for group_index in range(20):
        result = _small_group(range(100 * group_index, 100 * group_index + 8), effect=0.0)
        t_values.append(result.t_test.p_value)
        flip_values.append(result.sign_flip.p_value)
    for p_values in (np.array(t_values), np.array(flip_values)):
        assert np.mean(p_values < 0.05) <= 0.2  # about 5 % expected; never most of them
        assert np.median(p_values) > 0.2  # uniform-ish: the middle is near 0.5, not near 0
        assert p_values.max() > 0.6
        # Kolmogorov-Smirnov against the uniform: no strong evidence of a departure.
        assert stats.kstest(p_values, "uniform").pvalue > 0.01


def test_the_table_has_one_row_per_subject_with_the_runs_numbers():
    result = _small_group([1, 2, 3], effect=0.8)
    table = group_table(result)
    assert list(table["subject"]) == ["s1", "s2", "s3"]
    for row, run in zip(table.itertuples(), result.results):
        assert row.mean_score == run.mean_score and row.chance_level == run.chance_level
        assert row.difference == pytest.approx(run.mean_score - run.chance_level)
        assert row.n_folds == N_RUNS
        sem = np.std(run.fold_scores, ddof=1) / np.sqrt(N_RUNS)
        assert row.sem == pytest.approx(sem)
        assert row.ci_high - row.mean_score == pytest.approx(stats.t.ppf(0.975, N_RUNS - 1) * sem)


def test_the_group_map_is_the_mean_of_maps_on_one_grid():
    result = _small_group([1, 2, 3], effect=0.8)
    expected = np.mean([r.weight_img.get_fdata() for r in result.results], axis=0)
    np.testing.assert_allclose(result.mean_weight_img.get_fdata(), expected, rtol=1e-6, atol=1e-7)
    assert "Mean of the weight maps of 3 subjects" in result.map_note


def test_no_group_map_for_subjects_on_different_grids():
    first = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4))
    second = nib.Nifti1Image(np.zeros((3, 2, 2), np.float32), np.eye(4))
    image, note = group.mean_map([first, second], ["haxby:1", "haxby:2"])
    assert image is None and "haxby:1 and haxby:2 are on different grids" in note


def test_summary_is_plain_json():
    import json

    summary = group_summary(_small_group([1, 2, 3], effect=0.8))
    text = json.dumps(summary)
    assert json.loads(text)["subjects"] == ["s1", "s2", "s3"]
    assert summary["t_test"]["df"] == 2 and summary["sign_flip"]["exact"] is True


# ---------------------------------------------------------------------------
# Subjects and run_group
# ---------------------------------------------------------------------------


def test_subject_specs_expand_ranges():
    names = [s.name for s in subjects_from_specs(["simulated:0..2", "haxby:4"])]
    assert names == ["simulated", "simulated:1", "simulated:2", "haxby:4"]


@pytest.mark.parametrize("specs, message", [
    (["simulated:3..1"], "smaller to a larger"), (["nothing:1"], "Unknown data set"), (["haxby:9"], "subjects 1 to 6"),
])
def test_bad_subject_specs_are_refused(specs, message):
    with pytest.raises(DecodingInputError, match=message):
        subjects_from_specs(specs)


def test_a_group_needs_two_distinct_subjects():
    with pytest.raises(DecodingInputError, match="between 2 and"):
        run_group(simulated_subjects([1]), DecodingConfig())
    with pytest.raises(DecodingInputError, match="repeated: simulated:1"):
        run_group(simulated_subjects([1, 1]), DecodingConfig())


def test_a_subject_that_cannot_be_decoded_is_named():
    def broken(progress):
        raise DecodingInputError("The labels table has no column 'labels'.")

    subjects = [Subject("sub-01", broken), Subject("sub-02", broken)]
    with pytest.raises(DecodingInputError, match=r"^sub-01: The labels table has no column"):
        run_group(subjects, DecodingConfig())


@pytest.mark.slow
def test_simulated_subjects_decode_as_single_runs_and_beat_chance():
    seen = []
    result = run_group(simulated_subjects([0, 1, 2]), DecodingConfig(), progress=lambda f, m: seen.append((f, m)))
    assert result.names == ("simulated", "simulated:1", "simulated:2") and not result.stopped_early
    from decoding_core.datasets import load_simulated

    single = run_decoding(load_simulated(seed=2), DecodingConfig())
    np.testing.assert_array_equal(result.results[2].fold_scores, single.fold_scores)
    assert (result.differences > 0.2).all()  # the planted face/cat patterns decode well in every subject
    assert result.t_test.p_value < 0.05
    assert result.sign_flip.exact and result.sign_flip.p_value == pytest.approx(1 / 8)  # the least 3 subjects allow
    assert result.mean_weight_img is not None  # simulated subjects share the MNI grid
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any(m.startswith("simulated:2 (3/3): ") for _, m in seen)


@pytest.mark.slow
def test_stop_keeps_the_subjects_done_and_says_so():
    calls = []

    def stop_after_two():
        calls.append(1)
        return len(calls) > 2

    result = run_group(simulated_subjects([0, 1, 2]), DecodingConfig(), should_stop=stop_after_two)
    assert result.stopped_early and result.names == ("simulated", "simulated:1") and result.n_subjects == 3
    assert result.t_test is not None  # two subjects can be tested


def test_bids_subjects_load_each_subject_of_the_folder(haxby_bids_dir, tmp_path):
    subjects = group.bids_subjects(haxby_bids_dir, task="objectviewing",
                                   mask=haxby_bids_dir.parent / "haxby2001-subj1-slice" / "mask.nii.gz",
                                   cache_dir=tmp_path)
    assert [s.name for s in subjects] == ["sub-1"]
    dataset = subjects[0].load(None)
    assert isinstance(dataset, Dataset) and dataset.n_runs == 12
