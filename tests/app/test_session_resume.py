"""A session that survives, and labels that are true when shown (issue 15, items 2 and 3).

AppTest runs two "browser sessions" in one process: the second continues the first as a
reload does (its cookie names the first one's token; `ui.session._cookie_token` stands in
for the browser's cookie). Upload checks name the user's own file, the mask selector counts
the mask loaded now, History reopens any run on Results, and the Tutorial shows code that
loads the user's files.
"""

from __future__ import annotations

import gzip

import nibabel as nib
import numpy as np
import pytest

from tests.app._helpers import (
    assert_no_traceback,
    error_texts,
    go_to,
    metric_value,
    run_from_configure,
    start_app,
    upload_files,
)
from ui import session, state
from ui.session import upload_root


def vt_files(haxby_vt_dir) -> dict:
    return {name: (haxby_vt_dir / name).read_bytes() for name in ("bold_vt.nii.gz", "labels.txt", "mask_vt.nii.gz")}


def smaller_mask(haxby_vt_dir, n_dropped: int) -> tuple[bytes, np.ndarray]:
    """Subject 1's VT mask without its first ``n_dropped`` voxels (C order), as .nii.gz bytes."""
    image = nib.load(haxby_vt_dir / "mask_vt.nii.gz")
    data = np.asarray(image.dataobj).astype(np.uint8)
    data[tuple(np.argwhere(data)[:n_dropped].T)] = 0
    return gzip.compress(nib.Nifti1Image(data, image.affine).to_bytes()), data


def upload_vt(at, files: dict, mask_name: str = "mask of my VT.nii.gz", mask: bytes | None = None):
    upload_files(at, ("my bold.nii.gz", files["bold_vt.nii.gz"], "application/gzip"),
                 ("my labels.txt", files["labels.txt"], "text/plain"),
                 (mask_name, files["mask_vt.nii.gz"] if mask is None else mask, "application/gzip"))
    assert not at.error, error_texts(at)
    return at


def texts(at) -> list[str]:
    return [element.value for element in at.text]


# -- item 3: labels true when shown ----------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("content", ["3d", "random"])
def test_a_4d_image_that_fails_its_checks_is_never_called_ready(haxby_vt_dir, content):
    data = (haxby_vt_dir / "mask_vt.nii.gz").read_bytes() if content == "3d" else bytes(range(256)) * 40
    at = start_app()
    at.radio(key=state.W_SOURCE).set_value("upload").run()
    at.file_uploader(key=state.W_UPLOAD_FUNC).set_value(("bold3d.nii.gz", data, "application/gzip")).run()
    assert_no_traceback(at)
    assert at.session_state[state.PENDING_FUNC_UPLOAD] is None
    assert not any("ready" in text for text in texts(at)), texts(at)
    errors = error_texts(at)
    assert len(errors) == 1 and "bold3d.nii.gz" in errors[0], errors
    assert ("3D" in errors[0]) if content == "3d" else ("is not a NIfTI image" in errors[0])
    # Nothing of it stays on the server's disk.
    pending = upload_root(at.session_state[state.SESSION_TOKEN]) / "pending"
    assert not pending.exists() or not any(pending.iterdir())


@pytest.mark.slow
def test_a_mask_on_another_grid_is_named_by_its_file(haxby_vt_dir, haxby_slice_dir):
    files = vt_files(haxby_vt_dir)
    at = start_app()
    upload_files(at, ("my bold.nii.gz", files["bold_vt.nii.gz"], "application/gzip"),
                 ("my labels.txt", files["labels.txt"], "text/plain"),
                 ("slice mask.nii.gz", (haxby_slice_dir / "mask.nii.gz").read_bytes(), "application/gzip"))
    errors = error_texts(at)
    assert any("The mask 'slice mask.nii.gz' has shape" in error for error in errors), errors
    assert not any("'uploaded'" in error for error in errors), errors
    assert at.session_state[state.DATASET_SPEC] == "simulated"  # what the user had stays


@pytest.mark.slow
def test_the_mask_selectors_count_the_mask_loaded_now(haxby_vt_dir):
    files = vt_files(haxby_vt_dir)
    at = start_app()
    upload_vt(at, files)
    assert at.selectbox(key=state.W_ROI_MASK).options == ["uploaded - Uploaded mask (577 voxels)"]
    smaller, smaller_data = smaller_mask(haxby_vt_dir, 47)
    at.file_uploader(key=state.W_UPLOAD_MASK).set_value(("mask 530.nii.gz", smaller, "application/gzip")).run()
    assert any(text.startswith("Mask ready: mask 530.nii.gz") for text in texts(at)), texts(at)
    at.button(key=state.W_UPLOAD_LOAD).click().run()
    assert not at.error, error_texts(at)
    expected = f"uploaded - Uploaded mask ({int(smaller_data.sum())} voxels)"
    assert int(smaller_data.sum()) == 530
    assert at.selectbox(key=state.W_ROI_MASK).options == [expected]
    go_to(at, "configure.py")
    assert at.selectbox(key=state.W_MASK).options == [expected]
    assert metric_value(at, "Data to decode").endswith("x 530")


