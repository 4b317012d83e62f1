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


# -- trial betas (event-related designs) -------------------------------------------------------


@pytest.fixture(scope="module")
def event_related():
    from decoding_core.datasets.simulation import simulate_event_related

    return simulate_event_related(seed=3, n_runs=3, trials_per_class=6)


def _independent_betas(run_img, events, tr, mask_img, trial_row, lss):
    """Trial ``trial_row``'s beta by nilearn's FirstLevelModel, set up here from its documentation."""
    from nilearn.glm.first_level import FirstLevelModel

    events = events[["onset", "duration", "trial_type"]].copy()
    name = f"trial_of_interest_{trial_row}"
    if lss:  # nilearn's beta-series example: the trial alone, the others by condition
        events.loc[trial_row, "trial_type"] = name
    else:  # one regressor per trial
        events["trial_type"] = [f"trial_{k}" for k in range(len(events))]
        name = f"trial_{trial_row}"
    model = FirstLevelModel(t_r=tr, mask_img=mask_img, hrf_model="glover", drift_model="cosine", high_pass=0.01,
                            noise_model="ar1", signal_scaling=0, minimize_memory=True)
    model.fit(run_img, events=events)
    return np.asarray(model.compute_contrast(name, output_type="effect_size").dataobj)


def _decode_betas(betas, labels):
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
    from sklearn.svm import LinearSVC

    X = np.asarray(betas.dataobj).reshape(-1, betas.shape[3]).T
    y = labels["trial_type"].to_numpy(dtype=str)
    return cross_val_score(LinearSVC(), X, y, groups=labels["run"].to_numpy(), cv=LeaveOneGroupOut())


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("method", ["lsa", "lss"])
def test_trial_betas_decode_the_planted_classes_and_equal_first_level_model(event_related, method):
    from decoding_core.events import trial_betas

    sim = event_related
    betas, labels = trial_betas(sim.run_imgs, sim.events, sim.tr, method=method, mask_img=sim.mask_img)
    n_trials = sum(len(events) for events in sim.events)
    assert betas.shape == (*sim.mask_img.shape, n_trials) and len(labels) == n_trials
    expected_types = np.concatenate([events["trial_type"].to_numpy(dtype=str) for events in sim.events])
    np.testing.assert_array_equal(labels["trial_type"].to_numpy(dtype=str), expected_types)
    np.testing.assert_array_equal(labels["run"].to_numpy(), np.repeat([0, 1, 2], 12))
    # Leave-one-run-out accuracy well above chance (0.5).
    assert _decode_betas(betas, labels).mean() >= 0.9
    # The difference of the class means follows the planted difference (0.89 measured for both methods;
    # shuffled trial labels give about 0).
    X = np.asarray(betas.dataobj).reshape(-1, n_trials).T
    difference = X[expected_types == "face"].mean(axis=0) - X[expected_types == "house"].mean(axis=0)
    assert np.corrcoef(difference, sim.patterns["face"] - sim.patterns["house"])[0, 1] > 0.8
    # Equal, to float32 precision, to FirstLevelModel run directly (trials 0 and 7 of run 1).
    for row in (0, 7):
        direct = _independent_betas(sim.run_imgs[1], sim.events[1], sim.tr, sim.mask_img, row, method == "lss")
        np.testing.assert_allclose(np.asarray(betas.dataobj)[..., 12 + row], direct, rtol=1e-5, atol=1e-5)


def test_trial_betas_bad_arguments():
    import nibabel as nib

    from decoding_core.events import trial_betas

    run = nib.Nifti1Image(np.zeros((2, 2, 2, 10), dtype=np.float32), np.eye(4))
    events = _events([(0.0, 1.0, "face"), (8.0, 1.0, "cat")])
    with pytest.raises(DecodingInputError, match=r"'method' must be one of \['lsa', 'lss'\]. Got 'glm'"):
        trial_betas([run] * 3, [events] * 3, 2.0, method="glm")
    with pytest.raises(DecodingInputError, match="one events table per run: 3 run image"):
        trial_betas([run] * 3, [events] * 2, 2.0)
    with pytest.raises(DecodingInputError,
                       match=r"The events table of run 0 has events outside the run: 2 event.*'face' at 20 s"):
        trial_betas([run], [events.assign(onset=events["onset"] + 20)], 2.0)


def test_trial_names_count_each_condition():
    from decoding_core.events import trial_names

    events = _events([(0, 1, "face"), (4, 1, "cat"), (8, 1, "face")])
    assert trial_names(events) == ["face__000", "cat__000", "face__001"]
