"""Reproducible exports: the zip's contents, and the standalone script giving the app's fold scores."""

from __future__ import annotations

import ast
import contextlib
import dataclasses
import importlib.util
import io
import json
import subprocess
import sys
import zipfile

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from decoding_core import decoding, export
from decoding_core.config import CV_SCHEMES, ESTIMATORS, DecodingConfig
from decoding_core.datasets import load_files
from decoding_core.decoding.estimators import _inner_splitter, coefficients, fit_classifier
from decoding_core.history import RunRecord, SQLiteRunStore
from decoding_core.reproduce import build_script, export_data, export_record_zip, export_run_zip

from tests.conftest import REPO_ROOT

#: What the script may import: the standard library pieces it uses and the four scientific packages.
ALLOWED_IMPORTS = {"argparse", "hashlib", "importlib", "json", "sys", "tempfile", "warnings", "pathlib", "numpy",
                   "pandas", "nilearn", "sklearn"}


@pytest.fixture(scope="module")
def simulated_files(simulated_dataset, tmp_path_factory):
    """The built-in data set written out as files (what export-data gives a user)."""
    folder = tmp_path_factory.mktemp("simulated-data")
    written = export_data(simulated_dataset, folder)
    return written["func"], written["labels"]


@pytest.fixture(scope="module")
def haxby_vt(haxby_vt_dir):
    return load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                      mask=haxby_vt_dir / "mask_vt.nii.gz")


def unpack(zip_bytes: bytes, folder):
    with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
        archive.extractall(folder)
    return folder


