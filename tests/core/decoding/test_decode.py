"""Tests of decoding_core.decoding.decode: decode, decode_selected and run_decoding end to end,
their refusals, predictions and progress, and the real data against scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.svm import SVC

from decoding_core.config import DecodingConfig
from decoding_core.decoding import decode, decode_selected, run_decoding
from decoding_core.errors import DecodingInputError
from decoding_core.masking import MaskedData


@pytest.fixture(scope="module")
def haxby_vt_masked(haxby_vt_dir):
    """The real data masked by plain nilearn, as the tutorial does."""
    from nilearn.maskers import NiftiMasker

    labels = pd.read_csv(haxby_vt_dir / "labels.txt", sep=" ")
    masker = NiftiMasker(mask_img=str(haxby_vt_dir / "mask_vt.nii.gz"), standardize="zscore_sample",
                         reports=False)
    X = masker.fit_transform(str(haxby_vt_dir / "bold_vt.nii.gz"))
    return X, labels["labels"].to_numpy(dtype=str), labels["chunks"].to_numpy()


@pytest.mark.slow
def test_real_haxby_face_vs_cat_matches_nilearn_and_sklearn(haxby_vt_dir, haxby_vt_masked):
    from decoding_core.datasets import load_files

    X, labels, runs = haxby_vt_masked
    keep = np.isin(labels, ["face", "cat"])
    expected = cross_val_score(SVC(kernel="linear"), X[keep], labels[keep], cv=LeaveOneGroupOut(),
                               groups=runs[keep])
    dataset = load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                         mask=haxby_vt_dir / "mask_vt.nii.gz")
    result = run_decoding(dataset, DecodingConfig(mask_name="uploaded", standardize=True))
    assert len(result.fold_scores) == 12
    np.testing.assert_allclose(result.fold_scores, expected, atol=1e-4)
    assert result.n_samples == keep.sum() and result.n_voxels == X.shape[1]
    assert result.chance_level == pytest.approx(0.5)
    # The weights are the tutorial's svc.coef_ on all selected samples.
    svc = SVC(kernel="linear").fit(X[keep], labels[keep])
    np.testing.assert_allclose(result.weights, svc.coef_, atol=2e-3 * np.abs(svc.coef_).max())
    assert result.weight_img.shape == dataset.masks["uploaded"].shape
    # time = volume * TR
    tr = dataset.tr
    np.testing.assert_allclose(result.predictions["time"], result.predictions["volume"] * tr)


def test_single_class_is_refused(masked):
    one = MaskedData(X=masked.X[:12], labels=masked.labels[:12].copy(), runs=masked.runs[:12],
                     volume_index=masked.volume_index[:12], mask_img=masked.mask_img, mask_name="t")
    one.labels[:] = "face"
    with pytest.raises(DecodingInputError, match="Only one condition"):
        decode_selected(one, DecodingConfig())


def test_unknown_condition_is_refused(masked):
    with pytest.raises(DecodingInputError, match="dog"):
        decode(masked, DecodingConfig(conditions=("face", "dog")))


def test_non_finite_data_are_refused(masked):
    X = masked.X.copy()
    X[0, 0] = np.nan
    bad = MaskedData(X=X, labels=masked.labels, runs=masked.runs, volume_index=masked.volume_index,
                     mask_img=masked.mask_img, mask_name="t")
    with pytest.raises(DecodingInputError, match="NaN or infinite"):
        decode(bad, DecodingConfig())


def test_arrow_string_labels_are_accepted(masked):
    arrow_labels = pd.Series(masked.labels, dtype="str").array
    data = MaskedData(X=masked.X, labels=arrow_labels, runs=pd.Series(masked.runs).array,
                      volume_index=masked.volume_index, mask_img=masked.mask_img, mask_name="t")
    result = decode_selected(data, DecodingConfig())
    np.testing.assert_allclose(result.fold_scores, decode(masked, DecodingConfig()).fold_scores)


def test_predictions(masked):
    result = decode(masked, DecodingConfig(), tr=2.0)
    predictions = result.predictions
    for column in ("sample", "volume", "run", "time", "fold", "true", "predicted", "correct", "decision"):
        assert column in predictions.columns
    np.testing.assert_allclose(predictions["time"], predictions["volume"] * 2.0)
    assert (predictions["correct"] == (predictions["true"] == predictions["predicted"])).all()
    # decision > 0 means the second class
    second = predictions["decision"] > 0
    assert ((predictions["predicted"] == result.classes[1]) == second).all()


def test_progress_reports_every_fold(masked):
    calls = []
    decode(masked, DecodingConfig(), progress=lambda fraction, message: calls.append((fraction, message)))
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum("Fold" in m for _, m in calls) == 4


def test_simulated_multiclass_beats_chance(simulated_dataset, simulated_vt):
    conditions = tuple(simulated_dataset.ground_truth.patterns)
    result = decode(simulated_vt, DecodingConfig(conditions=conditions))
    assert len(result.classes) == 8
    assert result.chance_level == pytest.approx(1 / 8)
    assert result.mean_score > 0.4
    assert result.weights.shape == (8, simulated_vt.X.shape[1])
    assert result.weight_img.shape[-1] == 8


@pytest.mark.parametrize("estimator", ["logistic_l1", "svc"])
def test_progress_moves_within_each_fold_of_a_one_vs_rest_fit(estimator):
    # Before: the bar moved only at the end of each fold ("Fold 1 of 4 done").
    from tests.core.decoding._helpers import make_masked

    masked = make_masked(classes=("face", "cat", "house", "shoe"), n_voxels=30, seed=2)
    calls = []
    decode(masked, DecodingConfig(conditions=("face", "cat", "house", "shoe"), estimator=estimator),
           progress=lambda fraction, message: calls.append((round(fraction, 6), message)), workers=1)
    first_fold = [(f, m) for f, m in calls if m.startswith("Fold 1 of 4")]
    # 4 classes, each reported; svc also fits its one-vs-rest counterpart after the one-vs-one SVC.
    expected = [k / 4 for k in range(1, 5)] if estimator == "logistic_l1" else [0.5 + k / 8 for k in range(1, 5)]
    assert [f for f, _ in first_fold] == [round(x / 5, 6) for x in expected] + [0.2]
    assert first_fold[0][1] == "Fold 1 of 4: one-vs-rest: 1 of 4 classes fitted"
    assert first_fold[-1][1] == "Fold 1 of 4 done"
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(m.startswith("Refitting on all samples: one-vs-rest: ") for _, m in calls)
