"""Batch commands: ``run`` a configuration file, ``sweep`` a setting, ``export-data``."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from decoding_core import decoding, export
from decoding_core.cli import EXIT_INPUT_ERROR, main
from decoding_core.config import DecodingConfig

from tests.conftest import REPO_ROOT


@pytest.mark.slow
def test_run_a_configuration_file_in_a_fresh_process(tmp_path, simulated_dataset):
    config = DecodingConfig(cv="kfold", n_folds=4, C=0.1, estimator="logistic_l2")
    config_path = tmp_path / "config.json"
    config_path.write_text(export.config_json(config, simulated_dataset))  # as the app's download
    out = tmp_path / "out"
    completed = subprocess.run(
        [sys.executable, "-m", "decoding_core", "run", str(config_path), "--out", str(out), "--json",
         "--name", "from the browser"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    assert summary["dataset"] == "simulated" and summary["name"] == "from the browser"
    expected = decoding.run_decoding(simulated_dataset, config)
    np.testing.assert_array_equal(summary["fold_scores"], expected.fold_scores)
    for name in ("config.json", "run.json", "fold_scores.csv", "predictions.csv", "weights.nii.gz",
                 "versions.json", "reproduce.py", "README.txt", "mask.nii.gz"):
        assert (out / name).is_file(), name
    with zipfile.ZipFile(summary["zip"]) as archive:
        assert "reproduce.py" in archive.namelist()
    assert export.read_config_json((out / "config.json").read_text())[0] == config
    assert nib.load(out / "weights.nii.gz").shape == simulated_dataset.shape[:3]


def test_run_with_overrides_and_real_files(tmp_path, haxby_vt_dir, capsys):
    config_path = tmp_path / "plain.json"
    config_path.write_text(DecodingConfig(mask_name="uploaded").to_json())  # a bare configuration works too
    status = main(["run", str(config_path), "--func", str(haxby_vt_dir / "bold_vt.nii.gz"),
                   "--labels", str(haxby_vt_dir / "labels.txt"), "--mask", str(haxby_vt_dir / "mask_vt.nii.gz"),
                   "--cv", "kfold", "--folds", "3", "--out", str(tmp_path / "out"), "--no-unpack", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0
    assert len(summary["fold_scores"]) == 3 and "files" not in summary
    assert not (tmp_path / "out" / "reproduce.py").exists()
    with zipfile.ZipFile(summary["zip"]) as archive:
        run = json.loads(archive.read("run.json"))
    assert run["n_voxels"] == 577 and run["config"]["cv"] == "kfold" and run["dataset_name"] == "upload"


def test_sweep_writes_one_export_per_value_and_a_table(tmp_path, capsys):
    out = tmp_path / "sweep"
    status = main(["sweep", "--dataset", "simulated", "--setting", "C", "--values", "0.01, 1, 100",
                   "--cv", "kfold", "--folds", "3", "--out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0 and summary["setting"] == "C"
    table = pd.read_csv(out / "sweep.csv", dtype={"label": str})
    assert list(table["label"]) == ["0.01", "1", "100"]
    assert table["n_folds"].tolist() == [3, 3, 3]
    for label, run in zip(["0.01", "1", "100"], summary["runs"]):
        folder = out / f"C={label}"
        assert (folder / "reproduce.py").is_file() and run["export"].startswith(str(folder))
        assert json.loads((folder / "run.json").read_text())["config"]["C"] == float(label)
        scores = [float(s) for s in table.loc[table["label"] == label, "fold_scores"].iloc[0].split(";")]
        assert np.mean(scores) == pytest.approx(run["mean_score"])


@pytest.mark.slow
def test_sweep_with_default_values_of_masks(tmp_path, simulated_dataset, capsys):
    status = main(["sweep", "--dataset", "simulated", "--setting", "mask_name", "--cv", "kfold", "--folds", "3",
                   "--out", str(tmp_path), "--no-unpack", "--quiet"])
    out = capsys.readouterr().out
    assert status == 0
    assert len(pd.read_csv(tmp_path / "sweep.csv")) == len(simulated_dataset.masks)
    assert "mask_name = face" in out


def test_export_data_writes_the_files(tmp_path, simulated_dataset, capsys):
    assert main(["export-data", "--dataset", "simulated", "--out", str(tmp_path), "--quiet"]) == 0
    labels = pd.read_csv(tmp_path / "labels.tsv", sep="\t")
    assert labels["labels"].to_numpy(dtype=str).tolist() == simulated_dataset.conditions.tolist()
    image = nib.load(tmp_path / "bold.nii.gz")
    assert image.shape == simulated_dataset.shape
    for name, mask in simulated_dataset.masks.items():
        written = nib.load(tmp_path / f"mask_{name}.nii.gz").get_fdata() != 0
        np.testing.assert_array_equal(written, np.asarray(mask.dataobj) != 0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "{tmp}/missing.json", "--out", "{tmp}/o"], "Cannot read the configuration file"),
        (["run", "{tmp}/upload.json", "--out", "{tmp}/o"], "run on your own files"),
        (["run", "{tmp}/junk.json", "--out", "{tmp}/o"], "not valid JSON"),
        (["sweep", "--dataset", "simulated", "--setting", "C", "--values", "0,1", "--out", "{tmp}/o"],
         "'C' must be a number"),
        (["sweep", "--dataset", "simulated", "--setting", "mask_name", "--values", "amygdala", "--out", "{tmp}/o"],
         "no mask named 'amygdala'"),
    ],
)
def test_batch_errors_are_one_line_and_exit_2(argv, message, tmp_path, capsys):
    (tmp_path / "junk.json").write_text("{not json")
    upload = json.loads(export.config_json(DecodingConfig(mask_name="uploaded")))
    upload["dataset"] = {"name": "upload", "title": "my_bold.nii.gz", "digest": "abc"}
    (tmp_path / "upload.json").write_text(json.dumps(upload))
    status = main([arg.format(tmp=tmp_path) for arg in argv])
    err = capsys.readouterr().err
    assert status == EXIT_INPUT_ERROR
    assert message in err and err.count("\n") == 1
