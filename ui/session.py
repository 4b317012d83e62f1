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
import time
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
    """Record that this session is alive (called on every run by ``app.main``).

    On a session's first run, it first continues the session this browser had before a
    reload (`resume_session`); on every run it keeps a reference to the session's state
    in its store (what a reload brings back) and tells the browser its token
    (`remember_browser`).
    """
    resume_session()
    store = session_store()
    context = get_script_run_ctx(suppress_warning=True)
    if context is not None:
        store.resume_state = context.session_state
    remember_browser(store.token)


# -- surviving a reload ------------------------------------------------------------------------
#: The cookie naming this browser's session: set by the page (`remember_browser`), read by the
#: next session of the same browser (a reload). A cookie, not the URL: nothing that opens an
#: upload ever goes into an address that could be copied and shared.
SESSION_COOKIE = "decoding_lab_session"
#: How long a new session waits for the one it continues to close (a reload closes the old
#: connection while the new page loads; a second tab keeps it open and starts afresh).
RESUME_WAIT_SECONDS = 2.0


def _cookie_token() -> str | None:
    """This browser's session token from its cookie, when it is one (32 hex digits)."""
    try:
        token = st.context.cookies.get(SESSION_COOKIE)
    except Exception:  # no browser behind this run (AppTest, bare mode)
        return None
    return token if isinstance(token, str) and len(token) == 32 and token.isalnum() else None


def _closed_within(session_id: str | None, seconds: float) -> bool:
    """Whether the server's session ``session_id`` is closed, or closes within ``seconds``."""
    deadline = time.monotonic() + seconds
    while session_id is not None and _session_is_alive(session_id) and streamlit_runtime() is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def resume_session(token: str | None = None) -> bool:
    """On a session's first run: continue the session this browser had before a reload.

    A reload starts a new Streamlit session with an empty state. When the browser's
    cookie (`SESSION_COOKIE`) names a session whose store the janitor has not purged
    yet (within ``$DECODING_LAB_SESSION_GRACE_SECONDS`` of its last run) and whose
    connection is closed, this session takes over its token (so its upload folder and
    store) and its persistent state (`ui.state.RESUMED_KEYS`: the data set, the uploads
    waiting in the boxes, the results, the history). A second tab, whose first session
    is still open, starts afresh.

    Parameters
    ----------
    token : str, optional
        The token to continue (tests); default: the browser's cookie.

    Returns
    -------
    bool
        True when a session was continued.
    """
    if st.session_state.get(state.RESUME_CHECKED):
        return False
    st.session_state[state.RESUME_CHECKED] = True
    token = token or _cookie_token()
    if not token or token == st.session_state.get(state.SESSION_TOKEN):
        return False
    store = session_registry().get(token)
    if store is None or store.purged or store.resume_state is None:
        return False
    # (AppTest gives every session one id: that one is not "another session still open".)
    if store.session_id != script_session_id() and not _closed_within(store.session_id, RESUME_WAIT_SECONDS):
        return False
    previous = store.resume_state
    for key in state.RESUMED_KEYS:
        if key in previous:
            st.session_state[key] = previous[key]
    st.session_state[state.SESSION_TOKEN] = token
    # A configuration in the address still applies (`links.restore_from_url`): a link opened in a
    # browser that had the app open before is that link, not a reload to ignore.
    runtime = streamlit_runtime()
    if runtime is not None and store.session_id is not None:
        # The old session's copies of uploaded bytes are never needed again.
        runtime.uploaded_file_mgr.remove_session_files(store.session_id)
    return True


def remember_browser(token: str) -> None:
    """Have the browser keep this session's token in a cookie (for `resume_session` after a reload).

    A session cookie (gone when the browser closes), for this site's pages only, never sent
    to another site (``SameSite=Strict``); the page's JavaScript sets it, as Streamlit gives
    no way to set a cookie from the server.
    """
    try:
        if st.context.cookies.get(SESSION_COOKIE) == token:
            return
    except Exception:  # no browser behind this run
        pass
    st.sidebar.html(
        "<script>document.cookie = '" + SESSION_COOKIE + "=" + token + "; path=/; SameSite=Strict'"
        " + (location.protocol === 'https:' ? '; Secure' : '');</script>",
        unsafe_allow_javascript=True, width="content",
    )


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
