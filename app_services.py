"""The app's side of the core: cached calls, upload storage, and small table helpers.

Pages call these functions instead of the core, so that every heavy step (loading,
masking, decoding) is cached process-wide under a content-digest key and going back
to a configuration already run is instant.

Why a bounded store rather than decorating the heavy functions themselves:
``st.cache_resource`` records every Streamlit element drawn while the cached function
runs and replays it on each cache hit. The heavy steps report progress to an
``st.progress`` bar drawn by the page, so a decorated function would replay stale
progress bars. `_store` is therefore one ``st.cache_resource`` singleton per kind of
object (data sets, masked matrices, results), bounded in entries, keyed by
content digests, and filled outside the decorated function. ``st.cache_resource.clear()``
empties it like any other resource cache.

Keys never contain anything a user can guess: an upload's key includes the session's
random token, so one session can never be handed another session's data.

Security on a shared server (see the README's Deployment section):

* Everything made from an upload (the data set, its masked matrices, results,
  permutations) lives in the session's own `decoding_core.sessions.SessionStore`,
  never in the process-wide stores; only the built-in data sets (public, the same
  for everyone) and what is computed from them are shared.
* A janitor purges the store of a session whose browser is gone (after
  ``$DECODING_LAB_SESSION_GRACE_SECONDS``, default 120 s, checked every
  ``$DECODING_LAB_SESSION_SWEEP_SECONDS``, default 10 s), deletes its upload folder,
  drops Streamlit's copy of its uploaded bytes and closes the stored session.
* Heavy work (loading, masking, decoding, permutations, sweeps) runs through
  `decoding_core.jobs`: at most a few jobs at once, the others wait in a queue and
  are told their place in it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from decoding_core import datasets, jobs, paths, sessions
from decoding_core.io import nifti
from decoding_core.config import DecodingConfig
from decoding_core.errors import DecodingInputError

#: How many objects of each kind the process keeps (all sessions together).
MAX_DATASETS = 6
MAX_MASKED = 8
MAX_RESULTS = 32
MAX_PERMUTATIONS = 16

#: Upload caps of the labels table and of 3D images (MB); the 4D image's is server.maxUploadSize.
MAX_LABELS_UPLOAD_MB = max(1, datasets.MAX_LABELS_BYTES // 1024**2)
MAX_3D_UPLOAD_MB = 64

ProgressCallback = Callable[[float, str], None]


class BoundedStore:
    """A thread-safe least-recently-used mapping with at most ``max_entries`` items.

    Parameters
    ----------
    max_entries : int
        Number of entries kept; the least recently used one is dropped beyond it.
    """

    def __init__(self, max_entries: int):
        self.max_entries = int(max_entries)
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        """The value stored under ``key``, or None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key]

    def put(self, key, value) -> None:
        """Store ``value`` under ``key``, dropping the oldest entries beyond the bound."""
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __contains__(self, key) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)


@st.cache_resource(show_spinner=False)
def _store(kind: str, max_entries: int) -> BoundedStore:
    """The process-wide store of one kind of object (see the module docstring)."""
    return BoundedStore(max_entries)


def _get_or_compute(kind: str, max_entries: int, key, compute: Callable[[], object]):
    store = _store(kind, max_entries)
    value = store.get(key)
    if value is None:
        # Computed outside any lock: a slow load must not block other sessions.
        value = compute()
        store.put(key, value)
    return value


def is_cached(kind: str, key, dataset=None) -> bool:
    """Whether an object of ``kind`` ("results", ...) is already stored under ``key``.

    Give ``dataset`` for objects made from it: an upload's live in the session's own store.
    """
    if dataset is not None and owned_by_session(dataset):
        return (kind,) + tuple(key) in session_store()
    limits = {"datasets": MAX_DATASETS, "masked": MAX_MASKED, "results": MAX_RESULTS}
    return key in _store(kind, limits[kind])


# -- sessions: what one browser session owns -----------------------------------------
def _runtime():
    """Streamlit's runtime, or None (AppTest and bare scripts run without one)."""
    from streamlit.runtime import Runtime

    return Runtime.instance() if Runtime.exists() else None


def _session_is_alive(session_id: str) -> bool:
    runtime = _runtime()
    # Without a runtime nobody can tell: never purge (AppTest, scripts).
    return runtime is None or runtime.is_active_session(session_id)


def _release_session(token: str, session_id: str | None) -> None:
    """After a purge: drop Streamlit's copy of the session's uploads and its stored session.

    Streamlit keeps a disconnected session (with its uploaded files) until some other
    session disconnects (streamlit issues 9218, 12506); this closes it now.
    """
    runtime = _runtime()
    if runtime is None or session_id is None:
        return
    runtime.uploaded_file_mgr.remove_session_files(session_id)
    if not runtime.is_active_session(session_id):
        # Public, thread-safe: marks the session non-resumable and closes it on the event loop.
        runtime.clear_user_info_for_session(session_id)


def _on_new_session(store: sessions.SessionStore) -> None:
    token = store.token
    if token.isalnum():
        store.add_cleanup(lambda: shutil.rmtree(upload_root(token), ignore_errors=True))


