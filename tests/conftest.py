"""Shared fixtures: where the real Haxby pieces are, and the built-in data set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def pytest_configure(config):
    # Tests must never share the user's cache; one directory per test session.
    if not os.environ.get("DECODING_LAB_DATA_DIR"):
        import tempfile

        os.environ["DECODING_LAB_DATA_DIR"] = tempfile.mkdtemp(prefix="decoding-lab-tests-")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; a missing folder fails the test, it is never skipped."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"The real Haxby test data are missing: {SHARED_DATA} does not exist.")
    return SHARED_DATA


@pytest.fixture(scope="session")
def haxby_vt_dir(shared_data) -> Path:
    """Subject 1, ventral temporal voxels, 864 non-rest volumes."""
    return shared_data / "haxby2001-subj1-vt"


@pytest.fixture(scope="session")
def haxby_slice_dir(shared_data) -> Path:
    """Subject 1, half an axial slice, all 1452 volumes."""
    return shared_data / "haxby2001-subj1-slice"


@pytest.fixture(scope="session")
def simulated_dataset():
    """The built-in simulated data set (generated once per test session)."""
    from decoding_core.datasets import load_simulated

    return load_simulated()
