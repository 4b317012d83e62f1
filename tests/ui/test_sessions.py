"""Per-session stores and the janitor that purges closed sessions within a bounded time."""

from __future__ import annotations

import time

import numpy as np
import pytest

from decoding_core.caching import approx_nbytes
from ui.server.sessions import SessionRegistry, SessionStore


def test_store_is_bounded_in_bytes_and_entries():
    store = SessionStore("a", max_bytes=10_000, max_entries=3)
    store.put("x", np.zeros(1000))  # 8,000 bytes
    store.put("y", np.zeros(500))  # 4,000 bytes: x goes
    assert "x" not in store and "y" in store
    for key in "pqr":
        store.put(key, key)
    assert len(store) == 3 and "y" not in store
    store.put("huge", np.zeros(100_000))  # larger than the bound alone: kept, the rest dropped
    assert store.keys() == ["huge"]
    assert store.nbytes == 800_000


def test_get_or_compute_and_least_recently_used():
    store = SessionStore("a", max_entries=2)
    calls = []
    assert store.get_or_compute("k", lambda: calls.append(1) or "v") == "v"
    assert store.get_or_compute("k", lambda: calls.append(1) or "w") == "v"
    assert calls == [1]
    store.put("other", 1)
    store.get("k")  # k is now the most recent
    store.put("third", 2)
    assert "k" in store and "other" not in store


def test_approx_nbytes_looks_into_containers():
    class Holder:
        def __init__(self):
            self.X = np.zeros((10, 10), np.float32)
            self.extra = {"w": np.zeros(5)}

    assert approx_nbytes(Holder()) == 400 + 40
    assert approx_nbytes([np.zeros(3), (np.zeros(2),)]) == 40
    assert approx_nbytes("text") == 0


def test_sessions_are_separate():
    registry = SessionRegistry(grace_seconds=60, sweep_seconds=60)
    a, b = registry.open("tokenA"), registry.open("tokenB")
    a.put("upload", b"secret of A")
    assert b.get("upload") is None
    assert registry.open("tokenA") is a


def test_sweep_purges_closed_sessions_after_the_grace_period():
    alive = {"sid-a": True, "sid-b": False}
    expired = []
    registry = SessionRegistry(grace_seconds=5, sweep_seconds=60, is_alive=lambda sid: alive[sid],
                               on_expire=lambda token, sid: expired.append((token, sid)))
    a = registry.open("A", session_id="sid-a")
    b = registry.open("B", session_id="sid-b")
    cleaned = []
    b.add_cleanup(lambda: cleaned.append("folder of B"))
    b.add_cleanup(lambda: 1 / 0)  # a failing cleanup does not stop the purge
    b.put("matrix", np.zeros(10))
    now = b.last_seen
    assert registry.sweep(now=now + 1) == []  # within the grace period
    assert registry.sweep(now=now + 10) == ["B"]  # closed and past the grace period
    assert cleaned == ["folder of B"] and expired == [("B", "sid-b")]
    assert b.purged and len(b) == 0 and registry.get("B") is None
    # A is connected: never purged, however long since its last run.
    assert registry.sweep(now=now + 10_000) == [] and registry.get("A") is a
    with pytest.raises(RuntimeError, match="purged"):
        b.put("again", 1)
    assert registry.open("B") is not b  # a returning token gets a fresh, empty store


def test_janitor_thread_purges_within_the_bound():
    registry = SessionRegistry(grace_seconds=0.2, sweep_seconds=0.1, is_alive=lambda sid: False)
    store = registry.open("T", session_id="gone")
    store.put("result", np.zeros(100))
    registry.start_janitor()
    registry.start_janitor()  # idempotent
    try:
        deadline = time.monotonic() + 10
        while registry.get("T") is not None:
            assert time.monotonic() < deadline, "not purged"
            time.sleep(0.02)
    finally:
        registry.stop_janitor()
    assert store.purged
    assert registry.purge_bound_seconds == pytest.approx(0.3)


def test_settings_from_the_environment(monkeypatch):
    monkeypatch.setenv("DECODING_LAB_SESSION_GRACE_SECONDS", "3")
    monkeypatch.setenv("DECODING_LAB_SESSION_SWEEP_SECONDS", "1.5")
    registry = SessionRegistry()
    assert (registry.grace_seconds, registry.sweep_seconds) == (3.0, 1.5)
    monkeypatch.setenv("DECODING_LAB_SESSION_GRACE_SECONDS", "soon")
    with pytest.raises(ValueError, match="DECODING_LAB_SESSION_GRACE_SECONDS must be a number"):
        SessionRegistry()


def test_on_create_runs_once_per_new_store():
    made = []
    registry = SessionRegistry(grace_seconds=0, sweep_seconds=60, on_create=made.append)
    first = registry.open("X")
    assert registry.open("X") is first and made == [first]
    registry.purge("X")
    second = registry.open("X")
    assert made == [first, second]


def test_all_sessions_together_are_bounded_oldest_sessions_first():
    registry = SessionRegistry(grace_seconds=60, sweep_seconds=60, total_max_bytes=25_000)
    old = registry.open("old")
    old.put("m1", np.zeros(1000))  # 8,000 bytes each
    old.put("m2", np.zeros(1000))
    new = registry.open("new")
    new.put("m1", np.zeros(1000))
    assert registry.nbytes == 24_000
    new.put("m2", np.zeros(1000))  # over the bound: the least recently seen session gives way
    assert registry.nbytes <= 25_000
    assert len(old) == 1 and len(new) == 2
    assert "m2" in old  # its most recent object stays longest
