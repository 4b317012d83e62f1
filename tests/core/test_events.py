"""Tests of decoding_core.events: reading events, labelling volumes from them, trial betas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decoding_core.errors import DecodingInputError
from decoding_core.events import EDGE_LABEL, events_to_volume_labels, read_events
from decoding_core.io.labels import read_labels_table

HEADER = "onset\tduration\ttrial_type\n"


def _events(rows):
    return pd.DataFrame(rows, columns=["onset", "duration", "trial_type"])


def test_haxby_events_give_back_the_per_volume_labels(haxby_bids_dir, haxby_slice_dir):
    table = read_labels_table(haxby_slice_dir / "labels.txt")
    for run in range(12):
        path = haxby_bids_dir / "sub-1" / "func" / f"sub-1_task-objectviewing_run-{run + 1:02d}_events.tsv"
        labels = events_to_volume_labels(read_events(path), 121, 2.5)
        expected = table.loc[table["chunks"] == run, "labels"].to_numpy(dtype=str)
        np.testing.assert_array_equal(labels, expected)


def test_read_events_types_and_extra_columns():
    events = read_events((HEADER.strip() + "\tresponse_time\n0\t2\t face \t0.5\n4.5\t0\tcat\tn/a\n").encode(), "e.tsv")
    assert list(events.columns) == ["onset", "duration", "trial_type", "response_time"]
    assert events["onset"].tolist() == [0.0, 4.5] and events["duration"].dtype == float
    assert events["trial_type"].tolist() == ["face", "cat"]


@pytest.mark.parametrize(("text", "message"), [
    ("onset\tduration\tcondition\n0\t2\tface\n", r"events file run-1.tsv has no 'trial_type' column"),
    ("onset\ttrial_type\n0\tface\n", r"run-1.tsv has no 'duration' column"),
    (HEADER + "soon\t2\tface\n", r"run-1.tsv has 'soon' in the onset column on line 2"),
    (HEADER + "0\tn/a\tface\n", r"'n/a' in the duration column"),
    (HEADER + "0\t2\tface\n3\t-1\tcat\n", r"negative duration on line 3 \(-1 s\)"),
    (HEADER + "0\t2\tn/a\n", r"run-1.tsv has no trial_type on line 2"),
])
def test_read_events_refuses_bad_tables(text, message):
    with pytest.raises(DecodingInputError, match=message):
        read_events(text.encode(), "run-1.tsv")


def test_read_events_missing_file_names_it(tmp_path):
    with pytest.raises(DecodingInputError, match=r"events file sub-1_events.tsv does not exist"):
        read_events(tmp_path / "sub-1_events.tsv")


def test_labels_from_onsets_lag_and_rest():
    events = _events([(2.0, 4.0, "face"), (10.0, 2.0, "cat")])
    assert events_to_volume_labels(events, 7, 2.0).tolist() == [
        "rest", "face", "face", "rest", "rest", "cat", "rest"]
    # A lag of 3 s: face covers [5, 9) s, volumes 3 and 4 (t = 6, 8); cat [13, 15) s is after the run.
    assert events_to_volume_labels(events, 7, 2.0, hrf_lag=3.0).tolist() == [
        "rest", "rest", "rest", "face", "face", "rest", "rest"]
    assert events_to_volume_labels(events, 7, 2.0, rest_label="baseline")[0] == "baseline"


def test_edge_volumes_are_labelled_edge():
    events = _events([(0.0, 10.0, "face")])
    labels = events_to_volume_labels(events, 7, 1.0, drop_edge_volumes=2)
    assert labels.tolist() == [EDGE_LABEL] * 2 + ["face"] * 3 + [EDGE_LABEL] * 2
    labels = events_to_volume_labels(events, 12, 1.0, drop_edge_volumes=2)
    assert labels.tolist() == ["edge", "edge"] + ["face"] * 6 + ["edge", "edge", "rest", "rest"]


def test_events_outside_the_run():
    with pytest.raises(DecodingInputError, match=r"events outside the run: 1 event\(s\).*10 volumes x 2 s = 20 s"
                                                 r".*'cat' at 20 s"):
        events_to_volume_labels(_events([(0.0, 2.0, "face"), (20.0, 2.0, "cat")]), 10, 2.0)
    with pytest.raises(DecodingInputError, match="events outside the run"):
        events_to_volume_labels(_events([(-1.0, 2.0, "face")]), 10, 2.0)


def test_overlapping_conditions_are_refused_but_same_condition_is_not():
    with pytest.raises(DecodingInputError, match=r"events 'face' and 'cat' both cover volume 1"):
        events_to_volume_labels(_events([(0.0, 4.0, "face"), (2.0, 4.0, "cat")]), 5, 2.0)
    labels = events_to_volume_labels(_events([(0.0, 4.0, "face"), (2.0, 4.0, "face")]), 5, 2.0)
    assert labels.tolist() == ["face", "face", "face", "rest", "rest"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"hrf_lag": -1.0}, "lag must be 0 or more"),
    ({"drop_edge_volumes": -1}, "'drop_edge_volumes' must be an integer"),
    ({"tr": 0.0}, "repetition time"),
])
def test_bad_arguments(kwargs, message):
    arguments = {"tr": 2.0, **kwargs}
    with pytest.raises(DecodingInputError, match=message):
        events_to_volume_labels(_events([(0.0, 2.0, "face")]), 5, **arguments)
