"""Independent tasks, run here or on a Dask cluster, with the same results in the same order.

Heavy work that splits into independent pieces (chunks of permutations, the runs of a
sweep, the subjects of a group, chunks of searchlight spheres) goes through `run_tasks`:

* without a scheduler address the tasks run one after the other in this process;
* with one (``tcp://HOST:PORT``, from ``--scheduler`` or ``DECODING_LAB_SCHEDULER``) they
  run on that ``dask.distributed`` cluster: Dask's own `distributed.Client`, the shared
  inputs scattered once to the workers, one future per task with ``retries``.

Either way the results come back in the order of the tasks, and every task is a pure
function of its inputs (seeds included), so the two runs give identical numbers.

What crosses the network: the task's function (by its name: the workers need this
package installed), the shared inputs and the tasks, that is masked matrices
(`decoding_core.masking.MaskedData`), configurations, seeds and random states, and
the results. Never a path or a file of the user's: callers mask the data here first.

A worker lost mid-job is Dask's to handle: its tasks are run again on the others (up to
Dask's ``distributed.scheduler.allowed-failures``, 3 by default). When that is not
enough, or the scheduler goes away, `ClusterError` says so: a cluster run either returns
every task's result or stops with an error, never a silent part (a Stop the user asked
for returns the finished first tasks, and says it stopped).

Examples
--------
>>> run = run_tasks(pow, [2, 3, 4], shared=(10,))
>>> run.results, run.where
((100, 1000, 10000), 'local')
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from decoding_core import environment
from decoding_core.errors import DecodingInputError
from decoding_core.progress import ProgressCallback

#: Where a run with no scheduler runs (`TaskRun.where`).
LOCAL = "local"

#: Times Dask runs a task again after an exception in it (a worker's death is counted
#: separately, by the scheduler's ``allowed-failures``).
DEFAULT_RETRIES = 2

#: Seconds to wait for the scheduler to answer when connecting.
CONNECT_TIMEOUT_SECONDS = 10

#: How often a cluster run looks at the Stop request while it waits for results.
_POLL_SECONDS = 0.1


class ClusterError(DecodingInputError):
    """The Dask cluster could not run the job: unreachable, or it lost a task's workers too often.

    A `DecodingInputError`, so the page shows it and the command line exits 2: what to
    do is on the user's side (start or fix the scheduler and workers, or run locally).
    """


def check_scheduler_address(address) -> str:
    """``address`` as a Dask scheduler address ``tcp://HOST:PORT`` (or ``tls://``), checked.

    Parameters
    ----------
    address : str

    Returns
    -------
    str
        The address without surrounding spaces.

    Raises
    ------
    DecodingInputError
        Not of the form ``tcp://HOST:PORT`` with a port from 1 to 65535.

    Examples
    --------
    >>> check_scheduler_address(" tcp://127.0.0.1:8786 ")
    'tcp://127.0.0.1:8786'
    """
    return environment.scheduler_address(address)


@dataclass(frozen=True)
class TaskRun:
    """The results of `run_tasks`.

    Attributes
    ----------
    results : tuple
        One result per task, in the order of the tasks; only the first ones when
        ``stopped_early``.
    n_tasks : int
        Number of tasks asked for.
    stopped_early : bool
        True when ``should_stop`` ended the run before every task was done.
    where : str
        ``"local"``, or the scheduler's address.
    n_workers : int
        Workers that could run the tasks (1 locally).
    elapsed_seconds : float
    """

    results: tuple
    n_tasks: int
    stopped_early: bool
    where: str
    n_workers: int
    elapsed_seconds: float

    @property
    def complete(self) -> bool:
        """Whether every task's result is here."""
        return len(self.results) == self.n_tasks


