"""Run history (SQLite and in-memory stores, history files) and the comparison helpers."""

from __future__ import annotations

import dataclasses
import io
import json
import sqlite3
import zipfile

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from decoding_core import compare, history
from decoding_core.config import DecodingConfig
from decoding_core.datasets import Dataset
from decoding_core.decoding import DecodingResult
from decoding_core.errors import DecodingInputError
from decoding_core.history import (
    MAX_IMPORT_RUNS,
    MemoryRunStore,
    RunRecord,
    SQLiteRunStore,
    default_history_path,
    history_mode,
    open_run_store,
    records_from_bytes,
)

GRID = (6, 7, 5)
AFFINE = np.diag([3.5, 3.75, 3.75, 1.0])


def small_dataset(digest="d" * 64, masks=None) -> Dataset:
    """A tiny in-memory data set description (the history never reads the image)."""
    rng = np.random.default_rng(0)
    if masks is None:
        vt = np.zeros(GRID, dtype=np.uint8)
        vt[1:5, 2:6, 1:4] = 1
        face = np.zeros(GRID, dtype=np.uint8)
        face[2:4, 1:3, 2:5] = 1
        masks = {"vt": nib.Nifti1Image(vt, AFFINE), "face": nib.Nifti1Image(face, AFFINE)}
    labels = pd.DataFrame({"labels": rng.choice(["face", "cat"], 40), "chunks": np.repeat(np.arange(4), 10)})
    return Dataset(name="simulated", title="Simulated", func_path="unused.nii.gz", labels=labels,
                   label_column="labels", run_column="chunks", tr=2.5, masks=masks, anat_img=None,
                   description="", source="", digest=digest, shape=GRID + (40,), affine=AFFINE)


def make_result(config: DecodingConfig, dataset: Dataset, seed=0, n_folds=4, test_size=5) -> DecodingResult:
    """A `DecodingResult` as decoding.py returns it, with known numbers."""
    rng = np.random.default_rng(seed)
    n_voxels = int(np.count_nonzero(np.asarray(dataset.masks[config.mask_name].dataobj)))
    weights = rng.normal(size=(1, n_voxels)).astype(np.float32)
    rows = []
    for fold in range(n_folds):
        for i in range(test_size):
            true = "face" if i % 2 else "cat"
            predicted = true if rng.random() < 0.8 else ("cat" if true == "face" else "face")
            rows.append({"sample": fold * test_size + i, "volume": 10 * fold + i, "run": fold, "fold": fold,
                         "true": true, "predicted": predicted, "correct": true == predicted})
    predictions = pd.DataFrame(rows)
    scores = predictions.groupby("fold")["correct"].mean().to_numpy()
    mask = np.asarray(dataset.masks[config.mask_name].dataobj) != 0
    volume = np.zeros(GRID, np.float32)
    volume[mask] = weights[0]
    return DecodingResult(
        config=config, fold_scores=scores, mean_score=float(scores.mean()), std_score=float(scores.std()),
        chance_level=0.5, meaningless=False, predictions=predictions, classes=("cat", "face"),
        weights=weights, weight_img=nib.Nifti1Image(volume, AFFINE), n_samples=n_folds * test_size,
        n_voxels=n_voxels, warnings=["a design warning"], elapsed_seconds=0.25,
        chosen_C=np.ones(n_folds), final_C=1.0, fold_weights=np.zeros((n_folds, 1, n_voxels)),
    )


@pytest.fixture
def dataset():
    return small_dataset()


def assert_same_record(a: RunRecord, b: RunRecord):
    assert a.id == b.id and a.name == b.name and a.created_at == b.created_at
    assert a.config == b.config
    assert (a.dataset_name, a.dataset_digest, a.dataset_title) == (b.dataset_name, b.dataset_digest, b.dataset_title)
    np.testing.assert_array_equal(a.fold_scores, b.fold_scores)
    np.testing.assert_array_equal(a.weights, b.weights)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.affine, b.affine)
    assert a.fold_names == b.fold_names
    assert (a.mean_score, a.std_score, a.chance_level) == (b.mean_score, b.std_score, b.chance_level)
    assert a.classes == b.classes and a.warnings == b.warnings
    assert (a.chosen_C, a.final_C) == (b.chosen_C, b.final_C)
    assert (a.notes, a.not_converged) == (b.notes, b.not_converged)
    assert a.fold_signature == b.fold_signature
    pd.testing.assert_frame_equal(a.predictions.reset_index(drop=True), b.predictions.reset_index(drop=True),
                                  check_dtype=False)


