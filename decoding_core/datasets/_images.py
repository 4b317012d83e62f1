"""Image helpers the loaders share: masks and backgrounds on the functional grid, the digest."""

from __future__ import annotations

import hashlib

import nibabel as nib
import numpy as np
import pandas as pd


def dataset_digest(func_sha256: str, labels: pd.DataFrame, masks: dict, *extra) -> str:
    """sha256 over the functional file's digest, the labels table and the masks."""
    digest = hashlib.sha256(b"decoding-lab-dataset-v1\0")
    digest.update(func_sha256.encode())
    digest.update(labels.to_csv(index=False, lineterminator="\n").encode())
    for name in sorted(masks):
        image = masks[name]
        data = np.ascontiguousarray(np.asanyarray(image.dataobj) != 0)
        digest.update(f"\0{name}\0{data.shape}\0".encode())
        digest.update(np.packbits(data).tobytes())
        digest.update(np.asarray(image.affine, dtype=np.float64).round(6).tobytes())
    for item in extra:
        digest.update(f"\0{item!r}".encode())
    return digest.hexdigest()


def mask_image(mask: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """A small in-memory uint8 mask image."""
    image = nib.Nifti1Image(np.array(mask, dtype=np.uint8), np.array(affine, dtype=float))
    image.header.set_xyzt_units("mm")
    return image


def float_image(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """A float32 in-memory image (an anatomical background)."""
    image = nib.Nifti1Image(np.array(data, dtype=np.float32), np.array(affine, dtype=float))
    image.header.set_xyzt_units("mm")
    return image


def on_grid(image: nib.Nifti1Image, shape, affine) -> bool:
    """Whether ``image`` has the functional image's volume shape and affine (to 1e-3 mm)."""
    return tuple(image.shape[:3]) == tuple(shape[:3]) and np.allclose(image.affine, affine, atol=1e-3)


def resample_onto(image: nib.Nifti1Image, shape, affine, interpolation: str) -> nib.Nifti1Image:
    """``image`` resampled onto the functional grid (returned as is when already there)."""
    if on_grid(image, shape, affine):
        return image
    from nilearn.image import resample_img

    return resample_img(image, target_affine=np.asarray(affine), target_shape=tuple(shape[:3]),
                        interpolation=interpolation, force_resample=True, copy_header=True)
