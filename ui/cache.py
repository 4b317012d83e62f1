"""The app's process-wide objects: the stores of heavy results, the raw-voxel cache, the job gate.

Every heavy step (loading, masking, decoding, dummy scores) is kept under a
content-digest key, so going back to a configuration already run is instant.
Where it is kept depends on who may see it (`get_or_compute`): what comes from a
built-in data set (public, the same for everyone) in a store shared by all
sessions (`shared_store`, one `decoding_core.caching.BoundedCache` per kind of
object); what comes from an upload in the session's own store
(`ui.session.session_store`), never shared. Keys never contain anything a user can
guess: an upload's key includes the session's random token.

Why bounded stores rather than decorating the heavy functions themselves:
``st.cache_resource`` records every Streamlit element drawn while the cached
function runs and replays it on each cache hit. The heavy steps report progress to
an ``st.progress`` bar drawn by the page, so a decorated function would replay
stale progress bars. Each store is therefore one ``st.cache_resource`` singleton
filled outside the decorated function; ``st.cache_resource.clear()`` empties it like
any other resource cache.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from decoding_core.caching import BoundedCache
from decoding_core.masking import RawVoxelCache
from ui.server.jobs import JobGate, default_max_jobs
from ui.session import owned_by_session, session_store

#: How many objects of each kind the process keeps in its shared stores (all sessions together).
MAX_ENTRIES = {"datasets": 6, "masked": 8, "results": 32, "permutations": 16}


@st.cache_resource(show_spinner=False)
def shared_store(kind: str) -> BoundedCache:
    """The process-wide store of one kind of object (a key of `MAX_ENTRIES`)."""
    return BoundedCache(max_entries=MAX_ENTRIES[kind])


@st.cache_resource(show_spinner=False)
def raw_voxel_cache() -> RawVoxelCache:
    """The process-wide cache of raw masked matrices of the built-in data sets (never of uploads)."""
    return RawVoxelCache()


@st.cache_resource(show_spinner=False)
def job_gate() -> JobGate:
    """The process-wide gate of heavy work, with `ui.server.jobs.default_max_jobs` slots."""
    return JobGate(default_max_jobs())


def get_or_compute(kind: str, key: tuple, compute: Callable[[], object], *, made_from=None):
    """The object of ``kind`` under ``key``, computed and kept when absent.

    Parameters
    ----------
    kind : str
        A key of `MAX_ENTRIES`.
    key : tuple
        Content digests and settings (never text a user typed).
    compute : callable
        Makes the object; runs outside any lock, so a slow load never blocks other sessions.
    made_from : Dataset, optional
        The data set the object is made from. Objects made from this session's upload
        are kept in the session's own store, the others in the shared store of ``kind``.
    """
    if owned_by_session(made_from):
        return session_store().get_or_compute((kind, *key), compute)
    # A thread inside a job never waits for another thread's computation: that thread may be
    # queued for the very slot this one holds (decoding needs the masked data another
    # session is about to compute), so it computes the value itself instead.
    return shared_store(kind).get_or_compute(key, compute, wait_for_others=not job_gate().holds_slot())


def is_cached(kind: str, key: tuple, *, made_from=None) -> bool:
    """Whether the object of ``kind`` under ``key`` is kept already (see `get_or_compute`)."""
    if owned_by_session(made_from):
        return (kind, *key) in session_store()
    return key in shared_store(kind)


def raw_voxel_cache_for(dataset) -> RawVoxelCache | None:
    """The raw-matrix cache masking may use for ``dataset``: the shared one, none for uploads.

    An upload's masked matrices are kept in the session's store (bounded with all
    sessions together); the shared raw cache must never hold them.
    """
    return None if owned_by_session(dataset) else raw_voxel_cache()