def run_tasks(function: Callable, tasks: Sequence, *, shared: tuple = (), scheduler: str | None = None,
              progress: ProgressCallback | None = None, should_stop: Callable[[], bool] | None = None,
              retries: int = DEFAULT_RETRIES, what: str = "tasks") -> TaskRun:
    """``function(*shared, task)`` for every task, here or on the Dask cluster at ``scheduler``.

    Parameters
    ----------
    function : callable
        A module-level function (workers import it by name); pure: same inputs, same result.
    tasks : sequence
        One argument per call (small: a chunk's bounds, a configuration, a seed).
    shared : tuple, default=()
        Arguments common to every call (the masked matrix, the configuration): sent to
        the cluster's workers once, not once per task.
    scheduler : str or None
        ``tcp://HOST:PORT`` of a Dask scheduler; None runs the tasks in this process.
    progress : callable, optional
        ``progress(fraction, message)`` after each task.
    should_stop : callable, optional
        Asked between tasks (locally) or while waiting (cluster); when it returns True
        the run stops, the tasks still queued are cancelled, and the result holds the
        first tasks' results, in order, with ``stopped_early``.
    retries : int, default=2
        Cluster only: times a task that raised is run again (``Client.submit(retries=)``).
    what : str, default="tasks"
        What a task is, for the progress messages ("permutation chunks").

    Returns
    -------
    TaskRun

    Raises
    ------
    ClusterError
        The scheduler cannot be reached, or a task's workers died more often than the
        cluster allows: no partial result is returned.
    DecodingInputError
        Raised by a task (bad input), as it would be locally.
    """
    tasks = list(tasks)
    if scheduler is None:
        return _run_locally(function, tasks, shared, progress, should_stop, what)
    return _run_on_cluster(function, tasks, shared, check_scheduler_address(scheduler), progress,
                           should_stop, retries, what)


def _report(progress, done: int, total: int, what: str, where: str) -> None:
    if progress is not None:
        place = "" if where == LOCAL else f" on {where}"
        progress(done / total if total else 1.0, f"{done} of {total} {what} done{place}")


def _run_locally(function, tasks, shared, progress, should_stop, what) -> TaskRun:
    start = time.perf_counter()
    results = []
    for task in tasks:
        if should_stop is not None and should_stop():
            break
        results.append(function(*shared, task))
        _report(progress, len(results), len(tasks), what, LOCAL)
    return TaskRun(tuple(results), len(tasks), len(results) < len(tasks), LOCAL, 1, time.perf_counter() - start)


