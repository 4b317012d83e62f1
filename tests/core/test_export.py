"""Tests of decoding_core.export: NIfTI bytes, CSV tables, configuration JSON, summary."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from decoding_core import export
from decoding_core.config import DecodingConfig
from decoding_core.decoding import DecodingResult
from decoding_core.errors import DecodingInputError


def _result(cv="leave-one-run-out", fold_scores=None, seed=0):
    """Face vs cat over 3 runs of 4 samples, with made-up predictions."""
    rng = np.random.default_rng(seed)
    runs = np.repeat([3, 5, 8], 4)
    true = np.tile(["face", "cat"], 6)
    predicted = np.where(rng.random(12) < 0.6, true, np.where(true == "face", "cat", "face"))
    fold = {3: 1, 5: 2, 8: 3}
    predictions = pd.DataFrame({
        "sample": np.arange(12), "volume": np.arange(12) + 100, "run": runs,
        "fold": [fold[r] for r in runs] if cv == "leave-one-run-out" else np.ones(12, dtype=int),
        "true": true, "predicted": predicted, "correct": true == predicted,
    })
    scores = predictions.groupby("fold")["correct"].mean().to_numpy(dtype=float)
    if fold_scores is not None:
        scores = np.asarray(fold_scores, dtype=float)
    weights = rng.normal(size=(1, 5)).astype(np.float32)
    volume = np.zeros((4, 3, 2), dtype=np.float32)
    volume.flat[[0, 3, 7, 11, 20]] = weights[0]
    affine = np.diag([-3.5, 3.75, 3.75, 1.0])
    return DecodingResult(
        config=DecodingConfig(cv=cv, C=0.5), fold_scores=scores, mean_score=float(np.nanmean(scores)),
        std_score=float(np.nanstd(scores)), chance_level=0.5, meaningless=cv == "train",
        predictions=predictions, classes=("cat", "face"), weights=weights,
        weight_img=nib.Nifti1Image(volume, affine), n_samples=12, n_voxels=5,
        warnings=["Only 3 runs."], elapsed_seconds=0.125,
    )


def test_nifti_bytes_load_back_with_the_same_data_and_affine(tmp_path):
    result = _result()
    payload = export.image_to_nifti_bytes(result.weight_img)
    assert payload[:2] == b"\x1f\x8b"  # gzip
    path = tmp_path / "weights.nii.gz"
    path.write_bytes(payload)
    loaded = nib.load(path)
    np.testing.assert_array_equal(np.asarray(loaded.dataobj), np.asarray(result.weight_img.dataobj))
    np.testing.assert_allclose(loaded.affine, result.weight_img.affine)
    # Deterministic: the same image gives the same bytes (no time stamp).
    assert export.image_to_nifti_bytes(result.weight_img) == payload
    four_d = nib.Nifti1Image(np.arange(24, dtype=np.int16).reshape(2, 3, 2, 2), np.eye(4))
    back = nib.Nifti1Image.from_bytes(gzip.decompress(export.image_to_nifti_bytes(four_d)))
    np.testing.assert_array_equal(np.asarray(back.dataobj), np.asarray(four_d.dataobj))


def test_nifti_bytes_refuse_what_is_not_an_image():
    with pytest.raises(DecodingInputError, match="'img' must be a nibabel image"):
        export.image_to_nifti_bytes(np.zeros((2, 2, 2)))


def test_fold_scores_csv_parses_back_with_test_runs():
    result = _result()
    table = pd.read_csv(io.StringIO(export.fold_scores_csv(result)))
    assert list(table.columns) == ["fold", "test_run", "n_test", "score"]
    assert list(table["test_run"]) == [3, 5, 8]
    assert list(table["n_test"]) == [4, 4, 4]
    assert list(table["fold"]) == [1, 2, 3]
    np.testing.assert_allclose(table["score"], result.fold_scores, rtol=1e-5)


def test_fold_scores_csv_without_runs_for_other_schemes():
    result = _result(cv="holdout")
    table = pd.read_csv(io.StringIO(export.fold_scores_csv(result)))
    assert list(table.columns) == ["fold", "n_test", "score"]
    assert table["n_test"].tolist() == [12]


def test_fold_table_numbers_folds_when_predictions_do_not_match_scores():
    result = _result(fold_scores=[0.5, 0.75])  # two scores, three fold ids in predictions
    table = export.fold_table(result)
    assert table["fold"].tolist() == [0, 1]
    assert table["score"].tolist() == [0.5, 0.75]


def test_predictions_csv_round_trips():
    result = _result()
    table = pd.read_csv(io.StringIO(export.predictions_csv(result)))
    assert list(table.columns) == list(result.predictions.columns)
    assert table["predicted"].tolist() == result.predictions["predicted"].tolist()
    assert table["correct"].tolist() == result.predictions["correct"].tolist()
    assert table["volume"].tolist() == result.predictions["volume"].tolist()


def test_config_json_round_trips_with_the_data_set():
    config = DecodingConfig(conditions=("face", "house", "cat"), cv="kfold", n_folds=4, smoothing_fwhm=6.0)
    dataset = SimpleNamespace(name="haxby:2", title="Haxby 2001, subject 2", digest="abc123")
    text = export.config_json(config, dataset)
    document = json.loads(text)
    assert "\n  " in text  # pretty
    assert document["dataset"] == {"name": "haxby:2", "title": "Haxby 2001, subject 2", "digest": "abc123"}
    assert DecodingConfig.from_dict(document["config"]) == config
    assert "scikit-learn" in document["software"]
    read, read_dataset = export.read_config_json(text)
    assert read == config and read_dataset["digest"] == "abc123"
    bare, none = export.read_config_json(config.to_json())
    assert bare == config and none is None
    assert json.loads(export.config_json(config))["dataset"] is None


def test_read_config_json_refuses_bad_files():
    with pytest.raises(DecodingInputError, match="not valid JSON"):
        export.read_config_json("{nope")
    with pytest.raises(DecodingInputError, match="Unknown configuration setting"):
        export.read_config_json(json.dumps({"format": export.CONFIG_FORMAT, "config": {"colour": 1}}))
    with pytest.raises(DecodingInputError, match="no 'config' object"):
        export.read_config_json(json.dumps({"format": export.CONFIG_FORMAT}))


def test_result_summary_is_strict_json_of_plain_types():
    result = _result(fold_scores=[0.75, np.nan, 0.5])
    summary = export.result_summary(result)
    text = json.dumps(summary, allow_nan=False)
    back = json.loads(text)
    assert back["fold_scores"] == [0.75, None, 0.5]
    assert back["chance_level"] == 0.5
    assert back["n_samples"] == 12 and back["n_voxels"] == 5 and back["n_folds"] == 3
    assert back["cv"] == "leave-one-run-out" and back["conditions"] == ["face", "cat"]
    assert back["classes"] == ["cat", "face"] and back["C"] == 0.5 and back["estimator"] == "svc"
    assert back["warnings"] == ["Only 3 runs."] and back["elapsed_seconds"] == 0.125
    assert back["meaningless"] is False
    assert [row["test_run"] for row in back["folds"]] == [3, 5, 8]
    assert type(summary["n_samples"]) is int and type(summary["mean_score"]) is float


HOSTILE = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)", "\tfoo", "'=already", "face", "o'clock", "cat"]


def test_csv_cells_a_spreadsheet_would_run_start_with_an_apostrophe():
    labels = np.array(HOSTILE + ["cat", "face", "cat"])
    predictions = _result().predictions.assign(true=labels, predicted=labels[::-1])
    result = dataclasses.replace(_result(), predictions=predictions)
    text = export.predictions_csv(result)
    table = pd.read_csv(io.StringIO(text), keep_default_na=False)
    written = dict(zip(labels, table["true"]))
    assert written["=cmd|' /C calc'!A0"] == "'=cmd|' /C calc'!A0"
    assert written["+1+1"] == "'+1+1" and written["-2+3"] == "'-2+3" and written["@SUM(A1)"] == "'@SUM(A1)"
    assert written["\tfoo"] == "'\tfoo"
    carriage_return = export.neutralise_formulas(pd.DataFrame({"label": ["\rbar"]}))
    assert carriage_return["label"].tolist() == ["'\rbar"]
    assert written["face"] == "face" and written["o'clock"] == "o'clock"
    # No text cell of the file starts like a formula; numbers stay numbers (a negative score is no formula).
    for column in ("true", "predicted"):
        assert not table[column].str.startswith(export.FORMULA_TRIGGERS).any()
    assert table["volume"].tolist() == predictions["volume"].tolist()
    # Exactly reversible: an exported table read back gives the labels as they were.
    restored = export.restore_formulas(table)
    assert restored["true"].tolist() == labels.tolist()
    assert restored["predicted"].tolist() == labels[::-1].tolist()


def test_fold_scores_csv_neutralises_run_names():
    result = _result()
    result = dataclasses.replace(result, predictions=result.predictions.assign(
        run=result.predictions["run"].map({3: "=HYPERLINK(\"http://x\")", 5: "r5", 8: "r8"})))
    table = pd.read_csv(io.StringIO(export.fold_scores_csv(result)))
    assert "'=HYPERLINK(\"http://x\")" in table.astype(str).to_numpy().ravel().tolist()
