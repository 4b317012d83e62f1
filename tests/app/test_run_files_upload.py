"""One 4D file per run, uploaded on the Data page: runs come from the files (issue 12).

The real subject-1 slice data as twelve run files (``haxby2001-subj1-bids``) must give the
same samples, labels, runs and fold scores as the same data in one file with its
per-volume labels table (``haxby2001-subj1-slice``).
"""

from __future__ import annotations

import random
import re

import numpy as np
import pandas as pd
import pytest

from decoding_core import decoding, masking
from decoding_core.config import DecodingConfig
from decoding_core.datasets import load_files
from tests.app._helpers import assert_no_traceback, error_texts, go_to, start_app
from ui import state
from ui.session import owned_by_session

LOAD_TIMEOUT = 120
FUNC = "sub-1/func"


@pytest.fixture(scope="module")
def run_files(haxby_bids_dir):
    """The twelve run files as (name, bytes, type), in run order."""
    paths = sorted((haxby_bids_dir / FUNC).glob("*_bold.nii.gz"))
    assert len(paths) == 12
    return [(path.name, path.read_bytes(), "application/gzip") for path in paths]


@pytest.fixture(scope="module")
def slice_labels(haxby_slice_dir):
    return pd.read_csv(haxby_slice_dir / "labels.txt", sep=" ")


def _table_bytes(table: pd.DataFrame) -> bytes:
    return table.to_csv(sep="\t", index=False).encode()


def upload_runs(at, runs, tables, mask=None, *, load=True):
    """Choose 'one file per run', put the files in the boxes and (when Load is enabled) load them."""
    at.radio(key=state.W_SOURCE).set_value("runs")
    at.run()
    at.file_uploader(key=state.W_UPLOAD_RUN_FILES).set_value(list(runs))
    at.file_uploader(key=state.W_UPLOAD_RUN_LABELS).set_value(list(tables))
    if mask is not None:
        at.file_uploader(key=state.W_UPLOAD_MASK).set_value(mask)
    at.run()
    assert_no_traceback(at)
    button = at.button(key=state.W_RUNS_LOAD)
    if load and not button.disabled:
        button.click()
        at.run(timeout=LOAD_TIMEOUT)
        assert_no_traceback(at)
    return at


def _mask(haxby_slice_dir):
    return ("my mask.nii.gz", (haxby_slice_dir / "mask.nii.gz").read_bytes(), "application/gzip")


def _assert_same_as_one_file(dataset, haxby_slice_dir, slice_labels):
    assert dataset.n_runs == 12 and dataset.shape == (40, 20, 1, 1452)
    assert dataset.conditions.tolist() == slice_labels["labels"].tolist()
    np.testing.assert_array_equal(dataset.runs, slice_labels["chunks"].to_numpy())
    one_file = load_files(haxby_slice_dir / "bold.nii.gz", haxby_slice_dir / "labels.txt",
                          mask=haxby_slice_dir / "mask.nii.gz")
    config = DecodingConfig(mask_name="uploaded")
    mine = decoding.decode(masking.mask_dataset(dataset, "uploaded"), config)
    reference = decoding.decode(masking.mask_dataset(one_file, "uploaded"), config)
    np.testing.assert_array_equal(mine.fold_scores, reference.fold_scores)


def test_runs_uploaded_in_any_order_load_in_run_order_like_the_one_file_data(
        run_files, slice_labels, haxby_slice_dir):
    shuffled = list(run_files)
    random.Random(0).shuffle(shuffled)
    at = upload_runs(start_app(), shuffled, [("labels.tsv", _table_bytes(slice_labels), "text/plain")],
                     _mask(haxby_slice_dir))
    assert not at.error, error_texts(at)
    stored = at.session_state[state.PENDING_RUN_FILES]
    assert [entry.name for entry in stored] == [name for name, _, _ in run_files]
    dataset = at.session_state[state.DATASET]
    assert at.session_state[state.DATASET_SPEC] == "upload"
    assert dataset.title == "Your uploaded runs (12 run files)"
    assert owned_by_session(dataset)
    assert run_files[0][0] in dataset.source and "run-01.nii.gz" not in dataset.source
    _assert_same_as_one_file(dataset, haxby_slice_dir, slice_labels)


def test_one_labels_table_per_run_in_natural_name_order(run_files, slice_labels, haxby_slice_dir):
    # Named so that plain string order would put run 10 before run 2.
    tables = [(f"labels run {run + 1}.tsv", _table_bytes(part.drop(columns="chunks")), "text/plain")
              for run, part in slice_labels.groupby("chunks")]
    renamed = [(f"bold run {number}.nii.gz", data, kind) for number, (_, data, kind) in enumerate(run_files, 1)]
    at = upload_runs(start_app(), renamed[::-1], tables[::-1], _mask(haxby_slice_dir))
    assert not at.error, error_texts(at)
    assert [entry.name for entry in at.session_state[state.PENDING_RUN_LABELS]] == [name for name, _, _ in tables]
    _assert_same_as_one_file(at.session_state[state.DATASET], haxby_slice_dir, slice_labels)

    go_to(at, "tutorial.py")
    assert_no_traceback(at)
    code = "\n".join(block.value for block in at.code)
    assert "concat_imgs(run_filenames)" in code and "'bold run 10.nii.gz'" in code
    assert "labels run 12.tsv" in code


