"""Permutation and sweep runs: one place that changes them (ui.runs)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.model_selection import LeaveOneGroupOut, permutation_test_score
from sklearn.svm import SVC

from decoding_core.config import DecodingConfig
from decoding_core.masking import MaskedData
from tests.ui.conftest import FACE_CAT
from ui import runs
from ui.runs import PermutationRun, SweepRun


def test_permutation_p_value_counts_ties_as_at_least_as_high():
    run = PermutationRun(key=("data", "config"), n_target=4)
    run.add_scores(0.8, [0.5, 0.8, 0.9, 0.6], "accuracy")
    assert run.p_value == pytest.approx((1 + 2) / (1 + 4))
    assert run.n_done == 4 and not run.running and not run.stopped_early


def test_permutation_run_stops_and_keeps_its_chunks():
    run = PermutationRun(key=(), n_target=100)
    run.add_scores(0.7, [0.5] * 50, "balanced_accuracy")
    assert run.running and run.n_done == 50 and run.scoring == "balanced_accuracy"
    run.stop()
    assert not run.running and run.stopped_early and run.n_done == 50
    done = PermutationRun(key=(), n_target=2)
    done.add_scores(0.7, [0.1, 0.2], "accuracy")
    done.stop()  # Stop after the end: not "stopped early"
    assert not done.stopped_early
    interrupted = PermutationRun(key=(), n_target=10)
    interrupted.interrupt()
    assert not interrupted.running and interrupted.stopped_early
    failed = PermutationRun(key=(), n_target=10)
    failed.fail()
    assert not failed.running and not failed.stopped_early


def _sweep(n_values: int) -> SweepRun:
    configs = [DecodingConfig(C=c) for c in (0.1, 1.0, 10.0)[:n_values]]
    return SweepRun(setting="C", values=[c.C for c in configs], configs=configs, base=DecodingConfig(),
                    dataset_digest="d", dataset_title="data")


def test_sweep_run_advances_records_failures_and_ends():
    sweep = _sweep(3)
    assert sweep.label(0) == "C = 0.1 (1/3)"
    sweep.add_result(SimpleNamespace(config=sweep.configs[0]), "id-1")
    sweep.add_failure(sweep.label(1), "too few runs")
    assert sweep.running and sweep.next_index == 2
    sweep.add_result(SimpleNamespace(config=sweep.configs[2]), None)
    assert not sweep.running and not sweep.stopped
    assert sweep.recorded_run_ids == ["id-1"] and sweep.failures == [("C = 1 (2/3)", "too few runs")]


def test_sweep_stop_only_stops_a_running_sweep():
    sweep = _sweep(2)
    sweep.stop()
    assert not sweep.running and sweep.stopped
    finished = _sweep(1)
    finished.add_result(SimpleNamespace(config=finished.configs[0]), "x")
    finished.stop()
    assert not finished.stopped


# -- a permutation test run through the driver, on the real face vs cat data ------------------------


@pytest.fixture
def driven(monkeypatch, face_cat):
    """`continue_permutations` on ``face_cat`` (no data set to mask), run in this thread."""
    monkeypatch.setattr(runs.analysis, "selected_masked", lambda dataset, config: face_cat)
    monkeypatch.setattr(runs, "run_heavy", lambda compute: compute())
    return face_cat


def sklearn_null(masked: MaskedData, n_permutations: int) -> np.ndarray:
    """The null scores of scikit-learn's permutation_test_score (seed 0) on the same data."""
    _, null, _ = permutation_test_score(
        SVC(kernel="linear"), np.asarray(masked.X, dtype=np.float64), masked.labels, groups=masked.runs,
        cv=LeaveOneGroupOut(), n_permutations=n_permutations, random_state=0)
    return null


class Interrupted(BaseException):
    """What Streamlit raises in the script thread when the user presses Stop (a BaseException)."""


def test_stop_inside_a_chunk_keeps_every_finished_permutation(driven):
    # Before: permutations were kept 50 at a time, so a Stop after 7 kept none.
    run = PermutationRun(key=(), n_target=100)

    def progress(fraction, message):
        if run.n_done >= 7:
            raise Interrupted  # Stop pressed while the chunk runs

    with pytest.raises(Interrupted):
        runs.continue_permutations(run, None, FACE_CAT, progress=progress)
    run.stop()  # the Stop button's callback, in the next script run
    # Progress is reported at most every 0.1 s: a few more may have finished before the Stop.
    assert 7 <= run.n_done < 100 and run.stopped_early and not run.running
    np.testing.assert_array_equal(run.null_scores, sklearn_null(driven, run.n_done))


def test_chunks_continue_one_stream_of_permutations(driven, monkeypatch):
    monkeypatch.setattr(runs, "PERMUTATION_CHUNK", 4)
    run = PermutationRun(key=(), n_target=10)
    runs.continue_permutations(run, None, FACE_CAT)
    assert run.n_done == 10 and not run.running and not run.stopped_early
    # The same null as one call, or as scikit-learn's permutation_test_score with random_state=0.
    np.testing.assert_array_equal(run.null_scores, sklearn_null(driven, 10))


def test_the_progress_bar_tells_the_time_elapsed_and_left(monkeypatch):
    from decoding_core import progress as core_progress
    from ui import feedback

    now = [0.0]
    monkeypatch.setattr(core_progress, "_now", lambda: now[0])
    shown = []
    bar = SimpleNamespace(progress=lambda fraction, text=None: shown.append((fraction, text)))
    progress = feedback.progress_bar_callback(bar)
    now[0] = 12.0
    progress(0.25, "Permutation 50 of 200")
    progress(0.25, "Permutation 50 of 200")  # nothing new: the browser is not sent it again
    assert shown == [(0.25, "Permutation 50 of 200 (12 s elapsed, about 36 s left)")]
