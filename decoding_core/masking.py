"""Masking: a 4D image and a mask into a samples x voxels matrix, and back.

The same result as nilearn's ``NiftiMasker(mask_img=..., standardize="zscore_sample")``
(to float32 precision), computed by streaming the image: it is decompressed
once, in chunks of volumes, keeping only the masked voxels of every mask.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import nibabel as nib
import numpy as np

from decoding_core.errors import DecodingInputError

#: ``progress(fraction in [0, 1], message)``; called during long steps.
ProgressCallback = Callable[[float, str], None]


@dataclass(frozen=True, eq=False)
class MaskedData:
    """A masked data set: one row per volume kept, one column per voxel.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_voxels), float32
    labels : ndarray of shape (n_samples,), str
    runs : ndarray of shape (n_samples,) or None
    volume_index : ndarray of shape (n_samples,), int
        Index of each sample's volume in the 4D image (time = index * TR).
    mask_img : nibabel.Nifti1Image
        The 3D mask whose nonzero voxels (C order) are the columns of ``X``.
    mask_name : str
    """

    X: np.ndarray
    labels: np.ndarray
    runs: np.ndarray | None
    volume_index: np.ndarray
    mask_img: nib.Nifti1Image
    mask_name: str

    @property
    def shape(self) -> tuple:
        return self.X.shape


def mask_dataset(dataset, mask_name, *, standardize=True, detrend=False,
                 smoothing_fwhm=None, progress: ProgressCallback | None = None) -> MaskedData:
    """Mask a `Dataset` with one of its masks (all volumes kept). See module docstring."""
    raise NotImplementedError


def select_conditions(masked: MaskedData, conditions) -> MaskedData:
    """Keep the samples whose label is one of ``conditions`` (order of the data kept)."""
    raise NotImplementedError


def unmask(values, mask_img: nib.Nifti1Image) -> nib.Nifti1Image:
    """Put a vector (n_voxels,) or matrix (n_maps, n_voxels) back into a 3D/4D image."""
    raise NotImplementedError