# -- records -------------------------------------------------------------------
def test_record_keeps_everything_and_rebuilds_the_weight_image(dataset):
    config = DecodingConfig(cv="leave-one-run-out", C=0.1)
    result = make_result(config, dataset)
    record = RunRecord.from_result(result, dataset)
    assert record.dataset_digest == dataset.digest and record.dataset_name == "simulated"
    assert record.fold_names == ["run 0", "run 1", "run 2", "run 3"]
    assert "C=0.1" in record.name and "vt" in record.name
    assert record.weights.dtype == np.float32 and record.weights.shape == (1, record.n_voxels)
    image = record.weight_img
    np.testing.assert_array_equal(image.get_fdata(), result.weight_img.get_fdata())
    np.testing.assert_array_equal(image.affine, AFFINE)
    assert record.chosen_C == (1.0, 1.0, 1.0, 1.0) and record.final_C == 1.0
    json.dumps(record.metadata(), allow_nan=False)


def test_record_keeps_the_notes_and_the_convergence_count_and_reads_records_without_them(tmp_path, dataset):
    result = dataclasses.replace(make_result(DecodingConfig(), dataset), notes=["how C was chosen"], not_converged=3)
    record = RunRecord.from_result(result, dataset)
    assert (record.notes, record.not_converged) == (["how C was chosen"], 3)
    reread = RunRecord.from_parts(record.metadata(), record.arrays_bytes(), record.predictions_bytes())
    assert (reread.notes, reread.not_converged) == (["how C was chosen"], 3)
    # A record exported before these fields existed imports with none.
    older = {key: value for key, value in record.metadata().items() if key not in ("notes", "not_converged")}
    reread = RunRecord.from_parts(older, record.arrays_bytes(), record.predictions_bytes())
    assert (reread.notes, reread.not_converged) == ([], 0)
    broken = {**record.metadata(), "not_converged": "many"}
    with pytest.raises(DecodingInputError, match="not_converged"):
        RunRecord.from_parts(broken, record.arrays_bytes(), record.predictions_bytes())


def test_record_refuses_weights_that_do_not_fit_the_mask(dataset):
    config = DecodingConfig()
    result = make_result(config, dataset)
    other = small_dataset(masks={"vt": dataset.masks["face"]})
    with pytest.raises(DecodingInputError, match="weights have .* voxels but mask 'vt' has"):
        RunRecord.from_result(result, other)


# -- SQLite store ----------------------------------------------------------------
def test_history_survives_reopening_the_sqlite_file(tmp_path, dataset):
    path = tmp_path / "history" / "runs.sqlite3"
    store = SQLiteRunStore(path)
    first = store.add(make_result(DecodingConfig(), dataset, seed=1), dataset)
    second = store.add(make_result(DecodingConfig(C=10.0), dataset, seed=2), dataset, name="my run")
    store.rename(first.id, "VT, C=1")
    store.delete(second.id)
    third = store.add(make_result(DecodingConfig(mask_name="face"), dataset, seed=3), dataset)
    del store  # an app restart: nothing held in memory

    reopened = SQLiteRunStore(path)
    listed = reopened.list()
    assert [r.id for r in listed] == [third.id, first.id]  # newest first
    assert listed[1].name == "VT, C=1"
    assert_same_record(reopened.get(third.id), third)
    with pytest.raises(DecodingInputError, match="No run with id"):
        reopened.get(second.id)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_sqlite_store_refuses_a_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "history.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DecodingInputError, match="not a usable SQLite database"):
        SQLiteRunStore(path)


def test_sqlite_store_refuses_a_newer_schema(tmp_path):
    path = tmp_path / "history.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA user_version=99")
    with pytest.raises(DecodingInputError, match="newer version of the app"):
        SQLiteRunStore(path)


