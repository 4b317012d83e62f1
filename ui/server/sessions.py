"""What one browser session owns, and a janitor that drops it when the session is gone.

Everything made from a user's upload (the data set, its masked matrices, the
results) belongs to that user's session alone: it lives in the session's
`SessionStore`, found by a random token only that session holds, never in a cache
shared by every visitor. When the session ends its store is purged within a
bounded time:

* the app reports each script run (`SessionRegistry.open` touches the session);
* a janitor thread (`SessionRegistry.start_janitor`) sweeps every
  ``sweep_seconds``: a session whose server-side connection is gone (the app's
  ``is_alive`` hook says so) and that has not been seen for ``grace_seconds`` is
  purged: its objects are dropped, its cleanup callbacks run (delete the upload
  folder, release Streamlit's copy of the uploaded bytes, close the stored session).

So a closed tab's data are gone after at most ``grace_seconds + sweep_seconds``.
The grace period lets a browser that lost its connection for a moment come back
to its data (Streamlit keeps a disconnected session for 120 s by default).

This module never imports streamlit; the app passes the Streamlit-specific hooks.

Examples
--------
>>> registry = SessionRegistry(grace_seconds=0, sweep_seconds=60)
>>> store = registry.open("f00d")
>>> store.put("result", 42)
>>> registry.sweep(now=store.last_seen + 1)
['f00d']
>>> registry.get("f00d") is None
True
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from decoding_core._validation import parse_byte_size

_LOGGER = logging.getLogger(__name__)

#: Environment variable: seconds a disconnected session keeps its data (default 120).
GRACE_ENV = "DECODING_LAB_SESSION_GRACE_SECONDS"
#: Environment variable: seconds between two sweeps of the janitor (default 10).
SWEEP_ENV = "DECODING_LAB_SESSION_SWEEP_SECONDS"
#: Streamlit's default ``server.disconnectedSessionTTL``: a browser may reconnect within it.
DEFAULT_GRACE_SECONDS = 120.0
DEFAULT_SWEEP_SECONDS = 10.0
#: Most bytes of arrays one session may keep (least recently used objects dropped beyond).
DEFAULT_SESSION_MAX_BYTES = 256 * 1024**2
#: Most objects one session may keep.
DEFAULT_SESSION_MAX_ENTRIES = 32
#: Environment variable: most bytes of arrays all sessions together may keep.
TOTAL_BYTES_ENV = "DECODING_LAB_SESSIONS_MAX_BYTES"
#: Default for all sessions together: leaves room on a 690 MB host for the app and the jobs.
DEFAULT_TOTAL_MAX_BYTES = 160 * 1024**2


def approx_nbytes(value, _depth: int = 0) -> int:
    """Bytes held by the numpy arrays in ``value`` (an array, a dataclass, a dict, ...).

    Looks three levels deep into attributes, dict values and list items; other
    objects count as 0. Meant to bound a session's memory, not to be exact.
    """
    if isinstance(value, np.ndarray):
        return int(value.nbytes) if value.base is None or not isinstance(value.base, np.memmap) else 0
    if _depth >= 3 or value is None or isinstance(value, (str, bytes, int, float, bool)):
        return len(value) if isinstance(value, bytes) else 0
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, (list, tuple)):
        children = value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        children = [getattr(value, field.name, None) for field in dataclasses.fields(value)]
    elif hasattr(value, "dataobj") and hasattr(value, "affine"):  # a nibabel image
        data = getattr(value, "_dataobj", None)
        return int(data.nbytes) if isinstance(data, np.ndarray) else 0
    elif hasattr(value, "__dict__"):
        children = vars(value).values()
    else:
        return 0
    return sum(approx_nbytes(child, _depth + 1) for child in children)


class SessionStore:
    """The objects one browser session owns, least recently used dropped first.

    Parameters
    ----------
    token : str
        The session's random token (its key in the registry).
    max_bytes : int
        Most bytes of arrays kept (see `approx_nbytes`).
    max_entries : int
        Most objects kept.

    Attributes
    ----------
    token : str
    session_id : str or None
        The server's id of the session, for the ``is_alive`` hook.
    last_seen : float
        ``time.monotonic()`` of the last script run of the session.
    """

    def __init__(self, token: str, *, max_bytes: int = DEFAULT_SESSION_MAX_BYTES,
                 max_entries: int = DEFAULT_SESSION_MAX_ENTRIES):
        self.token = token
        self.session_id: str | None = None
        self.last_seen = time.monotonic()
        self.max_bytes = int(max_bytes)
        self.max_entries = int(max_entries)
        self._items: OrderedDict = OrderedDict()
        self._sizes: dict = {}
        self._cleanups: list[Callable[[], None]] = []
        self._lock = threading.RLock()
        self.purged = False
        #: Called after each `put` (the registry bounds all sessions together).
        self.on_put: Callable[[SessionStore], None] | None = None

    def touch(self) -> None:
        """Mark the session as seen now."""
        self.last_seen = time.monotonic()

    def get(self, key, default=None):
        """The object stored under ``key`` (and mark it recently used), or ``default``."""
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            return self._items[key]

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def nbytes(self) -> int:
        """Approximate bytes held (arrays only)."""
        with self._lock:
            return sum(self._sizes.values())

    def put(self, key, value, *, nbytes: int | None = None) -> None:
        """Store ``value``; the least recently used objects go when a bound is passed.

        An object larger than ``max_bytes`` by itself is still stored (it is the one
        in use) and everything else is dropped.
        """
        if self.purged:
            raise RuntimeError("This session's store was purged; open a new one.")
        size = approx_nbytes(value) if nbytes is None else int(nbytes)
        with self._lock:
            self._items[key] = value
            self._sizes[key] = size
            self._items.move_to_end(key)
            while len(self._items) > 1 and (
                len(self._items) > self.max_entries or sum(self._sizes.values()) > self.max_bytes
            ):
                oldest, _ = self._items.popitem(last=False)
                self._sizes.pop(oldest, None)
        if self.on_put is not None:
            self.on_put(self)

    def evict_oldest(self) -> int:
        """Drop the least recently used object; return the bytes freed (0 when empty)."""
        with self._lock:
            if not self._items:
                return 0
            oldest, _ = self._items.popitem(last=False)
            return self._sizes.pop(oldest, 0)

    def pop(self, key, default=None):
        """Remove ``key`` and return its object (``default`` when absent)."""
        with self._lock:
            self._sizes.pop(key, None)
            return self._items.pop(key, default)

    def get_or_compute(self, key, compute: Callable[[], object]):
        """The object under ``key``, computing and storing it first when absent."""
        value = self.get(key)
        if value is None:
            value = compute()
            self.put(key, value)
        return value

    def add_cleanup(self, cleanup: Callable[[], None]) -> None:
        """Run ``cleanup()`` when the store is purged (e.g. delete the upload folder)."""
        with self._lock:
            self._cleanups.append(cleanup)

    def clear(self) -> None:
        """Drop every object (the cleanups stay registered)."""
        with self._lock:
            self._items.clear()
            self._sizes.clear()

    def purge(self) -> None:
        """Drop everything and run the cleanups (each once; errors are logged, not raised)."""
        with self._lock:
            self.purged = True
            self.clear()
            cleanups, self._cleanups = self._cleanups, []
        for cleanup in cleanups:
            try:
                cleanup()
            except Exception:  # a failing cleanup must not stop the others
                _LOGGER.exception("Session cleanup failed")


def _env_seconds(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise ValueError(f"{name} must be a number of seconds >= 0. Got {raw!r}.")
    return value


class SessionRegistry:
    """Every live session's `SessionStore`, and the janitor that purges closed ones.

    Parameters
    ----------
    grace_seconds : float, optional
        How long a session that is no longer alive keeps its data; default
        ``$DECODING_LAB_SESSION_GRACE_SECONDS`` or 120.
    sweep_seconds : float, optional
        Interval of the janitor; default ``$DECODING_LAB_SESSION_SWEEP_SECONDS`` or 10.
    is_alive : callable, optional
        ``is_alive(session_id) -> bool``: whether the server still has a connection for
        the session. Without it, only the time since the last run counts.
    on_expire : callable, optional
        ``on_expire(token, session_id)`` after a session's store was purged.
    on_create : callable, optional
        ``on_create(store)`` when a new store is made (e.g. to register cleanups).
    session_max_bytes : int, optional
        ``max_bytes`` of each new store.
    total_max_bytes : int, optional
        Most bytes all stores together may hold (default ``$DECODING_LAB_SESSIONS_MAX_BYTES``
        or 160 MiB): beyond it, the least recently seen sessions' oldest objects are dropped
        (they are recomputed from the session's files when needed again).
    """

    def __init__(self, *, grace_seconds: float | None = None, sweep_seconds: float | None = None,
                 is_alive: Callable[[str], bool] | None = None,
                 on_expire: Callable[[str, str | None], None] | None = None,
                 on_create: Callable[[SessionStore], None] | None = None,
                 session_max_bytes: int = DEFAULT_SESSION_MAX_BYTES,
                 total_max_bytes: int | None = None):
        self.grace_seconds = _env_seconds(GRACE_ENV, DEFAULT_GRACE_SECONDS) if grace_seconds is None else float(grace_seconds)
        self.sweep_seconds = _env_seconds(SWEEP_ENV, DEFAULT_SWEEP_SECONDS) if sweep_seconds is None else float(sweep_seconds)
        self.sweep_seconds = max(self.sweep_seconds, 0.05)
        self.is_alive = is_alive
        self.on_expire = on_expire
        self.on_create = on_create
        self.session_max_bytes = int(session_max_bytes)
        if total_max_bytes is None:
            raw = os.environ.get(TOTAL_BYTES_ENV, "").strip()
            total_max_bytes = parse_byte_size(raw, TOTAL_BYTES_ENV) if raw else DEFAULT_TOTAL_MAX_BYTES
        self.total_max_bytes = int(total_max_bytes)
        self._stores: dict[str, SessionStore] = {}
        self._lock = threading.Lock()
        self._janitor: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def purge_bound_seconds(self) -> float:
        """Longest time a closed session's data can outlive it: grace plus one sweep."""
        return self.grace_seconds + self.sweep_seconds

    def open(self, token: str, session_id: str | None = None) -> SessionStore:
        """The store of session ``token`` (created when new), marked as seen now."""
        if not token or not isinstance(token, str):
            raise ValueError("A session token must be a non-empty string.")
        with self._lock:
            store = self._stores.get(token)
            if store is None or store.purged:
                store = SessionStore(token, max_bytes=min(self.session_max_bytes, self.total_max_bytes))
                store.on_put = self._enforce_total
                if self.on_create is not None:
                    self.on_create(store)
                self._stores[token] = store
            if session_id is not None:
                store.session_id = session_id
            store.touch()
            return store

    @property
    def nbytes(self) -> int:
        """Approximate bytes held by all stores together."""
        with self._lock:
            stores = list(self._stores.values())
        return sum(store.nbytes for store in stores)

    def _enforce_total(self, current: SessionStore) -> None:
        """Drop old objects, least recently seen sessions first, until the total fits."""
        while self.nbytes > self.total_max_bytes:
            with self._lock:
                others = sorted((s for s in self._stores.values() if s is not current and len(s)),
                                key=lambda s: s.last_seen)
            victim = others[0] if others else current
            if victim is current and len(current) <= 1:
                return  # the object in use stays, even alone over the bound
            if not victim.evict_oldest():
                if victim is current:
                    return

    def get(self, token: str) -> SessionStore | None:
        """The store of ``token`` when it exists (without touching it)."""
        with self._lock:
            return self._stores.get(token)

    def tokens(self) -> list[str]:
        with self._lock:
            return list(self._stores)

    def __len__(self) -> int:
        with self._lock:
            return len(self._stores)

    def purge(self, token: str) -> bool:
        """Purge one session now; True when it existed."""
        with self._lock:
            store = self._stores.pop(token, None)
        if store is None:
            return False
        store.purge()
        if self.on_expire is not None:
            try:
                self.on_expire(token, store.session_id)
            except Exception:
                _LOGGER.exception("on_expire failed for a session")
        return True

    def sweep(self, now: float | None = None) -> list[str]:
        """Purge the sessions that are gone; returns their tokens.

        A session is gone when ``is_alive`` (if given) says its connection is closed and
        it was last seen more than ``grace_seconds`` ago. A live session counts as seen.
        """
        now = time.monotonic() if now is None else now
        with self._lock:
            stores = list(self._stores.values())
        expired = []
        for store in stores:
            alive = False
            if self.is_alive is not None and store.session_id is not None:
                try:
                    alive = bool(self.is_alive(store.session_id))
                except Exception:
                    alive = False
            if alive:
                store.last_seen = max(store.last_seen, now)
            elif now - store.last_seen > self.grace_seconds:
                expired.append(store.token)
        return [token for token in expired if self.purge(token)]

    def purge_all(self) -> None:
        """Purge every session (server shutdown, tests)."""
        for token in self.tokens():
            self.purge(token)

    # -- janitor -----------------------------------------------------------------------------
    def start_janitor(self) -> None:
        """Start the background sweeper (once; a daemon thread)."""
        with self._lock:
            if self._janitor is not None and self._janitor.is_alive():
                return
            self._stop.clear()
            self._janitor = threading.Thread(target=self._janitor_loop, name="decoding-lab-session-janitor",
                                             daemon=True)
            self._janitor.start()

    def stop_janitor(self) -> None:
        """Stop the background sweeper and wait for it."""
        self._stop.set()
        thread = self._janitor
        if thread is not None:
            thread.join(timeout=5)

    def _janitor_loop(self) -> None:
        while not self._stop.wait(self.sweep_seconds):
            try:
                self.sweep()
            except Exception:  # the janitor must survive anything
                _LOGGER.exception("Session sweep failed")