def _connect(address: str):
    from distributed import Client

    try:
        return Client(address, timeout=CONNECT_TIMEOUT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ClusterError(
            f"Cannot reach the Dask scheduler at {address} ({err}). Start one with `dask scheduler` "
            "and workers with `dask worker ADDRESS`, or run without a scheduler."
        ) from None


def _run_on_cluster(function, tasks, shared, address, progress, should_stop, retries, what) -> TaskRun:
    start = time.perf_counter()
    results: dict[int, object] = {}
    stopped = False
    client = _connect(address)
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        completed = _completed(client, function, shared, tasks, address, retries, what)
        try:
            for finished in completed:
                if finished is not None:
                    index, result = finished
                    results[index] = result
                    _report(progress, len(results), len(tasks), what, address)
                if len(results) < len(tasks) and should_stop is not None and should_stop():
                    stopped = True
                    break
        finally:
            completed.close()  # cancels the tasks still queued
    finally:
        client.close()
    prefix = _finished_prefix(results, len(tasks))
    return TaskRun(prefix, len(tasks), stopped, address, n_workers, time.perf_counter() - start)


def _completed(client, function, shared, tasks, address, retries, what):
    """``(index, function(*shared, task))`` of every task as it finishes on the cluster (a generator).

    Yields None every `_POLL_SECONDS` while nothing finishes, so the caller can look at a
    Stop request during a long task. Closing the generator early cancels the tasks not yet
    finished.
    """
    futures = []
    try:
        shared_futures = _scatter(client, shared, address) if shared else []
        futures = [client.submit(function, *shared_futures, task, retries=retries, pure=False) for task in tasks]
        pending = list(range(len(futures)))
        while pending:
            finished = [index for index in pending if futures[index].done()]
            for index in finished:
                pending.remove(index)
                yield index, _result_of(futures[index], address, what)
            if not finished:
                time.sleep(_POLL_SECONDS)
                yield None
    finally:
        unfinished = [future for future in futures if not future.done()]
        if unfinished:
            client.cancel(unfinished)


#: Tries at sending the shared inputs, a second apart: a worker that just died may still be listed.
_SCATTER_TRIES = 5


def _scatter(client, shared, address: str) -> list:
    """Send the shared inputs to every worker (a worker lost later leaves them on the others)."""
    for attempt in range(_SCATTER_TRIES):
        try:
            return client.scatter(list(shared), broadcast=True, hash=False)
        except OSError as err:  # distributed's CommClosedError: a worker went away meanwhile
            if attempt == _SCATTER_TRIES - 1:
                raise ClusterError(
                    f"Cannot send the data to the workers of the Dask cluster at {address} ({err}). "
                    "Check that its workers are running, then run again."
                ) from None
            time.sleep(1.0)
    return []


def chunk_mapper(scheduler: str, *, retries: int = DEFAULT_RETRIES, what: str = "chunks"):
    """A ``map_chunks(function, chunks)`` that runs the chunks on the Dask cluster at ``scheduler``.

    For `decoding_core.searchlight.searchlight` (its ``map_chunks`` hook): it yields
    ``function(chunk)`` for every chunk as they finish, in any order; closing it early (a
    Stop) cancels the rest. When ``function`` is a ``functools.partial`` (the searchlight's
    task with its masked matrix), its arguments are scattered to the workers once, not
    sent with every chunk.

    Raises
    ------
    DecodingInputError
        A bad address (checked now, before any work).
    """
    address = check_scheduler_address(scheduler)

    def map_chunks(function, chunks):
        shared = ()
        if isinstance(function, functools.partial) and not function.keywords:
            function, shared = function.func, tuple(function.args)
        return _results_on_cluster(function, shared, list(chunks), address, retries, what)

    return map_chunks


def _results_on_cluster(function, shared, chunks, address, retries, what):
    client = _connect(address)
    completed = _completed(client, function, shared, chunks, address, retries, what)
    try:
        for finished in completed:
            if finished is not None:
                yield finished[1]
    finally:
        completed.close()
        client.close()


def _finished_prefix(results: dict, n_tasks: int) -> tuple:
    """The results of tasks 0, 1, ... up to the first one missing (what a local run would have)."""
    prefix = []
    for index in range(n_tasks):
        if index not in results:
            break
        prefix.append(results[index])
    return tuple(prefix)


def _result_of(future, address: str, what: str):
    """A finished future's result; a lost worker or scheduler becomes a `ClusterError`."""
    from distributed import CancelledError, KilledWorker

    try:
        return future.result()
    except KilledWorker as err:
        raise ClusterError(
            f"The Dask cluster at {address} lost the workers running one of the {what} too many "
            f"times ({err}); nothing is returned. Check the workers' memory and logs, then run again."
        ) from None
    except CancelledError:
        raise ClusterError(
            f"The Dask cluster at {address} cancelled one of the {what} (was the scheduler "
            "restarted?); nothing is returned. Run again."
        ) from None


def chunk_bounds(n_items: int, n_chunks: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of ``n_chunks`` nearly equal consecutive chunks of ``range(n_items)``.

    Examples
    --------
    >>> chunk_bounds(10, 3)
    [(0, 4), (4, 7), (7, 10)]
    """
    n_chunks = max(1, min(n_chunks, n_items))
    size, extra = divmod(n_items, n_chunks)
    bounds, start = [], 0
    for chunk in range(n_chunks):
        stop = start + size + (1 if chunk < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def chunk_count(n_items: int, min_chunk: int, max_chunks: int = 64) -> int:
    """How many chunks to cut ``n_items`` into: at most ``max_chunks``, each of ``min_chunk`` or more.

    Enough chunks to spread over a cluster and to stop between them, not so many that the
    cost of sending each one dominates.
    """
    return max(1, min(max_chunks, math.ceil(n_items / max(1, min_chunk))))


# --------------------------------------------------------------------------------------
# Decoding runs: masked here, decoded there
# --------------------------------------------------------------------------------------


def mask_for(dataset, config, progress: ProgressCallback | None = None, cache=None):
    """``dataset`` masked and cleaned as `decoding.run_decoding` masks it for ``config``.

    This runs where the user's files are; only its result (a `MaskedData`) goes to a cluster.
    """
    from decoding_core import masking

    return masking.mask_dataset(dataset, config.mask_name, **config.cleaning_options(),
                                smoothing_fwhm=config.smoothing_fwhm, progress=progress, cache=cache)


def decode_masked(task):
    """`decoding.decode` of one ``(masked, config, tr)`` task: a run's second half, on any worker.

    With `mask_for` before it, the same `DecodingResult` as ``run_decoding(dataset, config)``.
    """
    from decoding_core import decoding

    masked, config, tr = task
    return decoding.decode(masked, config, tr=tr)
