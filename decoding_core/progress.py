"""Progress reports: the callback type every long step takes, and how steps share one bar.

A long step (masking, decoding, a permutation test, a sweep) takes an optional
``progress(fraction, message)`` callback, with ``fraction`` from 0 to 1. A pipeline
of several steps gives each step a `share` of its own callback; `timed` adds the
time elapsed and an estimate of the time left to each message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

ProgressCallback = Callable[[float, str], None]


def share(progress: ProgressCallback | None, start: float, stop: float,
          prefix: str = "") -> ProgressCallback | None:
    """A callback that maps a step's 0..1 onto ``start..stop`` of ``progress``.

    Parameters
    ----------
    progress : callable or None
        The whole pipeline's ``progress(fraction, message)``; None gives None.
    start, stop : float
        The part of the whole that this step covers, 0 <= start <= stop <= 1.
    prefix : str, default=""
        Put before each of the step's messages (e.g. ``"C = 0.1 (2/6): "``).

    Returns
    -------
    callable or None

    Examples
    --------
    >>> seen = []
    >>> half = share(lambda f, m: seen.append((f, m)), 0.5, 1.0)
    >>> half(0.5, "fold 1")
    >>> seen
    [(0.75, 'fold 1')]
    """
    if progress is None:
        return None

    def step_progress(fraction: float, message: str = "") -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        progress(start + (stop - start) * fraction, f"{prefix}{message}")

    return step_progress


#: No estimate of the time left before this many seconds, nor before this fraction is done:
#: the first moments of a run (imports, the first fold) say little about the rest.
ESTIMATE_AFTER_SECONDS = 2.0
ESTIMATE_AFTER_FRACTION = 0.02


def format_duration(seconds: float) -> str:
    """``"8 s"``, ``"2 min 05 s"`` or ``"1 h 02 min"``: a duration as a person reads it.

    Examples
    --------
    >>> format_duration(8.4), format_duration(125), format_duration(3720)
    ('8 s', '2 min 05 s', '1 h 02 min')
    """
    seconds = int(round(max(float(seconds), 0.0)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _now() -> float:
    return time.monotonic()


def timed(progress: ProgressCallback | None, clock: Callable[[], float] | None = None,
          done_before: float = 0.0) -> ProgressCallback | None:
    """A callback that adds the time elapsed and an estimate of the time left to each message.

    The estimate assumes the rest goes at the pace so far: ``elapsed * (1 - f) / (f - d)``
    for a fraction ``f`` done, ``d`` of it before the clock started (a run continued from
    where it stopped); it is left out for the first `ESTIMATE_AFTER_SECONDS` and
    `ESTIMATE_AFTER_FRACTION` of new work, and once the work is done. The clock starts
    when `timed` is called.

    Parameters
    ----------
    progress : callable or None
        ``progress(fraction, message)``; None gives None.
    clock : callable or None
        Seconds (default: ``time.monotonic``), for tests.
    done_before : float, default=0.0
        The fraction already done when the clock starts.

    Returns
    -------
    callable or None

    Examples
    --------
    >>> now = [0.0]
    >>> seen = []
    >>> step = timed(lambda f, m: seen.append(m), clock=lambda: now[0])
    >>> now[0] = 10.0
    >>> step(0.25, "Fold 3 of 12")
    >>> seen
    ['Fold 3 of 12 (10 s elapsed, about 30 s left)']

    A run continued at half way: 10 s for the next quarter leaves about 10 s.

    >>> step = timed(lambda f, m: seen.append(m), clock=lambda: now[0], done_before=0.5)
    >>> now[0] = 20.0
    >>> step(0.75, "Permutation 750 of 1000")
    >>> seen[-1]
    'Permutation 750 of 1000 (10 s elapsed, about 10 s left)'
    """
    if progress is None:
        return None
    clock = clock if clock is not None else _now
    started = clock()

    def timed_progress(fraction: float, message: str = "") -> None:
        try:
            fraction = min(max(float(fraction), 0.0), 1.0)
        except (TypeError, ValueError):  # a bar must not break the work it follows
            fraction = 0.0
        elapsed = clock() - started
        times = f"{format_duration(elapsed)} elapsed"
        new_work = fraction - done_before
        if (0.0 < fraction < 1.0 and elapsed >= ESTIMATE_AFTER_SECONDS and new_work > 0.0
                and new_work >= ESTIMATE_AFTER_FRACTION):
            times += f", about {format_duration(elapsed * (1.0 - fraction) / new_work)} left"
        progress(fraction, f"{message} ({times})" if message else times.capitalize())

    return timed_progress
