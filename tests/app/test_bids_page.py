"""The Data page's BIDS source through AppTest: a folder on the server, an uploaded zip, bad inputs.

The real Haxby subject-1 slice data in BIDS form (12 runs of 121 volumes, block events)
and its slice mask. Every bad input must show a clear error and keep the data set the
user had (here the built-in simulated one).
"""

from __future__ import annotations

import io
import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

from decoding_core import environment
from tests.app._helpers import assert_no_traceback, error_texts, start_app
from ui import state
from ui.session import owned_by_session

pytestmark = pytest.mark.slow

#: Seconds for a run that loads the 12 runs (joins them, masks, draws the Data page): the
#: helpers' 180 s was exceeded on the busy 2-core machine.
LOAD_TIMEOUT = 600
FUNC = "sub-1/func"
RUN = "sub-1_task-objectviewing_run-{:02d}"


@pytest.fixture
def bids_copy(tmp_path, haxby_bids_dir):
    """A copy of the BIDS data set that a test may break."""
    return shutil.copytree(haxby_bids_dir, tmp_path / "bids")


@pytest.fixture
def slice_mask(haxby_slice_dir):
    return haxby_slice_dir / "mask.nii.gz"


def open_bids(at, folder=None, mask=None):
    """Choose the BIDS source; with ``folder``, type it (and the mask) and run."""
    at.radio(key=state.W_SOURCE).set_value("bids")
    at.run()
    if folder is not None:
        at.text_input(key=state.W_BIDS_FOLDER).set_value(str(folder))
        if mask is not None:
            at.text_input(key=state.W_BIDS_MASK_PATH).set_value(str(mask))
        at.run()
    assert_no_traceback(at)
    return at


