"""Tests of decoding_core.cluster: the same results here and on a real Dask cluster.

The cluster is a `distributed.LocalCluster` of two worker processes on the loopback,
started by the test session (``dask_scheduler`` in tests/core/conftest.py; it never
skips: `distributed` is a requirement). Starting it takes seconds on a loaded machine,
so the tests that use it are marked slow.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

from decoding_core import cluster, masking, significance
from decoding_core.cluster import ClusterError, TaskRun, check_scheduler_address, chunk_bounds, run_tasks
from decoding_core.config import DecodingConfig
from decoding_core.datasets import load_files, load_simulated
from decoding_core.errors import DecodingInputError
from decoding_core.sweeps import run_sweep

FACE_CAT = DecodingConfig(conditions=("face", "cat"), mask_name="uploaded")


# ---------------------------------------------------------------------------
# Task functions the workers import by name (this module is importable there)
# ---------------------------------------------------------------------------


def _offset_square(offset: int, value: int) -> int:
    return offset + value * value


def _slow_square(value: int) -> int:
    time.sleep(1.0)
    return value * value


def _die(value: int) -> int:
    """Kill the worker process running this task, every time (a worker that keeps crashing)."""
    os._exit(1)


def _bad_input(value: int) -> int:
    raise DecodingInputError(f"task {value} got bad input")


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def haxby_vt_masked(haxby_vt_dir):
    """Real subject-1 VT data, masked and z-scored as the app does."""
    dataset = load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                         mask=haxby_vt_dir / "mask_vt.nii.gz")
    return masking.mask_dataset(dataset, "uploaded")


def _worker_pids(address: str) -> list[int]:
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=120)
        return sorted(client.run(os.getpid).values())


# ---------------------------------------------------------------------------
# Without a cluster
# ---------------------------------------------------------------------------


def test_local_run_keeps_the_order_and_reports_progress():
    seen = []
    run = run_tasks(_offset_square, [3, 1, 2], shared=(100,), progress=lambda f, m: seen.append((f, m)))
    assert run == TaskRun((109, 101, 104), 3, False, cluster.LOCAL, 1, run.elapsed_seconds)
    assert run.complete
    assert [f for f, _ in seen] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert seen[-1][1] == "3 of 3 tasks done"


def test_local_run_stops_between_tasks_and_says_so():
    calls = []
    run = run_tasks(_offset_square, [1, 2, 3, 4], shared=(0,), should_stop=lambda: len(calls) >= 2,
                    progress=lambda f, m: calls.append(f))
    assert run.results == (1, 4)
    assert run.stopped_early and not run.complete


@pytest.mark.parametrize("address", ["", "127.0.0.1:8786", "http://127.0.0.1:8786", "tcp://:8786",
                                     "tcp://127.0.0.1:99999", "tcp://127.0.0.1", None, 8786])
def test_bad_scheduler_addresses_are_refused_with_the_expected_form(address):
    with pytest.raises(DecodingInputError, match=r"tcp://HOST:PORT"):
        check_scheduler_address(address)


def test_good_scheduler_addresses_are_accepted():
    assert check_scheduler_address(" tcp://127.0.0.1:8786\n") == "tcp://127.0.0.1:8786"
    assert check_scheduler_address("tls://scheduler.lab.example:8786") == "tls://scheduler.lab.example:8786"


def test_chunks_cover_every_item_once_in_order():
    for n_items in (1, 7, 10, 1000):
        for n_chunks in (1, 3, 64):
            bounds = chunk_bounds(n_items, n_chunks)
            assert bounds[0][0] == 0 and bounds[-1][1] == n_items
            assert all(stop == next_start for (_, stop), (next_start, _) in zip(bounds, bounds[1:]))
            assert all(stop > start for start, stop in bounds)


def test_unreachable_scheduler_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_SECONDS", 2)
    with pytest.raises(ClusterError, match=r"Cannot reach the Dask scheduler at tcp://127\.0\.0\.1:9.*dask scheduler"):
        run_tasks(_offset_square, [1], shared=(0,), scheduler="tcp://127.0.0.1:9")


# ---------------------------------------------------------------------------
# On a LocalCluster of two worker processes
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_cluster_run_equals_the_local_run(dask_scheduler):
    tasks = list(range(12))
    local = run_tasks(_offset_square, tasks, shared=(5,))
    remote = run_tasks(_offset_square, tasks, shared=(5,), scheduler=dask_scheduler)
    assert remote.results == local.results
    assert remote.where == dask_scheduler and remote.n_workers == 2 and not remote.stopped_early


@pytest.mark.slow
def test_a_task_error_reaches_the_caller_as_itself(dask_scheduler):
    with pytest.raises(DecodingInputError, match="task 1 got bad input"):
        run_tasks(_bad_input, [1], scheduler=dask_scheduler, retries=0)


@pytest.mark.slow
def test_permutation_test_on_the_cluster_equals_the_local_run(dask_scheduler, haxby_vt_masked):
    local = significance.permutation_test(haxby_vt_masked, FACE_CAT, n_permutations=37, seed=11)
    remote = significance.permutation_test(haxby_vt_masked, FACE_CAT, n_permutations=37, seed=11,
                                           scheduler=dask_scheduler)
    assert remote.n_done == 37 and not remote.stopped_early
    np.testing.assert_array_equal(remote.null_scores, local.null_scores)
    assert remote.p_value == local.p_value and remote.observed_score == local.observed_score


@pytest.mark.slow
def test_sweep_on_the_cluster_equals_the_local_run(dask_scheduler):
    dataset = load_simulated(seed=0)
    base = DecodingConfig()
    local = run_sweep(dataset, base, "C", [0.01, 1.0, 100.0])
    remote = run_sweep(dataset, base, "C", [0.01, 1.0, 100.0], scheduler=dask_scheduler)
    assert [r.config for r in remote] == [r.config for r in local]
    for ours, theirs in zip(remote, local):
        np.testing.assert_array_equal(ours.fold_scores, theirs.fold_scores)
        np.testing.assert_array_equal(ours.weights, theirs.weights)
        np.testing.assert_array_equal(ours.weight_img.get_fdata(), theirs.weight_img.get_fdata())
        assert ours.predictions.equals(theirs.predictions)


@pytest.mark.slow
def test_stop_on_the_cluster_returns_the_first_tasks_and_says_so(dask_scheduler):
    done = []
    run = run_tasks(_slow_square, list(range(8)), scheduler=dask_scheduler,
                    progress=lambda f, m: done.append(f), should_stop=lambda: len(done) >= 1)
    assert run.stopped_early and not run.complete
    assert run.results == tuple(v * v for v in range(len(run.results)))


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_replaced_and_the_results_are_complete(dask_scheduler):
    """Kill one worker process while tasks run on both: its task runs again, nothing is missing."""
    victim = _worker_pids(dask_scheduler)[0]
    killed = threading.Event()

    def kill_once(fraction, message):
        # After the first task is back, the others are queued or running on both workers.
        if not killed.is_set():
            killed.set()
            os.kill(victim, 9)

    run = run_tasks(_slow_square, list(range(8)), scheduler=dask_scheduler, progress=kill_once)
    assert killed.is_set() and victim not in _worker_pids(dask_scheduler)
    assert run.complete and run.results == tuple(v * v for v in range(8))


@pytest.mark.slow
def test_searchlight_on_the_cluster_equals_the_local_run(dask_scheduler, haxby_vt_masked):
    """Chunks of spheres go through `chunk_mapper`, the searchlight's ``map_chunks`` hook."""
    from decoding_core.searchlight import searchlight

    config = FACE_CAT.replace(cv="kfold", n_folds=3)  # 577 spheres: fewer folds keep the test short
    local = searchlight(haxby_vt_masked, config, 5.6)
    remote = searchlight(haxby_vt_masked, config, 5.6, map_chunks=cluster.chunk_mapper(dask_scheduler))
    assert not remote.partial and remote.n_done == local.n_spheres == 577
    np.testing.assert_array_equal(remote.scores, local.scores)


@pytest.mark.slow
def test_stopping_a_searchlight_on_the_cluster_gives_a_map_marked_partial(dask_scheduler, haxby_vt_masked):
    from decoding_core.searchlight import searchlight

    config = FACE_CAT.replace(cv="kfold", n_folds=3)
    result = searchlight(haxby_vt_masked, config, 5.6, map_chunks=cluster.chunk_mapper(dask_scheduler),
                         should_stop=lambda: True)
    assert result.partial and 0 < result.n_done < result.n_spheres
    assert np.isnan(result.scores).sum() == result.n_spheres - result.n_done


@pytest.mark.slow
def test_a_task_whose_workers_keep_dying_is_reported_never_partial():
    """On a cluster of its own (the shared one keeps its workers): no death forgiven, one worker."""
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with LocalCluster(n_workers=1, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=None) as own_cluster:
            with pytest.raises(ClusterError, match=r"lost the workers running one of the tasks too many "
                                                   r"times.*nothing is returned"):
                run_tasks(_die, [1, 2], shared=(), scheduler=own_cluster.scheduler_address)