@st.cache_resource(show_spinner=False)
def session_registry() -> sessions.SessionRegistry:
    """The process-wide registry of session stores, with its janitor running."""
    registry = sessions.SessionRegistry(
        is_alive=_session_is_alive, on_expire=_release_session, on_create=_on_new_session,
    )
    registry.start_janitor()
    return registry


def session_store() -> sessions.SessionStore:
    """This browser session's own store (marked as seen now)."""
    import state
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    token = st.session_state.get(state.SESSION_TOKEN)
    if not token:
        state.init_state()
        token = st.session_state[state.SESSION_TOKEN]
    context = get_script_run_ctx(suppress_warning=True)
    return session_registry().open(token, session_id=context.session_id if context else None)


def touch_session() -> None:
    """Record that this session is alive (called on every run by ``app.main``)."""
    session_store()


def owned_by_session(dataset) -> bool:
    """Whether ``dataset`` came from this session's uploads (then nothing of it is shared)."""
    return getattr(dataset, "name", None) == "upload"


def _scoped_get_or_compute(dataset, kind: str, max_entries: int, key, compute: Callable[[], object]):
    """`_get_or_compute` in the session's own store for uploads, in the shared one otherwise."""
    if owned_by_session(dataset):
        return session_store().get_or_compute((kind,) + tuple(key), compute)
    return _get_or_compute(kind, max_entries, key, compute)


def _raw_voxel_cache(dataset):
    """The raw-matrix cache for masking: none kept for uploads, the shared one (None) otherwise.

    An upload's masked matrices are kept in the session's store (bounded with all sessions
    together); the core's process-wide raw cache must never hold them.
    """
    if not owned_by_session(dataset):
        return None
    from decoding_core.masking import RawVoxelCache

    return RawVoxelCache(0)


def release_uploaded_files(*uploaded_files) -> None:
    """Drop Streamlit's in-memory copy of uploaded files once the app has read them.

    Streamlit keeps every uploaded file's bytes in server memory for the whole session;
    after a successful load the app works from its own copy, so these are released.
    """
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    runtime = _runtime()
    context = get_script_run_ctx(suppress_warning=True)
    if runtime is None or context is None:
        return
    for uploaded in uploaded_files:
        file_id = getattr(uploaded, "file_id", None)
        if file_id:
            runtime.uploaded_file_mgr.remove_file(context.session_id, file_id)


def safe_display_name(name, max_chars: int = 80) -> str:
    """An uploaded file's name made safe to show: printable, no markup, bounded length.

    The name is never used as a path; this keeps it from carrying Markdown or HTML
    (links, images) into the page.
    """
    text = "".join(ch if ch.isprintable() else "?" for ch in str(name or ""))
    text = "".join(ch if ch.isalnum() or ch in " ._-()+" else "_" for ch in text).strip()
    if len(text) > max_chars:
        text = text[: max_chars - 3] + "..."
    return text or "unnamed file"


def plain_markdown(text) -> str:
    """``text`` with ``[``, ``]``, ``<`` and ``>`` escaped, for ``st.error`` and friends.

    Error messages may quote what a user uploaded (a column name, a header cell); escaped,
    such text cannot become a link or an image (a request to another site) in the page.
    """
    text = str(text)
    for char in ("\\", "[", "]", "<", ">"):
        text = text.replace(char, "\\" + char)
    return text


# -- capacity: heavy work through the job gate --------------------------------------------
def run_heavy(compute: Callable[[], object]):
    """Run ``compute()`` through the job gate; a waiting user sees their place in the queue.

    At most ``decoding_core.jobs.default_max_jobs()`` heavy jobs run at once in the
    process; beyond that, this shows "you are number N in the queue" until the job
    starts. Exceptions propagate; the slot is always released.
    """
    notice = {"placeholder": None}
    gate = jobs.get_gate()

    def on_wait(position: int) -> None:
        if notice["placeholder"] is None:
            notice["placeholder"] = st.empty()
        notice["placeholder"].info(
            f"The app is busy: you are number {position} in the queue. Your job starts as soon as one "
            f"of the {gate.max_jobs} running jobs finishes.",
            icon=":material/hourglass_top:",
        )

    try:
        return jobs.run_job(compute, on_wait=on_wait)
    finally:
        if notice["placeholder"] is not None:
            notice["placeholder"].empty()
        _return_freed_memory()


def _libc():
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:  # not glibc (macOS, Windows): nothing to tune
        return None


_LIBC = _libc()
if _LIBC is not None and hasattr(_LIBC, "mallopt"):
    # glibc gives each thread (each session's script run) its own malloc arena, whose freed
    # memory stays in the process: with many sessions that alone takes hundreds of MB.
    _LIBC.mallopt(-8, 2)  # M_ARENA_MAX = 2


def _return_freed_memory() -> None:
    """Hand memory freed by a finished job back to the system (glibc ``malloc_trim``)."""
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)


# -- progress ----------------------------------------------------------------------
def run_with_status(work: Callable[[ProgressCallback], object], *, label: str,
                    done_label: str = "Finished", failed_label: str = "The run stopped"):
    """Run ``work(progress)`` inside an ``st.status`` box with a progress bar.

    Returns
    -------
    (value, error) : tuple
        ``work``'s return value and None, or None and the exception it raised (the caller
        shows it, so what the user had before stays in place).
    """
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="Masking the volumes")
        try:
            value = work(progress_bar_callback(bar))
        except Exception as err:
            status.update(label=failed_label, state="error")
            return None, err
        status.update(label=done_label, state="complete", expanded=False)
        return value, None


