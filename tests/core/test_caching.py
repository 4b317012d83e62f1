"""The one bounded cache (decoding_core.caching)."""

from __future__ import annotations

import doctest
import threading
import time

import numpy as np
import pytest

from decoding_core import caching
from decoding_core.caching import BoundedCache, approx_nbytes


def test_docstring_examples():
    assert doctest.testmod(caching).failed == 0


def test_drops_the_least_recently_used_beyond_the_entry_bound():
    store = BoundedCache(max_entries=2)
    store.put("a", 1)
    store.put("b", 2)
    assert store.get("a") == 1  # "a" is now the most recent
    store.put("c", 3)
    assert "b" not in store and "a" in store and "c" in store
    assert len(store) == 2
    assert store.get("b") is None and store.get("b", "gone") == "gone"


def test_bytes_bound_refuses_or_keeps_an_oversized_value():
    refusing = BoundedCache(max_bytes=10_000)
    assert refusing.put("x", np.zeros(1000))  # 8,000 bytes
    assert refusing.put("y", np.zeros(500))  # 4,000 more: x goes
    assert refusing.keys() == ["y"] and refusing.nbytes == 4000
    assert not refusing.put("huge", np.zeros(100_000))  # larger than the bound: not kept, nothing dropped
    assert refusing.keys() == ["y"]
    keeping = BoundedCache(max_bytes=10_000, max_entries=3, keep_oversized=True)
    for key in "pqr":
        keeping.put(key, key)
    assert keeping.put("huge", np.zeros(100_000))  # kept, everything else dropped
    assert keeping.keys() == ["huge"] and keeping.nbytes == 800_000


def test_zero_bytes_keeps_nothing_that_holds_memory():
    cache = BoundedCache(max_bytes=0)
    assert not cache.put("a", np.zeros(3))
    assert len(cache) == 0


def test_insertion_order_update_pop_and_evict():
    cache = BoundedCache(max_entries=3, refresh_on_read=False)
    for key in "abc":
        cache.put(key, key.upper())
    cache.get("a")  # reading does not refresh: "a" stays the oldest
    assert cache.update("a", "A2") and not cache.update("zz", 1)
    assert cache.keys() == ["a", "b", "c"] and cache.values()[0] == "A2"
    cache.put("d", "D")
    assert cache.keys() == ["b", "c", "d"]
    assert cache.pop("c") == "C" and cache.pop("c", 0) == 0
    assert cache.evict_oldest() == 0 and cache.keys() == ["d"]  # no byte bound: sizes are 0
    cache.clear()
    assert len(cache) == 0 and cache.evict_oldest() == 0


def test_get_or_compute_computes_once_and_outside_the_lock():
    cache = BoundedCache(max_entries=4)
    calls = []
    assert cache.get_or_compute("k", lambda: calls.append(1) or "v") == "v"
    assert cache.get_or_compute("k", lambda: calls.append(1) or "w") == "v"
    assert calls == [1]

    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(5)  # held until the read below has returned
        return "slow"

    worker = threading.Thread(target=cache.get_or_compute, args=("s", slow))
    worker.start()
    started.wait(5)
    seen = []
    reader = threading.Thread(target=lambda: seen.append(cache.get("k")))
    reader.start()
    reader.join(5)
    assert seen == ["v"]  # the read returned while the computation was still running
    release.set()
    worker.join(5)
    assert cache.get("s") == "slow"


def test_threads_asking_for_the_same_key_share_one_computation():
    cache = BoundedCache(max_entries=4)
    calls = []
    release = threading.Event()

    def compute():
        calls.append(threading.get_ident())
        release.wait(5)  # held until every thread has asked
        return "value"

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("k", compute)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    while not calls:
        time.sleep(0.01)
    time.sleep(0.1)  # the other three are now waiting for the first one's value
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == ["value"] * 4
    assert len(calls) == 1


def test_a_caller_that_must_not_wait_computes_the_value_itself():
    cache = BoundedCache(max_entries=4)
    started, release = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(5)
        return "first"

    worker = threading.Thread(target=cache.get_or_compute, args=("k", slow))
    worker.start()
    started.wait(5)
    # Without waiting for the worker (which may be queued behind a resource this caller holds).
    assert cache.get_or_compute("k", lambda: "second", wait_for_others=False) == "second"
    release.set()
    worker.join(5)


def test_a_failed_computation_leaves_the_key_to_the_next_caller():
    cache = BoundedCache(max_entries=4)

    def fail():
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("k", fail)
    assert cache.get_or_compute("k", lambda: "second") == "second"


@pytest.mark.parametrize("bound", [-1, 1.5, True, "2"])
def test_bounds_are_checked(bound):
    with pytest.raises(ValueError, match="must be a non-negative integer or None"):
        BoundedCache(max_entries=bound)


def test_approx_nbytes_looks_into_containers_and_skips_memory_maps(tmp_path):
    class Holder:
        def __init__(self):
            self.array = np.zeros(10)
            self.items = {"a": np.zeros(5), "b": [np.zeros(2), b"1234"]}

    assert approx_nbytes(Holder()) == 80 + 40 + 16 + 4
    mapped = np.memmap(tmp_path / "m.dat", dtype=np.float64, mode="w+", shape=(100,))
    assert approx_nbytes(mapped[:50]) == 0
