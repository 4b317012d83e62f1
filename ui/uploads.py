"""The user's uploaded files: stored on disk in the session's folder, then loaded as a data set.

A 4D image can be hundreds of MB, and Streamlit deep-copies an uploaded file into
every script run that draws its widget. So the image leaves Streamlit's memory as
soon as it arrives (`store_pending_func_upload`, from the uploader's callback) and
lives on disk, under a name the app chooses, until it is loaded with the other
files (`load_uploaded_dataset`). Uploaded names are only ever shown, never used as
paths; messages about the stored copies say the user's own names (`with_upload_names`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from decoding_core import datasets, paths
from decoding_core.errors import DecodingInputError
from decoding_core.io.nifti import inspect_nifti, remember_file_digest
from ui.feedback import run_heavy, safe_display_name
from ui.session import script_session_id, session_store, streamlit_runtime, upload_root

#: Upload caps of the labels table and of 3D images (MB); the 4D image's is server.maxUploadSize.
MAX_LABELS_UPLOAD_MB = max(1, datasets.MAX_LABELS_BYTES // 1024**2)
MAX_3D_UPLOAD_MB = 64
#: Most files the run-files box keeps (every run of one subject and task), and the cap of each
#: (MB): Streamlit holds a whole selection in memory until the page's callback stores it, and
#: the joined runs must fit the image budget anyway (a Haxby run is about 25 MB).
MAX_RUN_FILES = 64
MAX_RUN_UPLOAD_MB = 128
#: Subfolder of a session's upload folder holding the 4D image uploaded but not loaded yet.
PENDING_FOLDER = "pending"
#: The file-name stems the app gives uploads on disk, by role (see `load_uploaded_dataset`).
_STORED_UPLOAD_STEMS = {"4D image": "func", "labels": "labels", "mask": "mask", "anatomy": "anat"}


def _nifti_file_name(stem: str, data: bytes) -> str:
    # The name on disk is ours; only the content decides the suffix (gzip magic bytes).
    return f"{stem}.nii.gz" if data[:2] == b"\x1f\x8b" else f"{stem}.nii"


@dataclass(frozen=True)
class PendingImage:
    """A 4D image uploaded and stored on disk, not loaded yet.

    Attributes
    ----------
    path : pathlib.Path
        The app's own file name in the session's pending folder (never the uploaded name).
    sha256 : str
        SHA-256 of the bytes (64 hex digits).
    name : str
        The uploaded file's name, made safe to show.
    size : int
        Size in bytes.
    """

    path: Path
    sha256: str
    name: str
    size: int


def _pending_func_path(session_token: str, path) -> Path | None:
    """``path`` resolved, if it lies in this session's pending folder; else None."""
    if not path:
        return None
    folder = (upload_root(session_token) / PENDING_FOLDER).resolve()
    resolved = Path(path).resolve()
    return resolved if resolved.parent == folder else None


