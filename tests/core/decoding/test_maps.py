"""Tests of decoding_core.decoding.maps: weights, activation patterns, sign stability, their images."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import SVC

from decoding_core.config import DecodingConfig
from decoding_core.decoding import activation_pattern, decode, sign_stability

from tests.core.decoding._helpers import make_masked


def test_multiclass_svc_maps_are_one_vs_rest():
    classes = ("face", "cat", "house")
    data = make_masked(classes=classes, n_voxels=30, seed=2)
    result = decode(data, DecodingConfig(conditions=classes))
    ovr = OneVsRestClassifier(SVC(kernel="linear")).fit(data.X, data.labels)
    expected = np.vstack([e.coef_ for e in ovr.estimators_])
    assert list(ovr.classes_) == list(result.classes)
    np.testing.assert_allclose(result.weights, expected, rtol=1e-4, atol=1e-5)
    assert result.weight_img.shape == (33, 1, 1, 3)


def test_binary_weights_point_to_second_class(masked):
    result = decode(masked, DecodingConfig())
    svc = SVC(kernel="linear").fit(masked.X, masked.labels)
    np.testing.assert_allclose(result.weights, svc.coef_, rtol=1e-4, atol=1e-6)
    assert result.positive_class == result.classes[1] == svc.classes_[1]


def test_activation_pattern_equals_covariance_formula():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 8))
    W = rng.normal(size=(2, 8))
    pattern = activation_pattern(X, W)
    covariance = np.cov(X, rowvar=False)
    outputs_variance = np.var(X @ W.T, axis=0, ddof=1)
    expected = (covariance @ W.T / outputs_variance).T
    np.testing.assert_allclose(pattern, expected, rtol=1e-5)


def test_sign_stability():
    weights = np.array([[1.0, -1.0, 0.0, 2.0]])
    folds = np.array([[[1, -1, 1, -1]], [[1, 1, 0, -1]]], dtype=float)
    np.testing.assert_allclose(sign_stability(folds, weights), [[1.0, 0.5, 0.0, 0.0]])


def test_stability_and_pattern_images(masked):
    result = decode(masked, DecodingConfig())
    stability = result.stability
    assert stability.shape == (1, 100) and ((stability >= 0) & (stability <= 1)).all()
    assert result.stability_img.shape == (103, 1, 1)
    assert result.pattern.shape == (1, 100)
    np.testing.assert_allclose(result.pattern_img.get_fdata()[:100, 0, 0],
                               result.pattern[0], rtol=1e-6)


def test_simulated_face_vs_cat_maps_find_the_planted_voxels(simulated_dataset, simulated_vt):
    truth = simulated_dataset.ground_truth
    planted_difference = truth.patterns["face"] - truth.patterns["cat"]
    informative = planted_difference != 0
    result = decode(simulated_vt, DecodingConfig())
    assert result.mean_score > 0.7
    # Maps point to the second class: orient the planted difference the same way.
    assert result.positive_class == "face"
    # Raw weights and the pattern both follow the planted face - cat difference voxel by
    # voxel (weights of a classifier fitted on noise would not: correlation about 0);
    # the pattern far more closely, as Haufe et al. explain (suppressor voxels).
    weights_correlation = np.corrcoef(result.weights[0], planted_difference)[0, 1]
    pattern_correlation = np.corrcoef(result.pattern[0], planted_difference)[0, 1]
    assert weights_correlation > 0.3
    assert pattern_correlation > max(weights_correlation, 0.8)
    weights = np.abs(result.weights[0])
    pattern = np.abs(result.pattern[0])
    by_chance = informative.mean()
    # The activation pattern puts its mass in the informative voxels well above chance,
    assert pattern[informative].sum() / pattern.sum() > by_chance + 0.1
    # and ranks the informative voxels at least as well as the raw weights do.
    assert roc_auc_score(informative, pattern) >= roc_auc_score(informative, weights)
    assert roc_auc_score(informative, pattern) > 0.6
