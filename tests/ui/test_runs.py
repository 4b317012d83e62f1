"""Permutation and sweep runs: one place that changes them (ui.runs)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from decoding_core.config import DecodingConfig
from ui.runs import PermutationRun, SweepRun


def test_permutation_p_value_counts_ties_as_at_least_as_high():
    run = PermutationRun(key=("data", "config"), n_target=4)
    run.add_chunk(0.8, [0.5, 0.8, 0.9, 0.6], "accuracy")
    assert run.p_value == pytest.approx((1 + 2) / (1 + 4))
    assert run.n_done == 4 and not run.running and not run.stopped_early


def test_permutation_run_stops_and_keeps_its_chunks():
    run = PermutationRun(key=(), n_target=100)
    run.add_chunk(0.7, [0.5] * 50, "balanced_accuracy")
    assert run.running and run.n_done == 50 and run.scoring == "balanced_accuracy"
    run.stop()
    assert not run.running and run.stopped_early and run.n_done == 50
    done = PermutationRun(key=(), n_target=2)
    done.add_chunk(0.7, [0.1, 0.2], "accuracy")
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
