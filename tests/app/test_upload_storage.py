"""The 4D upload leaves Streamlit's memory at once: stored on disk, then loaded from there."""

from __future__ import annotations

import hashlib
import io
import secrets
from pathlib import Path

import pytest

from tests.app._helpers import assert_no_traceback, error_texts, metric_value, start_app
from decoding_core.errors import DecodingInputError
from ui import state, uploads
from ui.session import upload_root


def _named_bytes(data: bytes, name: str) -> io.BytesIO:
    uploaded = io.BytesIO(data)
    uploaded.name = name
    return uploaded


def test_store_pending_upload_names_the_file_itself_and_records_the_digest(haxby_vt_dir):
    token = secrets.token_hex(16)
    data = (haxby_vt_dir / "bold_vt.nii.gz").read_bytes()
    entry = uploads.store_pending_func_upload(token, _named_bytes(data, "../../<b>evil</b>.nii.gz"))
    path = entry.path
    assert path.parent == upload_root(token) / uploads.PENDING_FOLDER
    assert path.name.endswith(".nii.gz") and "evil" not in path.name
    assert path.read_bytes() == data
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    assert entry.size == len(data)
    assert "<" not in entry.name and "/" not in entry.name and "evil" in entry.name
    uploads.discard_pending_func_upload(token, entry)
    assert not path.exists()


def test_store_pending_upload_names_an_uncompressed_image_by_its_content():
    token = secrets.token_hex(16)
    entry = uploads.store_pending_func_upload(token, _named_bytes(b"\x5c\x01" + b"\0" * 400, "named.nii.gz"))
    assert entry.path.name.endswith(".nii") and not str(entry.path).endswith(".gz")
    uploads.discard_pending_func_upload(token, entry)


def test_discard_never_deletes_a_file_outside_the_sessions_pending_folder(tmp_path):
    outsider = tmp_path / "keep.nii.gz"
    outsider.write_bytes(b"keep me")
    uploads.discard_pending_func_upload(secrets.token_hex(16), uploads.PendingImage(outsider, "0" * 64, "keep", 7))
    other_token = secrets.token_hex(16)
    other = uploads.store_pending_func_upload(other_token, _named_bytes(b"other session", "x.nii"))
    uploads.discard_pending_func_upload(secrets.token_hex(16), other)
    assert outsider.read_bytes() == b"keep me"
    assert other.path.read_bytes() == b"other session"


def test_load_uploaded_dataset_refuses_an_image_it_did_not_store(tmp_path, haxby_vt_dir):
    token = secrets.token_hex(16)
    labels = (haxby_vt_dir / "labels.txt").read_bytes()
    outside = haxby_vt_dir / "bold_vt.nii.gz"
    with pytest.raises(ValueError, match="store_pending_func_upload"):
        uploads.load_uploaded_dataset(token, outside, "0" * 64, labels, label_column="labels", run_column="chunks")
    entry = uploads.store_pending_func_upload(token, _named_bytes(b"\x1f\x8b data", "x.nii.gz"))
    with pytest.raises(ValueError, match="SHA-256"):
        uploads.load_uploaded_dataset(token, entry.path, "not a digest", labels,
                                       label_column="labels", run_column="chunks")
    uploads.discard_pending_func_upload(token, entry)
    with pytest.raises(DecodingInputError, match="Upload it again"):
        uploads.load_uploaded_dataset(token, entry.path, entry.sha256, labels,
                                       label_column="labels", run_column="chunks")


def _choose_upload(at):
    at.radio(key=state.W_SOURCE).set_value("upload")
    at.run()


def test_the_uploader_hands_the_image_over_and_keeps_no_bytes(haxby_vt_dir):
    data = (haxby_vt_dir / "bold_vt.nii.gz").read_bytes()
    at = start_app()
    _choose_upload(at)
    at.file_uploader(key=state.W_UPLOAD_FUNC).set_value(("my bold.nii.gz", data, "application/gzip"))
    at.run()
    assert_no_traceback(at)
    entry = at.session_state[state.PENDING_FUNC_UPLOAD]
    assert entry.sha256 == hashlib.sha256(data).hexdigest()
    token = at.session_state[state.SESSION_TOKEN]
    assert entry.path.parent == upload_root(token) / uploads.PENDING_FOLDER
    assert entry.path.read_bytes() == data
    # The widget no longer holds the upload: Streamlit would copy it into every run.
    assert at.file_uploader(key=state.W_UPLOAD_FUNC).value is None
    assert any("my bold.nii.gz" in text.value and "MB" in text.value for text in at.text)
    # Without a labels table the Load button stays disabled.
    assert at.button(key=state.W_UPLOAD_LOAD).disabled

    # Another run (any other widget) keeps the stored image.
    at.number_input(key=state.W_UPLOAD_TR).set_value(2.5)
    at.run()
    assert at.session_state[state.PENDING_FUNC_UPLOAD] == entry

    # Remove forgets it and deletes its file.
    at.button(key=state.W_UPLOAD_FUNC_CLEAR).click()
    at.run()
    assert_no_traceback(at)
    assert at.session_state[state.PENDING_FUNC_UPLOAD] is None
    assert not entry.path.exists()
    assert not any("my bold.nii.gz" in text.value for text in at.text)


def test_a_new_image_replaces_the_stored_one_and_the_loaded_data_set_survives_its_removal(haxby_vt_dir):
    data = (haxby_vt_dir / "bold_vt.nii.gz").read_bytes()
    labels = (haxby_vt_dir / "labels.txt").read_bytes()
    at = start_app()
    _choose_upload(at)
    at.file_uploader(key=state.W_UPLOAD_FUNC).set_value(("bold.nii.gz", data, "application/gzip"))
    at.file_uploader(key=state.W_UPLOAD_LABELS).set_value(("labels.txt", labels, "text/plain"))
    at.run()
    at.button(key=state.W_UPLOAD_LOAD).click()
    at.run()
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    assert at.session_state[state.DATASET_SPEC] == "upload"
    dataset = at.session_state[state.DATASET]
    first = at.session_state[state.PENDING_FUNC_UPLOAD]

    # A different image replaces the stored one; its old file goes.
    other = bytearray(data)
    other[-1] ^= 0xFF  # another digest (a broken gzip trailer: refused only when loaded)
    at.file_uploader(key=state.W_UPLOAD_FUNC).set_value(("other.nii.gz", bytes(other), "application/gzip"))
    at.run()
    second = at.session_state[state.PENDING_FUNC_UPLOAD]
    assert second.sha256 != first.sha256 and second.path.is_file()
    assert not first.path.exists()

    # The data set loaded from the first image keeps its own copy and still works.
    at.button(key=state.W_UPLOAD_FUNC_CLEAR).click()
    at.run()
    assert_no_traceback(at)
    assert at.session_state[state.DATASET] is dataset
    assert Path(dataset.func_path).is_file()
    assert metric_value(at, "Volumes") == "864"
