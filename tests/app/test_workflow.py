"""The whole path through the app: data -> configure -> run -> results, uploads and bad input."""

from __future__ import annotations

import re

import pytest

from tests.app._helpers import (
    assert_no_traceback,
    error_texts,
    go_to,
    metric_value,
    run_from_configure,
    start_app,
    upload_files,
)
from decoding_core import datasets, decoding
from decoding_core.config import DecodingConfig
from ui import state


def shown_mean_and_chance(at) -> tuple[float, float]:
    mean = float(metric_value(at, "Mean "))
    chance = float(metric_value(at, "Chance level"))
    return mean, chance


def core_result(dataset, config):
    """The core's own answer, computed without the app."""
    return decoding.run_decoding(dataset, config)


def test_default_path_reaches_results_well_above_chance():
    at = start_app()
    go_to(at, "configure.py")
    assert_no_traceback(at)
    assert at.multiselect(key=state.W_CONDITIONS).value == ["face", "cat"]
    assert at.selectbox(key=state.W_CV).value == "leave-one-run-out"
    dataset = at.session_state[state.DATASET]
    # Shape shown before the run: samples x voxels of face and cat in the VT mask.
    n_voxels = int((dataset.masks["vt"].get_fdata() != 0).sum())
    n_samples = int(sum(label in ("face", "cat") for label in dataset.conditions))
    assert metric_value(at, "Data to decode") == f"{n_samples} x {n_voxels}"

    result = run_from_configure(at)
    mean, chance = shown_mean_and_chance(at)
    assert chance == pytest.approx(0.5, abs=0.01)
    assert mean >= chance + 0.25, f"mean {mean} is not well above chance {chance}"
    assert result.config == DecodingConfig()
    assert len(result.fold_scores) == dataset.n_runs
    # The per-fold table lists every run.
    assert len(at.dataframe[0].value) == dataset.n_runs
    # The state survives a trip to another page and back.
    go_to(at, "data.py")
    go_to(at, "results.py")
    assert_no_traceback(at)
    assert shown_mean_and_chance(at) == (mean, chance)


@pytest.mark.slow
@pytest.mark.parametrize(
    "change, widget_value, expected",
    [
        ("conditions", ["face", "house"], {"conditions": ("face", "house")}),
        ("mask", "face", {"mask_name": "face"}),
        ("C", 0.0001, {"C": 0.0001}),
        ("cv", "kfold", {"cv": "kfold", "n_folds": 3}),
    ],
)
def test_changing_a_setting_changes_the_results_accordingly(change, widget_value, expected):
    at = start_app()
    go_to(at, "configure.py")
    default_result = run_from_configure(at)
    dataset = at.session_state[state.DATASET]

    go_to(at, "configure.py")
    if change == "conditions":
        at.multiselect(key=state.W_CONDITIONS).set_value(widget_value)
    elif change == "mask":
        at.selectbox(key=state.W_MASK).set_value(widget_value)
    elif change == "C":
        at.number_input(key=state.W_C).set_value(widget_value)
    else:
        at.selectbox(key=state.W_CV).set_value(widget_value)
        at.run()
        at.number_input(key=state.W_N_FOLDS).set_value(3)
    at.run()
    assert_no_traceback(at)
    result = run_from_configure(at)

    config = DecodingConfig().replace(**expected)
    assert result.config == config
    expected_result = core_result(dataset, config)
    mean, _chance = shown_mean_and_chance(at)
    assert mean == pytest.approx(expected_result.mean_score, abs=5e-4)
    assert list(result.fold_scores) == pytest.approx(list(expected_result.fold_scores))
    if change == "conditions":
        assert set(result.classes) == {"face", "house"}
    if change == "mask":
        assert result.n_voxels == int((dataset.masks["face"].get_fdata() != 0).sum())
        assert result.n_voxels != default_result.n_voxels
    if change == "C":
        assert list(result.fold_scores) != pytest.approx(list(default_result.fold_scores)) or (
            result.weights.tolist() != default_result.weights.tolist()
        )
    if change == "cv":
        assert len(result.fold_scores) == 3


