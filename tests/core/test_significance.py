"""Tests of decoding_core.significance: dummy scores and permutation tests."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import RidgeClassifier
from sklearn.model_selection import (
    KFold,
    LeaveOneGroupOut,
    StratifiedKFold,
    permutation_test_score,
)
from sklearn.svm import SVC

from decoding_core import significance
from decoding_core.config import DecodingConfig
from decoding_core.decoding import make_splits
from decoding_core.errors import DecodingInputError
from decoding_core.masking import (
    MaskedData,
    clean_signals,
    extract_masked_voxels,
    mask_dataset,
    select_conditions,
)
from decoding_core.significance import PermutationResult, dummy_scores, permutation_test

FACE_CAT = DecodingConfig(conditions=("face", "cat"))


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def haxby_vt(haxby_vt_dir) -> MaskedData:
    """Real subject-1 VT data, all 8 categories, z-scored over the 864 volumes."""
    mask_img = nib.load(haxby_vt_dir / "mask_vt.nii.gz")
    raw = extract_masked_voxels(haxby_vt_dir / "bold_vt.nii.gz", {"vt": mask_img})["vt"]
    table = pd.read_csv(haxby_vt_dir / "labels.txt", sep=r"\s+")
    return MaskedData(
        X=clean_signals(raw, standardize=True),
        labels=table["labels"].to_numpy(dtype=str),
        runs=table["chunks"].to_numpy(),
        volume_index=np.arange(len(table)),
        mask_img=mask_img,
        mask_name="vt",
    )


@pytest.fixture(scope="module")
def haxby_face_cat(haxby_vt) -> MaskedData:
    return select_conditions(haxby_vt, ("face", "cat"))


@pytest.fixture(scope="module")
def simulated_face_cat(simulated_dataset) -> MaskedData:
    return select_conditions(mask_dataset(simulated_dataset, "vt"), ("face", "cat"))


def _with_labels(masked: MaskedData, labels) -> MaskedData:
    return MaskedData(
        X=masked.X, labels=np.asarray(labels), runs=masked.runs, volume_index=masked.volume_index,
        mask_img=masked.mask_img, mask_name=masked.mask_name,
    )


def _subset(masked: MaskedData, keep) -> MaskedData:
    return MaskedData(
        X=masked.X[keep], labels=masked.labels[keep],
        runs=None if masked.runs is None else masked.runs[keep],
        volume_index=masked.volume_index[keep], mask_img=masked.mask_img, mask_name=masked.mask_name,
    )


def _shuffled_within_runs(masked: MaskedData, seed: int) -> MaskedData:
    """The same data with labels permuted once within each run."""
    rng = np.random.default_rng(seed)
    labels = masked.labels.copy()
    for run in np.unique(masked.runs):
        members = np.flatnonzero(masked.runs == run)
        labels[members] = labels[rng.permutation(members)]
    return _with_labels(masked, labels)


# ---------------------------------------------------------------------------
# Same null distribution as scikit-learn
# ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("scoring", ["accuracy", "balanced_accuracy", "roc_auc"])
def test_kernel_shortcut_equals_sklearn_permutation_test_score(haxby_face_cat, scoring):
    n_permutations = 20 if scoring == "accuracy" else 6
    config = FACE_CAT.replace(scoring=scoring)
    ours = permutation_test(haxby_face_cat, config, n_permutations=n_permutations, seed=3, n_jobs=1)
    score, null, p_value = permutation_test_score(
        SVC(kernel="linear"), haxby_face_cat.X, haxby_face_cat.labels, groups=haxby_face_cat.runs,
        cv=LeaveOneGroupOut(), n_permutations=n_permutations, random_state=3, scoring=scoring,
    )
    assert ours.method == "precomputed-kernel"
    assert ours.n_done == n_permutations
    assert ours.observed_score == pytest.approx(score, abs=1e-12)
    np.testing.assert_allclose(ours.null_scores, null, rtol=0, atol=1e-12)
    assert ours.p_value == pytest.approx(p_value, abs=1e-12)
    # The permutations are not all alike: the comparison covers varied scores.
    assert len(np.unique(np.round(null, 12))) > 2


def test_direct_libsvm_calls_equal_the_public_svc(haxby_face_cat, monkeypatch):
    prepared = significance._prepare(haxby_face_cat, FACE_CAT)
    assert significance._make_evaluator(prepared, FACE_CAT).direct
    direct = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=10, seed=8, n_jobs=1)
    monkeypatch.setattr(significance._PrecomputedKernelEvaluator, "_direct_calls_agree", lambda self: False)
    assert not significance._make_evaluator(prepared, FACE_CAT).direct
    public = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=10, seed=8, n_jobs=1)
    np.testing.assert_array_equal(direct.null_scores, public.null_scores)
    assert direct.observed_score == public.observed_score


def test_kernel_shortcut_equals_sklearn_on_three_classes(haxby_vt):
    masked = select_conditions(haxby_vt, ("face", "cat", "house"))
    config = DecodingConfig(conditions=("face", "cat", "house"), C=0.05)
    ours = permutation_test(masked, config, n_permutations=4, seed=11, n_jobs=1)
    score, null, _ = permutation_test_score(
        SVC(kernel="linear", C=0.05), masked.X, masked.labels, groups=masked.runs,
        cv=LeaveOneGroupOut(), n_permutations=4, random_state=11,
    )
    assert ours.method == "precomputed-kernel"
    assert ours.observed_score == pytest.approx(score, abs=1e-12)
    np.testing.assert_allclose(ours.null_scores, null, rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:The groups parameter is ignored")
def test_pipeline_path_equals_sklearn_with_kfold(haxby_face_cat):
    config = FACE_CAT.replace(estimator="ridge", cv="kfold", n_folds=4, C=0.5)
    ours = permutation_test(haxby_face_cat, config, n_permutations=8, seed=5, n_jobs=1)
    score, null, _ = permutation_test_score(
        RidgeClassifier(alpha=1.0), haxby_face_cat.X, haxby_face_cat.labels,
        groups=haxby_face_cat.runs, cv=KFold(4), n_permutations=8, random_state=5,
    )
    assert ours.method == "pipeline"
    assert ours.observed_score == pytest.approx(score, abs=1e-12)
    np.testing.assert_allclose(ours.null_scores, null, rtol=0, atol=1e-12)


@pytest.mark.filterwarnings("ignore:The groups parameter is ignored")
def test_default_scheme_refolds_each_permutation_as_sklearn(haxby_face_cat):
    config = FACE_CAT.replace(cv="default")
    ours = permutation_test(haxby_face_cat, config, n_permutations=6, seed=2, n_jobs=1)
    score, null, _ = permutation_test_score(
        SVC(kernel="linear"), haxby_face_cat.X, haxby_face_cat.labels, groups=haxby_face_cat.runs,
        cv=StratifiedKFold(5), n_permutations=6, random_state=2,
    )
    assert ours.observed_score == pytest.approx(score, abs=1e-12)
    np.testing.assert_allclose(ours.null_scores, null, rtol=0, atol=1e-12)


def test_without_runs_labels_are_shuffled_globally(haxby_face_cat):
    no_runs = MaskedData(
        X=haxby_face_cat.X, labels=haxby_face_cat.labels, runs=None,
        volume_index=haxby_face_cat.volume_index, mask_img=haxby_face_cat.mask_img, mask_name="vt",
    )
    config = FACE_CAT.replace(cv="kfold", n_folds=3)
    ours = permutation_test(no_runs, config, n_permutations=5, seed=9, n_jobs=1)
    _, null, _ = permutation_test_score(
        SVC(kernel="linear"), no_runs.X, no_runs.labels, cv=KFold(3), n_permutations=5, random_state=9,
    )
    assert ours.shuffle_within_runs is False
    np.testing.assert_allclose(ours.null_scores, null, rtol=0, atol=1e-12)


def test_shuffles_keep_each_runs_label_counts():
    codes = np.repeat([0, 1, 0, 1], 5)
    runs = np.repeat([0, 0, 1, 1], 5)
    draws = significance._permuted_codes(codes, runs, seed=0)
    shuffled = [next(draws) for _ in range(30)]
    for labels in shuffled:
        for run in (0, 1):
            assert np.sum(labels[runs == run] == 1) == 5
    assert len({labels.tobytes() for labels in shuffled}) > 20


def test_balanced_accuracy_equals_sklearn():
    import warnings

    from sklearn.metrics import balanced_accuracy_score

    rng = np.random.default_rng(0)
    for n_classes in (2, 3, 5):
        for _ in range(30):
            # Small folds: some classes are missing from y_true or y_pred.
            y_true = rng.integers(0, n_classes, 7)
            y_pred = rng.integers(0, n_classes, 7)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "y_pred contains classes not in y_true"
                expected = balanced_accuracy_score(y_true, y_pred)
            assert significance._balanced_accuracy(y_true, y_pred, n_classes) == expected


# ---------------------------------------------------------------------------
# Does the test find what is there, and only that?
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_simulated_face_cat_is_significant(simulated_face_cat):
    result = permutation_test(simulated_face_cat, FACE_CAT, n_permutations=200, seed=0, n_jobs=1)
    assert result.observed_score > 0.7
    assert result.p_value < 0.05
    # The null sits at chance (two balanced classes), well below the observed score.
    assert abs(result.null_mean - 0.5) < 0.05
    assert result.null_scores.max() < result.observed_score


@pytest.mark.slow
def test_simulated_shuffled_labels_are_not_significant(simulated_face_cat):
    shuffled = _shuffled_within_runs(simulated_face_cat, seed=1)
    result = permutation_test(shuffled, FACE_CAT, n_permutations=200, seed=0, n_jobs=1)
    assert result.p_value > 0.05
    assert abs(result.observed_score - 0.5) < 0.15


@pytest.mark.slow
def test_real_haxby_face_cat_is_significant(haxby_face_cat):
    result = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=100, seed=0, n_jobs=1)
    assert result.p_value < 0.05
    assert abs(result.null_mean - 0.5) < 0.06
    assert result.n_done == 100 and not result.stopped_early


@pytest.mark.parametrize("changes", [{}, {"scoring": "roc_auc"}, {"cv": "kfold", "scoring": "balanced_accuracy"},
                                     {"estimator": "ridge", "cv": "holdout"}])
def test_observed_score_is_the_decoders_mean_score(haxby_vt, changes):
    from decoding_core.decoding import decode

    config = FACE_CAT.replace(**changes)
    result = permutation_test(haxby_vt, config, n_permutations=1, n_jobs=1)
    decoded = decode(haxby_vt, config)
    assert result.observed_score == pytest.approx(decoded.mean_score, abs=1e-12)
    np.testing.assert_allclose(result.observed_fold_scores, decoded.fold_scores, rtol=0, atol=1e-12)


def test_unselected_data_are_selected_first(haxby_vt, haxby_face_cat):
    from_all = permutation_test(haxby_vt, FACE_CAT, n_permutations=3, seed=4, n_jobs=1)
    from_selected = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=3, seed=4, n_jobs=1)
    assert from_all.observed_score == from_selected.observed_score
    np.testing.assert_array_equal(from_all.null_scores, from_selected.null_scores)


# ---------------------------------------------------------------------------
# Progress, stopping, reproducibility
# ---------------------------------------------------------------------------


def test_should_stop_ends_early_with_the_partial_null(haxby_face_cat):
    checks = []

    def should_stop():
        checks.append(1)
        return len(checks) > 7

    stopped = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=50, seed=1,
                               should_stop=should_stop, n_jobs=1)
    assert stopped.stopped_early
    assert stopped.n_done == 7 < stopped.n_permutations == 50
    assert stopped.null_scores.shape == (7,)
    assert stopped.p_value == (1 + np.sum(stopped.null_scores >= stopped.observed_score)) / 8
    # The permutations done are the first ones of the full test with that seed.
    full = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=7, seed=1, n_jobs=1)
    np.testing.assert_array_equal(stopped.null_scores, full.null_scores)
    assert not full.stopped_early


def test_stop_before_any_permutation(haxby_face_cat):
    result = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=10, should_stop=lambda: True, n_jobs=1)
    assert result.stopped_early and result.n_done == 0
    assert result.p_value == 1.0
    assert np.isnan(result.null_mean)


def test_progress_is_reported(haxby_face_cat, monkeypatch):
    monkeypatch.setattr(significance, "_PROGRESS_INTERVAL_SECONDS", 0.0)
    calls = []
    permutation_test(haxby_face_cat, FACE_CAT, n_permutations=12, seed=0,
                     progress=lambda fraction, message: calls.append((fraction, message)), n_jobs=1)
    fractions = [fraction for fraction, _ in calls]
    assert len(calls) >= 12
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert all(isinstance(message, str) and message for _, message in calls)
    assert "12 of 12 permutations" in calls[-1][1]


def test_parallel_workers_give_the_serial_result(haxby_face_cat, monkeypatch):
    # Force the parallel branch on a small problem (threads: no process start-up).
    monkeypatch.setattr(significance, "_WARMUP_SECONDS", 0.0)
    monkeypatch.setattr(significance, "_MIN_PARALLEL_SECONDS", {"threading": 0.0, "loky": 0.0})
    monkeypatch.setattr(significance, "_BATCH_SECONDS", 0.0)
    parallel = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=9, seed=6, n_jobs=2)
    serial = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=9, seed=6, n_jobs=1)
    assert parallel.n_jobs == 2 and serial.n_jobs == 1
    np.testing.assert_array_equal(parallel.null_scores, serial.null_scores)

    checks = []
    stopped = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=9, seed=6, n_jobs=2,
                               should_stop=lambda: checks.append(1) or len(checks) > 4)
    assert stopped.stopped_early and 0 < stopped.n_done < 9
    np.testing.assert_array_equal(stopped.null_scores, serial.null_scores[: stopped.n_done])


def test_every_finished_permutation_is_handed_over_before_an_interruption(haxby_face_cat):
    # A Streamlit Stop interrupts the script inside the test (here: an exception from the
    # progress callback after 5 permutations); what on_null_scores received is all kept.
    kept = []

    class Interrupted(Exception):
        pass

    def progress(fraction, message):
        if len(kept) >= 5:
            raise Interrupted

    with pytest.raises(Interrupted):
        permutation_test(haxby_face_cat, FACE_CAT, n_permutations=40, seed=3, n_jobs=1, progress=progress,
                         on_null_scores=lambda observed, scores: kept.extend(scores))
    # Progress is reported at most every 0.1 s: a few more permutations may finish first.
    assert 5 <= len(kept) < 40
    full = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=len(kept), seed=3, n_jobs=1)
    np.testing.assert_array_equal(kept, full.null_scores)


def test_a_test_continued_from_first_draws_the_permutations_of_one_call(haxby_face_cat, monkeypatch):
    whole = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=9, seed=4, n_jobs=1)
    head = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=4, seed=4, n_jobs=1)
    tail = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=5, seed=4, n_jobs=1, first=4)
    np.testing.assert_array_equal(np.concatenate([head.null_scores, tail.null_scores]), whole.null_scores)
    # With workers, batches reach on_null_scores in order too.
    monkeypatch.setattr(significance, "_WARMUP_SECONDS", 0.0)
    monkeypatch.setattr(significance, "_MIN_PARALLEL_SECONDS", {"threading": 0.0, "loky": 0.0})
    monkeypatch.setattr(significance, "_BATCH_SECONDS", 0.0)
    handed = []
    permutation_test(haxby_face_cat, FACE_CAT, n_permutations=5, seed=4, n_jobs=2, first=4,
                     on_null_scores=lambda observed, scores: handed.extend(scores))
    np.testing.assert_array_equal(handed, tail.null_scores)
    with pytest.raises(DecodingInputError, match="'first'"):
        permutation_test(haxby_face_cat, FACE_CAT, n_permutations=5, first=-1)


def test_same_seed_same_null_and_seed_none_is_recorded(haxby_face_cat):
    first = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=4, seed=None, n_jobs=1)
    again = permutation_test(haxby_face_cat, FACE_CAT, n_permutations=4, seed=first.seed, n_jobs=1)
    assert isinstance(first.seed, int)
    np.testing.assert_array_equal(first.null_scores, again.null_scores)
    assert isinstance(first, PermutationResult) and first.elapsed_seconds > 0


# ---------------------------------------------------------------------------
# Dummy classifiers
# ---------------------------------------------------------------------------


def test_most_frequent_scores_the_majority_share_of_each_test_fold(haxby_face_cat):
    # Imbalance the classes: drop a third of the cat volumes of every run.
    labels, runs = haxby_face_cat.labels, haxby_face_cat.runs
    keep = np.ones(len(labels), dtype=bool)
    for run in np.unique(runs):
        cats = np.flatnonzero((runs == run) & (labels == "cat"))
        keep[cats[:3]] = False
    masked = _subset(haxby_face_cat, keep)
    scores = dummy_scores(masked, FACE_CAT)
    splits = make_splits(FACE_CAT, masked.labels, masked.runs)
    expected = [np.mean(masked.labels[test] == "face") for _, test in splits]
    np.testing.assert_allclose(scores["most_frequent"], expected)
    assert scores["most_frequent"] == pytest.approx(np.full(12, 9 / 15))


def test_stratified_dummy_is_near_half_on_balanced_classes(haxby_face_cat):
    scores = dummy_scores(haxby_face_cat, FACE_CAT, seed=0)
    assert set(scores) == {"most_frequent", "stratified"}
    assert scores["stratified"].shape == (12,)
    assert abs(scores["stratified"].mean() - 0.5) < 0.1
    # Each fold guesses afresh: the folds do not all score the same.
    assert len(np.unique(scores["stratified"])) > 1
    np.testing.assert_array_equal(scores["most_frequent"], np.full(12, 0.5))
    again = dummy_scores(haxby_face_cat, FACE_CAT, seed=0)
    np.testing.assert_array_equal(scores["stratified"], again["stratified"])


def test_dummy_scores_follow_the_scheme_and_scoring(haxby_vt):
    config = FACE_CAT.replace(cv="kfold", n_folds=4, scoring="roc_auc")
    scores = dummy_scores(haxby_vt, config)  # selects face and cat itself
    assert scores["most_frequent"].shape == (4,)
    np.testing.assert_array_equal(scores["most_frequent"], np.full(4, 0.5))
    holdout = dummy_scores(haxby_vt, FACE_CAT.replace(cv="holdout", holdout_size=40))
    assert holdout["stratified"].shape == (1,)


# ---------------------------------------------------------------------------
# Errors the user can fix
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "100", significance.MAX_PERMUTATIONS + 1])
def test_bad_number_of_permutations(haxby_face_cat, bad):
    with pytest.raises(DecodingInputError, match="'n_permutations' must be an integer in the range"):
        permutation_test(haxby_face_cat, FACE_CAT, n_permutations=bad)


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, "0"])
def test_bad_seed(haxby_face_cat, bad):
    with pytest.raises(DecodingInputError, match="'seed' must be an integer"):
        permutation_test(haxby_face_cat, FACE_CAT, n_permutations=2, seed=bad)


def test_bad_n_jobs(haxby_face_cat):
    with pytest.raises(DecodingInputError, match="'n_jobs' must be None"):
        permutation_test(haxby_face_cat, FACE_CAT, n_permutations=2, n_jobs=0)


def test_absent_condition(haxby_vt):
    with pytest.raises(DecodingInputError, match=r"condition\(s\) \['dog'\] do not occur"):
        permutation_test(haxby_vt, DecodingConfig(conditions=("face", "dog")), n_permutations=2)
    with pytest.raises(DecodingInputError, match=r"condition\(s\) \['dog'\] do not occur"):
        dummy_scores(haxby_vt, DecodingConfig(conditions=("face", "dog")))


def test_non_finite_data(haxby_face_cat):
    X = haxby_face_cat.X.copy()
    X[3, 7] = np.nan
    broken = MaskedData(X=X, labels=haxby_face_cat.labels, runs=haxby_face_cat.runs,
                        volume_index=haxby_face_cat.volume_index, mask_img=haxby_face_cat.mask_img,
                        mask_name="vt")
    with pytest.raises(DecodingInputError, match="NaN or infinite"):
        permutation_test(broken, FACE_CAT, n_permutations=2)


def test_wrong_argument_types(haxby_face_cat):
    with pytest.raises(DecodingInputError, match="Expected the masked data"):
        permutation_test(haxby_face_cat.X, FACE_CAT, n_permutations=2)
    with pytest.raises(DecodingInputError, match="Expected a DecodingConfig"):
        dummy_scores(haxby_face_cat, {"cv": "kfold"})


def test_leave_one_run_out_without_runs(haxby_face_cat):
    no_runs = MaskedData(X=haxby_face_cat.X, labels=haxby_face_cat.labels, runs=None,
                         volume_index=haxby_face_cat.volume_index, mask_img=haxby_face_cat.mask_img,
                         mask_name="vt")
    with pytest.raises(DecodingInputError, match="Leave-one-run-out needs at least two runs"):
        permutation_test(no_runs, FACE_CAT, n_permutations=2)


def _ordered_toy(labels) -> MaskedData:
    """Random data whose samples are sorted by condition (a design that breaks k-fold)."""
    labels = np.asarray(labels)
    X = np.random.default_rng(0).normal(size=(len(labels), 6)).astype(np.float32)
    mask = nib.Nifti1Image(np.ones((6, 1, 1), dtype=np.uint8), np.eye(4))
    return MaskedData(X=X, labels=labels, runs=None, volume_index=np.arange(len(labels)),
                      mask_img=mask, mask_name="toy")


def test_roc_auc_with_a_single_condition_in_a_test_fold():
    toy = _ordered_toy(["a"] * 10 + ["b"] * 10)
    config = DecodingConfig(conditions=("a", "b"), cv="holdout", holdout_size=5, scoring="roc_auc")
    with pytest.raises(DecodingInputError, match="ROC AUC needs every condition in every test fold"):
        permutation_test(toy, config, n_permutations=2)
    # Accuracy works on the same design.
    assert permutation_test(toy, config.replace(scoring="accuracy"), n_permutations=2).n_done == 2


def test_roc_auc_with_a_condition_missing_from_a_training_fold():
    toy = _ordered_toy(["a"] * 8 + ["b"] * 8 + ["c"] * 8)
    config = DecodingConfig(conditions=("a", "b", "c"), cv="kfold", n_folds=3, scoring="roc_auc")
    with pytest.raises(DecodingInputError, match="needs every condition in every training fold"):
        dummy_scores(toy, config)


def test_mask_without_voxels():
    toy = _ordered_toy(["a"] * 10 + ["b"] * 10)
    empty = MaskedData(X=toy.X[:, :0], labels=toy.labels, runs=None, volume_index=toy.volume_index,
                       mask_img=toy.mask_img, mask_name="toy")
    with pytest.raises(DecodingInputError, match="The mask selects no voxel"):
        permutation_test(empty, DecodingConfig(conditions=("a", "b"), cv="kfold"), n_permutations=2)
