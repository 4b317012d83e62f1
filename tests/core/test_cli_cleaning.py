"""The command line's cleaning options: --standardize/--detrend series|run|none, --high-pass, --confounds,
and the older --no-standardize and bare --detrend."""

from __future__ import annotations

import json

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