def real_files(haxby_vt_dir):
    return (
        ("bold_vt.nii.gz", (haxby_vt_dir / "bold_vt.nii.gz").read_bytes(), "application/gzip"),
        ("labels.txt", (haxby_vt_dir / "labels.txt").read_bytes(), "text/plain"),
        ("mask_vt.nii.gz", (haxby_vt_dir / "mask_vt.nii.gz").read_bytes(), "application/gzip"),
    )


@pytest.mark.slow
def test_upload_of_real_haxby_files_gives_the_core_score(haxby_vt_dir):
    func, labels, mask = real_files(haxby_vt_dir)
    at = start_app()
    upload_files(at, func, labels, mask)
    assert not at.error, error_texts(at)
    assert at.selectbox(key=state.W_LABEL_COLUMN).value == "labels"
    assert at.selectbox(key=state.W_RUN_COLUMN).value == "chunks"
    dataset = at.session_state[state.DATASET]
    assert at.session_state[state.DATASET_SPEC] == "upload"
    assert metric_value(at, "Volumes") == "864"
    assert metric_value(at, "Runs") == "12"
    # The file's own name is shown as text only.
    assert any("bold_vt.nii.gz" in text.value for text in at.text)
    assert "bold_vt" not in str(dataset.func_path)
    assert dataset.title == "Your uploaded data set (bold_vt.nii.gz)"
    # The description and source say the user's file names, not the app's stored copies.
    captions = " ".join(caption.value for caption in at.caption)
    assert "'bold_vt.nii.gz' (40 x 64 x 64 voxels, 864 volumes, 12 runs)" in captions, captions
    assert "Source: Uploaded files: 'bold_vt.nii.gz', 'labels.txt'" in captions, captions
    assert not re.search(r"\bfunc\.nii", captions), captions

    go_to(at, "configure.py")
    assert at.multiselect(key=state.W_CONDITIONS).value == ["face", "cat"]
    assert at.selectbox(key=state.W_CV).value == "leave-one-run-out"
    result = run_from_configure(at)

    core_dataset = datasets.load_files(
        haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt", mask=haxby_vt_dir / "mask_vt.nii.gz",
    )
    expected = core_result(core_dataset, result.config)
    assert result.config.mask_name == next(iter(core_dataset.masks)) or result.config.mask_name in core_dataset.masks
    mean, chance = shown_mean_and_chance(at)
    assert mean == pytest.approx(expected.mean_score, abs=5e-4)
    assert result.mean_score == pytest.approx(expected.mean_score, abs=1e-9)
    assert mean > chance


def test_column_names_from_an_upload_are_shown_as_text_not_markup(haxby_vt_dir):
    func, labels, mask = real_files(haxby_vt_dir)
    header, _, rest = labels[1].partition(b"\n")
    assert header.split() == [b"labels", b"chunks"]
    link_column = b"[click](http://example.invalid/x)"
    renamed = ("labels.txt", link_column + b" chunks\n" + rest, "text/plain")
    at = start_app()
    upload_files(at, func, renamed, mask)
    assert not at.error, error_texts(at)
    assert at.selectbox(key=state.W_LABEL_COLUMN).value == link_column.decode()
    captions = [caption.value for caption in at.caption]
    described = [text for text in captions if "column" in text and "Your data" in text]
    assert described, captions
    # Escaped brackets: Markdown shows them as text, never as a link to another site.
    assert r"\[click\](http://example.invalid/x)" in described[0]


def test_condition_names_from_an_upload_are_shown_as_text_not_markup(haxby_vt_dir):
    # A Markdown image in a label would make every viewer's browser fetch another site.
    image = "![x](http://example.invalid/p.png)"
    func, labels, mask = real_files(haxby_vt_dir)
    crafted = ("labels.txt", labels[1].replace(b"face ", image.encode() + b" "), "text/plain")
    at = start_app()
    upload_files(at, func, crafted, mask)
    assert not at.error, error_texts(at)
    go_to(at, "configure.py")
    at.multiselect(key=state.W_CONDITIONS).set_value([image, "cat"])
    at.run()
    result = run_from_configure(at)
    assert set(result.classes) == {image, "cat"}
    at.run()
    shown = [block.value for block in at.markdown if "in the mask" in block.value]
    assert shown and r"!\[x\](http://example.invalid/p.png)" in shown[0], shown
    assert image not in shown[0]


