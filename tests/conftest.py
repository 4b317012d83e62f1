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


# -- Debian's Chromium, shared by every browser test (one Playwright per process: the sync API
# refuses a second one while the first runs) -------------------------------------------------

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """The path of Debian's Chromium; skip (or fail in CI) when it is not installed."""
    message = None
    if not os.access(CHROMIUM_PATH, os.X_OK):
        message = f"{CHROMIUM_PATH} is missing: install Debian's chromium (apt-get install -y chromium)."
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            message = "The Python package 'playwright' is missing: pip install -r requirements-dev.txt."
    if message:
        if os.environ.get("DECODING_LAB_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM_PATH


@pytest.fixture(scope="session")
def browser(chromium_executable):
    """One headless Chromium for the whole test session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=chromium_executable, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
