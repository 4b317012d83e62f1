"""Helpers of the decoding tests: block-designed masked data, estimator parameters."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from decoding_core.masking import MaskedData


def plain_params(estimator) -> dict:
    """Every parameter of an estimator, nested ones included, with wrapped estimators by type."""
    return {name: type(value) if hasattr(value, "get_params") else value
            for name, value in estimator.get_params(deep=True).items()}


def _mask_img(n_voxels: int) -> nib.Nifti1Image:
    data = np.zeros(n_voxels + 3, dtype=np.uint8)
    data[:n_voxels] = 1
    return nib.Nifti1Image(data.reshape(-1, 1, 1), np.eye(4))


def make_masked(*, n_runs=4, blocks_per_run=2, block=6, n_voxels=100, classes=("face", "cat"),
                signal=1.0, seed=0, labels=None) -> MaskedData:
    """Block-designed data: each run holds `blocks_per_run` blocks of each class."""
    rng = np.random.default_rng(seed)
    if labels is None:
        one_run = np.concatenate([np.repeat(c, block) for _ in range(blocks_per_run) for c in classes])
        labels = np.tile(one_run, n_runs)
    runs = np.repeat(np.arange(n_runs), len(labels) // n_runs)
    X = rng.normal(size=(len(labels), n_voxels))
    patterns = rng.normal(size=(len(classes), n_voxels))
    for k, c in enumerate(classes):
        X[labels == c] += signal * patterns[k]
    return MaskedData(X=X.astype(np.float32), labels=np.asarray(labels, dtype=str), runs=runs,
                      volume_index=np.arange(len(labels)) + 5, mask_img=_mask_img(n_voxels),
                      mask_name="test")