def store_pending_func_upload(session_token: str, uploaded) -> PendingImage:
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
    PendingImage
        Store it under ``ui.state.PENDING_FUNC_UPLOAD``.
    """
    data = uploaded.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    folder = upload_root(session_token) / PENDING_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _nifti_file_name(f"func-{sha256[:24]}", data)
    # Through a rename: a file hard-linked from a loaded data set is never rewritten under it.
    with paths.atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return PendingImage(path=path, sha256=sha256, name=safe_display_name(getattr(uploaded, "name", "")),
                        size=len(data))


#: The upload boxes by role (the words of `with_upload_names`): the stem of the stored file's
#: name, and how its header is checked (dimensions expected, the kind named in messages).
UPLOAD_BOXES = {
    "4D image": ("func", 4, "4D image"),
    "labels": ("labels", None, "labels table"),
    "mask": ("mask", 3, "mask"),
    "anatomy": ("anat", 3, "anatomical image"),
}


def store_pending_upload(session_token: str, role: str, uploaded) -> PendingImage:
    """Write the file of one upload box into this session's pending folder, then check it.

    Every box's file leaves Streamlit's memory as it arrives (the page drops Streamlit's
    copy), so it costs no server memory while it waits, survives leaving the Data page
    (the box is empty again, the page offers the stored file) and a reload of the page
    (the session's state is resumed, see `ui.session`). The file is checked at once, so
    the page never calls a file ready that the loader would refuse: a NIfTI image from
    its header alone (`decoding_core.io.nifti.inspect_nifti`), a labels table parsed.

    Parameters
    ----------
    session_token : str
        The session's random token (names its private upload folder).
    role : {"4D image", "labels", "mask", "anatomy"}
        Which box the file came from.
    uploaded : streamlit UploadedFile
        Anything with ``getvalue()`` and ``name`` (shown only).

    Returns
    -------
    PendingImage

    Raises
    ------
    DecodingInputError
        When the file is not what the box wants (its message names the user's file); the
        stored copy is deleted again.
    """
    stem, _, _ = UPLOAD_BOXES[role]
    data = uploaded.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    folder = upload_root(session_token) / PENDING_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{stem}-{sha256[:24]}.txt" if role == "labels" else _nifti_file_name(f"{stem}-{sha256[:24]}", data)
    path = folder / name
    with paths.atomic_path(path) as temporary:
        temporary.write_bytes(data)
    del data
    entry = PendingImage(path=path, sha256=sha256, name=safe_display_name(getattr(uploaded, "name", "")),
                         size=path.stat().st_size)
    try:
        check_pending_upload(role, entry)
    except DecodingInputError:
        path.unlink(missing_ok=True)
        raise
    return entry


def check_pending_upload(role: str, entry: PendingImage) -> None:
    """Check a stored upload as its box wants it; errors name the user's file (``entry.name``).

    Raises
    ------
    DecodingInputError
        A NIfTI header that is not right for the box (e.g. a 3D file or random bytes as
        the 4D image), or a labels table that cannot be read.
    """
    _, ndim, kind = UPLOAD_BOXES[role]
    try:
        if ndim is None:
            read_label_columns(entry.path.read_bytes())
        else:
            inspect_nifti(entry.path, expected_ndim=ndim, kind=kind)
    except DecodingInputError as err:
        message = str(err).replace(entry.path.name, f"'{entry.name}'")
        if f"'{entry.name}'" not in message:
            message = f"Your {kind} '{entry.name}' cannot be used: {message}"
        raise DecodingInputError(message) from None


def read_pending_upload(session_token: str, entry: PendingImage | None) -> bytes | None:
    """The bytes of a stored (small) upload of this session, or None.

    Raises
    ------
    DecodingInputError
        When the stored file is gone (the session was closed or idle too long).
    """
    if entry is None:
        return None
    path = _pending_func_path(session_token, entry.path)
    if path is None or not path.is_file():
        raise DecodingInputError(
            f"The file '{entry.name}' is no longer stored on the server (files are removed when a session "
            "is closed or idle). Upload it again, then press Load."
        )
    return path.read_bytes()


def discard_pending_func_upload(session_token: str, pending: PendingImage | None) -> None:
    """Delete the file of a pending 4D image (a data set loaded from it keeps its own link)."""
    path = None if pending is None else _pending_func_path(session_token, pending.path)
    if path is not None:
        path.unlink(missing_ok=True)


def release_uploaded_files(*uploaded_files) -> None:
    """Drop Streamlit's in-memory copy of uploaded files once the app has read them.

    Streamlit keeps every uploaded file's bytes in server memory for the whole session;
    after a successful load the app works from its own copy, so these are released.
    """
    runtime = streamlit_runtime()
    session_id = script_session_id()
    if runtime is None or session_id is None:
        return
    for uploaded in uploaded_files:
        file_id = getattr(uploaded, "file_id", None)
        if file_id:
            runtime.uploaded_file_mgr.remove_file(session_id, file_id)


def _link_or_copy(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` without reading it into memory (a hard link when possible)."""
    with paths.atomic_path(target) as temporary:
        try:
            os.link(source, temporary)
        except OSError:  # a file system without hard links: copy in chunks
            shutil.copyfile(source, temporary)


def _checked_pending_image(session_token: str, func_path, func_sha256: str) -> Path:
    """The stored 4D image, after checking it is this session's and its digest is well formed."""
    source = _pending_func_path(session_token, func_path)
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
    return source


def _upload_digest(func_sha256: str, labels_bytes: bytes, mask_bytes, anat_bytes, columns_and_tr) -> str:
    digest = hashlib.sha256()
    digest.update(bytes.fromhex(func_sha256))
    for part in (labels_bytes, mask_bytes or b"", anat_bytes or b""):
        digest.update(hashlib.sha256(part).digest())
    digest.update(repr(columns_and_tr).encode())
    return digest.hexdigest()[:24]


def _write_upload_folder(folder: Path, source: Path, func_sha256: str, labels_bytes: bytes,
                         mask_bytes: bytes | None, anat_bytes: bytes | None) -> dict:
    """Put the uploads in ``folder`` under the app's own names; returns their paths by role."""
    folder.mkdir(parents=True, exist_ok=True)
    stored = {"func": _link_stored_image(source, folder, "func", func_sha256), "labels": folder / "labels.txt"}
    stored["labels"].write_bytes(labels_bytes)
    stored.update(_write_mask_and_anatomy(folder, mask_bytes, anat_bytes))
    return stored


def _link_stored_image(source: Path, folder: Path, stem: str, sha256: str) -> Path:
    """A stored 4D upload linked into ``folder`` as ``<stem>.nii[.gz]``, its digest remembered."""
    with open(source, "rb") as handle:
        target = folder / _nifti_file_name(stem, handle.read(2))
    _link_or_copy(source, target)
    # Hashed when it was stored: spare `load_files` reading hundreds of MB again.
    remember_file_digest(target, sha256)
    return target


def _write_mask_and_anatomy(folder: Path, mask_bytes: bytes | None, anat_bytes: bytes | None) -> dict:
    """The uploaded mask and anatomy in ``folder`` under the app's names: {"mask", "anat"} -> path or None."""
    stored = {"mask": None, "anat": None}
    for role, data in (("mask", mask_bytes), ("anat", anat_bytes)):
        if data:
            stored[role] = folder / _nifti_file_name(role, data)
            stored[role].write_bytes(data)
    return stored


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
    is removed again; the pending image stays, so the user can fix another file. The
    data set is kept in this session's own store: another session can never be handed
    it, and it goes when the session ends.

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
    source = _checked_pending_image(session_token, func_path, func_sha256)
    upload_digest = _upload_digest(func_sha256, labels_bytes, mask_bytes, anat_bytes,
                                   (label_column, run_column, tr))

    def compute():
        folder = upload_root(session_token) / upload_digest
        try:
            stored = _write_upload_folder(folder, source, func_sha256, labels_bytes, mask_bytes, anat_bytes)
            dataset = datasets.load_files(
                stored["func"], stored["labels"], label_column=label_column, run_column=run_column,
                mask=stored["mask"], anat=stored["anat"], tr=tr, title=title,
            )
            # The Data page draws the background at once: compute it in this job, where a
            # file broken past its header is refused as an upload error.
            dataset.read_background()
            return dataset
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    key = ("datasets", "upload", session_token, upload_digest)
    return session_store().get_or_compute(key, lambda: run_heavy(compute))


def with_upload_names(message: str, names: dict) -> str:
    """Say the user's own file names in a message that names the app's stored copies.

    ``names`` maps a role ("4D image", "labels", "mask", "anatomy") to the uploaded file's
    name, already made safe to show (`ui.feedback.safe_display_name`).
    """
    for role, stem in _STORED_UPLOAD_STEMS.items():
        if role in names:
            message = _say_user_name(message, stem, names[role])
    return message


def _say_user_name(message: str, stem: str, name: str) -> str:
    """``message`` with the app's stored file ``<stem>.nii[.gz]`` or ``<stem>.txt`` called ``'name'``."""
    return re.sub(rf"(')?(?<![\w/.-]){re.escape(stem)}\.(?:nii\.gz|nii|txt)(?![\w.])(?(1)')",
                  lambda _match: f"'{name}'", message)


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


# -- one 4D file per run ---------------------------------------------------------------------------


def run_order(entries) -> list[PendingImage]:
    """Stored uploads in run order: by name, numbers compared as numbers (``run-2`` before ``run-10``)."""
    def natural_key(entry):
        return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
                for part in re.split(r"(\d+)", entry.name) if part]

    return sorted(entries, key=natural_key)


def _run_files_digest(run_entries, labels_bytes: list, mask_bytes, anat_bytes, settings) -> str:
    digest = hashlib.sha256()
    for entry in run_entries:
        digest.update(bytes.fromhex(entry.sha256))
    for part in (*labels_bytes, b"|", mask_bytes or b"", anat_bytes or b""):
        digest.update(hashlib.sha256(part).digest())
    digest.update(repr(settings).encode())
    return "runs-" + digest.hexdigest()[:24]


def _write_run_files_folder(folder: Path, sources: list[Path], run_entries, mask_bytes, anat_bytes) -> dict:
    """The run files (hard links, named ``run-01.nii.gz`` ...), the mask and the anatomy in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    runs = [_link_stored_image(source, folder, f"run-{number:02d}", entry.sha256)
            for number, (source, entry) in enumerate(zip(sources, run_entries), start=1)]
    return {"runs": runs, **_write_mask_and_anatomy(folder, mask_bytes, anat_bytes)}


def with_run_file_names(message: str, run_entries) -> str:
    """Say the user's run file names in a message naming the app's copies (``run-01.nii.gz`` ...)."""
    for number, entry in enumerate(run_entries, start=1):
        message = _say_user_name(message, f"run-{number:02d}", entry.name)
    return message


def load_run_file_uploads(session_token: str, run_entries, labels_entries, *, label_column: str,
                          mask_bytes: bytes | None = None, anat_bytes: bytes | None = None,
                          tr: float | None = None, progress=None):
    """Load stored uploads of one 4D file per run as a `Dataset` (runs come from the files).

    As `load_uploaded_dataset`: the files are hard-linked into a folder of this
    session named by the digest of their contents, joined there into one series
    (`decoding_core.datasets.load_run_files`), kept in the session's own store, and
    the folder is removed again when loading fails.

    Parameters
    ----------
    session_token : str
    run_entries : sequence of PendingImage
        The stored run files, in run order (see `run_order`).
    labels_entries : sequence of PendingImage
        One stored labels table for all volumes (rows in run order), or one per run
        (in run order).
    label_column : str
    mask_bytes, anat_bytes : bytes, optional
    tr : float, optional
    progress : callable, optional
        ``progress(fraction, message)`` while the runs are joined.

    Raises
    ------
    DecodingInputError
        What `load_run_files` refuses (messages say the user's file names), or a
        stored file that is gone.
    ValueError
        A stored file outside this session's folder or a malformed digest (a bug, not input).
    """
    if not run_entries or not labels_entries:
        raise DecodingInputError("Upload the run files and their labels table(s), then press Load.")
    sources = [_checked_pending_image(session_token, entry.path, entry.sha256) for entry in run_entries]
    labels_bytes = [read_pending_upload(session_token, entry) for entry in labels_entries]
    upload_digest = _run_files_digest(run_entries, labels_bytes, mask_bytes, anat_bytes, (label_column, tr))

    def compute():
        folder = upload_root(session_token) / upload_digest
        try:
            stored = _write_run_files_folder(folder, sources, run_entries, mask_bytes, anat_bytes)
            dataset = datasets.load_run_files(
                stored["runs"], labels_bytes[0] if len(labels_bytes) == 1 else labels_bytes,
                label_column=label_column, mask=stored["mask"], anat=stored["anat"], tr=tr,
                title="Your uploaded runs", cache_dir=folder / "joined", progress=progress,
            )
            dataset.read_background()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return dataclasses.replace(dataset, source=with_run_file_names(dataset.source, run_entries),
                                   description=with_run_file_names(dataset.description, run_entries))

    try:
        return session_store().get_or_compute(("datasets", "upload-runs", session_token, upload_digest),
                                              lambda: run_heavy(compute))
    except DecodingInputError as err:
        raise DecodingInputError(with_run_file_names(str(err), run_entries)) from None
