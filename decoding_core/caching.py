"""One bounded, thread-safe, least-recently-used cache for every store of the project.

The app keeps data sets, masked matrices and results for all sessions, each
session keeps its own objects, masking keeps raw voxel matrices, the history keeps
a session's runs in memory, and file digests are remembered: each is a
`BoundedCache`, bounded in entries, in bytes, or both, so no store grows without
limit on a shared server.

Examples
--------
>>> cache = BoundedCache(max_entries=2)
>>> cache.put("a", 1); cache.put("b", 2); cache.get("a")
True
True
1
>>> cache.put("c", 3)  # "b" is now the least recently used: it goes
True
>>> sorted(cache.keys())
['a', 'c']
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np


def approx_nbytes(value, _depth: int = 0) -> int:
    """Bytes held by the numpy arrays in ``value`` (an array, a dataclass, a dict, ...).

    Looks three levels deep into attributes, dict values and list items; bytes
    objects count their length, other objects 0, and arrays that view a memory-mapped
    file 0 (the file is not in memory). Meant to bound a store's memory, not to be exact.
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


class BoundedCache:
    """A thread-safe mapping that drops its least recently used entries beyond its bounds.

    Parameters
    ----------
    max_entries : int or None, default=None
        Most entries kept; None for no bound on the number.
    max_bytes : int or None, default=None
        Most bytes kept, as ``sizeof`` measures the values; None for no bound on size
        (then values are not measured).
    sizeof : callable, default=`approx_nbytes`
        ``sizeof(value) -> int``, the bytes a value holds.
    keep_oversized : bool, default=False
        What `put` does with a value larger than ``max_bytes`` by itself: False refuses
        it (`put` returns False; the caller keeps using it uncached); True stores it and
        drops every other entry (it is the one in use).
    refresh_on_read : bool, default=True
        Whether `get` marks an entry as recently used. False keeps the order in which
        entries were put (the oldest put is dropped first).

    Attributes
    ----------
    max_entries, max_bytes : int or None
    """

    def __init__(self, max_entries: int | None = None, max_bytes: int | None = None, *,
                 sizeof: Callable[[object], int] = approx_nbytes, keep_oversized: bool = False,
                 refresh_on_read: bool = True):
        for name, bound in (("max_entries", max_entries), ("max_bytes", max_bytes)):
            if bound is not None and (isinstance(bound, bool) or int(bound) != bound or bound < 0):
                raise ValueError(f"'{name}' must be a non-negative integer or None. Got {bound!r}.")
        self.max_entries = None if max_entries is None else int(max_entries)
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self._sizeof = sizeof
        self._keep_oversized = bool(keep_oversized)
        self._refresh_on_read = bool(refresh_on_read)
        self._items: OrderedDict = OrderedDict()
        self._sizes: dict = {}
        self._nbytes = 0
        self._lock = threading.RLock()
        self._computing: dict = {}  # key -> the lock of the thread computing its value

    # -- reading ------------------------------------------------------------------------------
    def get(self, key: Hashable, default=None):
        """The value stored under ``key`` (marked recently used), or ``default``."""
        with self._lock:
            if key not in self._items:
                return default
            if self._refresh_on_read:
                self._items.move_to_end(key)
            return self._items[key]

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def keys(self) -> list:
        """The keys, least recently used first (a snapshot)."""
        with self._lock:
            return list(self._items)

    def values(self) -> list:
        """The values, least recently used first (a snapshot)."""
        with self._lock:
            return list(self._items.values())

    @property
    def nbytes(self) -> int:
        """Bytes held, as ``sizeof`` measured the values when they were put (0 without ``max_bytes``)."""
        with self._lock:
            return self._nbytes

    # -- writing ------------------------------------------------------------------------------
    def put(self, key: Hashable, value, *, nbytes: int | None = None) -> bool:
        """Store ``value`` under ``key`` as the most recently used entry; drop the oldest beyond the bounds.

        Parameters
        ----------
        key : hashable
        value : object
        nbytes : int, optional
            The value's size when the caller knows it (default: ``sizeof(value)``).

        Returns
        -------
        bool
            Whether the value was kept (False only for a value larger than ``max_bytes``
            when ``keep_oversized`` is False).
        """
        size = 0 if self.max_bytes is None else int(self._sizeof(value) if nbytes is None else nbytes)
        with self._lock:
            if self.max_bytes is not None and size > self.max_bytes and not self._keep_oversized:
                return False
            self._discard(key)
            self._items[key] = value
            self._sizes[key] = size
            self._nbytes += size
            while len(self._items) > 1 and self._over_bounds():
                self.evict_oldest()
            if self.max_entries == 0:
                self._discard(key)
                return False
            return True

    def update(self, key: Hashable, value) -> bool:
        """Replace the value of a stored ``key`` in place, keeping its place in the order.

        Returns False (and stores nothing) when ``key`` is not stored.
        """
        with self._lock:
            if key not in self._items:
                return False
            size = 0 if self.max_bytes is None else int(self._sizeof(value))
            self._nbytes += size - self._sizes[key]
            self._items[key], self._sizes[key] = value, size
            return True

    def get_or_compute(self, key: Hashable, compute: Callable[[], object], *, wait_for_others: bool = True):
        """The value under ``key``; when absent, ``compute()`` it and store it.

        Parameters
        ----------
        key : hashable
        compute : callable
            ``compute()`` -> the value. It runs outside the cache's lock: a slow
            computation never blocks other threads' reads.
        wait_for_others : bool, default=True
            When another thread is computing the same key, wait for its value instead of
            computing it a second time (two visitors opening the app at once generate the
            built-in data set once, not twice in memory side by side). Pass False from a
            thread that holds a resource the other thread may need (a job slot), so the
            two can never wait for each other; it then computes the value itself.
        """
        value = self.get(key)
        if value is not None:
            return value
        if not wait_for_others:
            value = compute()
            self.put(key, value)
            return value
        with self._lock:
            key_lock = self._computing.setdefault(key, threading.Lock())
        try:
            with key_lock:
                value = self.get(key)
                if value is None:
                    value = compute()
                    self.put(key, value)
        finally:
            with self._lock:
                if self._computing.get(key) is key_lock and not key_lock.locked():
                    del self._computing[key]
        return value

    def pop(self, key: Hashable, default=None):
        """Remove ``key`` and return its value (``default`` when absent)."""
        with self._lock:
            if key not in self._items:
                return default
            value = self._items[key]
            self._discard(key)
            return value

    def evict_oldest(self) -> int:
        """Drop the least recently used entry; return the bytes freed (0 when empty)."""
        with self._lock:
            if not self._items:
                return 0
            oldest = next(iter(self._items))
            freed = self._sizes.get(oldest, 0)
            self._discard(oldest)
            return freed

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._items.clear()
            self._sizes.clear()
            self._nbytes = 0

    # -- internals ------------------------------------------------------------------------------
    def _over_bounds(self) -> bool:
        return ((self.max_entries is not None and len(self._items) > self.max_entries)
                or (self.max_bytes is not None and self._nbytes > self.max_bytes))

    def _discard(self, key) -> None:
        if key in self._items:
            del self._items[key]
            self._nbytes -= self._sizes.pop(key, 0)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(max_entries={self.max_entries}, max_bytes={self.max_bytes}, "
                f"entries={len(self)}, nbytes={self.nbytes})")