@pytest.mark.slow
def test_the_tutorial_loads_the_users_own_files(haxby_vt_dir):
    at = start_app()
    upload_vt(at, vt_files(haxby_vt_dir))
    go_to(at, "tutorial.py")
    assert_no_traceback(at)
    code = "\n".join(element.value for element in at.code)
    assert "fetch_haxby" not in code and "haxby_dataset" not in code
    assert "fmri_filename = 'my bold.nii.gz'" in code
    assert "mask_filename = 'mask of my VT.nii.gz'" in code
    assert "pd.read_csv('my labels.txt'" in code and "behavioral['labels']" in code


# -- item 2: a session that survives -------------------------------------------------------------
@pytest.mark.slow
def test_the_upload_boxes_files_stay_when_leaving_the_data_page(haxby_vt_dir):
    files = vt_files(haxby_vt_dir)
    at = start_app()
    at.radio(key=state.W_SOURCE).set_value("upload").run()
    at.file_uploader(key=state.W_UPLOAD_LABELS).set_value(("my labels.txt", files["labels.txt"], "text/plain"))
    at.file_uploader(key=state.W_UPLOAD_MASK).set_value(("my mask.nii.gz", files["mask_vt.nii.gz"], "application/gzip"))
    at.run()
    assert_no_traceback(at)
    # Streamlit's copies are dropped at once: the files live on disk only.
    assert at.file_uploader(key=state.W_UPLOAD_LABELS).value is None
    stored = at.session_state[state.PENDING_UPLOADS]
    assert stored["labels"].path.read_bytes() == files["labels.txt"]
    go_to(at, "configure.py")
    go_to(at, "data.py")
    lines = texts(at)
    assert any(line.startswith("Labels table ready: my labels.txt") for line in lines), lines
    assert any(line.startswith("Mask ready: my mask.nii.gz") for line in lines), lines
    assert at.selectbox(key=state.W_LABEL_COLUMN).value == "labels"
    # With the 4D image the stored files load: the boxes' files were enough.
    at.file_uploader(key=state.W_UPLOAD_FUNC).set_value(("my bold.nii.gz", files["bold_vt.nii.gz"], "application/gzip"))
    at.run()
    at.button(key=state.W_UPLOAD_LOAD).click().run()
    assert not at.error, error_texts(at)
    assert at.session_state[state.DATASET_SPEC] == "upload"
    assert list(at.session_state[state.DATASET].masks) == ["uploaded"]
    at.button(key=state.W_UPLOAD_BOX_CLEAR["labels"]).click().run()
    assert "labels" not in at.session_state[state.PENDING_UPLOADS]
    assert not stored["labels"].path.exists()


@pytest.mark.slow
def test_a_reload_continues_the_session_with_its_upload_results_and_history(haxby_vt_dir, monkeypatch):
    files = vt_files(haxby_vt_dir)
    first = start_app()
    upload_vt(first, files)
    go_to(first, "configure.py")
    result = run_from_configure(first)
    token = first.session_state[state.SESSION_TOKEN]
    dataset = first.session_state[state.DATASET]

    # The reload: a new session whose browser cookie names the first session.
    monkeypatch.setattr(session, "_cookie_token", lambda: token)
    second = start_app()
    assert second.session_state[state.SESSION_TOKEN] == token
    assert second.session_state[state.DATASET] is dataset
    assert [text for text in texts(second) if "my bold.nii.gz" in text]
    go_to(second, "results.py")
    assert_no_traceback(second)
    assert metric_value(second, "Mean") == f"{result.mean_score:.3f}"
    go_to(second, "history.py")
    assert second.session_state[state.RECORDED_RUNS] == first.session_state[state.RECORDED_RUNS]
    assert_no_traceback(second)

    assert np.array_equal(second.session_state[state.RESULT].fold_scores, result.fold_scores)


@pytest.mark.slow
def test_a_cookie_naming_an_unknown_or_purged_session_starts_afresh(monkeypatch):
    first = start_app()
    token = first.session_state[state.SESSION_TOKEN]
    session.session_registry().purge(token)
    monkeypatch.setattr(session, "_cookie_token", lambda: token)
    second = start_app()
    assert second.session_state[state.SESSION_TOKEN] != token
    monkeypatch.setattr(session, "_cookie_token", lambda: "0" * 32)
    third = start_app()
    assert third.session_state[state.SESSION_TOKEN] not in (token, "0" * 32)


@pytest.mark.slow
def test_history_opens_any_past_run_on_results():
    at = start_app()
    go_to(at, "configure.py")
    first = run_from_configure(at)
    go_to(at, "configure.py")
    at.number_input(key=state.W_C).set_value(0.001).run()
    second = run_from_configure(at)
    assert second.mean_score != first.mean_score
    go_to(at, "history.py")
    digest = at.session_state[state.DATASET].digest
    first_id = at.session_state[state.RECORDED_RUNS][f"{digest}:{first.config.digest()}"]
    at.selectbox(key=state.W_HISTORY_RUN).set_value(first_id).run()
    at.button(key=state.W_HISTORY_OPEN).click().run()
    assert_no_traceback(at)
    assert at.title[0].value == "Results"
    at.switch_page("pages/results.py")
    assert metric_value(at, "Mean") == f"{first.mean_score:.3f}"
    assert at.session_state[state.RESULT].config == first.config
    assert not at.error, error_texts(at)

