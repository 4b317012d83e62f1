"""glibc's malloc, tuned for a server where every browser session runs in its own thread.

glibc gives each thread its own malloc arena, and memory freed in an arena stays in
the process: with many sessions, arenas alone hold hundreds of MB. The app limits
the number of arenas once at start-up (`limit_malloc_arenas`, called by ``app.main``)
and hands freed memory back after each heavy job (`return_freed_memory`). On a C
library other than glibc (macOS, Windows, musl) both do nothing.

This module never imports streamlit, and importing it changes nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

#: ``mallopt`` parameter number of glibc's M_ARENA_MAX.
M_ARENA_MAX = -8
#: Arenas kept when the app runs: enough for two jobs at once without lock contention.
ARENAS = 2


@functools.cache
def _libc():
    """The C library, or None when it cannot be loaded."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # no C library by that name (Windows): nothing to tune
        return None


@functools.cache
def limit_malloc_arenas() -> bool:
    """Limit glibc to `ARENAS` malloc arenas for the whole process; True when it did.

    Called explicitly by ``app.main`` rather than when a module is imported: changing
    how a whole process allocates memory is a decision of the program that runs the
    server, not a side effect of importing a module (tests, the command line and
    notebooks import ``ui`` without wanting it). The first call does the work, later
    calls return its outcome, so calling it on every script run is cheap and harmless.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(M_ARENA_MAX, ARENAS))


def return_freed_memory() -> None:
    """Hand memory freed by a finished job back to the system (glibc's ``malloc_trim``)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