def test_a_3d_file_among_the_runs_is_named_and_the_others_kept(run_files, haxby_slice_dir):
    at = start_app()
    previous = at.session_state[state.DATASET]
    mask = _mask(haxby_slice_dir)
    upload_runs(at, [*run_files[:3], ("not a run.nii.gz", mask[1], "application/gzip")],
                [("labels.txt", b"labels\nface\n", "text/plain")], load=False)
    errors = error_texts(at)
    assert any("not a run.nii.gz" in text for text in errors), errors
    assert [entry.name for entry in at.session_state[state.PENDING_RUN_FILES]] == [n for n, _, _ in run_files[:3]]
    assert at.button(key=state.W_RUNS_LOAD).disabled  # the refused file's error holds Load back
    assert at.session_state[state.DATASET] is previous
    at.button(key=state.W_UPLOAD_RUN_FILES_DISMISS).click()
    at.run()
    assert not error_texts(at)
    assert len(at.session_state[state.PENDING_RUN_FILES]) == 3  # the files kept stay
    assert not at.button(key=state.W_RUNS_LOAD).disabled


@pytest.mark.parametrize("case, expected", [
    ("three tables", "one labels table per run: 12 run files and 3 labels tables"),
    ("short table", "rows"),
    ("other grid", "grid"),
    ("a table without the column", "has no label column 'labels'"),
])
def test_mismatched_files_give_a_clear_error_and_keep_the_data_set(
        case, expected, run_files, slice_labels, haxby_slice_dir, haxby_vt_dir):
    tables = [("labels.tsv", _table_bytes(slice_labels), "text/plain")]
    runs = list(run_files)
    if case == "three tables":
        tables = [(f"labels {n}.tsv", _table_bytes(part), "text/plain")
                  for n, (_, part) in enumerate(list(slice_labels.groupby("chunks"))[:3])]
    elif case == "short table":
        tables = [("labels.tsv", _table_bytes(slice_labels.iloc[:-5]), "text/plain")]
    elif case == "a table without the column":
        tables = [(f"labels {run:02d}.tsv", _table_bytes(part.rename(columns={"labels": "condition"})
                                                          if run == 3 else part), "text/plain")
                  for run, part in slice_labels.groupby("chunks")]
    else:
        runs[4] = ("vt run.nii.gz", (haxby_vt_dir / "bold_vt.nii.gz").read_bytes(), "application/gzip")
    at = start_app()
    previous = at.session_state[state.DATASET]
    upload_runs(at, runs, tables)
    errors = error_texts(at)
    assert any(expected in text for text in errors), errors
    # The user's file names, never the app's copies (run-01.nii.gz, ...).
    assert not any(re.search(r"(?<![\w-])run-\d\d\.nii", text) for text in errors), errors
    assert at.session_state[state.DATASET] is previous
    assert at.session_state[state.DATASET_SPEC] == "simulated"


def test_remove_all_forgets_the_stored_runs(run_files, slice_labels):
    at = upload_runs(start_app(), run_files[:2], [("labels.tsv", _table_bytes(slice_labels), "text/plain")],
                     load=False)
    paths = [entry.path for entry in at.session_state[state.PENDING_RUN_FILES]]
    assert len(paths) == 2 and all(path.is_file() for path in paths)
    at.button(key=state.W_UPLOAD_RUN_FILES_CLEAR).click()
    at.run()
    assert at.session_state[state.PENDING_RUN_FILES] == []
    assert not any(path.exists() for path in paths)
    assert at.button(key=state.W_RUNS_LOAD).disabled


@pytest.mark.parametrize("case", ["gzip_bomb_small_header", "gzip_bomb_single_member", "truncated_gzip",
                                  "bad_crc", "random_bytes_gz_name", "3d_as_functional", "terabyte_header_gz"])
def test_a_hostile_run_file_gets_a_clear_message_and_the_data_set_is_kept(case):
    from tests.security.hostile import hostile_niftis

    name, data = hostile_niftis()[case]
    volumes = 20 if case in ("truncated_gzip", "bad_crc") else 10  # as the header says: the data are at fault
    labels = ("labels.txt", b"labels\n" + b"face\ncat\n" * (volumes // 2), "text/plain")
    at = start_app()
    previous = at.session_state[state.DATASET]
    upload_runs(at, [(f"run 1 {name}", data, "application/gzip")], [labels])
    errors = error_texts(at)
    assert any(f"run 1 {name}" in text for text in errors), errors
    assert at.session_state[state.DATASET] is previous


def test_a_reload_keeps_the_run_files_waiting_in_their_boxes(run_files, slice_labels, haxby_slice_dir, monkeypatch):
    from ui import session

    first = upload_runs(start_app(), run_files[:3], [("labels.tsv", _table_bytes(slice_labels), "text/plain")],
                        load=False)
    token = first.session_state[state.SESSION_TOKEN]
    kept = [entry.name for entry in first.session_state[state.PENDING_RUN_FILES]]
    assert len(kept) == 3
    # The reload: a new session whose browser cookie names the first one (as in test_session_resume).
    monkeypatch.setattr(session, "_cookie_token", lambda: token)
    second = start_app()
    assert second.session_state[state.SESSION_TOKEN] == token
    second.radio(key=state.W_SOURCE).set_value("runs")
    second.run()
    assert_no_traceback(second)
    assert [entry.name for entry in second.session_state[state.PENDING_RUN_FILES]] == kept
    assert all(entry.path.is_file() for entry in second.session_state[state.PENDING_RUN_FILES])
    assert [entry.name for entry in second.session_state[state.PENDING_RUN_LABELS]] == ["labels.tsv"]
    assert not second.button(key=state.W_RUNS_LOAD).disabled  # ready to load, nothing to upload again
