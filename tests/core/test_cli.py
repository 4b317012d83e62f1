"""The command line: JSON output, weight maps, and one-line errors with a non-zero exit."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from decoding_core.cli import EXIT_INPUT_ERROR, main

from tests.conftest import REPO_ROOT


def run_cli(*args, env=None):
    """Run ``python -m decoding_core`` in a fresh process, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "decoding_core", *map(str, args)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env,
    )


def test_core_never_imports_streamlit():
    code = (
        "import sys, importlib, pkgutil, decoding_core\n"
        "for m in pkgutil.walk_packages(decoding_core.__path__, 'decoding_core.'):\n"
        "    importlib.import_module(m.name)\n"
        "assert 'streamlit' not in sys.modules, 'decoding_core imported streamlit'\n"
        "print('ok')\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "ok"


@pytest.mark.slow
def test_decode_simulated_json_in_a_fresh_process(tmp_path, simulated_dataset):
    weights = tmp_path / "weights.nii.gz"
    completed = run_cli("decode", "--dataset", "simulated", "--json", "--weights-out", weights)
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    for key in ("fold_scores", "mean_score", "chance_level", "n_samples", "n_voxels", "cv", "conditions"):
        assert key in summary
    assert summary["cv"] == "leave-one-run-out"
    assert summary["conditions"] == ["face", "cat"]
    assert len(summary["fold_scores"]) == 12
    assert summary["mean_score"] > summary["chance_level"] + 0.15
    assert summary["not_converged"] == 0 and summary["notes"] == []
    image = nib.load(weights)
    assert image.shape == simulated_dataset.shape[:3]
    assert np.count_nonzero(image.get_fdata()) == summary["n_voxels"]


def test_decode_real_files_matches_tutorial_shapes(haxby_vt_dir, capsys):
    status = main([
        "decode", "--func", haxby_vt_dir / "bold_vt.nii.gz", "--labels", haxby_vt_dir / "labels.txt",
        "--mask", haxby_vt_dir / "mask_vt.nii.gz", "--cv", "kfold", "--folds", "5", "--json",
    ])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0
    assert summary["n_samples"] == 216  # 12 runs x 9 volumes x (face, cat)
    assert summary["n_voxels"] == 577
    assert len(summary["fold_scores"]) == 5
    assert summary["chance_level"] == pytest.approx(0.5)


def test_text_output_is_readable(capsys):
    status = main(["decode", "--dataset", "simulated", "--cv", "train", "--quiet"])
    out = capsys.readouterr().out
    assert status == 0
    assert "Fold scores" in out and "chance level" in out
    assert "training data itself" in out


def test_info_describes_dataset(capsys):
    assert main(["info", "--dataset", "simulated", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_runs"] == 12
    assert {"vt", "face", "house", "brain"} <= set(info["masks"])
    assert "simulated" in info["description"].lower()


# -- errors: one clear line on stderr, non-zero exit --------------------------------------------

@pytest.fixture()
def bad_inputs(tmp_path, haxby_vt_dir):
    """Files a user might get wrong, made from the real subject-1 VT data."""
    bold = nib.load(haxby_vt_dir / "bold_vt.nii.gz")
    labels = pd.read_csv(haxby_vt_dir / "labels.txt", sep=" ")
    three_d = tmp_path / "anat3d.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(bold.dataobj[..., 0]), bold.affine), three_d)
    short_labels = tmp_path / "short.txt"
    labels.iloc[:100].to_csv(short_labels, sep=" ", index=False)
    one_run = tmp_path / "one_run.txt"
    labels.assign(chunks=0).to_csv(one_run, sep=" ", index=False)
    wrong_mask = tmp_path / "wrong_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 10), np.uint8), np.eye(4)), wrong_mask)
    corrupt = tmp_path / "corrupt.nii.gz"
    raw = (haxby_vt_dir / "bold_vt.nii.gz").read_bytes()
    corrupt.write_bytes(raw[: len(raw) // 3])
    not_nifti = tmp_path / "notes.nii.gz"
    not_nifti.write_bytes(gzip.compress(b"this is not an image\n" * 50))
    return {
        "bold": haxby_vt_dir / "bold_vt.nii.gz", "labels": haxby_vt_dir / "labels.txt",
        "mask": haxby_vt_dir / "mask_vt.nii.gz", "three_d": three_d, "short_labels": short_labels,
        "one_run": one_run, "wrong_mask": wrong_mask, "corrupt": corrupt, "not_nifti": not_nifti,
    }


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("three_d", r"4D"),
        ("short_labels", r"100 rows.*864 volumes|864 volumes.*100 rows"),
        ("missing_column", r"'condition'.*labels|column"),
        ("wrong_mask", r"mask"),
        ("single_class", r"at least two"),
        ("one_run", r"(?i)leave-one-run-out.*(two|2) runs"),
        ("corrupt", r"(?i)corrupt|truncated"),
        ("not_nifti", r"(?i)not a NIfTI|NIfTI"),
    ],
)
def test_bad_input_gives_one_clear_line(bad_inputs, case, expected, capsys):
    f = bad_inputs
    args = ["decode", "--func", f["bold"], "--labels", f["labels"], "--mask", f["mask"], "--quiet"]
    if case == "three_d":
        args[2] = f["three_d"]
    elif case == "short_labels":
        args[4] = f["short_labels"]
    elif case == "missing_column":
        args += ["--label-column", "condition"]
    elif case == "wrong_mask":
        args[6] = f["wrong_mask"]
    elif case == "single_class":
        args += ["--conditions", "face"]
    elif case == "one_run":
        args[4] = f["one_run"]
    elif case in ("corrupt", "not_nifti"):
        args[2] = f[case]
    status = main(args)
    captured = capsys.readouterr()
    assert status == EXIT_INPUT_ERROR
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in captured.err
    import re

    assert re.search(expected, lines[0]), lines[0]


@pytest.mark.slow
def test_bad_input_in_a_fresh_process_has_no_traceback(bad_inputs):
    completed = run_cli("decode", "--func", bad_inputs["three_d"], "--labels", bad_inputs["labels"])
    assert completed.returncode == EXIT_INPUT_ERROR
    assert "Traceback" not in completed.stderr
    assert completed.stderr.startswith("error: ")


def test_unknown_dataset_and_mask_names(capsys):
    assert main(["decode", "--dataset", "nonsense"]) == EXIT_INPUT_ERROR
    assert "simulated" in capsys.readouterr().err
    assert main(["decode", "--dataset", "simulated", "--mask-name", "amygdala"]) == EXIT_INPUT_ERROR
    assert "vt" in capsys.readouterr().err


# -- permutation test ------------------------------------------------------------------------------


@pytest.mark.slow
def test_permutations_equal_scikit_learn_permutation_test_score(haxby_vt_dir):
    """``--permutations 50 --seed 0``: the null scores and p-value of scikit-learn's
    ``permutation_test_score`` on the same masked matrix, runs as groups, the same folds."""
    from sklearn.model_selection import LeaveOneGroupOut, permutation_test_score
    from sklearn.svm import SVC

    from decoding_core.datasets import load_files
    from decoding_core.masking import mask_dataset, select_conditions

    func, labels, mask = haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt", haxby_vt_dir / "mask_vt.nii.gz"
    completed = run_cli("decode", "--func", func, "--labels", labels, "--mask", mask, "--conditions", "face", "cat",
                        "--cv", "leave-one-run-out", "--permutations", 50, "--seed", 0, "--json")
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    assert summary["n_permutations"] == 50 and summary["seed"] == 0 and len(summary["null_scores"]) == 50

    masked = select_conditions(mask_dataset(load_files(func, labels, mask=mask), "uploaded"), ("face", "cat"))
    score, null_scores, p_value = permutation_test_score(
        SVC(kernel="linear", C=1.0), masked.X, masked.labels, groups=masked.runs, cv=LeaveOneGroupOut(),
        n_permutations=50, random_state=0, n_jobs=1,
    )
    assert summary["mean_score"] == pytest.approx(score, abs=1e-12)
    np.testing.assert_allclose(summary["null_scores"], null_scores, rtol=0, atol=1e-12)
    assert summary["p_value"] == pytest.approx(p_value, abs=1e-12)
    assert 1 / 51 <= summary["p_value"] < 0.05  # face vs cat in VT is far above chance


def test_permutation_p_value_in_the_text_summary(capsys):
    status = main(["decode", "--dataset", "simulated", "--permutations", 5, "--seed", 3, "--quiet"])
    out = capsys.readouterr().out
    assert status == 0
    line = next(line for line in out.splitlines() if line.startswith("Permutation test:"))
    assert "p = " in line and "5 permutations" in line and "seed 3" in line and "within runs" in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--permutations", 0], r"--permutations must be between 1 and 100,000; got 0"),
        (["--permutations", -5], r"--permutations must be between 1 and 100,000; got -5"),
        (["--permutations", 100_001], r"--permutations must be between 1 and 100,000; got 100001"),
        (["--permutations", 10, "--seed", -1], r"--seed must be between 0 and 4294967295; got -1"),
        (["--permutations", 10, "--seed", 2**32], r"--seed must be between 0 and 4294967295"),
        (["--seed", 1], r"give --permutations N too"),
    ],
)
def test_bad_permutation_arguments_give_one_line_and_exit_2(argv, message, capsys):
    import re

    status = main(["decode", "--dataset", "simulated", "--quiet", *argv])
    captured = capsys.readouterr()
    assert status == EXIT_INPUT_ERROR
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and re.search(message, lines[0]), captured.err
    assert captured.out == ""  # refused before any data were read or decoded


def test_decode_json_carries_the_notes_of_nested_tuning(capsys):
    status = main(["decode", "--dataset", "simulated", "--tune-C", "--screening", "50", "--cv", "kfold",
                   "--folds", "3", "--json", "--quiet"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0
    assert any("inner" in note for note in summary["notes"]), summary["notes"]


@pytest.mark.parametrize("estimator, conditions, extra, noted", [
    ("svm_l1", ["face", "cat", "house"], [], True),
    ("svm_l1", ["face", "cat"], [], False),  # two classes: quick enough
    ("svm_l2", ["face", "cat", "house"], [], False),
    ("svm_l1", ["face", "cat", "house"], ["--json"], False),  # JSON output stays machine-readable
])
def test_decode_says_what_many_classes_cost_before_running(estimator, conditions, extra, noted, monkeypatch, capsys):
    from decoding_core import decoding
    from decoding_core.errors import DecodingInputError

    def not_run_here(*args, **kwargs):
        raise DecodingInputError("stopped before the run")

    monkeypatch.setattr(decoding, "run_decoding", not_run_here)
    assert main(["decode", "--estimator", estimator, "--conditions", *conditions, *extra]) == EXIT_INPUT_ERROR
    err = capsys.readouterr().err
    assert err.rstrip().endswith("stopped before the run")
    assert ("Note: Slow with more than two classes" in err) == noted
