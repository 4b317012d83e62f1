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

import logging
import threading
import time
from collections.abc import Callable

from decoding_core import environment
from decoding_core.caching import BoundedCache

_LOGGER = logging.getLogger(__name__)

#: Environment variable: seconds a disconnected session keeps its data (default 120, Streamlit's
#: default ``server.disconnectedSessionTTL``: a browser may reconnect within it).
GRACE_ENV = environment.SESSION_GRACE_SECONDS
#: Environment variable: seconds between two sweeps of the janitor (default 10).
SWEEP_ENV = environment.SESSION_SWEEP_SECONDS
#: Environment variable: most bytes of arrays all sessions together may keep (default 160 MiB:
#: leaves room on a 690 MB host for the app and the jobs).
TOTAL_BYTES_ENV = environment.SESSIONS_MAX_BYTES
#: Most bytes of arrays one session may keep (least recently used objects dropped beyond).
DEFAULT_SESSION_MAX_BYTES = 256 * 1024**2
#: Most objects one session may keep.
DEFAULT_SESSION_MAX_ENTRIES = 32


class SessionStore:
    """The objects one browser session owns, least recently used dropped first.

    Parameters
    ----------
    token : str
        The session's random token (its key in the registry).
    max_bytes : int
        Most bytes of arrays kept (see `decoding_core.caching.approx_nbytes`).
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
        # The object just stored is the one in use: kept even when larger than the bound alone.
        self._objects = BoundedCache(max_entries=max_entries, max_bytes=max_bytes, keep_oversized=True)
        self._cleanups: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.purged = False
        #: Called after each `put` (the registry bounds all sessions together).
        self.on_put: Callable[[SessionStore], None] | None = None
        #: What the app keeps to bring the session back after a reload of the page (the
        #: session's state); dropped when the store is purged.
        self.resume_state: object | None = None

    @property
    def max_bytes(self) -> int:
        return self._objects.max_bytes

    @property
    def max_entries(self) -> int:
        return self._objects.max_entries

    def touch(self) -> None:
        """Mark the session as seen now."""
        self.last_seen = time.monotonic()

    def get(self, key, default=None):
        """The object stored under ``key`` (and mark it recently used), or ``default``."""
        return self._objects.get(key, default)

    def __contains__(self, key) -> bool:
        return key in self._objects

    def __len__(self) -> int:
        return len(self._objects)

    def keys(self) -> list:
        """The keys stored, least recently used first."""
        return self._objects.keys()

    @property
    def nbytes(self) -> int:
        """Approximate bytes held (arrays only, see `decoding_core.caching.approx_nbytes`)."""
        return self._objects.nbytes

    def put(self, key, value, *, nbytes: int | None = None) -> None:
        """Store ``value``; the least recently used objects go when a bound is passed.

        An object larger than ``max_bytes`` by itself is still stored (it is the one
        in use) and everything else is dropped.
        """
        if self.purged:
            raise RuntimeError("This session's store was purged; open a new one.")
        self._objects.put(key, value, nbytes=nbytes)
        if self.on_put is not None:
            self.on_put(self)

    def evict_oldest(self) -> int:
        """Drop the least recently used object; return the bytes freed (0 when empty)."""
        return self._objects.evict_oldest()

    def pop(self, key, default=None):
        """Remove ``key`` and return its object (``default`` when absent)."""
        return self._objects.pop(key, default)

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
        self._objects.clear()

    def purge(self) -> None:
        """Drop everything and run the cleanups (each once; errors are logged, not raised)."""
        with self._lock:
            self.purged = True
            self.resume_state = None
            self.clear()
            cleanups, self._cleanups = self._cleanups, []
        for cleanup in cleanups:
            try:
                cleanup()
            except Exception:  # a failing cleanup must not stop the others
                _LOGGER.exception("Session cleanup failed")


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
        self.grace_seconds = environment.read(GRACE_ENV) if grace_seconds is None else float(grace_seconds)
        self.sweep_seconds = environment.read(SWEEP_ENV) if sweep_seconds is None else float(sweep_seconds)
        self.sweep_seconds = max(self.sweep_seconds, 0.05)
        self.is_alive = is_alive
        self.on_expire = on_expire
        self.on_create = on_create
        self.session_max_bytes = int(session_max_bytes)
        self.total_max_bytes = int(environment.read(TOTAL_BYTES_ENV) if total_max_bytes is None else total_max_bytes)
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
