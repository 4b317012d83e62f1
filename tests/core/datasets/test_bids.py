"""Tests of decoding_core.datasets.bids: a data set from a BIDS folder (runs, events, sidecars)."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from decoding_core import decoding, masking
from decoding_core.config import DecodingConfig
from decoding_core.datasets import load_files
from decoding_core.datasets.bids import BidsSelection, bids_choices, find_runs, load_bids
from decoding_core.errors import DecodingInputError

TASK = "objectviewing"


@pytest.fixture
def bids_copy(haxby_bids_dir, tmp_path):
    """A writable copy of the real BIDS slice data set (to break in each test)."""
    return shutil.copytree(haxby_bids_dir, tmp_path / "bids")


def _func(root, run):
    return root / "sub-1" / "func" / f"sub-1_task-{TASK}_run-{run:02d}_bold.nii.gz"


def _events(root, run):
    return root / "sub-1" / "func" / f"sub-1_task-{TASK}_run-{run:02d}_events.tsv"


@pytest.fixture(scope="module")
def bids_and_slice(haxby_bids_dir, haxby_slice_dir, tmp_path_factory):
    mask = haxby_slice_dir / "mask.nii.gz"
    bids = load_bids(haxby_bids_dir, subject="1", task=TASK, mask=mask, hrf_lag=0,
                     cache_dir=tmp_path_factory.mktemp("cache"))
    one_file = load_files(haxby_slice_dir / "bold.nii.gz", haxby_slice_dir / "labels.txt", mask=mask)
    return bids, one_file


def test_choices_and_runs_of_the_real_bids_folder(haxby_bids_dir):
    choices = bids_choices(haxby_bids_dir)
    assert (choices.subjects, choices.tasks, choices.sessions, choices.spaces) == (("1",), (TASK,), (), ())
    runs = find_runs(haxby_bids_dir, subject="sub-1", task=TASK)
    assert runs.n_runs == 12 and runs.n_volumes == (121,) * 12 and runs.tr == (2.5,) * 12
    assert runs.run_labels == tuple(f"{k:02d}" for k in range(1, 13))
    assert runs.bold_files[3] == _func(haxby_bids_dir, 4) and runs.events_files[3] == _events(haxby_bids_dir, 4)
    assert runs.confounds_files == (None,) * 12


def test_bids_samples_labels_and_runs_equal_the_one_file_data(bids_and_slice):
    bids, one_file = bids_and_slice
    assert bids.shape == one_file.shape and bids.tr == 2.5 and bids.n_runs == 12
    np.testing.assert_array_equal(bids.conditions, one_file.conditions)
    np.testing.assert_array_equal(bids.runs, one_file.runs)
    a = masking.mask_dataset(bids, "uploaded")
    b = masking.mask_dataset(one_file, "uploaded")
    assert a.X.shape == (1452, 530)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.runs, b.runs)
    # The joined file holds the runs' voxels unchanged, in the runs' own type.
    joined = nib.load(bids.func_path)
    assert joined.get_data_dtype() == np.int16
    assert bids.run_files[0].name == "sub-1_task-objectviewing_run-01_bold.nii.gz" and len(bids.run_files) == 12
    assert list(bids.events.columns[:3]) == ["onset", "duration", "trial_type"]
    assert sorted(bids.events["run"].unique()) == list(range(12))
    assert BidsSelection.from_name(bids.name).load_arguments()["task"] == TASK


@pytest.mark.slow
def test_bids_fold_scores_equal_the_one_file_data(bids_and_slice):
    bids, one_file = bids_and_slice
    config = DecodingConfig(conditions=("face", "cat"), mask_name="uploaded", cv="leave-one-run-out")
    a = decoding.run_decoding(bids, config)
    b = decoding.run_decoding(one_file, config)
    assert len(a.fold_scores) == 12
    np.testing.assert_allclose(a.fold_scores, b.fold_scores, rtol=0, atol=1e-12)
    assert a.mean_score > 0.6


def test_hrf_lag_shifts_the_labels_by_whole_volumes(haxby_bids_dir, haxby_slice_dir, tmp_path):
    lagged = load_bids(haxby_bids_dir, subject="1", task=TASK, hrf_lag=5.0, drop_edge_volumes=1,
                       mask=haxby_slice_dir / "mask.nii.gz", cache_dir=tmp_path)
    plain = load_bids(haxby_bids_dir, subject="1", task=TASK, mask=haxby_slice_dir / "mask.nii.gz",
                      cache_dir=tmp_path)
    assert lagged.func_path == plain.func_path  # one joined file whatever the lag
    first = plain.conditions[:121]
    shifted = np.r_[["rest", "rest"], first[:-2]]  # 5 s = 2 volumes of 2.5 s
    blocks = shifted != "rest"
    got = lagged.conditions[:121]
    assert (got[~blocks] == "rest").all()
    assert ((got[blocks] == shifted[blocks]) | (got[blocks] == "edge")).all()
    assert (got == "edge").sum() == 2 * 8  # one volume at each end of the 8 blocks
    assert lagged.digest != plain.digest and "lag=5" in lagged.name


def test_tr_comes_from_the_nearest_sidecar(bids_copy):
    sidecar = bids_copy / "sub-1" / "func" / "sub-1_task-objectviewing_run-02_bold.json"
    sidecar.write_text(json.dumps({"RepetitionTime": 2.0}))
    runs = find_runs(bids_copy, subject="1", task=TASK)
    assert runs.tr[:3] == (2.5, 2.0, 2.5)
    with pytest.raises(DecodingInputError, match=r"run-02_bold.nii.gz has a repetition time of 2 s but "
                                                 r".*run-01_bold.nii.gz has 2.5 s"):
        load_bids(bids_copy, subject="1", task=TASK, cache_dir=bids_copy / "cache")


def test_no_bold_files_for_the_task_lists_what_is_there(haxby_bids_dir):
    with pytest.raises(DecodingInputError, match=r"no bold files for subject '1', task 'faces'.*"
                                                 r"It holds: subjects 1; tasks objectviewing"):
        load_bids(haxby_bids_dir, subject="1", task="faces")
    with pytest.raises(DecodingInputError, match=r"no bold files for subject '2'"):
        find_runs(haxby_bids_dir, subject="2", task=TASK)


def test_events_without_trial_type_name_the_file(bids_copy):
    path = _events(bids_copy, 3)
    path.write_text("onset\tduration\tcondition\n15.0\t22.5\tface\n")
    with pytest.raises(DecodingInputError, match=r"events file sub-1_task-objectviewing_run-03_events.tsv "
                                                 r"has no 'trial_type' column"):
        load_bids(bids_copy, subject="1", task=TASK, cache_dir=bids_copy / "cache")


def test_events_outside_the_run(bids_copy):
    path = _events(bids_copy, 5)
    path.write_text(path.read_text() + "400.0\t22.5\tface\n")
    with pytest.raises(DecodingInputError,
                       match=r"events file sub-1_task-objectviewing_run-05_events.tsv \(of .*run-05_bold.nii.gz\) "
                             r"has events outside the run: .*121 volumes x 2.5 s = 302.5 s .*'face' at 400 s"):
        load_bids(bids_copy, subject="1", task=TASK, cache_dir=bids_copy / "cache")


def test_run_without_events(bids_copy):
    _events(bids_copy, 7).unlink()
    with pytest.raises(DecodingInputError, match=r"run-07_bold.nii.gz has no events file"):
        load_bids(bids_copy, subject="1", task=TASK, cache_dir=bids_copy / "cache")


def test_run_on_another_grid(bids_copy):
    path = _func(bids_copy, 2)
    image = nib.load(path)
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj)[:30], image.affine, image.header), path)
    with pytest.raises(DecodingInputError, match=r"run-02_bold.nii.gz is on another grid than .*run-01"):
        load_bids(bids_copy, subject="1", task=TASK, cache_dir=bids_copy / "cache")


def test_bad_design_and_lag_for_betas(haxby_bids_dir):
    with pytest.raises(DecodingInputError, match="'design' must be one of block, lsa, lss"):
        load_bids(haxby_bids_dir, subject="1", task=TASK, design="glm")
    with pytest.raises(DecodingInputError, match="apply to block designs only"):
        load_bids(haxby_bids_dir, subject="1", task=TASK, design="lsa", hrf_lag=5)


def test_not_a_folder(tmp_path):
    with pytest.raises(DecodingInputError, match="does not exist"):
        bids_choices(tmp_path / "missing")
    with pytest.raises(DecodingInputError, match="holds no BIDS bold files"):
        bids_choices(tmp_path)


def test_fmriprep_derivatives_with_raw_events(bids_copy):
    """A derivatives/fmriprep folder: preprocessed runs in a space, events from the raw data set."""
    func = bids_copy / "sub-1" / "func"
    derived = bids_copy / "derivatives" / "fmriprep" / "sub-1" / "func"
    derived.mkdir(parents=True)
    for run in (1, 2):
        stem = f"sub-1_task-{TASK}_run-{run:02d}"
        shutil.copy(func / f"{stem}_bold.nii.gz",
                    derived / f"{stem}_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz")
        (derived / f"{stem}_desc-confounds_timeseries.tsv").write_text("trans_x\n" + "0\n" * 121)
    # A task-level events file at the top applies only where a run has none of its own.
    (bids_copy / f"task-{TASK}_events.tsv").write_text("onset\tduration\ttrial_type\n0\t1\tface\n")
    choices = bids_choices(bids_copy)
    assert choices.spaces == ("MNI152NLin2009cAsym",) and choices.has_raw
    runs = find_runs(bids_copy, subject="1", task=TASK, space="MNI152NLin2009cAsym")
    assert runs.n_runs == 2 and runs.events_files == (_events(bids_copy, 1), _events(bids_copy, 2))
    assert runs.confounds_files[1].name == f"sub-1_task-{TASK}_run-02_desc-confounds_timeseries.tsv"
    assert runs.tr == (2.5, 2.5)  # the raw data set's top-level sidecar
    # The derivatives folder given as the root finds the raw events above it.
    runs = find_runs(bids_copy / "derivatives" / "fmriprep", subject="1", task=TASK, space="MNI152NLin2009cAsym")
    assert runs.events_files[0] == _events(bids_copy, 1)
    _events(bids_copy, 2).unlink()
    assert find_runs(bids_copy, subject="1", task=TASK).events_files[1] == bids_copy / f"task-{TASK}_events.tsv"


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_event_related_bids_gives_one_sample_per_trial(tmp_path):
    from decoding_core.datasets.simulation import simulate_event_related, write_event_related_bids
    from decoding_core.events import trial_betas

    sim = simulate_event_related(seed=1, n_runs=3, trials_per_class=5)
    root = write_event_related_bids(sim, tmp_path / "bids", subject="01", task="sim")
    nib.save(sim.mask_img, tmp_path / "mask.nii.gz")
    dataset = load_bids(root, subject="01", task="sim", design="lsa", mask=tmp_path / "mask.nii.gz",
                        cache_dir=tmp_path / "cache")
    assert dataset.shape[3] == 30 and dataset.tr is None and "design=lsa" in dataset.name
    np.testing.assert_array_equal(dataset.conditions,
                                  np.concatenate([e["trial_type"].to_numpy(dtype=str) for e in sim.events]))
    np.testing.assert_array_equal(dataset.runs, np.repeat([0, 1, 2], 10))
    # The samples are trial_betas' own (read back from the cache file).
    betas, _ = trial_betas(sim.run_imgs, sim.events, sim.tr, method="lsa", mask_img=sim.mask_img)
    np.testing.assert_allclose(np.asarray(nib.load(dataset.func_path).dataobj), np.asarray(betas.dataobj),
                               rtol=1e-6, atol=1e-6)
    config = DecodingConfig(conditions=("face", "house"), mask_name="uploaded", cv="leave-one-run-out")
    assert decoding.run_decoding(dataset, config).mean_score >= 0.9


def test_selection_name_round_trip():
    selection = BidsSelection(root="/data/my study?/ds", subject="01", task="faces", session="2", space="MNI",
                              hrf_lag=4.5, drop_edge_volumes=1, design="lss")
    name = str(selection)
    assert name.startswith("bids:/data/my%20study%3F/ds?") and "ses=2" in name and "design=lss" in name
    assert BidsSelection.from_name(name) == selection
    assert BidsSelection.from_name("haxby:2") is None and BidsSelection.from_name("upload") is None
    assert BidsSelection.from_name(name[: name.index("design=") + 9]) is None  # cut short: not a design


def test_sessions_are_chosen_or_all_taken_in_order(haxby_bids_dir, tmp_path):
    """Runs 1-3 in ses-a and 4-5 in ses-b: one session, or every session's runs in session order."""
    func = haxby_bids_dir / "sub-1" / "func"
    for session, runs in (("b", (4, 5)), ("a", (1, 2, 3))):
        folder = tmp_path / "sub-1" / f"ses-{session}" / "func"
        folder.mkdir(parents=True)
        for run in runs:
            for suffix in ("bold.nii.gz", "events.tsv"):
                shutil.copy(func / f"sub-1_task-{TASK}_run-{run:02d}_{suffix}",
                            folder / f"sub-1_ses-{session}_task-{TASK}_run-{run:02d}_{suffix}")
    shutil.copy(haxby_bids_dir / f"task-{TASK}_bold.json", tmp_path)
    assert bids_choices(tmp_path).sessions == ("a", "b")
    assert find_runs(tmp_path, subject="1", task=TASK, session="ses-b").run_labels == ("04", "05")
    every = find_runs(tmp_path, subject="1", task=TASK)
    assert every.run_labels == ("ses-a_run-01", "ses-a_run-02", "ses-a_run-03", "ses-b_run-04", "ses-b_run-05")
    assert every.tr == (2.5,) * 5
    with pytest.raises(DecodingInputError, match=r"session 'c'.*sessions a, b"):
        find_runs(tmp_path, subject="1", task=TASK, session="c")
