"""The command line on a BIDS folder: --bids, --subject, --task, --hrf-lag, --design and info --bids."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from decoding_core.cli import EXIT_INPUT_ERROR, main

TASK = "objectviewing"


@pytest.fixture
def bids_args(haxby_bids_dir, haxby_slice_dir):
    return ["--bids", haxby_bids_dir, "--subject", "1", "--task", TASK, "--mask", haxby_slice_dir / "mask.nii.gz"]


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_decode_bids_equals_the_one_file_data(bids_args, haxby_slice_dir, capsys):
    common = ["--conditions", "face", "cat", "--cv", "leave-one-run-out", "--json"]
    assert main(["decode", *bids_args, "--hrf-lag", "0", *common]) == 0
    from_bids = _json(capsys)
    assert main(["decode", "--func", haxby_slice_dir / "bold.nii.gz", "--labels", haxby_slice_dir / "labels.txt",
                 "--mask", haxby_slice_dir / "mask.nii.gz", *common]) == 0
    from_file = _json(capsys)
    assert from_bids["fold_scores"] == pytest.approx(from_file["fold_scores"], abs=1e-12)
    assert (from_bids["n_samples"], from_bids["n_voxels"]) == (216, 530)
    assert (from_file["n_samples"], from_file["n_voxels"]) == (216, 530)
    assert from_bids["dataset"].startswith("bids:") and "task=objectviewing" in from_bids["dataset"]


def test_info_bids_lists_what_is_there(haxby_bids_dir, capsys):
    assert main(["info", "--bids", haxby_bids_dir, "--json"]) == 0
    contents = _json(capsys)
    assert (contents["subjects"], contents["tasks"], contents["sessions"], contents["spaces"]) == (
        ["1"], [TASK], [], [])


def test_info_bids_selection_lists_runs(bids_args, capsys):
    assert main(["info", *bids_args, "--hrf-lag", "2.5", "--drop-edge-volumes", "1", "--json"]) == 0
    described = _json(capsys)
    assert described["n_runs"] == 12 and described["n_volumes"] == 1452 and described["tr"] == 2.5
    assert described["runs"][0] == {"run": "01", "bold": f"sub-1_task-{TASK}_run-01_bold.nii.gz", "n_volumes": 121,
                                    "tr": 2.5, "events": f"sub-1_task-{TASK}_run-01_events.tsv", "confounds": None}
    assert described["conditions"]["edge"] == 2 * 8 * 12 and "lag=2.5&edge=1" in described["name"]


@pytest.mark.parametrize(("changed", "extra", "message"), [
    ({"--task": "faces"}, [], r"no bold files for subject '1', task 'faces'.*tasks objectviewing"),
    ({}, ["--design", "lsa", "--hrf-lag", "5"], "apply to block designs only"),
    ({}, ["--dataset", "simulated"], "Give either --bids or --dataset"),
])
def test_decode_bids_input_errors_exit_2(bids_args, changed, extra, message, capsys):
    args = list(bids_args)
    for flag, value in changed.items():
        args[args.index(flag) + 1] = value
    assert main(["decode", *args, *extra]) == EXIT_INPUT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err)


def test_bids_needs_subject_and_task(haxby_bids_dir, capsys):
    assert main(["decode", "--bids", haxby_bids_dir, "--task", TASK]) == EXIT_INPUT_ERROR
    assert "needs --subject and --task" in capsys.readouterr().err


def test_bids_options_without_bids(capsys):
    assert main(["decode", "--dataset", "simulated", "--hrf-lag", "3"]) == EXIT_INPUT_ERROR
    assert "--hrf-lag: options of a BIDS data set; give --bids DIR too" in capsys.readouterr().err


def test_events_outside_the_run_exit_2(haxby_bids_dir, tmp_path, capsys):
    root = shutil.copytree(haxby_bids_dir, tmp_path / "bids")
    events = root / "sub-1" / "func" / f"sub-1_task-{TASK}_run-01_events.tsv"
    events.write_text(events.read_text() + "999\t22.5\tface\n")
    assert main(["decode", "--bids", root, "--subject", "1", "--task", TASK]) == EXIT_INPUT_ERROR
    assert "events outside the run" in capsys.readouterr().err


def _run_script(folder, *args):
    completed = subprocess.run([sys.executable, str(folder / "reproduce.py"), *map(str, args)], cwd=folder,
                               capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


@pytest.mark.slow
def test_exported_script_reproduces_a_bids_run_from_the_bids_files(bids_args, haxby_slice_dir, tmp_path, capsys):
    out = tmp_path / "export"
    assert main(["run", *bids_args, "--hrf-lag", "5", "--drop-edge-volumes", "1", "--conditions", "face", "cat",
                 "house", "--out", out, "--json"]) == 0
    recorded = _json(capsys)
    reproduced = _run_script(out)
    assert reproduced["match"] and reproduced["fold_scores"] == pytest.approx(recorded["fold_scores"], abs=5e-7)
    # It read the run files the app read (their digest), the same samples and voxels.
    assert reproduced["data_read"] == reproduced["data_recorded"]
    assert reproduced["n_samples"] == 3 * 12 * 7  # 9 volumes per block, 1 'edge' volume at each end
    # The configuration file alone finds the BIDS selection again (the mask is given as for own files).
    again = tmp_path / "again"
    assert main(["run", out / "config.json", "--mask", haxby_slice_dir / "mask.nii.gz", "--out", again,
                 "--json"]) == 0
    assert _json(capsys)["fold_scores"] == recorded["fold_scores"]


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore")
def test_exported_script_reproduces_lsa_betas(tmp_path, capsys):
    import nibabel as nib

    from decoding_core.datasets.simulation import simulate_event_related, write_event_related_bids

    sim = simulate_event_related(seed=2, n_runs=3, trials_per_class=4)
    root = write_event_related_bids(sim, tmp_path / "bids", subject="01", task="sim")
    nib.save(sim.mask_img, tmp_path / "mask.nii.gz")
    out = tmp_path / "export"
    assert main(["run", "--bids", root, "--subject", "01", "--task", "sim", "--design", "lsa", "--mask",
                 tmp_path / "mask.nii.gz", "--conditions", "face", "house", "--out", out, "--json"]) == 0
    recorded = _json(capsys)
    reproduced = _run_script(out)
    assert reproduced["match"] and reproduced["n_samples"] == 24
    assert reproduced["fold_scores"] == pytest.approx(recorded["fold_scores"], abs=5e-7)
