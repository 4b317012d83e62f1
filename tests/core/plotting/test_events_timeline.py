"""Tests of decoding_core.plotting.plot_events_timeline: a BIDS data set's events and volume labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from decoding_core import plotting
from decoding_core.errors import DecodingInputError

TR = 2.5


def read_run_events(bids_dir, run: int) -> pd.DataFrame:
    path = bids_dir / "sub-1" / "func" / f"sub-1_task-objectviewing_run-{run:02d}_events.tsv"
    return pd.read_csv(path, sep="\t").assign(run=f"run-{run:02d}")


def labels_by_hand(events: pd.DataFrame, n_volumes: int, lag: float) -> np.ndarray:
    """Independent of decoding_core.events: each volume takes the event its time, minus the lag, falls in."""
    labels = np.full(n_volumes, "rest", dtype=object)
    for onset, duration, trial_type in events[["onset", "duration", "trial_type"]].itertuples(index=False):
        times = np.arange(n_volumes) * TR
        labels[(times >= onset + lag - 1e-6) & (times < onset + lag + duration - 1e-6)] = trial_type
    return labels.astype(str)


def traces(fig: go.Figure, kind) -> dict:
    return {trace.name: trace for trace in fig.data if isinstance(trace, kind)}


def test_each_run_is_a_row_with_its_blocks_and_the_lagged_volume_labels(haxby_bids_dir, haxby_labels_dir):
    events = pd.concat([read_run_events(haxby_bids_dir, run) for run in (1, 2)], ignore_index=True)
    volume_labels = {f"run-{run:02d}": labels_by_hand(events[events["run"] == f"run-{run:02d}"], 121, 5.0)
                     for run in (1, 2)}
    fig = plotting.plot_events_timeline(events, volume_labels, TR, hrf_lag=5.0)

    assert list(fig.layout.yaxis.ticktext) == ["run-01", "run-02"]
    bars = traces(fig, go.Bar)
    assert set(bars) == set(events["trial_type"])  # one bar trace per trial_type
    face = bars["face"]
    face_events = events[events["trial_type"] == "face"]
    np.testing.assert_allclose(np.asarray(face.base, dtype=float), face_events["onset"])
    np.testing.assert_allclose(face.x, face_events["duration"])
    np.testing.assert_allclose(face.y, [-0.17, 0.83])  # upper half of rows 0 and 1
    # Bars and squares of one condition share its colour (Haxby's fixed one).
    marks = traces(fig, go.Scatter)
    assert marks["face"].marker.color == face.marker.color == plotting.condition_colors(["face"])["face"]
    assert marks["rest"].marker.color == plotting.REST_COLOR
    # Every volume is drawn once, at its acquisition time, with the label it was given.
    drawn = sum(len(trace.x) for trace in marks.values())
    assert drawn == 242
    face_volumes = np.flatnonzero(volume_labels["run-01"] == "face")
    np.testing.assert_allclose(np.asarray(marks["face"].x)[: face_volumes.size], face_volumes * TR)
    # The lag shifts the squares two volumes after the bar's start (5 s = 2 TR).
    assert face_volumes[0] * TR == pytest.approx(face_events["onset"].iloc[0] + 5.0)
    assert "lag 5 s" in fig.layout.title.text
    # With no lag the labels equal the per-volume labels table of the same runs.
    table = pd.read_csv(haxby_labels_dir / "subj1_labels.txt", sep=" ")
    assert labels_by_hand(events[events["run"] == "run-01"], 121, 0.0).tolist() == \
        table.loc[table["chunks"] == 0, "labels"].tolist()


def test_dropped_edge_volumes_are_drawn_and_counted():
    events = pd.DataFrame({"onset": [2.5], "duration": [10.0], "trial_type": ["face"], "run": ["r1"]})
    labels = {"r1": np.array(["rest", "edge", "face", "face", "edge", "rest"])}
    fig = plotting.plot_events_timeline(events, labels, TR, hrf_lag=0.0)
    edge = traces(fig, go.Scatter)["dropped (block edge)"]
    np.testing.assert_allclose(edge.x, [2.5, 10.0])
    assert edge.marker.symbol == "x-thin-open" and edge.showlegend
    assert "2 edge volumes dropped" in fig.layout.title.text


def test_user_text_is_escaped_in_hover_legend_and_ticks():
    hostile = '<img src=x onerror="alert(1)">'
    events = pd.DataFrame({"onset": [0.0], "duration": [5.0], "trial_type": [hostile], "run": ["<b>run</b>"]})
    labels = {"<b>run</b>": np.array([hostile, hostile, "rest"])}
    fig = plotting.plot_events_timeline(events, labels, TR)
    text = fig.to_json()
    assert "<img" not in text and "<b>run" not in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in text
    assert list(fig.layout.yaxis.ticktext) == ["&lt;b&gt;run&lt;/b&gt;"]


def test_bad_arguments_are_refused():
    events = pd.DataFrame({"onset": [0.0], "duration": [5.0], "trial_type": ["a"]})
    with pytest.raises(DecodingInputError, match="'events' has no 'run' column"):
        plotting.plot_events_timeline(events, {"r": ["a"]}, TR)
    with pytest.raises(DecodingInputError, match="at least one run"):
        plotting.plot_events_timeline(events.assign(run="r"), {}, TR)
    with pytest.raises(DecodingInputError, match="'tr' must be a positive number"):
        plotting.plot_events_timeline(events.assign(run="r"), {"r": ["a"]}, 0)