def test_the_real_one_slice_file_without_a_mask_decodes_and_shows_its_slice(haxby_slice_dir):
    at = start_app()
    upload_files(
        at,
        ("bold.nii.gz", (haxby_slice_dir / "bold.nii.gz").read_bytes(), "application/gzip"),
        ("labels.txt", (haxby_slice_dir / "labels.txt").read_bytes(), "text/plain"),
    )
    assert not at.error, error_texts(at)
    assert list(at.session_state[state.DATASET].masks) == ["epi"]
    go_to(at, "configure.py")
    result = run_from_configure(at)
    assert result.n_voxels > 20 and len(result.fold_scores) == 12
    at.run()
    assert not at.error, error_texts(at)
    assert any("one voxel thick" in caption.value for caption in at.caption)


# -- bad input -----------------------------------------------------------------------------------
def _labels_with_one_run(labels_bytes: bytes) -> bytes:
    lines = labels_bytes.decode().splitlines()
    header, rows = lines[0], lines[1:]
    return "\n".join([header] + [f"{row.split()[0]} 0" for row in rows]).encode() + b"\n"


def _upload_case(case, haxby_vt_dir, haxby_slice_dir):
    func, labels, mask = real_files(haxby_vt_dir)
    if case == "not nifti":
        return ("bold.nii.gz", b"this is a text file, not a NIfTI image\n" * 20, "application/gzip"), labels, None, "NIfTI"
    if case == "3D image":
        return ("mask.nii.gz", mask[1], "application/gzip"), labels, None, "4D"
    if case == "labels of the wrong length":
        short = b"\n".join(labels[1].splitlines()[:101]) + b"\n"
        return func, ("labels.txt", short, "text/plain"), mask, "100"
    if case == "mask that does not match":
        other = (haxby_slice_dir / "mask.nii.gz").read_bytes()
        return func, labels, ("mask.nii.gz", other, "application/gzip"), "mask"
    if case == "image cut short, with a mask":
        # Its header is sound: only reading the voxels (the background, at upload) finds the cut.
        return ("bold.nii.gz", func[1][: len(func[1]) // 3], "application/gzip"), labels, mask, "truncated"
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["not nifti", "3D image", "labels of the wrong length", "mask that does not match",
                                  "image cut short, with a mask"])
def test_bad_upload_shows_an_error_and_keeps_the_previous_data_set(case, haxby_vt_dir, haxby_slice_dir):
    at = start_app()
    before = at.session_state[state.DATASET]
    func, labels, mask, expected_words = _upload_case(case, haxby_vt_dir, haxby_slice_dir)
    upload_files(at, func, labels, mask)
    errors = error_texts(at)
    assert len(errors) == 1, errors
    assert expected_words.lower() in errors[0].lower(), errors[0]
    assert "Traceback" not in errors[0]
    # The message names the user's own files, never the app's stored copies.
    assert not re.search(r"\bfunc\.nii", errors[0]), errors[0]
    if case in ("not nifti", "3D image"):
        assert f"'{func[0]}'" in errors[0], errors[0]
    # The data set loaded before is still the one in use, and it still works.
    assert at.session_state[state.DATASET] is before
    assert metric_value(at, "Volumes") == str(before.n_volumes)
    go_to(at, "configure.py")
    assert not at.error
    result = run_from_configure(at)
    assert result.n_samples > 0


def test_a_single_condition_shows_an_error_and_disables_run():
    at = start_app()
    go_to(at, "configure.py")
    at.multiselect(key=state.W_CONDITIONS).set_value(["face"])
    at.run()
    assert_no_traceback(at)
    errors = error_texts(at)
    assert len(errors) == 1 and "at least two" in errors[0].lower(), errors
    assert at.button(key=state.W_RUN).disabled
    # Fixing it makes the page usable again.
    at.multiselect(key=state.W_CONDITIONS).set_value(["face", "cat"])
    at.run()
    assert not at.error
    assert not at.button(key=state.W_RUN).disabled


@pytest.mark.slow
def test_leave_one_run_out_with_one_run_shows_an_error(haxby_vt_dir):
    func, labels, mask = real_files(haxby_vt_dir)
    at = start_app()
    upload_files(at, func, ("labels.txt", _labels_with_one_run(labels[1]), "text/plain"), mask)
    assert not at.error, error_texts(at)
    assert metric_value(at, "Runs") == "1"
    go_to(at, "configure.py")
    assert at.selectbox(key=state.W_CV).value == "leave-one-run-out"
    errors = error_texts(at)
    assert len(errors) == 1 and "run" in errors[0].lower(), errors
    assert at.button(key=state.W_RUN).disabled
    # Another scheme works on the same data.
    at.selectbox(key=state.W_CV).set_value("kfold")
    at.run()
    assert not at.error
    result = run_from_configure(at)
    assert len(result.fold_scores) == 5


def test_training_accuracy_is_explained_as_meaningless():
    at = start_app()
    go_to(at, "configure.py")
    run_from_configure(at)
    # Training accuracy: the explanation of why 1.0 means nothing.
    go_to(at, "configure.py")
    at.selectbox(key=state.W_CV).set_value("train")
    at.run()
    run_from_configure(at)
    assert any("same samples the classifier was trained on" in w.value for w in at.warning)
    assert float(metric_value(at, "Mean ")) >= 0.99


@pytest.mark.slow
def test_results_controls_downloads_and_permutation_test():
    from decoding_core import masking, significance

    at = start_app()
    go_to(at, "configure.py")
    result = run_from_configure(at)
    dataset = at.session_state[state.DATASET]
    labels = [button.proto.label for button in at.get("download_button")]
    for expected in ("Weight map (.nii.gz)", "Per-fold scores (CSV)", "Configuration (JSON)"):
        assert expected in labels
    # Views, threshold and cut position change without errors; the cut is kept in state.
    at.selectbox(key=state.W_DISPLAY_MODE).set_value("ortho")
    at.slider(key=state.W_THRESHOLD).set_value(at.slider(key=state.W_THRESHOLD).max / 2)
    at.number_input(key=state.W_CUT_K).set_value(3)
    at.run()
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    assert at.session_state[state.CUT_COORDS][2] == 3
    go_to(at, "data.py")
    go_to(at, "results.py")
    assert at.number_input(key=state.W_CUT_K).value == 3
    assert at.selectbox(key=state.W_DISPLAY_MODE).value == "ortho"

    # Permutation test: the p-value is the core's for the same permutations.
    at.number_input(key=state.W_N_PERMUTATIONS).set_value(20)
    at.button(key=state.W_PERMUTATION_RUN).click()
    at.run()
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    selected = masking.select_conditions(masking.mask_dataset(dataset, "vt"), ("face", "cat"))
    expected = significance.permutation_test(selected, result.config, n_permutations=20, seed=0)
    assert metric_value(at, "Permutations done") == "20 / 20"
    assert metric_value(at, "p-value") == f"{expected.p_value:.4f}"
    assert float(metric_value(at, "Observed score")) == pytest.approx(result.mean_score, abs=5e-4)


@pytest.mark.slow
def test_all_eight_categories_give_per_class_maps_and_metrics():
    at = start_app()
    go_to(at, "configure.py")
    categories = ["face", "house", "cat", "bottle", "scissors", "shoe", "chair", "scrambledpix"]
    at.multiselect(key=state.W_CONDITIONS).set_value(categories)
    at.run()
    assert metric_value(at, "Classes") == "8"
    result = run_from_configure(at)
    assert set(result.classes) == set(categories)
    mean, chance = shown_mean_and_chance(at)
    assert chance == pytest.approx(0.125, abs=0.01)
    assert mean > chance + 0.2
    assert len(at.selectbox(key=state.W_MAP_CLASS).options) == 8
    for kind in at.radio(key=state.W_MAP_KIND).options:
        at.radio(key=state.W_MAP_KIND).set_value(
            {label: key for key, label in state.MAP_KINDS.items()}[kind]
        )
        at.selectbox(key=state.W_MAP_CLASS).set_value(5)
        at.run()
        assert_no_traceback(at)
        assert not at.error, error_texts(at)
    per_class = [frame.value for frame in at.dataframe if "precision" in frame.value.columns]
    assert len(per_class) == 1 and len(per_class[0]) == 8


def test_haxby_offline_says_so_and_offers_the_built_in_data_set(monkeypatch, tmp_path):
    import socket

    def offline(*args, **kwargs):
        raise OSError("Network is unreachable")

    # Offline for real: no Haxby files on disk, and no connection can open.
    monkeypatch.setenv("NILEARN_DATA", str(tmp_path))
    monkeypatch.setenv("NILEARN_SHARED_DATA", str(tmp_path))
    monkeypatch.setattr(socket, "create_connection", offline)
    at = start_app()
    before = at.session_state[state.DATASET]
    at.radio(key=state.W_SOURCE).set_value("haxby")
    at.run()
    at.selectbox(key=state.W_HAXBY_SUBJECT).set_value(1)
    at.run()
    at.button(key=state.W_HAXBY_LOAD).click()
    at.run()
    assert_no_traceback(at)
    errors = error_texts(at)
    assert len(errors) == 1 and "network" in errors[0].lower(), errors
    assert at.session_state[state.DATASET] is before
    at.button(key=state.W_USE_BUILTIN).click()
    at.run()
    assert_no_traceback(at)
    assert not at.error
    assert at.session_state[state.DATASET_SPEC] == "simulated"
    assert at.radio(key=state.W_SOURCE).value == "simulated"


@pytest.mark.slow
def test_the_newton_fitted_estimators_show_scikit_learns_converged_scores(haxby_vt_dir):
    # The L2 SVM and two-class L2 logistic regression are fitted by the project's Newton
    # solvers (issue 13); what Results shows must equal plain nilearn + scikit-learn.
    import numpy as np
    import pandas as pd
    from nilearn.maskers import NiftiMasker
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
    from sklearn.svm import LinearSVC

    labels_table = pd.read_csv(haxby_vt_dir / "labels.txt", sep=" ")
    X = NiftiMasker(mask_img=str(haxby_vt_dir / "mask_vt.nii.gz"), standardize="zscore_sample",
                    reports=False).fit_transform(str(haxby_vt_dir / "bold_vt.nii.gz"))
    labels, runs = labels_table["labels"].to_numpy(dtype=str), labels_table["chunks"].to_numpy()

    def independent(estimator, conditions, scoring):
        keep = np.isin(labels, conditions)
        return cross_val_score(estimator, X[keep], labels[keep], groups=runs[keep], cv=LeaveOneGroupOut(),
                               scoring=scoring).mean()

    at = start_app()
    upload_files(at, *real_files(haxby_vt_dir))
    cases = [
        ("svm_l2", ["face", "house"], "accuracy", LinearSVC(tol=1e-5, max_iter=20_000, random_state=0)),
        ("logistic_l2", ["face", "cat"], "roc_auc",
         LogisticRegression(solver="newton-cholesky", tol=1e-7, max_iter=100)),
    ]
    for estimator, conditions, scoring, reference in cases:
        go_to(at, "configure.py")
        at.multiselect(key=state.W_CONDITIONS).set_value(conditions)
        at.selectbox(key=state.W_ESTIMATOR).set_value(estimator)
        at.selectbox(key=state.W_SCORING).set_value(scoring)
        at.run()
        result = run_from_configure(at)
        assert result.config.estimator == estimator and result.not_converged == 0
        expected = independent(reference, conditions, scoring)
        assert float(metric_value(at, "Mean ")) == pytest.approx(expected, abs=5e-4)
        assert result.mean_score == pytest.approx(expected, abs=1e-6)
