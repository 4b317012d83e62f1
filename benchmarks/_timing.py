"""Timing helpers the benchmark scripts share."""

from __future__ import annotations

import time


def best_time(function, repeats: int):
    """The least time of ``repeats`` calls, and the last call's value.

    The machine is shared: the least time is the least disturbed one.
    """
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return min(times), value
