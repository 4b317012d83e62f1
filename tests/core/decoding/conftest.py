"""Fixtures shared by the decoding tests: block-designed masked data, the simulated VT voxels,
the real VT voxels."""

from __future__ import annotations

import pytest

from decoding_core.datasets import load_files
from decoding_core.masking import mask_dataset

from tests.core.decoding._helpers import make_masked


@pytest.fixture(scope="module")
def masked():
    return make_masked()


@pytest.fixture(scope="module")
def simulated_vt(simulated_dataset):
    return mask_dataset(simulated_dataset, "vt")


@pytest.fixture(scope="module")
def vt_masked(haxby_vt_dir):
    """Subject 1's real VT voxels, z-scored, every condition (as the app masks them)."""
    dataset = load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                         mask=haxby_vt_dir / "mask_vt.nii.gz")
    return mask_dataset(dataset, next(iter(dataset.masks)), standardize=True)
