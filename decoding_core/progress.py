"""Progress reports: the callback type every long step takes, and how steps share one bar.

A long step (masking, decoding, a permutation test, a sweep) takes an optional
``progress(fraction, message)`` callback, with ``fraction`` from 0 to 1. A pipeline
of several steps gives each step a `share` of its own callback.
"""

from __future__ import annotations

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
