"""The command line's cleaning options: --standardize/--detrend series|run|none, --high-pass, --confounds,
and the older --no-standardize and bare --detrend."""

from __future__ import annotations

import json
import shutil

import pytest

from decoding_core.cli import EXIT_INPUT_ERROR, build_parser, main


def slice_args(haxby_slice_dir, *extra):
    return ["decode", "--func", haxby_slice_dir / "bold.nii.gz", "--labels", haxby_slice_dir / "labels.txt",
            "--mask", haxby_slice_dir / "mask.nii.gz", "--json", "--quiet", *extra]


@pytest.mark.parametrize("argv, standardize, detrend", [
    ([], None, None),
    (["--no-standardize"], "none", None),
    (["--standardize", "run"], "run", None),
    (["--detrend"], None, "series"),
    (["--detrend", "run", "--standardize", "none"], "none", "run"),
])
def test_cleaning_flags_parse(argv, standardize, detrend):
    args = build_parser().parse_args(["decode", *argv])
    assert (args.standardize, args.detrend) == (standardize, detrend)


@pytest.mark.slow
def test_standardize_run_on_the_real_slice(haxby_slice_dir, capsys):
    assert main(slice_args(haxby_slice_dir, "--standardize", "run")) == 0
    by_run = json.loads(capsys.readouterr().out)
    assert main(slice_args(haxby_slice_dir)) == 0
    series = json.loads(capsys.readouterr().out)
    assert series["mean_score"] == pytest.approx(0.7407, abs=5e-4)
    assert by_run["mean_score"] == pytest.approx(0.8102, abs=5e-4)
    assert any("z-score of each voxel within each run" in note for note in by_run["notes"])


@pytest.mark.slow
def test_no_standardize_is_standardize_none(haxby_slice_dir, capsys):
    assert main(slice_args(haxby_slice_dir, "--no-standardize", "--cv", "kfold", "--folds", "3")) == 0
    old = json.loads(capsys.readouterr().out)
    assert main(slice_args(haxby_slice_dir, "--standardize", "none", "--cv", "kfold", "--folds", "3")) == 0
    new = json.loads(capsys.readouterr().out)
    assert old["fold_scores"] == new["fold_scores"]


def test_confounds_without_fmriprep_files_exit_2_with_one_line(haxby_slice_dir, capsys):
    status = main(slice_args(haxby_slice_dir, "--confounds", "motion"))
    err = capsys.readouterr().err
    assert status == EXIT_INPUT_ERROR
    assert "Confound regression needs the data set's fMRIPrep files" in err and "Traceback" not in err


def test_unknown_scope_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["decode", "--standardize", "yes"])
    assert caught.value.code == 2
    assert "invalid choice: 'yes'" in capsys.readouterr().err


@pytest.fixture
def fmriprep_bids(haxby_bids_dir, tmp_path):
    """The real BIDS slice with fMRIPrep-like derivatives: preproc bold files and confounds tables."""
    from tests.core.test_cleaning import confounds_table

    root = tmp_path / "bids"
    shutil.copytree(haxby_bids_dir, root)
    func = root / "derivatives" / "fmriprep" / "sub-1" / "func"
    func.mkdir(parents=True)
    for k in range(12):
        stem = f"sub-1_task-objectviewing_run-{k + 1:02d}"
        shutil.copyfile(root / "sub-1" / "func" / f"{stem}_bold.nii.gz",
                        func / f"{stem}_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz")
        confounds_table(121, seed=k, high_motion=(50, 51, 52, 53, 54, 55) if k == 3 else ()).to_csv(
            func / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
    return root


def bids_args(root, haxby_slice_dir, *extra):
    return ["decode", "--bids", root, "--subject", "1", "--task", "objectviewing", "--space",
            "MNI152NLin2009cAsym", "--mask", haxby_slice_dir / "mask.nii.gz", "--json", "--quiet", *extra]


@pytest.mark.slow
def test_bids_derivatives_with_confounds_and_scrubbing(fmriprep_bids, haxby_slice_dir, capsys):
    status = main(bids_args(fmriprep_bids, haxby_slice_dir, "--standardize", "run", "--detrend", "run",
                            "--confounds", "motion", "wm_csf", "scrubbing"))
    captured = capsys.readouterr()
    assert status == 0, captured.err
    summary = json.loads(captured.out)
    assert any("fMRIPrep confounds motion, wm_csf, scrubbing within each run" in n for n in summary["notes"])
    assert any("Scrubbing left out 6 of the 1452 volumes" in n for n in summary["notes"])
    # Volumes 50-55 of run 4 are face volumes: they leave the samples (216 face and cat volumes in all).
    assert summary["n_samples"] == 210


def test_bids_confounds_with_the_wrong_number_of_rows_exit_2_naming_the_file(fmriprep_bids, haxby_slice_dir,
                                                                             capsys):
    from tests.core.test_cleaning import confounds_table

    bad = next((fmriprep_bids / "derivatives" / "fmriprep" / "sub-1" / "func").glob("*run-02_desc-confounds*"))
    confounds_table(100, seed=0).to_csv(bad, sep="\t", index=False, na_rep="n/a")
    status = main(bids_args(fmriprep_bids, haxby_slice_dir, "--confounds", "motion"))
    err = capsys.readouterr().err
    assert status == EXIT_INPUT_ERROR
    assert f"The confounds file {bad} has 100 rows but its run" in err and "Traceback" not in err