def progress_bar_callback(bar) -> ProgressCallback:
    """A core progress callback that moves an ``st.progress`` bar.

    Parameters
    ----------
    bar : streamlit element returned by ``st.progress``

    Returns
    -------
    callable
        ``progress(fraction, message)``; updates the bar only when the percentage or the
        message changes, so a long loop does not flood the browser.
    """
    last = {"percent": -1, "message": None}

    def progress(fraction: float, message: str = "") -> None:
        try:
            fraction = float(fraction)
        except (TypeError, ValueError):
            fraction = 0.0
        fraction = min(max(fraction, 0.0), 1.0)
        percent = int(fraction * 100)
        if percent != last["percent"] or message != last["message"]:
            last["percent"], last["message"] = percent, message
            bar.progress(fraction, text=str(message) if message else None)

    return progress


# -- data sets -------------------------------------------------------------------------
def load_builtin_dataset(spec: str, progress: ProgressCallback | None = None):
    """Load the built-in simulated data set (``"simulated"``) or a Haxby subject (``"haxby:N"``).

    Raises
    ------
    DecodingInputError
        For an unknown spec, or when the Haxby download fails (offline).
    """

    def compute():
        if spec == "simulated":
            return datasets.load_simulated()
        if spec.startswith("haxby:"):
            return datasets.load_haxby(int(spec.partition(":")[2]), progress=progress)
        raise DecodingInputError(f"Unknown data set {spec!r}. Use 'simulated' or 'haxby:N'.")

    return _get_or_compute("datasets", MAX_DATASETS, ("builtin", spec), lambda: run_heavy(compute))


def upload_root(session_token: str) -> Path:
    """This session's private upload folder (``<data dir>/uploads/<random token>``)."""
    if not session_token or not session_token.isalnum():
        raise ValueError("The session token must be a non-empty alphanumeric string.")
    return paths.data_dir() / "uploads" / session_token


def _nifti_file_name(stem: str, data: bytes) -> str:
    # The name on disk is ours; only the content decides the suffix (gzip magic bytes).
    return f"{stem}.nii.gz" if data[:2] == b"\x1f\x8b" else f"{stem}.nii"


#: Subfolder of a session's upload folder holding the 4D image uploaded but not loaded yet.
PENDING_FOLDER = "pending"


def _pending_func_path(session_token: str, entry) -> Path | None:
    """The stored file of a pending-upload entry, if it lies in this session's pending folder."""
    if not isinstance(entry, dict) or not entry.get("path"):
        return None
    folder = (upload_root(session_token) / PENDING_FOLDER).resolve()
    path = Path(entry["path"]).resolve()
    return path if path.parent == folder else None


def store_pending_func_upload(session_token: str, uploaded) -> dict:
    """Write an uploaded 4D image into this session's folder, so Streamlit need not hold it.

    Called from the uploader's ``on_change`` callback, where Streamlit hands over the
    file without copying it; afterwards the page drops Streamlit's copy, and the image
    lives on disk only until it is loaded.

    Parameters
    ----------
    session_token : str
        The session's random token (names its private upload folder).
    uploaded : streamlit UploadedFile
        Anything with ``getvalue()`` (the bytes) and ``name`` (shown only).

    Returns
    -------
    dict
        ``{"path", "sha256", "name", "size"}``: the app's own file name (never the
        uploaded name), the SHA-256 of the bytes (hex), the name made safe to show, and
        the size in bytes. Store it under ``state.PENDING_FUNC_UPLOAD``.
    """
    data = uploaded.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    folder = upload_root(session_token) / PENDING_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _nifti_file_name(f"func-{sha256[:24]}", data)
    # Through a rename: a file hard-linked from a loaded data set is never rewritten under it.
    with paths.atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return {"path": str(path), "sha256": sha256, "name": safe_display_name(getattr(uploaded, "name", "")),
            "size": len(data)}


def discard_pending_func_upload(session_token: str, entry) -> None:
    """Delete the file of a pending 4D-image entry (a data set loaded from it keeps its own link)."""
    path = _pending_func_path(session_token, entry)
    if path is not None:
        path.unlink(missing_ok=True)


