"""The command line's group subcommand and its --scheduler options."""

from __future__ import annotations

import json

import nibabel as nib
import pandas as pd
import pytest
from scipy import stats

from decoding_core.cli import EXIT_INPUT_ERROR, main


@pytest.mark.parametrize("command", [
    ["decode", "--dataset", "simulated", "--permutations", "5"],
    ["sweep", "--dataset", "simulated", "--setting", "C", "--out", "unused"],
    ["searchlight", "--dataset", "simulated", "--out", "unused.nii.gz"],
    ["group", "--subjects", "simulated:0..1"],
])
def test_a_bad_scheduler_address_exits_2_before_any_work(command, capsys):
    assert main([*command, "--scheduler", "127.0.0.1:8786"]) == EXIT_INPUT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: A Dask scheduler address looks like tcp://HOST:PORT") and err.count("\n") == 1


def test_scheduler_without_permutations_is_refused(capsys):
    assert main(["decode", "--dataset", "simulated", "--scheduler", "tcp://127.0.0.1:8786"]) == EXIT_INPUT_ERROR
    assert "give --permutations N too" in capsys.readouterr().err


def test_group_refuses_bids_without_a_task(tmp_path, capsys):
    assert main(["group", "--bids", tmp_path]) == EXIT_INPUT_ERROR
    assert "With --bids give --task" in capsys.readouterr().err


@pytest.mark.slow
def test_group_of_two_simulated_subjects_prints_json_and_writes_table_and_map(tmp_path, capsys):
    table_path, map_path = tmp_path / "group.csv", tmp_path / "mean.nii.gz"
    status = main(["group", "--subjects", "simulated:0..1", "--json", "--table-out", table_path,
                   "--map-out", map_path])
    assert status == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["subjects"] == ["simulated", "simulated:1"] and summary["n_subjects"] == 2
    differences = [row["difference"] for row in summary["per_subject"]]
    assert summary["t_test"]["p_value"] == pytest.approx(
        stats.ttest_1samp(differences, 0.0, alternative="greater").pvalue)
    assert summary["sign_flip"] == {"p_value": 0.25, "n_flips": 4, "exact": True, "seed": 0}
    table = pd.read_csv(table_path)
    assert list(table["subject"]) == ["simulated", "simulated:1"]
    assert nib.load(map_path).shape == (33, 41, 28)


@pytest.mark.slow
def test_permutations_on_a_cluster_from_the_cli_equal_the_local_run(dask_scheduler, capsys):
    base = ["decode", "--dataset", "simulated", "--permutations", "25", "--seed", "4", "--json", "--quiet"]
    assert main(base) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*base, "--scheduler", dask_scheduler]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["null_scores"] == local["null_scores"] and remote["p_value"] == local["p_value"]
