"""Fixtures of the data set tests: Haxby files laid out as nilearn's fetch_haxby leaves them."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest


@pytest.fixture
def lay_out_haxby():
    """``lay_out_haxby(root, slice_dir, subject=1, anat=True, brain_on_other_grid=True)`` -> haxby2001 folder."""
    return _lay_out_haxby


def _lay_out_haxby(root, slice_dir, subject=1, anat=True, brain_on_other_grid=True):
    """Files where nilearn's fetch_haxby expects them, built from the real slice of subject 1."""
    base = root / "haxby2001"
    subject_dir = base / f"subj{subject}"
    subject_dir.mkdir(parents=True)
    shutil.copy(slice_dir / "bold.nii.gz", subject_dir / "bold.nii.gz")
    shutil.copy(slice_dir / "labels.txt", subject_dir / "labels.txt")
    (base / "MD5SUMS").write_text(f"{'0' * 32}  subj{subject}-2010.01.14.tar.gz\n")
    mask_img = nib.load(slice_dir / "mask.nii.gz")
    affine, shape = mask_img.affine, mask_img.shape
    vt = np.asanyarray(mask_img.dataobj) != 0
    ii = np.indices(shape)[0]
    face = vt & (ii < 20)
    house = vt & (ii >= 20)
    for name, data in {
        "mask4_vt": vt, "mask8b_face_vt": face, "mask8b_house_vt": house,
        "mask8_face_vt": face & (ii < 10), "mask8_house_vt": house & (ii >= 30),
    }.items():
        nib.Nifti1Image(data.astype(np.int16), affine).to_filename(subject_dir / f"{name}.nii.gz")
    if anat:
        # A finer anatomical grid over the same field of view, as the real anat.nii.gz.
        fine = affine.copy()
        fine[:3, :3] = affine[:3, :3] / 2
        values = np.random.default_rng(0).random((80, 40, 2)).astype(np.float32) * 500 + 100
        nib.Nifti1Image(values, fine).to_filename(subject_dir / "anat.nii.gz")
    if brain_on_other_grid:
        fine = affine.copy()
        fine[:3, :3] = affine[:3, :3] / 2
        nib.Nifti1Image(np.ones((80, 40, 2), np.uint8), fine).to_filename(base / "mask.nii.gz")
    else:
        nib.Nifti1Image(np.ones(shape, np.uint8), affine).to_filename(base / "mask.nii.gz")
    return base