def _link_or_copy(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` without reading it into memory (a hard link when possible)."""
    with paths.atomic_path(target) as temporary:
        try:
            os.link(source, temporary)
        except OSError:  # a file system without hard links: copy in chunks
            shutil.copyfile(source, temporary)


def load_uploaded_dataset(
    session_token: str,
    func_path,
    func_sha256: str,
    labels_bytes: bytes,
    *,
    label_column: str,
    run_column: str | None,
    mask_bytes: bytes | None = None,
    anat_bytes: bytes | None = None,
    tr: float | None = None,
    title: str | None = None,
):
    """Gather the uploaded files in this session's folder and load them as a `Dataset`.

    The files are stored under names the app chooses (``func.nii.gz``, ``labels.txt``,
    ``mask.nii.gz``, ``anat.nii.gz``) in a folder named by the digest of their contents,
    so a new upload never overwrites the files of the data set in use. The 4D image is
    already on disk (see `store_pending_func_upload`): it is hard-linked (or copied)
    into that folder, never read into memory here. When loading fails, the new folder
    is removed again; the pending image stays, so the user can fix another file.

    Parameters
    ----------
    session_token : str
        The session's random token.
    func_path : str or pathlib.Path
        The stored 4D image: must lie in this session's pending-upload folder.
    func_sha256 : str
        Its SHA-256 (64 hex digits), as returned by `store_pending_func_upload`.
    labels_bytes, mask_bytes, anat_bytes : bytes
        The other uploads (small: capped by their uploaders).
    label_column, run_column, tr, title
        As for `decoding_core.datasets.load_files`.

    Raises
    ------
    DecodingInputError
        Whatever `decoding_core.datasets.load_files` finds wrong with the files, or a
        stored image that is gone (upload it again).
    ValueError
        A ``func_path`` outside the session's folder or a malformed digest (a bug, not input).
    """
    source = _pending_func_path(session_token, {"path": str(func_path)})
    if source is None:
        raise ValueError("The 4D image must be a file stored by store_pending_func_upload for this session.")
    if not (isinstance(func_sha256, str) and len(func_sha256) == 64
            and all(c in "0123456789abcdef" for c in func_sha256)):
        raise ValueError("func_sha256 must be the 64 hex digits of the image's SHA-256.")
    if not source.is_file():
        raise DecodingInputError(
            "The uploaded 4D image is no longer stored on the server (it is removed when a session "
            "is closed or idle). Upload it again, then press Load."
        )
    digest = hashlib.sha256()
    digest.update(bytes.fromhex(func_sha256))
    for part in (labels_bytes, mask_bytes or b"", anat_bytes or b""):
        digest.update(hashlib.sha256(part).digest())
    digest.update(repr((label_column, run_column, tr)).encode())
    upload_digest = digest.hexdigest()[:24]
    key = ("upload", session_token, upload_digest)

    def compute():
        folder = upload_root(session_token) / upload_digest
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with open(source, "rb") as handle:
                magic = handle.read(2)
            stored_func = folder / _nifti_file_name("func", magic)
            _link_or_copy(source, stored_func)
            # Hashed when it was stored: spare `load_files` reading 300 MB again.
            nifti.remember_file_digest(stored_func, func_sha256)
            labels_path = folder / "labels.txt"
            labels_path.write_bytes(labels_bytes)
            mask_path = anat_path = None
            if mask_bytes:
                mask_path = folder / _nifti_file_name("mask", mask_bytes)
                mask_path.write_bytes(mask_bytes)
            if anat_bytes:
                anat_path = folder / _nifti_file_name("anat", anat_bytes)
                anat_path.write_bytes(anat_bytes)
            return datasets.load_files(
                stored_func, labels_path, label_column=label_column, run_column=run_column,
                mask=mask_path, anat=anat_path, tr=tr, title=title,
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    # This session's own store: another session can never be handed it, and it goes
    # when the session ends.
    return session_store().get_or_compute(("datasets",) + key, lambda: run_heavy(compute))


#: The file-name stems the app gives uploads on disk, by role (see `load_uploaded_dataset`).
_STORED_UPLOAD_STEMS = {"4D image": "func", "labels": "labels", "mask": "mask", "anatomy": "anat"}


def with_upload_names(message: str, names: dict) -> str:
    """Say the user's own file names in a message that names the app's stored copies.

    ``names`` maps a role ("4D image", "labels", "mask", "anatomy") to the uploaded file's
    name, already made safe to show (`safe_display_name`).
    """
    import re

    for role, stem in _STORED_UPLOAD_STEMS.items():
        if role in names:
            message = re.sub(rf"(')?(?<![\w/.-]){stem}\.(?:nii\.gz|nii|txt)(?![\w.])(?(1)')",
                             lambda _match, name=names[role]: f"'{name}'", message)
    return message


def read_label_columns(labels_bytes: bytes) -> list[str]:
    """Column names of an uploaded labels table (for the column pickers).

    Raises
    ------
    DecodingInputError
        When the bytes are not a readable table.
    """
    table = datasets.read_labels_table(labels_bytes)
    return [str(column) for column in table.columns]


def default_column(columns: list[str], preferred: str) -> int:
    """Index of ``preferred`` in ``columns`` (case-insensitive), else 0."""
    lowered = [c.lower() for c in columns]
    return lowered.index(preferred) if preferred in lowered else 0


# -- descriptions ------------------------------------------------------------------------
def dataset_summary(dataset) -> dict:
    """Shape, voxel size, TR, number of volumes and runs, as display strings."""
    voxel = " x ".join(f"{v:.3g}" for v in dataset.voxel_size)
    return {
        "Image shape": " x ".join(str(int(s)) for s in dataset.shape[:3]),
        "Voxel size (mm)": voxel,
        "TR (s)": "unknown" if dataset.tr is None else f"{float(dataset.tr):g}",
        "Volumes": str(dataset.n_volumes),
        "Runs": str(dataset.n_runs) if dataset.n_runs else "none",
    }


def mask_voxel_counts(dataset) -> dict:
    """Number of voxels in each of the data set's masks, in the data set's order."""
    return {name: int(np.count_nonzero(np.asanyarray(img.dataobj))) for name, img in dataset.masks.items()}


def mask_label(name: str, counts: dict) -> str:
    """``"vt - Ventral temporal cortex (464 voxels)"`` for a select box."""
    title = datasets.MASK_TITLES.get(name, name)
    count = counts.get(name)
    return f"{name} - {title} ({count} voxels)" if count is not None else f"{name} - {title}"


def condition_names(dataset) -> list[str]:
    """The data set's conditions, Haxby categories first in their usual order, then the rest."""
    present = list(pd.unique(pd.Series(dataset.conditions)))
    known = [c for c in datasets.HAXBY_CATEGORIES if c in present]
    return known + sorted(c for c in present if c not in known)


def condition_run_counts(dataset) -> pd.DataFrame:
    """Volumes per condition (rows) and run (columns), with totals."""
    labels = pd.Series(dataset.conditions, name="condition")
    runs = dataset.runs
    if runs is None:
        return labels.value_counts().rename("volumes").to_frame()
    table = pd.crosstab(labels, pd.Series(runs, name="run"), margins=True, margins_name="total")
    table.columns = [str(c) for c in table.columns]
    table.index = [str(i) for i in table.index]
    return table


def selection_summary(dataset, conditions, mask_name: str) -> dict:
    """What a run on these conditions and mask will decode, before any masking.

    Returns
    -------
    dict
        ``n_samples``, ``n_voxels``, ``class_counts`` (DataFrame: condition, volumes,
        share), ``n_runs`` (runs holding a selected sample).
    """
    labels = dataset.conditions
    keep = np.isin(labels, list(conditions))
    selected = pd.Series(labels[keep], name="condition")
    counts = selected.value_counts().reindex(list(conditions), fill_value=0)
    table = pd.DataFrame({"condition": counts.index.astype(str), "volumes": counts.to_numpy()})
    total = max(int(keep.sum()), 1)
    table["share"] = (table["volumes"] / total).round(3)
    runs = dataset.runs
    n_runs = 0 if runs is None else int(len(np.unique(runs[keep])))
    voxel_counts = mask_voxel_counts(dataset)
    return {
        "n_samples": int(keep.sum()),
        "n_voxels": int(voxel_counts.get(mask_name, 0)),
        "class_counts": table,
        "n_runs": n_runs,
    }


def labels_preview(dataset) -> pd.DataFrame:
    """The labels table with the volume index and onset time, for display."""
    table = dataset.labels.copy()
    table.insert(0, "volume", np.arange(len(table)))
    if dataset.tr:
        table.insert(1, "time (s)", np.round(np.arange(len(table)) * float(dataset.tr), 3))
    # Arrow-backed strings display fine, but object columns keep older clients happy.
    return table


# -- masking and decoding ---------------------------------------------------------------
def masked_data(dataset, mask_name: str, *, standardize: bool = True, detrend: bool = False,
                smoothing_fwhm=None, progress: ProgressCallback | None = None):
    """The data set masked with one mask (all volumes), cached by content digest."""
    from decoding_core import masking

    key = (dataset.digest, mask_name, bool(standardize), bool(detrend), smoothing_fwhm)

    def compute():
        masked = masking.mask_dataset(
            dataset, mask_name, standardize=standardize, detrend=detrend,
            smoothing_fwhm=smoothing_fwhm, progress=progress, cache=_raw_voxel_cache(dataset),
        )
        # Shared by every session: make sure nobody can modify it in place.
        try:
            masked.X.setflags(write=False)
        except (AttributeError, ValueError):
            pass
        return masked

    return _scoped_get_or_compute(dataset, "masked", MAX_MASKED, key, lambda: run_heavy(compute))


def result_key(dataset, config: DecodingConfig) -> tuple:
    """The cache key of one run: the data set's and the configuration's digests."""
    return (dataset.digest, config.digest())


def run_decoding(dataset, config: DecodingConfig, progress: ProgressCallback | None = None):
    """Mask (cached) and decode (cached) ``dataset`` under ``config``.

    Progress runs from 0 to 0.5 while masking and 0.5 to 1 while decoding.
    """
    from decoding_core import decoding

    def masking_progress(fraction, message=""):
        if progress is not None:
            progress(0.5 * float(fraction), message or "Masking")

    def decoding_progress(fraction, message=""):
        if progress is not None:
            progress(0.5 + 0.5 * float(fraction), message or "Decoding")

    def compute():
        masked = masked_data(
            dataset, config.mask_name, standardize=config.standardize, detrend=config.detrend,
            smoothing_fwhm=config.smoothing_fwhm, progress=masking_progress,
        )
        return decoding.decode(masked, config, progress=decoding_progress, tr=dataset.tr)

    result = _scoped_get_or_compute(dataset, "results", MAX_RESULTS, result_key(dataset, config),
                                    lambda: run_heavy(compute))
    if progress is not None:
        progress(1.0, "Done")
    return result


def config_from_values(values: dict) -> DecodingConfig:
    """Build the `DecodingConfig` the stored values describe.

    Raises
    ------
    DecodingInputError
        When a setting is invalid (one condition selected, ...).
    """
    return DecodingConfig.from_dict(dict(values))


def check_design(dataset, config: DecodingConfig) -> list[str]:
    """Problems that would stop a run, found before running (empty when none).

    Looks at the selected samples' labels and runs only, never at the image.
    """
    problems = []
    if config.mask_name not in dataset.masks:
        problems.append(
            f"The data set has no mask named {config.mask_name!r}; choose one of {sorted(dataset.masks)}."
        )
    present = set(dataset.conditions)
    missing = [c for c in config.conditions if c not in present]
    if missing:
        problems.append(f"The data set has no volumes labelled {missing}; choose among {sorted(present)}.")
    if config.cv == "leave-one-run-out":
        runs = dataset.runs
        keep = np.isin(dataset.conditions, list(config.conditions))
        n_runs = 0 if runs is None else len(np.unique(runs[keep]))
        if n_runs < 2:
            problems.append(
                f"Leave-one-run-out needs at least two runs, but the selected samples come from {n_runs} run(s). "
                "Choose another evaluation scheme (K-fold or hold-out), or load a labels table with a run column."
            )
    return problems


# -- results ---------------------------------------------------------------------------------
def fold_scores_table(result) -> pd.DataFrame:
    """One row per fold: fold, test run (leave-one-run-out), test samples, score, chance level."""
    from decoding_core import export

    table = export.fold_table(result)
    table["score"] = table["score"].round(4)
    table["chance"] = round(float(result.chance_level), 4)
    return table


def class_metrics(result) -> pd.DataFrame:
    """Per-class precision, recall and support from the out-of-sample predictions."""
    predictions = result.predictions
    true = predictions["true"].to_numpy(dtype=str)
    predicted = predictions["predicted"].to_numpy(dtype=str)
    rows = []
    for name in result.classes:
        name = str(name)
        predicted_as = predicted == name
        truly = true == name
        hits = int(np.sum(predicted_as & truly))
        rows.append({
            "class": name,
            "precision": round(hits / predicted_as.sum(), 3) if predicted_as.any() else float("nan"),
            "recall": round(hits / truly.sum(), 3) if truly.any() else float("nan"),
            "support": int(truly.sum()),
        })
    return pd.DataFrame(rows)


def misclassified(result) -> pd.DataFrame:
    """The predictions that were wrong."""
    predictions = result.predictions
    wrong = predictions[~predictions["correct"].to_numpy(dtype=bool)]
    return wrong.reset_index(drop=True)


def available_map_kinds(result) -> list[str]:
    """Which maps the result holds: ``weights`` always; ``pattern``/``stability`` when computed."""
    kinds = ["weights"]
    for kind in ("pattern", "stability"):
        if _extra_image(result, kind) is not None:
            kinds.append(kind)
    return kinds


def _extra_image(result, kind: str):
    extras = getattr(result, "extras", None) or {}
    for name in (f"{kind}_img", kind, f"{kind}_map"):
        value = extras.get(name)
        if value is not None and hasattr(value, "affine"):
            return value
    return None


def map_names(result) -> list[str]:
    """Names of the maps in the weight image: one for two classes, one per class otherwise."""
    n_maps = int(np.asarray(result.weights).shape[0]) if np.ndim(result.weights) == 2 else 1
    if n_maps == 1:
        classes = [str(c) for c in result.classes]
        return [" vs ".join(classes[::-1]) if len(classes) == 2 else "weights"]
    return [f"{c} vs rest" for c in result.classes][:n_maps]


def map_image(result, kind: str = "weights", index: int = 0):
    """The 3D map to draw: the raw weights, the Haufe pattern or the stability map, of one class."""
    import nibabel as nib

    img = result.weight_img if kind == "weights" else _extra_image(result, kind)
    if img is None:
        img = result.weight_img
    if len(img.shape) == 4:
        index = min(max(int(index), 0), img.shape[3] - 1)
        data = np.asanyarray(img.dataobj)[..., index]
        return nib.Nifti1Image(np.asarray(data, dtype=np.float32), img.affine)
    return img


def map_abs_max(img) -> float:
    """Largest absolute value of a map (for the threshold slider's range)."""
    value = float(np.nanmax(np.abs(np.asanyarray(img.dataobj)))) if np.size(img.shape) else 0.0
    return value if np.isfinite(value) else 0.0


def default_cut(img) -> tuple:
    """Where to cut a map first: the core's choice, else the centre of the grid."""
    from decoding_core import plotting

    try:
        cut = plotting.default_cut_coords(img)
        return tuple(int(v) for v in cut)
    except Exception:
        return tuple(int(s) // 2 for s in img.shape[:3])


def clamp_cut(cut, shape) -> tuple:
    """A cut position inside a grid of ``shape``."""
    return tuple(min(max(int(v), 0), int(s) - 1) for v, s in zip(cut, shape[:3]))


def cut_from_selection(selection) -> tuple | None:
    """The voxel (i, j, k) a click on a slice chart selected, or None."""
    from decoding_core import plotting

    if not selection:
        return None
    try:
        voxel = plotting.voxel_from_click(selection)
    except Exception:
        voxel = None
    if voxel is None:
        return None
    return tuple(int(v) for v in voxel)


# -- significance -----------------------------------------------------------------------------
def significance_available() -> bool:
    """Whether `decoding_core.significance` is installed (written by another helper)."""
    try:
        from decoding_core import significance  # noqa: F401
    except ImportError:
        return False
    return True


def selected_masked(dataset, config: DecodingConfig, progress: ProgressCallback | None = None):
    """The masked data reduced to the configuration's conditions (input of significance tests)."""
    from decoding_core import masking

    masked = masked_data(
        dataset, config.mask_name, standardize=config.standardize, detrend=config.detrend,
        smoothing_fwhm=config.smoothing_fwhm, progress=progress,
    )
    return masking.select_conditions(masked, config.conditions)


def dummy_fold_scores(dataset, config: DecodingConfig) -> dict:
    """Per-fold scores of scikit-learn's dummy classifiers under the same scheme and scoring."""
    from decoding_core import significance

    def compute():
        return significance.dummy_scores(selected_masked(dataset, config), config)

    key = ("dummy",) + result_key(dataset, config)
    return _scoped_get_or_compute(dataset, "permutations", MAX_PERMUTATIONS, key, lambda: run_heavy(compute))


def dummy_scores(dataset, config: DecodingConfig) -> pd.DataFrame:
    """Mean score of scikit-learn's dummy classifiers under the same scheme."""
    scores = dummy_fold_scores(dataset, config)
    return pd.DataFrame({
        "strategy": list(scores),
        "mean score": [round(float(np.mean(v)), 4) for v in scores.values()],
    })


def score_comparison_figure(result, dataset):
    """The decoder's fold scores beside the dummy classifiers' (same folds, same scoring)."""
    from decoding_core import plotting

    scores = {"decoder": result.fold_scores}
    for strategy, values in dummy_fold_scores(dataset, result.config).items():
        scores[f"dummy: {strategy}"] = values
    return plotting.plot_score_comparison(scores, chance=result.chance_level)


def permutation_test(dataset, config: DecodingConfig, n_permutations: int, *,
                     progress: ProgressCallback | None = None, should_stop=None):
    """Run (or reuse) a permutation test; a stopped test is not cached."""
    from decoding_core import significance

    key = ("permutation", int(n_permutations)) + result_key(dataset, config)
    if owned_by_session(dataset):
        store, key = session_store(), ("permutations",) + key
    else:
        store = _store("permutations", MAX_PERMUTATIONS)
    cached = store.get(key)
    if cached is not None:
        return cached
    outcome = run_heavy(lambda: significance.permutation_test(
        selected_masked(dataset, config), config, n_permutations=int(n_permutations), seed=0,
        progress=progress, should_stop=should_stop,
    ))
    if not getattr(outcome, "stopped_early", False):
        store.put(key, outcome)
    return outcome


# -- session helpers (Streamlit-side, used by every page) -------------------------------------------
def current_dataset():
    """The session's data set; loads the built-in simulated one the first time.

    Returns None (after showing an error) only when even the built-in data set fails.
    """
    import state

    dataset = st.session_state.get(state.DATASET)
    if dataset is not None:
        return dataset
    try:
        with st.spinner("Preparing the built-in simulated data set (first start only)..."):
            dataset = load_builtin_dataset("simulated")
    except Exception as err:  # nothing else to fall back to: say so clearly
        show_error(err, "preparing the built-in simulated data set")
        return None
    adopt_dataset(dataset, "simulated")
    return dataset


def adopt_dataset(dataset, spec: str, display_names: dict | None = None) -> None:
    """Make ``dataset`` the session's data set (call only after it loaded successfully)."""
    import dataclasses

    import state

    if display_names:
        # The core describes the app's stored copies (func.nii.gz); say the user's own names,
        # and put the image's name in the title, so runs on two uploads tell apart in History.
        image_name = display_names.get("4D image")
        dataset = dataclasses.replace(
            dataset,
            title=f"{dataset.title} ({image_name})" if image_name else dataset.title,
            description=with_upload_names(dataset.description, display_names),
            source=with_upload_names(dataset.source, display_names),
        )
    st.session_state[state.DATASET] = dataset
    st.session_state[state.DATASET_SPEC] = spec
    st.session_state[state.UPLOAD_DISPLAY_NAMES] = dict(display_names or {})
    st.session_state[state.LOAD_ERROR] = None
    st.session_state[state.HAXBY_FAILED] = False
    if st.session_state.get(state.ROI_MASK_NAME) not in dataset.masks:
        st.session_state[state.ROI_MASK_NAME] = None
    st.session_state[state.CONFIG_VALUES] = sanitize_config_values(
        st.session_state.get(state.CONFIG_VALUES) or state.default_config_values(), dataset
    )


def default_mask_name(dataset) -> str:
    """``vt`` when the data set has it (the tutorial's mask), else its first mask."""
    for name in ("vt", "uploaded", "epi"):
        if name in dataset.masks:
            return name
    return next(iter(dataset.masks))


def default_conditions(dataset) -> list[str]:
    """Face and cat when present (the tutorial's pair), else the first two non-rest conditions."""
    names = condition_names(dataset)
    if "face" in names and "cat" in names:
        return ["face", "cat"]
    candidates = [c for c in names if c.lower() != "rest"] or names
    return candidates[:2]


def sanitize_config_values(values: dict, dataset) -> dict:
    """Adapt stored settings to a data set: a mask it has, conditions it has.

    A choice the user made on purpose (one condition only) is kept, so the Configure
    page can tell them to fix it; only choices the data set cannot honour are replaced.
    """
    values = dict(values)
    if values.get("mask_name") not in dataset.masks:
        values["mask_name"] = default_mask_name(dataset)
    present = set(condition_names(dataset))
    conditions = [c for c in values.get("conditions", ()) if c in present]
    if len(conditions) < len(values.get("conditions", ())) and len(conditions) < 2:
        conditions = default_conditions(dataset)
    values["conditions"] = list(conditions)
    return values


def show_error(err: BaseException, doing: str) -> None:
    """Show an error as one clear message, never a traceback.

    `DecodingInputError` messages already say what is wrong and what to do; anything
    else is reported with what the app was doing.
    """
    if isinstance(err, DecodingInputError):
        st.error(plain_markdown(err), icon=":material/error:")
    elif isinstance(err, MemoryError):
        st.error(f"Not enough memory while {doing}. Try a smaller mask or a smaller image.",
                 icon=":material/error:")
    else:
        st.error(f"Something went wrong while {doing}: {type(err).__name__}: {err}",
                 icon=":material/error:")


def extra_map(result, kind: str):
    """The whole Haufe-pattern or stability image of a result (all classes), or the weights."""
    img = _extra_image(result, kind)
    return result.weight_img if img is None else img


# -- permutation test in chunks ----------------------------------------------------------------------
#: Permutations run per call of the core, so a Stop keeps all chunks finished before it.
PERMUTATION_CHUNK = 50


def new_permutation_run(n_permutations: int) -> dict:
    """The session-state record of a permutation test about to run."""
    return {"key": None, "n_target": int(n_permutations), "n_done": 0, "null_scores": [],
            "observed": None, "running": True, "stopped_early": False}


def continue_permutations(run: dict, dataset, config: DecodingConfig, *, progress=None, should_stop=None) -> None:
    """Run the remaining permutations of ``run`` chunk by chunk, updating ``run`` in place.

    Each chunk has its own seed (the chunk's index), so chunks are independent
    permutations and the test is reproducible for a given number of permutations.
    """
    from decoding_core import significance

    selected = selected_masked(dataset, config)
    while run["running"] and run["n_done"] < run["n_target"]:
        if should_stop is not None and should_stop():
            run["running"] = False
            run["stopped_early"] = True
            break
        chunk = min(PERMUTATION_CHUNK, run["n_target"] - run["n_done"])
        done_before, target = run["n_done"], run["n_target"]

        def chunk_progress(fraction, message="", done_before=done_before, chunk=chunk):
            if progress is not None:
                done = done_before + float(fraction) * chunk
                progress(done / target, f"Permutation {int(done)} of {target}")

        # One slot per chunk, so other users' jobs can start between chunks.
        outcome = run_heavy(lambda: significance.permutation_test(
            selected, config, n_permutations=chunk, seed=done_before // PERMUTATION_CHUNK,
            progress=chunk_progress, should_stop=should_stop,
        ))
        scores = [float(v) for v in np.asarray(outcome.null_scores, dtype=float)[: int(outcome.n_done)]]
        run["observed"] = float(outcome.observed_score)
        run["scoring"] = getattr(outcome, "scoring", config.scoring)
        run["null_scores"] = run["null_scores"] + scores
        run["n_done"] = len(run["null_scores"])
        if getattr(outcome, "stopped_early", False):
            run["running"] = False
            run["stopped_early"] = True
    if run["n_done"] >= run["n_target"]:
        run["running"] = False


def permutation_summary(run: dict) -> dict:
    """Observed score, p-value and count of a (possibly partial) permutation run.

    The p-value is (1 + number of permuted scores >= observed) / (1 + permutations), as
    scikit-learn's ``permutation_test_score`` (never 0).
    """
    from decoding_core import significance

    null = np.asarray(run["null_scores"], dtype=float)
    observed = float(run["observed"])
    return {"observed": observed, "p_value": significance.empirical_p_value(observed, null),
            "n_done": int(len(null))}


def null_distribution_figure(run: dict, chance: float | None = None):
    """The histogram of the permuted scores against the observed one (and chance, if given)."""
    from decoding_core import plotting, significance

    summary = permutation_summary(run)
    outcome = significance.PermutationResult(
        observed_score=summary["observed"], null_scores=np.asarray(run["null_scores"], dtype=float),
        p_value=summary["p_value"], n_permutations=int(run["n_target"]), n_done=summary["n_done"],
        stopped_early=bool(run.get("stopped_early")), seed=0, elapsed_seconds=0.0,
        scoring=run.get("scoring", "accuracy"),
    )
    return plotting.plot_null_distribution(outcome, chance=chance)


# -- run history ---------------------------------------------------------------------------------------
def record_run(result, dataset, name: str | None = None):
    """Record a finished run in this session's run history (see `app_history.record_run`).

    Every place that finishes a run (Configure, sweeps, reruns, links) records it
    through this function. Returns the `RunRecord`, or None when it could not be saved
    (a warning says why; the run itself is kept).
    """
    import app_history

    return app_history.record_run(result, dataset, name=name)
