"""Running the folds of a cross-validation: one after the other, or side by side in threads.

The folds of a cross-validation do not depend on each other, so fitting them in
threads gives the results of fitting them in turn: libsvm and scipy's L-BFGS-B release
the GIL while they solve, and numpy while it multiplies. liblinear does not qualify
(`Estimator.fits_in_threads`). The progress callback is only ever called from the
caller's thread (Streamlit draws from that thread only), with what the folds reported.

BLAS is held to one thread while folds are fitted (`single_blas_thread`): on the
matrices of a decoding (hundreds of samples) OpenBLAS's threads spend more time waiting
for each other than computing (L-BFGS on the real VT data, 8 classes: 2.7 s with two
threads, 0.7 s with one, on 2 cores), and the cores are better spent on folds.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from threadpoolctl import threadpool_limits

from decoding_core.progress import ProgressCallback, share

#: liblinear reseeds one random state for the whole process at the start of each fit and
#: draws its coordinate order from it: its fits take turns (folds, fallbacks, or two
#: sessions of the app), so that each gives the result it gives alone.
LIBLINEAR_LOCK = threading.Lock()

#: Most folds fitted at once.
MAX_FOLD_THREADS = 4

#: Folds are fitted side by side only while each one's training copy of the matrix stays
#: under this many bytes (a whole-brain matrix is copied once per fold at a time instead).
MAX_PARALLEL_MATRIX_BYTES = 200 * 1024**2

#: Folds are fitted side by side only when each fit multiplies at least this many numbers
#: per pass over the data (samples x voxels x outputs): smaller fits spend their time in
#: Python, holding the GIL, and threads slow them down (binary L2 logistic regression on the
#: real VT data, 216 x 577: 0.5 s in turn, 0.8 s in two threads; 8 classes, 864 x 577 x 8:
#: 5.8 s in turn, 4.7 s in two threads).
MIN_THREADED_WORK = 1_000_000

#: How often (seconds) the caller's thread looks for reports while folds run.
_POLL_SECONDS = 0.1

#: A fold's work: ``task(progress)`` -> its outcome; ``progress(fraction, message)`` within it.
FoldTask = Callable[[ProgressCallback | None], object]


def available_cores() -> int:
    """The cores this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def fold_workers(n_folds: int, X, n_outputs: int, fits_in_threads: bool) -> int:
    """How many folds to fit at once: one per core, at most `MAX_FOLD_THREADS`.

    Parameters
    ----------
    n_folds : int
    X : ndarray of shape (n_samples, n_voxels)
        The matrix the folds are cut from.
    n_outputs : int
        Decision values per sample: 1 for two classes, else the number of classes.
    fits_in_threads : bool
        Whether the estimator's fits may run side by side (`Estimator.fits_in_threads`).

    Returns
    -------
    int
        1 to fit the folds in turn: for liblinear, for a single fold, for a matrix too
        large to copy once per thread (`MAX_PARALLEL_MATRIX_BYTES`) and for fits too small
        to gain from threads (`MIN_THREADED_WORK`).
    """
    if (not fits_in_threads or n_folds < 2 or X.nbytes > MAX_PARALLEL_MATRIX_BYTES
            or X.shape[0] * X.shape[1] * n_outputs < MIN_THREADED_WORK):
        return 1
    return max(1, min(n_folds, available_cores(), MAX_FOLD_THREADS))


def single_blas_thread():
    """A context in which BLAS (numpy, scipy) uses one thread; see the module's docstring."""
    return threadpool_limits(limits=1, user_api="blas")


def run_folds(tasks: Sequence[FoldTask], progress: ProgressCallback | None = None,
              workers: int = 1) -> list:
    """Run every fold's task; their outcomes in the order of ``tasks``.

    Parameters
    ----------
    tasks : sequence of callable
        ``task(progress)`` fits and scores one fold.
    progress : callable or None
        ``progress(fraction, message)``: fold k of n covers its own part of the bar
        (``k / (n + 1)`` to ``(k + 1) / (n + 1)``; the last part is the caller's), and
        ``"Fold k of n done"`` is said as each fold ends.
    workers : int, default=1
        Folds fitted at once (threads); 1 fits them in turn.

    Returns
    -------
    list
        The outcome of each task.
    """
    if workers <= 1:
        return _run_in_turn(tasks, progress)
    return _run_in_threads(tasks, progress, workers)


def _run_in_turn(tasks, progress) -> list:
    n_folds, outcomes = len(tasks), []
    for fold, task in enumerate(tasks):
        outcomes.append(task(share(progress, fold / (n_folds + 1), (fold + 1) / (n_folds + 1),
                                   f"Fold {fold + 1} of {n_folds}: ")))
        if progress is not None:
            progress((fold + 1) / (n_folds + 1), f"Fold {fold + 1} of {n_folds} done")
    return outcomes


def _run_in_threads(tasks, progress, workers: int) -> list:
    """As `_run_in_turn`, folds in threads; reports reach ``progress`` from this thread only."""
    n_folds = len(tasks)
    reports = queue.SimpleQueue()  # (fold, fraction within it, message) from the threads
    done_fraction = [0.0] * n_folds
    outcomes = [None] * n_folds

    def reporter(fold: int):
        return lambda fraction, message="": reports.put((fold, float(fraction), message))

    def tell(message: str) -> None:
        if progress is not None:
            progress(sum(done_fraction) / (n_folds + 1), message)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fold") as pool:
        futures = {pool.submit(task, reporter(fold) if progress is not None else None): fold
                   for fold, task in enumerate(tasks)}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
                while not reports.empty():
                    fold, fraction, message = reports.get()
                    done_fraction[fold] = max(done_fraction[fold], min(max(fraction, 0.0), 1.0))
                    tell(f"Fold {fold + 1} of {n_folds}: {message}")
                for future in sorted(finished, key=futures.get):
                    fold = futures[future]
                    outcomes[fold] = future.result()
                    done_fraction[fold] = 1.0
                    tell(f"Fold {fold + 1} of {n_folds} done")
        except BaseException:
            # A Stop (raised by ``progress``) or a failed fold: no fold still waiting starts.
            for future in pending:
                future.cancel()
            raise
    return outcomes