def test_sqlite_store_is_usable_from_threads(tmp_path, dataset):
    from concurrent.futures import ThreadPoolExecutor

    store = SQLiteRunStore(tmp_path / "h.sqlite3")
    results = [make_result(DecodingConfig(C=float(c)), dataset, seed=c) for c in range(1, 9)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        added = list(pool.map(lambda r: store.add(r, dataset), results))
    assert sorted(r.id for r in store.list()) == sorted(r.id for r in added)


# -- memory store and modes ------------------------------------------------------
def test_two_memory_stores_do_not_see_each_other(tmp_path, dataset, monkeypatch):
    monkeypatch.setenv("DECODING_LAB_SHARED", "1")
    monkeypatch.setenv("DECODING_LAB_DATA_DIR", str(tmp_path))
    assert history_mode() == "shared"
    session_a, session_b = open_run_store(), open_run_store()
    assert isinstance(session_a, MemoryRunStore) and session_a is not session_b
    run_a = session_a.add(make_result(DecodingConfig(), dataset), dataset)
    assert [r.id for r in session_a.list()] == [run_a.id]
    assert session_b.list() == []
    with pytest.raises(DecodingInputError, match="No run with id"):
        session_b.get(run_a.id)
    assert list(tmp_path.iterdir()) == []  # nothing written in the data directory


def test_memory_store_drops_the_oldest_beyond_its_bound(dataset):
    store = MemoryRunStore(max_runs=3)
    ids = [store.add(make_result(DecodingConfig(C=float(c)), dataset), dataset).id for c in range(1, 6)]
    assert [r.id for r in store.list()] == ids[::-1][:3]


def test_local_mode_and_history_path(tmp_path, monkeypatch):
    monkeypatch.delenv("DECODING_LAB_SHARED", raising=False)
    monkeypatch.delenv("DECODING_LAB_HISTORY_PATH", raising=False)
    monkeypatch.setenv("DECODING_LAB_DATA_DIR", str(tmp_path / "data"))
    assert history_mode() == "local"
    assert default_history_path() == tmp_path / "data" / "history.sqlite3"
    monkeypatch.setenv("DECODING_LAB_HISTORY_PATH", str(tmp_path / "elsewhere.db"))
    assert default_history_path() == tmp_path / "elsewhere.db"
    store = open_run_store()
    assert isinstance(store, SQLiteRunStore) and (tmp_path / "elsewhere.db").exists()
    monkeypatch.setenv("DECODING_LAB_SHARED", "no")
    assert history_mode() == "local"


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_rename_validates_names(store_kind, tmp_path, dataset):
    store = MemoryRunStore() if store_kind == "memory" else SQLiteRunStore(tmp_path / "h.db")
    record = store.add(make_result(DecodingConfig(), dataset), dataset)
    assert store.rename(record.id, "  face\nvs   cat \x00").name == "face vs cat"
    with pytest.raises(DecodingInputError, match="cannot be empty"):
        store.rename(record.id, " \t ")
    with pytest.raises(DecodingInputError, match="No run with id"):
        store.rename("0123456789ab", "x")
    with pytest.raises(DecodingInputError, match="No run with id"):
        store.delete("0123456789ab")


# -- history files ---------------------------------------------------------------
def test_export_import_round_trip_between_stores(tmp_path, dataset):
    source = SQLiteRunStore(tmp_path / "a.db")
    records = [source.add(make_result(DecodingConfig(C=float(c)), dataset, seed=c), dataset) for c in (1, 2, 3)]
    data = source.export_bytes([records[0].id, records[2].id])
    target = MemoryRunStore()
    imported = target.import_bytes(data)
    assert {r.id for r in imported} == {records[0].id, records[2].id}
    for record in imported:
        assert_same_record(record, source.get(record.id))
    # Importing the same file again keeps both copies, under new ids.
    again = target.import_bytes(data)
    assert len(target.list()) == 4 and not {r.id for r in again} & {r.id for r in imported}
    # Everything exported from the memory store reads back into SQLite.
    back = SQLiteRunStore(tmp_path / "b.db")
    assert len(back.import_bytes(target.export_bytes())) == 4


def _history_with(member: str, content: bytes, base: bytes) -> bytes:
    """``base`` history file with one member replaced."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, content if info.filename.endswith(member) else src.read(info))
    return out.getvalue()


def test_import_refuses_junk(dataset):
    store = MemoryRunStore()
    good = MemoryRunStore()
    good.add(make_result(DecodingConfig(), dataset), dataset)
    base = good.export_bytes()
    with pytest.raises(DecodingInputError, match="not an fMRI Decoding Lab history"):
        store.import_bytes(b"hello, world")
    with pytest.raises(DecodingInputError, match="not an fMRI Decoding Lab history"):
        store.import_bytes(_history_with("manifest.json", b'{"format": "other"}', base))
    with pytest.raises(DecodingInputError, match="arrays are unreadable"):
        store.import_bytes(_history_with("arrays.npz", b"\x00" * 100, base))
    with pytest.raises(DecodingInputError, match="configuration is invalid"):
        record = json.loads(zipfile.ZipFile(io.BytesIO(base)).read(
            [n for n in zipfile.ZipFile(io.BytesIO(base)).namelist() if n.endswith("record.json")][0]))
        record["config"]["C"] = -1
        store.import_bytes(_history_with("record.json", json.dumps(record).encode(), base))
    with pytest.raises(DecodingInputError, match="version"):
        store.import_bytes(_history_with(
            "manifest.json", json.dumps({"format": "fmri-decoding-lab-history", "version": 7, "runs": []}).encode(),
            base))
    with pytest.raises(DecodingInputError, match="at most"):
        records_from_bytes(base, max_bytes=100)
    assert store.list() == []  # nothing half-imported


def test_import_refuses_a_zip_bomb_and_too_many_runs(dataset):
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps({"format": "fmri-decoding-lab-history", "version": 1,
                                                      "runs": []}))
        archive.writestr("padding.bin", b"\x00" * (4 * 1024 * 1024))
    assert len(bomb.getvalue()) < 100_000
    with pytest.raises(DecodingInputError, match="unpacks to"):
        records_from_bytes(bomb.getvalue(), max_bytes=1024 * 1024)
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as archive:
        archive.writestr("manifest.json", json.dumps({"format": "fmri-decoding-lab-history", "version": 1,
                                                      "runs": ["abcdef12"] * (MAX_IMPORT_RUNS + 1)}))
    with pytest.raises(DecodingInputError, match="not an fMRI Decoding Lab history"):
        records_from_bytes(many.getvalue())


# -- comparison ------------------------------------------------------------------
def test_config_table_marks_the_differing_settings(dataset):
    a = RunRecord.from_result(make_result(DecodingConfig(), dataset), dataset, name="A")
    b = RunRecord.from_result(make_result(DecodingConfig(C=10.0, mask_name="face"), dataset), dataset, name="A")
    table, differs = compare.config_table([a, b])
    assert list(table.columns) == ["A", "A (2)"]
    assert set(differs[differs].index) == {"Mask", "C"}
    assert table.loc["C", "A (2)"] == "10"
    assert table.loc["K (k-fold)", "A"] == "-"  # not used by leave-one-run-out
    styled = compare.style_config_table(table, differs).to_html()
    assert "background-color" in styled


def test_fold_scores_pair_only_on_identical_folds(dataset):
    base = DecodingConfig(cv="leave-one-run-out")
    a = RunRecord.from_result(make_result(base, dataset, seed=1), dataset)
    b = RunRecord.from_result(make_result(base.replace(C=10.0), dataset, seed=2), dataset)
    paired = compare.paired_fold_scores([a, b])
    assert paired.attrs["paired"] is True
    assert list(paired.index) == ["run 0", "run 1", "run 2", "run 3"]
    np.testing.assert_array_equal(paired.iloc[:, 1], b.fold_scores)

    other_data = small_dataset(digest="e" * 64)
    c = RunRecord.from_result(make_result(base, other_data, seed=3), other_data)
    unpaired = compare.paired_fold_scores([a, c])
    assert unpaired.attrs["paired"] is False and "different data sets" in unpaired.attrs["reason"]
    d = RunRecord.from_result(make_result(base.replace(cv="kfold", n_folds=3), dataset, n_folds=3), dataset)
    unpaired = compare.paired_fold_scores([a, d])
    assert unpaired.attrs["paired"] is False and "different numbers of folds" in unpaired.attrs["reason"]
    assert unpaired.shape == (4, 2) and np.isnan(unpaired.iloc[3, 1])
    with pytest.raises(DecodingInputError, match="not possible"):
        compare.compare_two_runs(a, d)


def test_paired_test_against_scipy_and_its_limits():
    from scipy import stats

    a = np.array([0.9, 0.8, 0.85, 0.95, 0.7, 0.9, 0.75, 0.8])
    b = np.array([0.8, 0.8, 0.7, 0.9, 0.65, 0.85, 0.8, 0.7])
    out = compare.paired_test(a, b, test_train_ratio=1 / 7)
    diff = b - a  # one sign convention in Compare: B - A
    assert out.mean_difference == pytest.approx(diff.mean()) and out.mean_difference < 0
    assert out.t_p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert out.t_statistic == pytest.approx(stats.ttest_rel(b, a).statistic)
    assert out.wilcoxon_p_value == pytest.approx(stats.wilcoxon(a, b).pvalue)
    half_width = stats.t.ppf(0.975, 7) * diff.std(ddof=1) / np.sqrt(8)
    assert out.ci_low == pytest.approx(diff.mean() - half_width)
    # The corrected test is more conservative than the naive one.
    assert out.corrected_t_p_value > out.t_p_value
    assert out.corrected_ci_high - out.corrected_ci_low > out.ci_high - out.ci_low
    assert (out.n_a_better, out.n_b_better, out.n_ties) == (6, 1, 1)
    assert "not independent" in out.note and "Nadeau" in out.note
    same = compare.paired_test(a, a)
    assert same.wilcoxon_p_value is None and same.t_p_value == 1.0 and same.mean_difference == 0
    with pytest.raises(DecodingInputError, match="same folds"):
        compare.paired_test(a, b[:-1])
    with pytest.raises(DecodingInputError, match="at least two folds"):
        compare.paired_test([0.5], [0.6])


def test_weight_difference_on_the_union_of_masks(dataset):
    a = RunRecord.from_result(make_result(DecodingConfig(mask_name="vt"), dataset, seed=1), dataset)
    b = RunRecord.from_result(make_result(DecodingConfig(mask_name="face"), dataset, seed=2), dataset)
    difference = compare.weight_difference_img(a, b).get_fdata()
    expected = b.weight_img.get_fdata() - a.weight_img.get_fdata()  # B - A, as the paired test
    np.testing.assert_allclose(difference, expected, rtol=1e-6)
    assert np.count_nonzero(difference) == np.count_nonzero(a.mask | b.mask)
    normalized = compare.weight_difference_img(a, b, normalize=True).get_fdata()
    assert np.abs(normalized).max() <= 2.0 + 1e-6

    shifted = small_dataset(masks={"vt": nib.Nifti1Image(np.asarray(dataset.masks["vt"].dataobj),
                                                           AFFINE @ np.diag([2, 1, 1, 1]))})
    c = RunRecord.from_result(make_result(DecodingConfig(), shifted), shifted)
    with pytest.raises(DecodingInputError, match="different image grids"):
        compare.weight_difference_img(a, c)


@pytest.mark.parametrize("store_kind", ["memory", "sqlite"])
def test_summary_table_lists_runs_newest_first(store_kind, tmp_path, dataset):
    store = MemoryRunStore() if store_kind == "memory" else SQLiteRunStore(tmp_path / "h.db")
    first = store.add(make_result(DecodingConfig(C=0.5), dataset, seed=1), dataset, name="first")
    second = store.add(make_result(DecodingConfig(estimator="ridge"), dataset, seed=2), dataset)
    store.rename(first.id, "renamed")
    table = store.summary_table()
    assert table["id"].tolist() == [second.id, first.id]
    assert table["name"].tolist()[1] == "renamed"
    assert table["C"].tolist() == [1.0, 0.5] and table["estimator"].tolist() == ["ridge", "svc"]
    assert table["mean score"].tolist() == [second.mean_score, first.mean_score]
    assert table["folds"].tolist() == [4, 4]
    assert MemoryRunStore().summary_table().empty


def test_automatic_names_tell_different_conditions_and_estimators_apart():
    face_cat = DecodingConfig(conditions=("face", "cat"))
    categories = ("face", "house", "cat", "bottle", "scissors", "shoe", "chair", "scrambledpix")
    eight = DecodingConfig(conditions=categories)
    names = {history.default_run_name(config, "simulated")
             for config in (face_cat, eight, face_cat.replace(estimator="logistic_l2"))}
    assert len(names) == 3
    assert history.default_run_name(face_cat, "simulated").startswith("simulated, face/cat, ")
    assert "8 conditions" in history.default_run_name(eight)


def test_unique_run_name_never_repeats_a_name_in_the_history():
    assert history.unique_run_name("vt, svc", []) == "vt, svc"
    assert history.unique_run_name("vt, svc", ["vt, svc"]) == "vt, svc #2"
    assert history.unique_run_name("vt, svc", ["vt, svc", "vt, svc #2"]) == "vt, svc #3"


def test_exported_history_neutralises_formula_labels_and_reads_them_back(dataset):
    result = make_result(DecodingConfig(), dataset)
    hostile = "=cmd|' /C calc'!A0"
    predictions = result.predictions.assign(true=result.predictions["true"].replace("cat", hostile))
    record = RunRecord.from_result(dataclasses.replace(result, predictions=predictions), dataset)
    data = history.records_to_bytes([record])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        csv_text = archive.read(f"runs/{record.id}/predictions.csv").decode()
    assert f"'{hostile}" in csv_text and f",{hostile}" not in csv_text  # text in a spreadsheet, not a formula
    (back,) = records_from_bytes(data)
    assert back.predictions["true"].tolist() == predictions["true"].tolist()
