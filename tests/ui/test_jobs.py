"""The job gate: bounded concurrency, first-in first-out queue with positions, clean release."""

from __future__ import annotations

import threading
import time

import pytest

from decoding_core.errors import DecodingInputError
from ui import cache
from ui.server import jobs
from ui.server.jobs import JobGate, ServerBusyError


def start(gate: JobGate, name: str, release: threading.Event, log: list, positions: dict, **kwargs):
    def work():
        log.append(("start", name))
        release.wait(10)
        log.append(("end", name))
        return name

    def on_wait(position):
        positions.setdefault(name, []).append(position)

    results = {}

    def target():
        try:
            results["value"] = gate.run(work, on_wait=on_wait, **kwargs)
        except BaseException as err:  # kept for the test to inspect
            results["error"] = err

    thread = threading.Thread(target=target)
    thread.start()
    return thread, results


def wait_until(condition, seconds=10.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_at_most_max_jobs_run_and_the_rest_queue_in_order():
    gate = JobGate(max_jobs=2)
    log, positions = [], {}
    gates = {name: threading.Event() for name in "abcde"}
    threads = {}
    for name in "abcde":
        threads[name] = start(gate, name, gates[name], log, positions)
        wait_until(lambda: gate.running + gate.waiting == "abcde".index(name) + 1)
    assert gate.running == 2 and gate.waiting == 3
    assert [n for kind, n in log if kind == "start"] == ["a", "b"]
    # Queue positions as told to the waiting callers: c first, then d, then e.
    wait_until(lambda: positions.get("e") == [3])
    assert positions["c"][0] == 1 and positions["d"][0] == 2
    gates["b"].set()
    wait_until(lambda: ("start", "c") in log)
    # d moved up to the head of the queue and was told so.
    wait_until(lambda: positions["d"][-1] == 1)
    assert gate.running == 2
    for name in "acde":
        gates[name].set()
    for thread, _ in threads.values():
        thread.join(10)
    starts = [n for kind, n in log if kind == "start"]
    assert starts == list("abcde")
    assert all(result["value"] == name for name, (_, result) in threads.items())
    assert gate.running == 0 and gate.waiting == 0 and gate.completed == 5


def test_an_exception_propagates_and_releases_the_slot():
    gate = JobGate(max_jobs=1)

    def fail():
        raise DecodingInputError("bad input")

    with pytest.raises(DecodingInputError, match="bad input"):
        gate.run(fail)
    with pytest.raises(ZeroDivisionError):
        gate.run(lambda: 1 / 0)
    assert gate.running == 0
    assert gate.run(lambda: "still usable") == "still usable"


def test_a_wait_longer_than_the_timeout_gives_server_busy_and_leaves_the_queue():
    gate = JobGate(max_jobs=1)
    release = threading.Event()
    log, positions = [], {}
    holder, _ = start(gate, "holder", release, log, positions)
    wait_until(lambda: gate.running == 1)
    with pytest.raises(ServerBusyError, match=r"server is busy.*position 1"):
        gate.run(lambda: None, timeout=0.3)
    assert gate.waiting == 0
    assert isinstance(ServerBusyError("x"), DecodingInputError)
    release.set()
    holder.join(10)
    assert gate.run(lambda: 5) == 5


def test_a_raising_on_wait_removes_the_caller_from_the_queue():
    """A Streamlit rerun or a closed tab raises inside on_wait: the queue must not keep the ghost."""
    gate = JobGate(max_jobs=1)
    release = threading.Event()
    holder, _ = start(gate, "holder", release, [], {})
    wait_until(lambda: gate.running == 1)

    class StopScript(Exception):
        pass

    def on_wait(position):
        raise StopScript()

    with pytest.raises(StopScript):
        gate.run(lambda: None, on_wait=on_wait)
    assert gate.waiting == 0
    release.set()
    holder.join(10)
    assert gate.running == 0


def test_on_wait_is_called_again_while_waiting(monkeypatch):
    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.05)
    monkeypatch.setattr(jobs, "WAIT_POLL_SECONDS", 0.01)
    gate = JobGate(max_jobs=1)
    release = threading.Event()
    holder, _ = start(gate, "holder", release, [], {})
    wait_until(lambda: gate.running == 1)
    calls = []
    waiter_release = threading.Event()
    waiter, _ = start(gate, "waiter", waiter_release, [], {"waiter": calls})  # positions land in calls
    wait_until(lambda: len(calls) >= 3)
    assert set(calls) == {1}
    release.set()
    waiter_release.set()
    holder.join(10)
    waiter.join(10)
    assert gate.completed == 2


def test_slot_context_manager_and_the_apps_one_gate(monkeypatch):
    """The app makes one gate for the process (ui.cache.job_gate), sized from the environment."""
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "3")
    cache.job_gate.clear()
    try:
        gate = cache.job_gate()
        assert gate.max_jobs == 3 and cache.job_gate() is gate
        with gate.slot():
            assert gate.running == 1
        assert gate.running == 0
        assert gate.run(lambda x, y=1: x + y, 1, y=2) == 3
    finally:
        cache.job_gate.clear()


def test_default_slots_follow_the_memory_budget(monkeypatch):
    monkeypatch.delenv(jobs.MAX_JOBS_ENV, raising=False)
    monkeypatch.setenv(jobs.HOST_MEMORY_ENV, "690M")
    expected = max(1, min((690_000_000 - jobs.APP_BASELINE_BYTES) // jobs.JOB_MEMORY_BYTES,
                          len(__import__("os").sched_getaffinity(0))))
    assert jobs.default_max_jobs() == expected
    monkeypatch.setenv(jobs.HOST_MEMORY_ENV, "100M")  # less than the idle app: still one slot
    assert jobs.default_max_jobs() == 1
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "7")
    assert jobs.default_max_jobs() == 7
    for bad in ("0", "-2", "many"):
        monkeypatch.setenv(jobs.MAX_JOBS_ENV, bad)
        with pytest.raises(DecodingInputError, match="DECODING_LAB_MAX_JOBS must be a positive integer"):
            jobs.default_max_jobs()
    monkeypatch.delenv(jobs.MAX_JOBS_ENV)
    monkeypatch.setenv(jobs.HOST_MEMORY_ENV, "lots")
    with pytest.raises(DecodingInputError, match="DECODING_LAB_HOST_MEMORY_BYTES must be a positive"):
        jobs.default_max_jobs()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_gate_size_is_checked(bad):
    with pytest.raises(ValueError, match="'max_jobs' must be a positive integer"):
        JobGate(bad)


def test_nested_jobs_run_in_the_slot_already_held():
    """Decoding calls masking, both gated: with one slot, the inner step must not wait for the outer."""
    gate = JobGate(max_jobs=1)
    inner_waits = []

    def outer():
        return gate.run(lambda: "inner done", on_wait=inner_waits.append, timeout=1)

    assert gate.run(outer) == "inner done"
    assert inner_waits == [] and gate.running == 0 and gate.completed == 1


def test_holds_slot_is_true_only_inside_a_job_of_this_thread():
    gate = JobGate(1)
    assert not gate.holds_slot()
    assert gate.run(gate.holds_slot) is True
    with gate.slot():
        seen_elsewhere = []
        other = threading.Thread(target=lambda: seen_elsewhere.append(gate.holds_slot()))
        other.start()
        other.join(5)
        assert gate.holds_slot() and seen_elsewhere == [False]
    assert not gate.holds_slot()