def load_script(path):
    """Import an exported reproduce.py as a module (to call its functions)."""
    spec = importlib.util.spec_from_file_location(f"exported_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script_subprocess(folder, *args):
    completed = subprocess.run([sys.executable, str(folder / "reproduce.py"), *map(str, args)],
                               cwd=folder, capture_output=True, text=True, timeout=900)
    assert completed.returncode in (0, 3), completed.stderr
    return json.loads(completed.stdout)


def plain_params(estimator) -> dict:
    """Every parameter of an estimator, nested ones included, with wrapped estimators by type."""
    return {name: type(value) if hasattr(value, "get_params") else value
            for name, value in estimator.get_params(deep=True).items()}


def assert_same_scores(obtained, expected):
    obtained = np.asarray([np.nan if v is None else v for v in obtained], dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert obtained.shape == expected.shape
    np.testing.assert_array_equal(np.round(obtained, 6), np.round(expected, 6))


# -- the script in a fresh process, on both data sets ----------------------------
@pytest.mark.slow
def test_exported_script_reproduces_the_simulated_run(tmp_path, simulated_dataset):
    config = DecodingConfig()  # the tutorial's setting: face vs cat, VT mask, linear SVC, leave-one-run-out
    result = decoding.run_decoding(simulated_dataset, config)
    folder = unpack(export_run_zip(result, simulated_dataset), tmp_path / "export")
    # The data files as a user gets them: from the command line.
    data = tmp_path / "data"
    completed = subprocess.run([sys.executable, "-m", "decoding_core", "export-data", "--dataset", "simulated",
                                "--out", data, "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=600)
    assert completed.returncode == 0, completed.stderr
    output = run_script_subprocess(folder, "--func", data / "bold.nii.gz", "--labels", data / "labels.tsv")
    assert output["match"] is True
    assert_same_scores(output["fold_scores"], result.fold_scores)
    assert output["n_samples"] == result.n_samples and output["n_voxels"] == result.n_voxels


@pytest.mark.slow
def test_exported_script_reproduces_a_real_haxby_run(tmp_path, haxby_vt, haxby_vt_dir):
    config = DecodingConfig(mask_name=next(iter(haxby_vt.masks)), cv="kfold", n_folds=6,
                            estimator="logistic_l2", C=0.1, screening_percentile=50, scoring="roc_auc")
    result = decoding.run_decoding(haxby_vt, config)
    folder = unpack(export_run_zip(result, haxby_vt), tmp_path / "export")
    output = run_script_subprocess(folder, "--func", haxby_vt_dir / "bold_vt.nii.gz",
                                   "--labels", haxby_vt_dir / "labels.txt")
    assert output["match"] is True
    assert_same_scores(output["fold_scores"], result.fold_scores)
    assert output["n_voxels"] == 577 and output["n_samples"] == 216


# -- every estimator, scheme, scoring, screening and tuning (the script imported) --
SIMULATED_CASES = {
    "kfold, L2 SVM, balanced accuracy": dict(cv="kfold", n_folds=5, estimator="svm_l2", C=0.01,
                                             scoring="balanced_accuracy"),
    "hold-out, logistic L2": dict(cv="holdout", holdout_size=40, estimator="logistic_l2"),
    "default split, ridge, ROC AUC": dict(cv="default", estimator="ridge", scoring="roc_auc"),
    "L1 SVM with ANOVA screening": dict(estimator="svm_l1", screening_percentile=20),
    "tuned C with screening": dict(tune_C=True, screening_percentile=50, cv="kfold", n_folds=4),
    "detrend, raw, smoothing": dict(detrend=True, standardize=False, smoothing_fwhm=6.0, mask_name="face"),
    "three classes, ROC AUC": dict(conditions=("face", "house", "cat"), scoring="roc_auc"),
    "training data": dict(cv="train", estimator="logistic_l1", mask_name="house"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SIMULATED_CASES))
def test_script_matches_the_app_across_settings(case, tmp_path, simulated_dataset, simulated_files):
    config = DecodingConfig(**SIMULATED_CASES[case])
    result = decoding.run_decoding(simulated_dataset, config)
    folder = unpack(export_run_zip(result, simulated_dataset), tmp_path / "export")
    script = load_script(folder / "reproduce.py")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        status = script.main(["--func", str(simulated_files[0]), "--labels", str(simulated_files[1])])
    output = json.loads(stdout.getvalue())
    assert status == 0 and output["match"] is True, output
    assert_same_scores(output["fold_scores"], result.fold_scores)


@pytest.mark.slow
def test_script_reports_a_mismatch(tmp_path, simulated_dataset, simulated_files):
    result = decoding.run_decoding(simulated_dataset, DecodingConfig())
    tampered = dataclasses.replace(result, fold_scores=result.fold_scores + 0.01)
    folder = unpack(export_run_zip(tampered, simulated_dataset), tmp_path / "export")
    output = run_script_subprocess(folder, "--func", simulated_files[0], "--labels", simulated_files[1])
    assert output["match"] is False and output["max_abs_difference"] == pytest.approx(0.01)
    # It names the folds and the differences, and rules the data out: same file, same selection.
    message = output["mismatch"]
    assert f"fold 1: {output['fold_scores'][0]:.6f} here, {tampered.fold_scores[0]:.6f} recorded (-0.01)" in message
    assert "1. Not the data" in message and "2. Solver convergence: every fit here converged" in message
    assert "3. Package versions: the same as the run's." in message
    assert output["data_read"]["func_sha256"] == output["data_recorded"]["func_sha256"] is not None


@pytest.mark.slow
def test_script_says_the_data_differ_when_they_do(tmp_path, haxby_vt, haxby_vt_dir):
    config = DecodingConfig(mask_name=next(iter(haxby_vt.masks)), cv="kfold", n_folds=3)
    result = decoding.run_decoding(haxby_vt, config)
    folder = unpack(export_run_zip(result, haxby_vt), tmp_path / "export")
    # The same volumes with noise added inside the mask: another file, other scores.
    image = nib.load(haxby_vt_dir / "bold_vt.nii.gz")
    data = np.asarray(image.dataobj)
    inside = nib.load(haxby_vt_dir / "mask_vt.nii.gz").get_fdata() != 0
    voxels = data[inside].astype(float)
    voxels += np.random.default_rng(0).normal(scale=voxels.std(axis=1, keepdims=True), size=voxels.shape)
    data[inside] = np.round(voxels).astype(data.dtype)
    nib.save(nib.Nifti1Image(data, image.affine, image.header), tmp_path / "changed.nii.gz")
    output = run_script_subprocess(folder, "--func", tmp_path / "changed.nii.gz", "--labels",
                                   haxby_vt_dir / "labels.txt")
    assert output["match"] is False
    message = output["mismatch"]
    assert "1. Different data: func_sha256: " in message
    assert output["data_recorded"]["func_sha256"] in message and output["data_read"]["func_sha256"] in message


@pytest.mark.slow
def test_script_says_when_it_cannot_check_the_data(tmp_path, simulated_dataset, simulated_files):
    result = decoding.run_decoding(simulated_dataset, DecodingConfig(cv="kfold", n_folds=3))
    record = RunRecord.from_result(dataclasses.replace(result, fold_scores=result.fold_scores - 0.02),
                                   simulated_dataset)
    folder = unpack(export_record_zip(record), tmp_path / "export")  # from the history: no file digest
    output = run_script_subprocess(folder, "--func", simulated_files[0], "--labels", simulated_files[1])
    assert "the functional file's sha256 was not recorded" in output["mismatch"]


# -- every estimator, scoring and scheme on the real data, the script in a fresh process ------------
REAL_CASES = {
    "svc, leave-one-run-out, accuracy": dict(estimator="svc"),
    "L2 SVM, default split, balanced accuracy": dict(estimator="svm_l2", cv="default",
                                                     scoring="balanced_accuracy"),
    "L1 SVM, leave-one-run-out, ROC AUC": dict(estimator="svm_l1", scoring="roc_auc"),
    "logistic L2, three classes, ROC AUC": dict(estimator="logistic_l2", scoring="roc_auc",
                                                conditions=("face", "cat", "house")),
    "logistic L2, two classes (Newton), ROC AUC": dict(estimator="logistic_l2", scoring="roc_auc"),
    "logistic L1, hold-out, three classes": dict(estimator="logistic_l1", cv="holdout", holdout_size=54,
                                                 conditions=("face", "cat", "house")),
    "ridge, training data, ROC AUC": dict(estimator="ridge", cv="train", scoring="roc_auc"),
    "svc, three classes, ROC AUC, tuned C with screening": dict(
        estimator="svc", cv="kfold", n_folds=4, scoring="roc_auc", conditions=("face", "cat", "house"),
        tune_C=True, screening_percentile=30),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(REAL_CASES))
def test_script_reproduces_real_runs_of_every_estimator_scoring_and_scheme(case, tmp_path, haxby_vt,
                                                                          haxby_vt_dir):
    config = DecodingConfig(mask_name=next(iter(haxby_vt.masks)), **REAL_CASES[case])
    result = decoding.run_decoding(haxby_vt, config)
    folder = unpack(export_run_zip(result, haxby_vt), tmp_path / "export")
    output = run_script_subprocess(folder, "--func", haxby_vt_dir / "bold_vt.nii.gz",
                                   "--labels", haxby_vt_dir / "labels.txt")
    assert output["match"] is True, output["mismatch"]
    assert_same_scores(output["fold_scores"], result.fold_scores)
    assert output["not_converged"] == result.not_converged == 0


# -- cleaning per run (issue 12): the script reproduces it with nilearn.signal.clean ----------
@pytest.fixture(scope="module")
def haxby_slice(haxby_slice_dir):
    return load_files(haxby_slice_dir / "bold.nii.gz", haxby_slice_dir / "labels.txt",
                      mask=haxby_slice_dir / "mask.nii.gz")


@pytest.mark.slow
@pytest.mark.parametrize("cleaning", [dict(standardize="run"), dict(standardize="series", detrend="run"),
                                      dict(standardize="run", detrend="run", high_pass=0.01)])
def test_script_reproduces_per_run_cleaning_on_real_data(cleaning, tmp_path, haxby_slice, haxby_slice_dir):
    result = decoding.run_decoding(haxby_slice, DecodingConfig(mask_name="uploaded", **cleaning))
    folder = unpack(export_run_zip(result, haxby_slice), tmp_path / "export")
    assert "within each run" in (folder / "README.txt").read_text()
    assert json.loads((folder / "config.json").read_text())["config"]["standardize"] == cleaning["standardize"]
    output = run_script_subprocess(folder, "--func", haxby_slice_dir / "bold.nii.gz",
                                   "--labels", haxby_slice_dir / "labels.txt")
    assert output["match"] is True, output["mismatch"]
    assert_same_scores(output["fold_scores"], result.fold_scores)
    if cleaning == dict(standardize="run"):
        assert output["mean_score"] == pytest.approx(0.8102, abs=5e-4)  # 0.7407 over the whole series


@pytest.mark.slow
def test_script_reproduces_confound_regression_and_scrubbing(tmp_path, haxby_slice, haxby_slice_dir,
                                                             haxby_bids_dir):
    from tests.core.test_cleaning import confounds_table

    func = tmp_path / "fmriprep" / "sub-1" / "func"
    func.mkdir(parents=True)
    run_files = []
    for k in range(12):
        stem = f"sub-1_task-objectviewing_run-{k + 1:02d}"
        bold = func / f"{stem}_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz"
        bold.write_bytes((haxby_bids_dir / "sub-1" / "func" / f"{stem}_bold.nii.gz").read_bytes())
        confounds_table(121, seed=k, high_motion=(50, 51, 52, 53, 54, 55) if k == 3 else ()).to_csv(
            func / f"{stem}_desc-confounds_timeseries.tsv", sep="\t", index=False, na_rep="n/a")
        run_files.append(bold)
    dataset = dataclasses.replace(haxby_slice, run_files=tuple(run_files))
    config = DecodingConfig(mask_name="uploaded", standardize="run", detrend="run",
                            confounds=("motion", "global_signal", "scrubbing"))
    result = decoding.run_decoding(dataset, config)
    assert result.n_samples == 210  # six face volumes of run 4 scrubbed
    folder = unpack(export_run_zip(result, dataset), tmp_path / "export")
    output = run_script_subprocess(folder, "--func", haxby_slice_dir / "bold.nii.gz",
                                   "--labels", haxby_slice_dir / "labels.txt", "--run-files", *run_files)
    assert output["match"] is True, output["mismatch"]
    assert_same_scores(output["fold_scores"], result.fold_scores)
    assert output["n_samples"] == 210


# -- the script mirrors decoding.py ----------------------------------------------
@pytest.fixture(scope="module")
def script_record(simulated_dataset):
    result = decoding.run_decoding(simulated_dataset, DecodingConfig(cv="train"))
    return RunRecord.from_result(result, simulated_dataset)


@pytest.fixture(scope="module")
def script_for(tmp_path_factory, script_record):
    """The script written for the recorded run with some settings changed."""
    def load(**changes):
        record = dataclasses.replace(script_record, config=script_record.config.replace(**changes))
        folder = tmp_path_factory.mktemp("script")
        (folder / "reproduce.py").write_text(build_script(record))
        return load_script(folder / "reproduce.py")
    return load


@pytest.fixture(scope="module")
def script_module(script_for):
    return script_for()


def test_script_imports_only_nilearn_scikit_learn_and_their_dependencies(script_module):
    tree = ast.parse(open(script_module.__file__).read())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module.split(".")[0])
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS
    assert "decoding_core" not in open(script_module.__file__).read().split('"""', 2)[2]


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
@pytest.mark.parametrize("C", [0.001, 1.0, 37.5])
def test_script_builds_the_same_classifiers(script_for, estimator, C):
    ours = script_for(estimator=estimator).make_classifier(C, 3)
    theirs = decoding.make_classifier(estimator, C)
    assert type(ours) is type(theirs)
    assert plain_params(ours) == plain_params(theirs)


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
def test_script_fits_two_classes_to_the_apps_answer(script_for, estimator):
    # The app fits some two-class problems by Newton's method (L2 SVM, L2 logistic
    # regression): the script's scikit-learn fit must land on the same optimum.
    rng = np.random.default_rng(0)
    y = np.repeat(["cat", "face"], 40)
    X = rng.normal(size=(80, 30)) + 0.7 * (y == "face")[:, None]
    X_test = rng.normal(size=(40, 30))
    script = script_for(estimator=estimator)
    ours = script.make_classifier(1.0, 2).fit(X, y)
    theirs = fit_classifier(decoding.make_classifier(estimator, 1.0), X, y)
    np.testing.assert_allclose(coefficients(ours), coefficients(theirs), rtol=0, atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X_test), theirs.predict(X_test))


def test_script_screens_and_tunes_as_decoding_does(script_module):
    pipeline = decoding.build_estimator(DecodingConfig(screening_percentile=12.5))
    screening = script_module.make_screening(12.5)
    assert type(screening) is type(pipeline.named_steps["screening"])
    assert screening.get_params() == pipeline.named_steps["screening"].get_params()
    assert script_module.make_screening(None) is None
    assert tuple(script_module.C_GRID) == tuple(decoding.DEFAULT_C_GRID)
    tuned = decoding.build_estimator(DecodingConfig(tune_C=True)).named_steps["classifier"]
    assert tuple(tuned.Cs) == tuple(decoding.DEFAULT_C_GRID)
    # The inner split that chooses C: same folds with and without runs.
    rng = np.random.default_rng(0)
    y = np.repeat(["cat", "face"], 30)
    for groups in (np.repeat(np.arange(6), 10), np.repeat(np.arange(2), 30), None):
        splitter, split_groups = _inner_splitter(y, groups)
        expected = [(a.tolist(), b.tolist()) for a, b in splitter.split(rng.normal(size=(60, 3)), y, split_groups)]
        obtained = [(a.tolist(), b.tolist()) for a, b in script_module.inner_splits(y, groups)]
        assert obtained == expected
    # The chosen C on real data agrees with the app's tuned classifier.
    X = rng.normal(size=(60, 20)) + (y == "face")[:, None] * 0.3
    groups = np.repeat(np.arange(6), 10)
    config = {"screening_percentile": None, "tune_C": True, "scoring": "accuracy", "estimator": "svc", "C": 1.0}
    _, _, chosen = script_module.fit_fold(X, y, groups, config)
    app = decoding.fit_estimator(decoding.build_estimator(DecodingConfig(tune_C=True)), X, y, groups)
    assert chosen == app.named_steps["classifier"].best_C_


def test_script_refits_the_screening_inside_each_inner_fold(script_module, monkeypatch):
    # Fully nested: every inner fit of the script screens its own inner training fold, as the app does.
    rng = np.random.default_rng(4)
    y = np.tile(np.repeat(["cat", "face"], 5), 6)
    groups = np.repeat(np.arange(6), 10)
    X = rng.normal(size=(60, 200)) + (y == "face")[:, None] * rng.normal(scale=0.4, size=200)
    fitted_on = []
    original = script_module.screened_fit
    monkeypatch.setattr(script_module, "screened_fit",
                        lambda X_fit, y_fit, C, p: fitted_on.append(len(X_fit)) or original(X_fit, y_fit, C, p))
    config = {"screening_percentile": 10, "tune_C": True, "scoring": "accuracy", "estimator": "svc", "C": 1.0}
    screening, _, chosen = script_module.fit_fold(X, y, groups, config)
    # 5 inner folds x 6 values of C, each screening its inner training runs only (40 or 50 samples).
    assert len(fitted_on) - 1 == 5 * len(script_module.C_GRID) and set(fitted_on[:-1]) == {40, 50}
    assert fitted_on[-1] == 60 and screening.get_support().sum() == 20
    app = decoding.fit_estimator(
        decoding.build_estimator(DecodingConfig(tune_C=True, screening_percentile=10)), X, y, groups)
    assert chosen == app.named_steps["classifier"].best_C_
    np.testing.assert_array_equal(screening.get_support(), app.named_steps["classifier"].screening_.get_support())


@pytest.mark.parametrize("scheme", list(CV_SCHEMES))
def test_script_splits_as_decoding_does(script_for, scheme, simulated_dataset):
    labels = simulated_dataset.conditions
    keep = np.isin(labels, ["face", "cat", "house"])
    y, runs = labels[keep], simulated_dataset.runs[keep]
    config = DecodingConfig(cv=scheme, n_folds=7, holdout_size=25)
    expected = decoding.make_splits(config, y, runs)
    obtained = script_for(cv=scheme).make_splits(config.to_dict(), y, runs)
    assert len(obtained) == len(expected)
    for (train_a, test_a), (train_b, test_b) in zip(obtained, expected):
        np.testing.assert_array_equal(train_a, train_b)
        np.testing.assert_array_equal(test_a, test_b)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("estimator", ["svc", "logistic_l2", "ridge"])
def test_script_scores_as_decoding_does(script_module, n_classes, estimator):
    rng = np.random.default_rng(n_classes)
    classes = np.array(["cat", "face", "house"][:n_classes])
    y = np.tile(classes, 30)
    X = rng.normal(size=(len(y), 15)) + (y == classes[1])[:, None]
    model = decoding.make_classifier(estimator, 1.0).fit(X[:40], y[:40])
    X_test, y_test = X[40:], y[40:]
    y_pred = model.predict(X_test).astype(str)
    decision, proba = decoding.class_scores(model, X_test, classes)
    for scoring in ("accuracy", "balanced_accuracy", "roc_auc"):
        expected = decoding.fold_score(scoring, y_test, y_pred, decision, proba, classes)
        assert script_module.score_fold(scoring, model, X_test, y_test, y_pred, classes) == expected


# -- the zip -----------------------------------------------------------------------
def test_export_zip_holds_every_piece(tmp_path, simulated_dataset):
    config = DecodingConfig(conditions=("face", "house", "cat"), cv="kfold", n_folds=4)
    result = decoding.run_decoding(simulated_dataset, config)
    data = export_run_zip(result, simulated_dataset)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = set(archive.namelist())
        assert {"README.txt", "config.json", "run.json", "fold_scores.csv", "predictions.csv", "weights.nii.gz",
                "mask.nii.gz", "versions.json", "reproduce.py", "pattern.nii.gz", "stability.nii.gz"} <= names
        restored, dataset_info = export.read_config_json(archive.read("config.json"))
        assert restored == config and dataset_info["digest"] == simulated_dataset.digest
        versions = json.loads(archive.read("versions.json"))
        for package in ("python", "numpy", "scipy", "scikit-learn", "nilearn", "nibabel", "pandas",
                        "fmri-decoding-lab"):
            assert versions[package], package
        folds = pd.read_csv(io.BytesIO(archive.read("fold_scores.csv")))
        np.testing.assert_allclose(folds["score"], result.fold_scores, atol=1e-6)
        predictions = pd.read_csv(io.BytesIO(archive.read("predictions.csv")))
        assert len(predictions) == result.n_samples
        archive.extractall(tmp_path)
        run = json.loads(archive.read("run.json"))
        assert run["fold_names"] == ["fold 1", "fold 2", "fold 3", "fold 4"]
    weights = nib.load(tmp_path / "weights.nii.gz")
    assert weights.shape == simulated_dataset.shape[:3] + (3,)  # one map per class
    np.testing.assert_allclose(weights.get_fdata(), result.weight_img.get_fdata(), rtol=1e-6)
    mask = nib.load(tmp_path / "mask.nii.gz").get_fdata() != 0
    assert mask.sum() == result.n_voxels
    readme = (tmp_path / "README.txt").read_text()
    assert "export-data --dataset simulated" in readme


def test_a_run_from_the_history_exports_after_a_restart(tmp_path, simulated_dataset):
    store = SQLiteRunStore(tmp_path / "history.sqlite3")
    result = decoding.run_decoding(simulated_dataset, DecodingConfig(C=0.05))
    record = store.add(result, simulated_dataset, name='odd """ name \\ with quotes')
    reopened = SQLiteRunStore(tmp_path / "history.sqlite3").get(record.id)
    data = export_record_zip(reopened)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        script = archive.read("reproduce.py").decode()
        compile(script, "reproduce.py", "exec")  # the odd name did not break the script
        np.testing.assert_allclose(pd.read_csv(io.BytesIO(archive.read("fold_scores.csv")))["score"],
                                   result.fold_scores, atol=1e-6)


def test_script_reproduces_a_run_on_merged_condition_names(tmp_path, haxby_vt_dir):
    """Spellings merged at the user's request ("Face" -> "face") are merged by the script too."""
    from decoding_core.io.labels import merge_label_variants

    table = (haxby_vt_dir / "labels.txt").read_text().splitlines()
    face_rows = [i for i, line in enumerate(table) if line.split()[0] == "face"]
    for i in face_rows[:20]:  # a minority spelling, so "face" stays the canonical name
        table[i] = table[i].replace("face", "Face", 1)
    labels = tmp_path / "labels_variants.txt"
    labels.write_text("\n".join(table) + "\n")
    dataset = merge_label_variants(load_files(haxby_vt_dir / "bold_vt.nii.gz", labels,
                                              mask=haxby_vt_dir / "mask_vt.nii.gz"))
    assert dataset.label_renames == {"Face": "face"}
    config = DecodingConfig(conditions=("face", "cat"), mask_name=next(iter(dataset.masks)))
    result = decoding.run_decoding(dataset, config)
    assert result.n_samples == 216  # all 108 face volumes, whatever their spelling
    folder = unpack(export_run_zip(result, dataset), tmp_path / "export")
    output = run_script_subprocess(folder, "--func", haxby_vt_dir / "bold_vt.nii.gz", "--labels", labels)
    assert output["match"] is True, output


@pytest.mark.slow
@pytest.mark.parametrize("tables", ["one", "per run"])
def test_script_reproduces_a_run_on_one_file_per_run(tables, tmp_path, haxby_bids_dir, haxby_slice_dir):
    """Runs uploaded as files (issue 12): the script joins them as the app did and checks their digest."""
    from decoding_core.datasets import load_run_files

    runs = sorted((haxby_bids_dir / "sub-1" / "func").glob("*_bold.nii.gz"))
    labels = pd.read_csv(haxby_slice_dir / "labels.txt", sep=" ")
    if tables == "one":
        table_paths = [haxby_slice_dir / "labels.txt"]
    else:
        table_paths = []
        for run, part in labels.groupby("chunks"):
            table_paths.append(tmp_path / f"labels-{run}.tsv")
            part[["labels"]].to_csv(table_paths[-1], sep="\t", index=False)
    given = [path.read_bytes() for path in table_paths]
    dataset = load_run_files(runs, given[0] if len(given) == 1 else given, mask=haxby_slice_dir / "mask.nii.gz",
                             cache_dir=tmp_path / "joined")
    result = decoding.run_decoding(dataset, DecodingConfig(mask_name="uploaded", standardize="run"))
    folder = unpack(export_run_zip(result, dataset), tmp_path / "export")
    assert "one per run" in (folder / "README.txt").read_text()
    output = run_script_subprocess(folder, "--func", *runs, "--labels", *table_paths)
    assert output["match"] is True, output["mismatch"]
    assert_same_scores(output["fold_scores"], result.fold_scores)
    assert output["data_read"]["func_sha256"] == output["data_recorded"]["func_sha256"]
