"""A synthetic Haxby-size 4D image for benchmarks (cached under benchmarks/_work/).

The full-size image is 40x64x64x1452 int16 like Haxby subject 2: a smooth
brain-shaped baseline with slow drifts and noise inside, weak noise outside,
so that gzip compresses it about as much as the real file (~60%).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np

WORK_DIR = Path(__file__).resolve().parent / "_work"
SHAPE = (40, 64, 64, 1452)
SMALL_SHAPE = (40, 64, 64, 150)
AFFINE = np.diag([3.5, 3.75, 3.75, 1.0])
AFFINE[:3, 3] = [-70.0, -118.0, -118.0]
TR = 2.5


def _grid(shape):
    axes = [np.linspace(-1, 1, n) for n in shape[:3]]
    return np.stack(np.meshgrid(*axes, indexing="ij"))


def brain_mask(shape=SHAPE) -> np.ndarray:
    """An ellipsoid of about 36,000 voxels (a whole-brain-size mask)."""
    x, y, z = _grid(shape)
    return (x / 0.88) ** 2 + (y / 0.74) ** 2 + (z / 0.7) ** 2 < 1.0


def vt_mask(shape=SHAPE, n_voxels: int = 464) -> np.ndarray:
    """A compact ventral-temporal-like blob of exactly ``n_voxels`` voxels inside the brain."""
    x, y, z = _grid(shape)
    distance = (x - 0.0) ** 2 + ((y + 0.25) / 0.8) ** 2 + ((z + 0.45) / 0.5) ** 2
    order = np.argsort(distance, axis=None, kind="stable")[:n_voxels]
    mask = np.zeros(shape[:3], bool)
    mask.flat[order] = True
    return mask


def make_image(path: Path, shape=SHAPE, seed: int = 0, compresslevel: int = 6) -> Path:
    """Write the synthetic image (volume by volume, never all in memory)."""
    rng = np.random.default_rng(seed)
    brain = brain_mask(shape)
    x, y, z = _grid(shape)
    baseline = np.where(brain, 700 + 250 * np.cos(2.5 * x) * np.cos(2 * y) + 150 * z, 0.0)
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(np.int16)
    header.set_qform(AFFINE, code=1)
    header.set_sform(AFFINE, code=1)
    header.set_zooms((3.5, 3.75, 3.75, TR))
    header.set_xyzt_units("mm", "sec")
    header["vox_offset"] = 352
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    with gzip.open(partial, "wb", compresslevel=compresslevel) as out:
        out.write(header.binaryblock + bytes(4))
        for t in range(shape[3]):
            drift = 1.0 + 0.02 * np.sin(2 * np.pi * t / 300.0)
            volume = baseline * drift + rng.normal(scale=90.0, size=shape[:3]) * brain
            volume += np.abs(rng.normal(scale=40.0, size=shape[:3])) * ~brain
            out.write(np.rint(volume).astype("<i2").tobytes(order="F"))
    partial.replace(path)
    return path


def ensure_data(small: bool = False) -> dict:
    """Paths of the image and the two masks, generating them once."""
    shape = SMALL_SHAPE if small else SHAPE
    tag = "small" if small else "full"
    image = WORK_DIR / f"haxby_size_{tag}.nii.gz"
    if not image.exists():
        make_image(image, shape)
    masks = {}
    for name, maker in (("vt", vt_mask), ("brain", brain_mask)):
        path = WORK_DIR / f"mask_{name}.nii.gz"
        if not path.exists():
            nib.Nifti1Image(maker(shape).astype(np.uint8), AFFINE).to_filename(path)
        masks[name] = path
    return {"image": image, **masks}
