"""Maps of a fitted decoder over the voxels: weights, activation patterns, sign stability."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import nibabel as nib
import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

from decoding_core import masking
from decoding_core.decoding.estimators import classifier_C, coefficients, fit_one_vs_rest, make_classifier
from decoding_core.progress import ProgressCallback

if TYPE_CHECKING:
    from decoding_core.config import DecodingConfig


def voxel_support(pipeline: Pipeline, n_voxels: int) -> np.ndarray:
    """Which voxels a fitted pipeline's classifier sees: the screening's support, or all of them."""
    if "screening" in pipeline.named_steps:
        return pipeline.named_steps["screening"].get_support()
    screening = getattr(pipeline.named_steps["classifier"], "screening_", None)  # nested tuning
    if screening is not None:
        return screening.get_support()
    return np.ones(n_voxels, dtype=bool)


def one_vs_rest_svc(pipeline: Pipeline, X, y, config: DecodingConfig, progress: ProgressCallback | None = None):
    """The one-vs-rest counterpart of a fitted multi-class SVC, or None for any other classifier.

    SVC is one-vs-one: neither its coefficients (one row per pair of classes) nor its
    decision values (votes) give one map or one score per class. A
    ``OneVsRestClassifier(SVC(kernel="linear", C))`` with the same C, fitted on the same
    training samples and the voxels the screening kept, gives both: the per-class maps
    and the decision values of the multi-class ROC AUC. None when the pipeline's
    classifier is not an SVC, or when its training data held two classes only.

    Parameters
    ----------
    pipeline : Pipeline
        Fitted, from `build_estimator`.
    X, y : the samples and labels the pipeline was fitted on.
    config : DecodingConfig
    progress : callable or None
        ``progress(fraction, message)`` as each class is fitted (`fit_one_vs_rest`).

    Returns
    -------
    OneVsRestClassifier or None
        Fitted on ``X[:, voxel_support(pipeline, X.shape[1])]``.
    """
    classifier = pipeline.named_steps["classifier"]
    if not isinstance(getattr(classifier, "estimator_", classifier), SVC) or len(classifier.classes_) <= 2:
        return None
    support = voxel_support(pipeline, np.shape(X)[1])
    one_vs_rest = OneVsRestClassifier(make_classifier(config.estimator, classifier_C(pipeline, config)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # libsvm has no iteration cap here
        return fit_one_vs_rest(one_vs_rest, np.asarray(X)[:, support], y, progress)


def weight_maps(pipeline: Pipeline, X, y, classes: np.ndarray, config: DecodingConfig,
                one_vs_rest=None, progress: ProgressCallback | None = None) -> np.ndarray:
    """Weights of a fitted pipeline over all voxels, float32.

    One row (toward ``classes[1]``) for two classes; otherwise one
    one-vs-rest row per class. SVC's one-vs-one coefficients do not give one
    map per class, so the maps of a multi-class SVC are those of its
    `one_vs_rest_svc` (pass it as ``one_vs_rest`` when already fitted; ``progress``
    follows its fit otherwise). Voxels dropped by screening get 0.
    """
    n_voxels = X.shape[1]
    classifier = pipeline.named_steps["classifier"]
    fitted_classes = np.asarray(classifier.classes_).astype(str)
    coef = np.asarray(coefficients(classifier), dtype=float)
    support = voxel_support(pipeline, n_voxels)
    n_maps = 1 if len(classes) == 2 else len(classes)
    maps = np.zeros((n_maps, n_voxels), dtype=np.float32)
    if n_maps == 1:
        maps[0, support] = coef[0]
        return maps
    rows = np.searchsorted(classes, fitted_classes)
    if len(fitted_classes) == 2:  # two classes (this fold saw only two)
        maps[rows[1], support], maps[rows[0], support] = coef[0], -coef[0]
        return maps
    if one_vs_rest is None:
        one_vs_rest = one_vs_rest_svc(pipeline, X, y, config, progress)
    if one_vs_rest is not None:  # SVC's coef_ is one-vs-one (3 rows for 3 classes too)
        coef = np.vstack([est.coef_.reshape(1, -1) for est in one_vs_rest.estimators_])
    maps[np.ix_(rows, support)] = coef
    return maps


def activation_pattern(X, weights) -> np.ndarray:
    """Activation patterns of linear decoders (Haufe et al., 2014, NeuroImage 87:96-110).

    ``A = cov(X) W``, scaled per map by the variance of its decoder output
    (Haufe's ``Sigma_s^-1`` taken map by map), computed as
    ``Xc^T (Xc W) / (n - 1) / var(Xc W)`` with centred ``Xc``: the voxel x voxel
    covariance is never formed. Unlike raw weights, a pattern shows where the
    signal is, not where a voxel helps cancel noise.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_voxels)
    weights : ndarray of shape (n_maps, n_voxels)

    Returns
    -------
    ndarray of shape (n_maps, n_voxels), float32
    """
    X = np.asarray(X, dtype=np.float64)
    W = np.asarray(weights, dtype=np.float64)
    centred = X - X.mean(axis=0)
    outputs = centred @ W.T  # (n_samples, n_maps)
    denominator = max(len(X) - 1, 1)
    pattern = (centred.T @ outputs).T / denominator
    variance = (outputs**2).sum(axis=0) / denominator
    scale = np.where(variance > 0, variance, 1.0)
    return (pattern / scale[:, None]).astype(np.float32)


def sign_stability(fold_weights, weights) -> np.ndarray:
    """Fraction of folds in which each weight has the sign of the full-data weight.

    Parameters
    ----------
    fold_weights : ndarray of shape (n_folds, n_maps, n_voxels)
    weights : ndarray of shape (n_maps, n_voxels)

    Returns
    -------
    ndarray of shape (n_maps, n_voxels), float32
        In [0, 1]; 0 where the full-data weight is exactly 0 (e.g. screened out).
    """
    reference = np.sign(weights)
    agree = (np.sign(fold_weights) == reference[None]).mean(axis=0)
    return np.where(reference != 0, agree, 0.0).astype(np.float32)


def maps_image(values: np.ndarray, mask_img) -> nib.Nifti1Image:
    """3D image for a single map, 4D for several."""
    values = np.asarray(values)
    return masking.unmask(values[0] if values.shape[0] == 1 else values, mask_img)
