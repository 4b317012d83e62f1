"""A gate on heavy work: at most N jobs at once, the others queue in order.

On a shared server (Streamlit Community Cloud: 690 MB to 2.7 GB for every visitor
together) ten people pressing "Run" at the same moment must not run ten maskings
side by side and exhaust memory. The app makes one `JobGate` for the whole process
(``ui.cache.job_gate``) and runs every heavy step (masking, decoding, permutation
tests, sweeps) through it (`JobGate.run` or the `JobGate.slot` context manager): at
most `max_jobs` run at once, the others wait first-in first-out, and while they wait
the caller's ``on_wait(position)`` is told their place in the queue so the page can
say "You are number 2 in the queue".

The number of slots comes from the memory budget (`default_max_jobs`): what the
host may use (``$DECODING_LAB_HOST_MEMORY_BYTES``, default 690 MB) minus what the
idle app takes, divided by what one job may take at most, and never more than the
number of CPU cores (decoding is CPU-bound: more jobs than cores only adds memory).
``$DECODING_LAB_MAX_JOBS`` overrides it.

A job that raises releases its slot (the exception propagates unchanged); a
caller that waits longer than ``timeout`` seconds gets a `ServerBusyError` and
leaves the queue; so does a caller whose ``on_wait`` raises (a Streamlit rerun or a
closed tab stops the script with an exception inside ``on_wait``).

This module never imports streamlit.

Examples
--------
>>> gate = JobGate(max_jobs=1)
>>> gate.run(lambda: 6 * 7)
42
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from decoding_core import environment
from decoding_core.errors import DecodingInputError

#: Environment variable fixing the number of concurrent heavy jobs.
MAX_JOBS_ENV = environment.MAX_JOBS
#: Environment variable giving the memory of the host (bytes; K, M, G suffixes allowed).
HOST_MEMORY_ENV = environment.HOST_MEMORY_BYTES
#: Memory of the smallest Streamlit Community Cloud host (the default of ``$DECODING_LAB_HOST_MEMORY_BYTES``).
DEFAULT_HOST_MEMORY_BYTES = environment.VARIABLES[HOST_MEMORY_ENV].default
#: Resident memory of the idle app: Streamlit, numpy, pandas, scikit-learn, nilearn,
#: plotly, the built-in data set and its masked matrix (measured: ~260 MB).
APP_BASELINE_BYTES = 300 * 1000**2
#: Peak extra memory of one heavy job: streaming a Haxby-size image in 16 MB chunks
#: (~100 MB), the masked matrix and its standardised copy, and the classifier.
JOB_MEMORY_BYTES = 150 * 1000**2
#: Longest wait in the queue before giving up (seconds).
DEFAULT_TIMEOUT_SECONDS = 600.0
#: How often a waiting caller wakes up to check the queue and its deadline (seconds).
WAIT_POLL_SECONDS = 0.5
#: A waiting caller's ``on_wait`` runs when its position changes and at least this often
#: (seconds), so a page notices a closed tab or a rerun and leaves the queue.
HEARTBEAT_SECONDS = 2.0


class ServerBusyError(DecodingInputError):
    """The server was too busy: the job waited longer than its timeout in the queue."""


def host_memory_bytes() -> int:
    """The host memory the app may use: ``$DECODING_LAB_HOST_MEMORY_BYTES`` or 690 MB."""
    return environment.read(HOST_MEMORY_ENV)


def default_max_jobs() -> int:
    """Number of heavy jobs allowed at once.

    ``$DECODING_LAB_MAX_JOBS`` when set; else
    ``(host memory - APP_BASELINE_BYTES) // JOB_MEMORY_BYTES``, at least 1 and at
    most the number of CPU cores.

    Raises
    ------
    DecodingInputError
        When ``$DECODING_LAB_MAX_JOBS`` is not a positive integer.
    """
    configured = environment.read(MAX_JOBS_ENV)
    if configured is not None:
        return configured
    by_memory = (host_memory_bytes() - APP_BASELINE_BYTES) // JOB_MEMORY_BYTES
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return int(max(1, min(by_memory, cores)))


class JobGate:
    """At most ``max_jobs`` jobs at once; the others wait in first-in first-out order.

    Parameters
    ----------
    max_jobs : int
        Number of jobs that may run at the same time (at least 1).

    Attributes
    ----------
    max_jobs : int
    """

    def __init__(self, max_jobs: int):
        if isinstance(max_jobs, bool) or not isinstance(max_jobs, int) or max_jobs < 1:
            raise ValueError(f"'max_jobs' must be a positive integer. Got {max_jobs!r}.")
        self.max_jobs = max_jobs
        self._condition = threading.Condition()
        self._queue: deque[int] = deque()
        self._running = 0
        self._tickets = itertools.count()
        self._completed = 0
        # Slots held by the current thread: a job that calls another gated step (decoding
        # calls masking) runs it in its own slot instead of queueing behind itself.
        self._held = threading.local()

    # -- observation -------------------------------------------------------------------
    def holds_slot(self) -> bool:
        """Whether the calling thread is running a job of this gate (holds a slot)."""
        return getattr(self._held, "depth", 0) > 0

    @property
    def running(self) -> int:
        """Number of jobs running now."""
        with self._condition:
            return self._running

    @property
    def waiting(self) -> int:
        """Number of callers waiting in the queue."""
        with self._condition:
            return len(self._queue)

    @property
    def completed(self) -> int:
        """Number of jobs finished (successfully or not) since the gate was made."""
        with self._condition:
            return self._completed

    # -- admission -----------------------------------------------------------------------
    def _admissible(self, ticket: int) -> bool:
        return self._queue and self._queue[0] == ticket and self._running < self.max_jobs

    def _acquire(self, on_wait: Callable[[int], None] | None, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + float(timeout)
        with self._condition:
            ticket = next(self._tickets)
            self._queue.append(ticket)
            try:
                last_position, last_call = None, 0.0
                while not self._admissible(ticket):
                    position = self._queue.index(ticket) + 1
                    now = time.monotonic()
                    if on_wait is not None and (position != last_position or now - last_call >= HEARTBEAT_SECONDS):
                        last_position, last_call = position, now
                        # Called without the lock: a slow or raising callback must not
                        # block the other callers.
                        self._condition.release()
                        try:
                            on_wait(position)
                        finally:
                            self._condition.acquire()
                        continue
                    remaining = None if deadline is None else deadline - now
                    if remaining is not None and remaining <= 0:
                        raise ServerBusyError(
                            f"The server is busy: your job waited {float(timeout):.0f} s in the queue "
                            f"(position {position}) without starting. Try again in a few minutes."
                        )
                    wait_for = WAIT_POLL_SECONDS if remaining is None else min(WAIT_POLL_SECONDS, remaining)
                    self._condition.wait(wait_for)
                self._queue.popleft()
                self._running += 1
            except BaseException:
                # Timeout, or on_wait raised (rerun, closed tab): leave the queue.
                if ticket in self._queue:
                    self._queue.remove(ticket)
                raise
            finally:
                # Whoever is now first may be admissible.
                self._condition.notify_all()

    def _release(self) -> None:
        with self._condition:
            self._running -= 1
            self._completed += 1
            self._condition.notify_all()

    @contextmanager
    def slot(self, *, on_wait: Callable[[int], None] | None = None,
             timeout: float | None = DEFAULT_TIMEOUT_SECONDS) -> Iterator[None]:
        """Hold one slot for the ``with`` block (waiting in the queue first if needed).

        Parameters
        ----------
        on_wait : callable, optional
            ``on_wait(position)`` while waiting, with 1 for the head of the queue; called
            when the position changes and every `HEARTBEAT_SECONDS`. An exception from it removes the caller from the
            queue and propagates.
        timeout : float or None
            Longest wait in seconds; None waits for ever.

        Notes
        -----
        Re-entrant per thread: inside a slot, a nested `slot` or `run` of the same gate
        runs at once in the slot already held.

        Raises
        ------
        ServerBusyError
            When the wait exceeds ``timeout``.
        """
        depth = getattr(self._held, "depth", 0)
        if depth:  # nested in a job of this thread: already holds a slot
            self._held.depth = depth + 1
            try:
                yield
            finally:
                self._held.depth = depth
            return
        self._acquire(on_wait, timeout)
        self._held.depth = 1
        try:
            yield
        finally:
            self._held.depth = 0
            self._release()

    def run(self, fn: Callable, *args, on_wait: Callable[[int], None] | None = None,
            timeout: float | None = DEFAULT_TIMEOUT_SECONDS, **kwargs):
        """Run ``fn(*args, **kwargs)`` in a slot and return its value (see `slot`)."""
        with self.slot(on_wait=on_wait, timeout=timeout):
            return fn(*args, **kwargs)
