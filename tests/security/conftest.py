"""Fixtures of the security tests: hostile files written to a temporary folder."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from tests.security import hostile

N_VOLUMES = 10


@pytest.fixture(scope="session")
def hostile_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="session")
def hostile_nifti_paths(hostile_dir) -> dict[str, Path]:
    """Case name -> path of every hostile NIfTI file (4D cases)."""
    folder = hostile_dir / "nifti"
    folder.mkdir()
    return {name: hostile.write_case(folder, file_name, data)
            for name, (file_name, data) in hostile.hostile_niftis().items()}


@pytest.fixture(scope="session")
def hostile_mask_paths(hostile_dir) -> dict[str, Path]:
    """Case name -> path of hostile 3D files given as a mask or an anatomical image."""
    folder = hostile_dir / "masks"
    folder.mkdir()
    return {name: hostile.write_case(folder, file_name, data)
            for name, (file_name, data) in hostile.hostile_masks().items()}


@pytest.fixture(scope="session")
def hostile_label_paths(hostile_dir) -> dict[str, Path]:
    folder = hostile_dir / "labels"
    folder.mkdir()
    return {name: hostile.write_case(folder, f"{name}.txt", data)
            for name, data in hostile.hostile_labels().items()}


@pytest.fixture(scope="session")
def valid_func(hostile_dir) -> Path:
    """A valid 4D .nii.gz of 8x8x8 voxels and `N_VOLUMES` volumes with a decodable signal."""
    path = hostile_dir / "valid_func.nii.gz"
    path.write_bytes(gzip.compress(hostile.valid_nifti(shape=(8, 8, 8, N_VOLUMES), seed=3), mtime=0))
    return path


@pytest.fixture(scope="session")
def valid_labels(hostile_dir) -> Path:
    path = hostile_dir / "valid_labels.txt"
    rows = [f"{'face' if i % 2 else 'house'} {i // 5}" for i in range(N_VOLUMES)]
    path.write_text("labels chunks\n" + "\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def valid_mask(hostile_dir) -> Path:
    path = hostile_dir / "valid_mask.nii"
    data = np.zeros((8, 8, 8), np.uint8)
    data[2:6, 2:6, 2:6] = 1
    path.write_bytes(bytes(hostile.nifti_header((8, 8, 8), np.uint8)) + data.tobytes(order="F"))
    return path
