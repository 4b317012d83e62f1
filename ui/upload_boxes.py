"""The Data page's upload boxes: each file stored on disk and checked as it arrives.

Callbacks of the file uploaders and of their "Remove" buttons, and the lines drawn
under a box (the stored file, or a button to clear a refused one). A file leaves
Streamlit's memory in its uploader's callback (see `take_func_upload`), so the page
works from the stored entries in the session state (`ui.state.PENDING_FUNC_UPLOAD`,
`ui.state.PENDING_UPLOADS`, `ui.state.PENDING_RUN_FILES`, `ui.state.PENDING_RUN_LABELS`).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from decoding_core.errors import DecodingInputError
from ui import state, uploads
from ui.feedback import safe_display_name
from ui.session import session_token


def take_func_upload() -> None:
    """4D-uploader callback: move the image out of Streamlit's memory into the session's folder.

    Streamlit deep-copies a widget's value into every script run that draws it, so a
    300 MB image held by the uploader would live in memory two or three times. A callback
    gets the value without that copy: here it is written to disk, Streamlit's copy is
    released, and the widget's cached value dropped. ``None`` means the user removed the file.
    """
    set_upload_error("4D image", None)
    token = session_token()
    previous = st.session_state.get(state.PENDING_FUNC_UPLOAD)
    uploaded = st.session_state.get(state.W_UPLOAD_FUNC)
    if uploaded is None:
        uploads.discard_pending_func_upload(token, previous)
        st.session_state[state.PENDING_FUNC_UPLOAD] = None
        return
    if not hasattr(uploaded, "getvalue"):
        return  # a file already taken (Streamlit reports it as deleted): nothing new
    try:
        # Checked from its header before the page calls it ready: a 3D file or random bytes are named.
        entry = uploads.store_pending_upload(token, "4D image", uploaded)
    except DecodingInputError as err:
        entry = None
        set_upload_error("4D image", str(err))
    except OSError as err:
        entry = None
        set_upload_error("4D image", (
            f"Your 4D image could not be stored on the server ({type(err).__name__}): try again, or "
            "ask the administrator whether the server's disk is full."
        ))
    finally:
        uploads.release_uploaded_files(uploaded)
        del uploaded
        # The widget's cached value would otherwise keep (and deep-copy) the bytes.
        del st.session_state[state.W_UPLOAD_FUNC]
    if entry is None:  # the box now holds a refused file: the one it replaced is not offered either
        uploads.discard_pending_func_upload(token, previous)
        st.session_state[state.PENDING_FUNC_UPLOAD] = None
        return
    if previous is not None and previous.path != entry.path:
        uploads.discard_pending_func_upload(token, previous)
    st.session_state[state.PENDING_FUNC_UPLOAD] = entry


def take_box_upload(role: str) -> None:
    """Labels/mask/anatomy-uploader callback: store and check the file, as for the 4D image.

    The stored file outlives the box: leaving the Data page (which empties it) or reloading
    the page keeps it, and the page offers it again. ``None`` means the user removed the file.
    """
    set_upload_error(role, None)
    widget_key = state.W_UPLOAD_BOXES[role]
    uploaded = st.session_state.get(widget_key)
    if uploaded is None:
        clear_box_upload(role)
        return
    if not hasattr(uploaded, "getvalue"):
        return  # a file already taken (Streamlit reports it as deleted): nothing new
    stored = dict(st.session_state[state.PENDING_UPLOADS])
    try:
        entry = uploads.store_pending_upload(session_token(), role, uploaded)
    except (DecodingInputError, OSError) as err:
        message = str(err) if isinstance(err, DecodingInputError) else (
            f"Your {role} file could not be stored on the server ({type(err).__name__}): try again.")
        clear_box_upload(role)  # the box now holds a refused file: the one it replaced is not offered either
        set_upload_error(role, message)
        return
    finally:
        uploads.release_uploaded_files(uploaded)
        del uploaded
        del st.session_state[widget_key]
    previous = stored.get(role)
    if previous is not None and previous.path != entry.path:
        uploads.discard_pending_func_upload(session_token(), previous)
    stored[role] = entry
    st.session_state[state.PENDING_UPLOADS] = stored


def set_upload_error(role: str, message: str | None) -> None:
    """Keep (or, with None, forget) the error of one upload box's last file; a load's error is cleared."""
    errors = dict(st.session_state[state.UPLOAD_ERRORS])
    errors.pop(role, None)
    if message is not None:
        errors[role] = message
    st.session_state[state.UPLOAD_ERRORS] = errors
    st.session_state[state.LOAD_ERROR] = None


def clear_box_upload(role: str) -> None:
    """Button callback: forget the stored labels table, mask or anatomy."""
    stored = dict(st.session_state[state.PENDING_UPLOADS])
    uploads.discard_pending_func_upload(session_token(), stored.pop(role, None))
    st.session_state[state.PENDING_UPLOADS] = stored
    set_upload_error(role, None)


def clear_func_upload() -> None:
    """Button callback: forget the stored 4D image (a data set loaded from it stays usable)."""
    uploads.discard_pending_func_upload(session_token(), st.session_state.get(state.PENDING_FUNC_UPLOAD))
    st.session_state[state.PENDING_FUNC_UPLOAD] = None
    set_upload_error("4D image", None)


def draw_stored_file(role: str, title: str, entry, on_remove) -> None:
    """One stored upload under its box: its name and size, and a button to forget it."""
    name_column, remove_column = st.columns([3, 1], vertical_alignment="center")
    name_column.text(f"{title} ready: {entry.name} ({entry.size / 1e6:,.1f} MB)"
                     if entry.size >= 100_000 else f"{title} ready: {entry.name} ({entry.size / 1e3:,.1f} kB)")
    key = state.W_UPLOAD_FUNC_CLEAR if role == "4D image" else state.W_UPLOAD_BOX_CLEAR[role]
    remove_column.button("Remove", key=key, on_click=on_remove, args=() if role == "4D image" else (role,),
                         help=f"Forget this {title.lower()} (a data set already loaded from it stays in use).")


def draw_refused_file(role: str, title: str, on_remove) -> None:
    """Under a box whose last file was refused: a button to go on without it (Load waits until then)."""
    key = state.W_UPLOAD_FUNC_CLEAR if role == "4D image" else state.W_UPLOAD_BOX_CLEAR[role]
    st.button(f"Clear the refused {title.lower()}", key=key, on_click=on_remove,
              args=() if role == "4D image" else (role,),
              help="Its error is shown below; upload another file, or clear it to go on without it.")



# -- one 4D file per run ---------------------------------------------------------------------------
#: The two multi-file boxes, by error key: the session-state list of their stored files, how
#: each file is checked (a role of `uploads.UPLOAD_BOXES`), the uploader's key, and the keys of
#: its "Remove all" and "Go on without the refused files" buttons.
RUN_BOXES = {
    "run files": (state.PENDING_RUN_FILES, "4D image", state.W_UPLOAD_RUN_FILES, state.W_UPLOAD_RUN_FILES_CLEAR,
                  state.W_UPLOAD_RUN_FILES_DISMISS),
    "run labels": (state.PENDING_RUN_LABELS, "labels", state.W_UPLOAD_RUN_LABELS, state.W_UPLOAD_RUN_LABELS_CLEAR,
                   state.W_UPLOAD_RUN_LABELS_DISMISS),
}


def take_run_uploads(box: str) -> None:
    """Run-files or run-labels uploader callback: store and check each new file, in run order.

    Files come in one by one or several at once and are added to those stored (the same
    content twice is kept once); each is checked as its kind wants (a 4D header, a
    readable table). Refused files are named in one error; the others are kept.
    """
    key, role, widget_key, _, _ = RUN_BOXES[box]
    uploaded_files = [item for item in (st.session_state.get(widget_key) or []) if hasattr(item, "getvalue")]
    if not uploaded_files:
        return  # files already taken (Streamlit reports them as deleted), or the box was emptied
    stored = list(st.session_state[key])
    refused = []
    token = session_token()
    try:
        for uploaded in uploaded_files:
            if len(stored) >= uploads.MAX_RUN_FILES:
                refused.append(f"'{safe_display_name(uploaded.name)}' was not taken: at most "
                               f"{uploads.MAX_RUN_FILES} files.")
                continue
            try:
                entry = uploads.store_pending_upload(token, role, uploaded)
            except DecodingInputError as err:
                refused.append(str(err))
                continue
            except OSError as err:
                refused.append(f"'{safe_display_name(uploaded.name)}' could not be stored on the server "
                               f"({type(err).__name__}): try again.")
                continue
            if all(entry.sha256 != kept.sha256 for kept in stored):
                stored.append(entry)
    finally:
        uploads.release_uploaded_files(*uploaded_files)
        del uploaded_files
        del st.session_state[widget_key]
    st.session_state[key] = uploads.run_order(stored)
    set_upload_error(box, " ".join(refused) if refused else None)


def clear_run_uploads(box: str) -> None:
    """Button callback: forget every stored file of a run box (a data set loaded from them stays usable)."""
    key = RUN_BOXES[box][0]
    for entry in st.session_state[key]:
        uploads.discard_pending_func_upload(session_token(), entry)
    st.session_state[key] = []
    set_upload_error(box, None)


def draw_run_uploads(box: str, title: str) -> None:
    """Under a run box: its stored files in run order (number, name, size) and a button to remove them.

    When some of the files last put in the box were refused (their error shows below the
    form and holds Load back), a button lets the user go on with the files that were kept.
    """
    key, _, _, clear_key, dismiss_key = RUN_BOXES[box]
    entries = st.session_state[key]
    if box in st.session_state[state.UPLOAD_ERRORS]:
        st.button("Go on without the refused files", key=dismiss_key, on_click=set_upload_error, args=(box, None),
                  help="Their errors are shown below; the files kept above stay.")
    if not entries:
        return
    name_column, remove_column = st.columns([3, 1], vertical_alignment="center")
    if len(entries) == 1:
        name_column.text(f"{title} ready (1): {entries[0].name}")
    else:
        name_column.text(f"{title} ready ({len(entries)}, in run order): first {entries[0].name}, "
                         f"last {entries[-1].name}")
    if len(entries) > 1:
        name_column.dataframe(
            pd.DataFrame({"run": range(1, len(entries) + 1), "file": [entry.name for entry in entries],
                          "MB": [round(entry.size / 1e6, 2) for entry in entries]}),
            hide_index=True, height=min(38 + 35 * len(entries), 180))
    remove_column.button("Remove all", key=clear_key, on_click=clear_run_uploads, args=(box,),
                         help=f"Forget these {title.lower()} (a data set already loaded from them stays in use).")
