"""Shared fixtures: where the real Haxby pieces are, and the built-in data set."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The real Haxby pieces live in the project (see tests/data/README.md): a fresh clone needs nothing beside it.
TEST_DATA = REPO_ROOT / "tests" / "data"


def pytest_configure(config):
    # Tests must never share the user's cache; one directory per test session.
    if not os.environ.get("DECODING_LAB_DATA_DIR"):
        import tempfile

        os.environ["DECODING_LAB_DATA_DIR"] = tempfile.mkdtemp(prefix="decoding-lab-tests-")


def _test_data_folder(name: str) -> Path:
    """``tests/data/<name>``; a missing folder fails the test, it is never skipped."""
    folder = TEST_DATA / name
    if not folder.is_dir():
        pytest.fail(f"The real Haxby test data are missing: {folder} does not exist (see tests/data/README.md).")
    return folder


@pytest.fixture(scope="session")
def haxby_vt_dir() -> Path:
    """Subject 1, ventral temporal voxels, 864 non-rest volumes."""
    return _test_data_folder("haxby2001-subj1-vt")


@pytest.fixture(scope="session")
def haxby_slice_dir() -> Path:
    """Subject 1, half an axial slice, all 1452 volumes."""
    return _test_data_folder("haxby2001-subj1-slice")


@pytest.fixture(scope="session")
def haxby_bids_dir() -> Path:
    """The slice data set in BIDS form: 12 runs with block events."""
    return _test_data_folder("haxby2001-subj1-bids")


@pytest.fixture(scope="session")
def haxby_labels_dir() -> Path:
    """The per-volume labels tables of subjects 1 and 2."""
    return _test_data_folder("haxby2001-labels")


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


# -- a real ``streamlit run`` server, for the browser tests --------------------------------------

SERVER_START_TIMEOUT = 60
#: Each running server's log file, by base URL: a failing browser test prints its tail.
SERVER_LOGS: dict[str, Path] = {}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _log_tail(path: Path, n_chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n_chars:]
    except OSError:
        return "(no server log)"


@contextlib.contextmanager
def streamlit_server(work: Path, extra_env: dict | None = None):
    """Run ``streamlit run app.py`` on a free loopback port, with its data in ``work``.

    Yields the base URL once ``/_stcore/health`` answers ``ok``; stops the server's whole
    process group afterwards.
    """
    env = dict(os.environ, DECODING_LAB_DATA_DIR=str(work / "data"), PYTHONUNBUFFERED="1",
               DECODING_LAB_HISTORY_PATH=str(work / "history.sqlite3"), **(extra_env or {}))
    port = _free_port()
    log_path = work / "streamlit.log"
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        # What a visitor of the deployed app sees: no developer "Deploy" menu in the screenshots.
        "--client.toolbarMode", "viewer",
    ]
    with open(log_path, "wb") as log:
        # A new session (process group) so teardown stops the server and anything it started.
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with code {process.returncode}:\n{_log_tail(log_path)}")
            try:
                with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                    if response.read().decode(errors="replace").strip() == "ok":
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not become healthy in {SERVER_START_TIMEOUT} s:\n{_log_tail(log_path)}")
            time.sleep(0.5)
        SERVER_LOGS[base_url] = log_path
        yield base_url
    finally:
        SERVER_LOGS.pop(base_url, None)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=15)


@pytest.fixture(scope="session")
def dask_scheduler():
    """The address of a LocalCluster: 2 worker processes, 1 thread each, on 127.0.0.1.

    A worker's death is forgiven once per task (``allowed-failures`` 1): the task that
    the test kills a worker under runs again on the other.
    """
    import dask
    from distributed import LocalCluster

    with dask.config.set({"distributed.scheduler.allowed-failures": 1,
                          "distributed.comm.timeouts.connect": "120s"}):
        with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, host="127.0.0.1",
                          dashboard_address=None) as local_cluster:
            yield local_cluster.scheduler_address