def zip_of(folder, *, extra: dict | None = None) -> bytes:
    """The func/ files of ``folder`` (and the top-level sidecar) as zip bytes, plus ``extra`` members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted((folder / FUNC).iterdir()):
            archive.write(path, f"func/{path.name}")
        archive.write(folder / "task-objectviewing_bold.json", "task-objectviewing_bold.json")
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload_zip(at, data: bytes, name="sub-1 func.zip"):
    at.radio(key=state.W_SOURCE).set_value("bids")
    at.run()
    at.radio(key=state.W_BIDS_ORIGIN).set_value("zip")
    at.run()
    at.file_uploader(key=state.W_BIDS_ZIP).set_value((name, data, "application/zip"))
    at.run()
    assert_no_traceback(at)
    return at


def assert_previous_dataset_kept(at, previous):
    assert at.session_state[state.DATASET] is previous
    assert at.session_state[state.DATASET_SPEC] == "simulated"


def test_a_server_folder_lists_its_runs_and_loads_the_slice_data(haxby_bids_dir, slice_mask, haxby_slice_dir):
    at = open_bids(start_app(), haxby_bids_dir, slice_mask)
    assert not at.error, error_texts(at)
    assert at.selectbox(key=state.W_BIDS_SUBJECT).value == "1"
    assert at.selectbox(key=state.W_BIDS_TASK).value == "objectviewing"
    runs = at.dataframe[0].value
    assert runs["run"].tolist() == [f"run-{n:02d}" for n in range(1, 13)]
    assert runs["volumes"].tolist() == [121] * 12 and runs["TR (s)"].tolist() == [2.5] * 12
    assert runs["bold file"].iloc[0] == RUN.format(1) + "_bold.nii.gz"
    assert len(at.get("plotly_chart")) >= 1  # the events timeline (opaque to AppTest; see test_events_timeline)

    at.button(key=state.W_BIDS_LOAD).click()
    at.run(timeout=LOAD_TIMEOUT)
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    dataset = at.session_state[state.DATASET]
    assert at.session_state[state.DATASET_SPEC] == "bids"
    assert dataset.n_runs == 12 and dataset.shape == (40, 20, 1, 1452)
    # Lag 0: the labels are the per-volume labels table of the one-file slice data.
    table = pd.read_csv(haxby_slice_dir / "labels.txt", sep=" ")
    assert dataset.conditions.tolist() == table["labels"].tolist()
    np.testing.assert_array_equal(dataset.runs, table["chunks"].to_numpy())
    assert int(np.asarray(dataset.masks["uploaded"].dataobj).sum()) == 530
    assert not owned_by_session(dataset)  # a server folder: nothing of the session's own


def test_the_lag_and_edge_volumes_reach_the_loaded_labels(haxby_bids_dir, slice_mask, haxby_slice_dir):
    at = open_bids(start_app(), haxby_bids_dir, slice_mask)
    at.number_input(key=state.W_BIDS_LAG).set_value(5.0)
    at.number_input(key=state.W_BIDS_EDGE).set_value(1)
    at.run()
    at.button(key=state.W_BIDS_LOAD).click()
    at.run(timeout=LOAD_TIMEOUT)
    assert not at.error, error_texts(at)
    labels = at.session_state[state.DATASET].conditions
    table = pd.read_csv(haxby_slice_dir / "labels.txt", sep=" ")["labels"].to_numpy()
    # Volume i now carries the stimulus of volume i - 2 (5 s = 2 TR), within each run of 121.
    first_run = table[:121]
    shifted = np.r_[["rest", "rest"], first_run[:-2]]
    kept = labels[:121] != "edge"
    assert (labels[:121][kept] == shifted[kept]).all()
    assert (labels == "edge").sum() == 2 * 8 * 12  # first and last volume of each of 96 blocks


def test_an_uploaded_zip_is_unpacked_in_the_session_and_loaded(haxby_bids_dir, slice_mask):
    at = upload_zip(start_app(), zip_of(haxby_bids_dir))
    assert not at.error, error_texts(at)
    entry = at.session_state[state.BIDS_ZIP]
    assert entry.name == "sub-1 func.zip" and entry.n_files == 26  # 24 run files, the sidecar, a description
    assert at.session_state[state.SESSION_TOKEN] in str(entry.root)
    assert at.dataframe[0].value["volumes"].tolist() == [121] * 12
    at.file_uploader(key=state.W_BIDS_MASK).set_value(("mask.nii.gz", slice_mask.read_bytes(), "application/gzip"))
    at.run()
    at.button(key=state.W_BIDS_LOAD).click()
    at.run(timeout=LOAD_TIMEOUT)
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    dataset = at.session_state[state.DATASET]
    assert dataset.n_runs == 12 and dataset.shape[3] == 1452
    assert owned_by_session(dataset)  # from an upload: kept in the session's own store only
    # Nothing shown names the session's folder: the zip's own name instead.
    assert str(entry.root) not in dataset.description + dataset.source
    assert "sub-1 func.zip" in dataset.source


@pytest.mark.parametrize(("case", "expected"), [
    ("traversal", "path leaves the archive's folder"),
    ("bomb", "looks like a zip bomb"),
    ("no_bold", "holds no BIDS bold files"),
    ("not_zip", "is not a zip archive"),
])
def test_a_hostile_or_useless_zip_is_refused_and_the_data_set_kept(haxby_bids_dir, case, expected):
    members = {"traversal": {"../../evil.txt": b"x"}, "bomb": {"sub-1_task-x_run-99_bold.nii.gz": bytes(64 * 1024**2)}}
    if case == "no_bold":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("func/sub-1_task-objectviewing_run-01_events.tsv", "onset\tduration\ttrial_type\n")
        data = buffer.getvalue()
    elif case == "not_zip":
        data = b"these are not the files you are looking for"
    else:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("func/sub-1_task-objectviewing_run-01_bold.nii.gz", b"x")
            for name, content in members[case].items():
                archive.writestr(name, content)
        data = buffer.getvalue()
    at = start_app()
    previous = at.session_state[state.DATASET]
    upload_zip(at, data, name="evil.zip")
    assert any(expected in text and "evil.zip" in text for text in error_texts(at)), error_texts(at)
    assert at.session_state[state.BIDS_ZIP] is None
    assert_previous_dataset_kept(at, previous)


def break_folder(folder, case: str) -> None:
    """Make one thing wrong in a copy of the BIDS data set."""
    func = folder / FUNC
    if case == "no_bold":
        for path in func.glob("*_bold.nii.gz"):
            path.unlink()
    elif case == "no_trial_type":
        path = func / f"{RUN.format(3)}_events.tsv"
        pd.read_csv(path, sep="\t").drop(columns="trial_type").to_csv(path, sep="\t", index=False)
    elif case == "outside":
        path = func / f"{RUN.format(2)}_events.tsv"
        events = pd.read_csv(path, sep="\t")
        events.loc[len(events)] = [400.0, 22.5, "face"]
        events.to_csv(path, sep="\t", index=False)
    elif case == "tr_differs":
        (func / f"{RUN.format(5)}_bold.json").write_text('{"RepetitionTime": 2.0}')
    elif case == "confounds_rows":
        pd.DataFrame({"trans_x": np.zeros(100)}).to_csv(
            func / f"{RUN.format(1)}_desc-confounds_timeseries.tsv", sep="\t", index=False)


@pytest.mark.parametrize(("case", "expected"), [
    ("no_bold", "holds no BIDS bold files"),
    ("no_trial_type", "has no 'trial_type' column"),
    ("outside", "has events outside the run"),
    ("tr_differs", "repetition time of 2 s"),
    ("confounds_rows", "has 100 rows but its run"),
])
def test_a_bad_folder_shows_a_clear_error_and_keeps_the_data_set(bids_copy, slice_mask, case, expected):
    break_folder(bids_copy, case)
    at = start_app()
    previous = at.session_state[state.DATASET]
    open_bids(at, bids_copy, slice_mask)
    assert any(expected in text for text in error_texts(at)), error_texts(at)
    assert [b for b in at.button if b.key == state.W_BIDS_LOAD] == []  # nothing to load
    assert_previous_dataset_kept(at, previous)


def test_a_failed_load_shows_why_and_keeps_the_data_set(haxby_bids_dir, haxby_vt_dir):
    at = start_app()
    previous = at.session_state[state.DATASET]
    open_bids(at, haxby_bids_dir, haxby_vt_dir / "mask_vt.nii.gz")  # a mask on another grid
    at.button(key=state.W_BIDS_LOAD).click()
    at.run(timeout=LOAD_TIMEOUT)
    assert_no_traceback(at)
    assert error_texts(at) and "mask" in error_texts(at)[0].lower(), error_texts(at)
    assert any("still in use" in info.value for info in at.info)
    assert_previous_dataset_kept(at, previous)


def test_server_folders_are_off_on_a_shared_server(monkeypatch):
    monkeypatch.setenv(environment.SHARED, "1")
    at = open_bids(start_app())
    assert at.radio(key=state.W_BIDS_ORIGIN).options == ["A .zip of one subject's func/ files"]
    monkeypatch.setenv(environment.SERVER_FOLDERS, "1")  # the host may allow it explicitly
    at.run()
    assert "A folder on this computer" in at.radio(key=state.W_BIDS_ORIGIN).options
