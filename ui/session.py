"""This browser session's own store and upload folder, and the janitor that purges closed sessions.

Everything made from an upload (the data set, its masked matrices, results,
permutations) lives in the session's own `ui.server.sessions.SessionStore`, never
in the process-wide stores of `ui.cache`, and its files in the session's private
upload folder (`upload_root`). The registry of stores is one per process
(`session_registry`); its janitor purges the store of a session whose browser is
gone (after ``$DECODING_LAB_SESSION_GRACE_SECONDS``, default 120 s, checked every
``$DECODING_LAB_SESSION_SWEEP_SECONDS``, default 10 s): it deletes the upload folder,
drops Streamlit's copy of the session's uploaded bytes and closes the stored session.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import streamlit as st
from streamlit.runtime import Runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from decoding_core import paths
from decoding_core.datasets.bids import BidsSelection
from ui import state
from ui.server.sessions import SessionRegistry, SessionStore


def streamlit_runtime() -> Runtime | None:
    """Streamlit's runtime, or None (AppTest and bare scripts run without one)."""
    return Runtime.instance() if Runtime.exists() else None


def script_session_id() -> str | None:
    """The server's id of the session running this script, or None outside a script run."""
    context = get_script_run_ctx(suppress_warning=True)
    return context.session_id if context else None


def upload_root(session_token: str) -> Path:
    """This session's private upload folder (``<data dir>/uploads/<random token>``).

    Raises
    ------
    ValueError
        For a token that is empty or not alphanumeric (it could name another folder).
    """
    if not session_token or not session_token.isalnum():
        raise ValueError("The session token must be a non-empty alphanumeric string.")
    return paths.data_dir() / "uploads" / session_token


def _session_is_alive(session_id: str) -> bool:
    runtime = streamlit_runtime()
    # Without a runtime nobody can tell: never purge (AppTest, scripts).
    return runtime is None or runtime.is_active_session(session_id)


def _release_session(token: str, session_id: str | None) -> None:
    """After a purge: drop Streamlit's copy of the session's uploads and its stored session.

    Streamlit keeps a disconnected session (with its uploaded files) until some other
    session disconnects (streamlit issues 9218, 12506); this closes it now.
    """
    runtime = streamlit_runtime()
    if runtime is None or session_id is None:
        return
    runtime.uploaded_file_mgr.remove_session_files(session_id)
    if not runtime.is_active_session(session_id):
        # Public, thread-safe: marks the session non-resumable and closes it on the event loop.
        runtime.clear_user_info_for_session(session_id)


def _on_new_session(store: SessionStore) -> None:
    token = store.token
    if token.isalnum():
        store.add_cleanup(lambda: shutil.rmtree(upload_root(token), ignore_errors=True))


@st.cache_resource(show_spinner=False)
def session_registry() -> SessionRegistry:
    """The process-wide registry of session stores, with its janitor running."""
    registry = SessionRegistry(
        is_alive=_session_is_alive, on_expire=_release_session, on_create=_on_new_session,
    )
    registry.start_janitor()
    return registry


def session_token() -> str:
    """This session's random token (made by `ui.state.init_state` when missing)."""
    if not st.session_state.get(state.SESSION_TOKEN):
        state.init_state()
    return st.session_state[state.SESSION_TOKEN]


def session_store() -> SessionStore:
    """This browser session's own store (marked as seen now)."""
    return session_registry().open(session_token(), session_id=script_session_id())


def touch_session() -> None:
    """Record that this session is alive (called on every run by ``app.main``)."""
    session_store()


def owned_by_session(dataset) -> bool:
    """Whether ``dataset`` came from this session's uploads (then nothing of it is shared).

    The user's files, or a BIDS data set unpacked from an uploaded zip (its folder is in
    the uploads folder; see `ui.bids`).
    """
    name = getattr(dataset, "name", None)
    if name == "upload":
        return True
    selection = BidsSelection.from_name(name)
    return selection is not None and Path(selection.root).is_relative_to((paths.data_dir() / "uploads").resolve())
