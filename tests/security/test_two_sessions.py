"""Two browser sessions on one server: nothing of A reaches B, and A's data go when A closes.

A real ``streamlit run app.py`` on a free loopback port, with the session janitor set to a
grace period of 2 s and a sweep every 1 s (``DECODING_LAB_SESSION_GRACE_SECONDS``,
``DECODING_LAB_SESSION_SWEEP_SECONDS``), so a closed session's data must be gone within
3 s (the test allows `PURGE_WAIT_S` for a loaded machine). Two Playwright contexts are
two independent Streamlit sessions. The server's memory metrics (``/_stcore/metrics``,
family ``cache_memory_bytes``) show the bytes Streamlit holds for uploaded files.
"""

from __future__ import annotations

import gzip
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.security import hostile

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
GRACE_S, SWEEP_S = 2, 1
#: Streamlit caches its memory metrics for 5 s (``_METRICS_EXPENSIVE_STATS_TTL_SECONDS``).
METRICS_TTL_S = 5
#: Longest wait for a closed session's purge to show: the bound (grace + sweep), the metrics'
#: cache, and slack for a busy machine.
PURGE_WAIT_S = GRACE_S + SWEEP_S + METRICS_TTL_S + 10
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def server(chromium_executable, tmp_path_factory):
    """(base URL, data dir) of a fresh server with a fast session janitor."""
    from tests.conftest import streamlit_server

    work = tmp_path_factory.mktemp("two-sessions")
    fast_janitor = {"DECODING_LAB_SESSION_GRACE_SECONDS": str(GRACE_S),
                    "DECODING_LAB_SESSION_SWEEP_SECONDS": str(SWEEP_S)}
    with streamlit_server(work, fast_janitor) as base_url:
        yield base_url, work / "data"


@pytest.fixture(scope="module")
def upload_files(tmp_path_factory):
    """A small valid 4D image, its labels table, and a second image never loaded."""
    folder = tmp_path_factory.mktemp("upload-files")
    func = folder / "bold_of_A.nii.gz"
    func.write_bytes(gzip.compress(hostile.valid_nifti(shape=(8, 8, 8, 20), seed=5), mtime=0))
    labels = folder / "labels_of_A.txt"
    rows = [f"{'face' if i % 2 else 'house'} {i // 5}" for i in range(20)]
    labels.write_text("labels chunks\n" + "\n".join(rows) + "\n")
    pending = folder / "pending_of_A.nii"
    rng = np.random.default_rng(1)
    pending.write_bytes(hostile.valid_nifti(shape=(8, 8, 8, 20), seed=6) + rng.bytes(0))
    return func, labels, pending


def uploaded_bytes(base_url: str) -> int:
    """Bytes Streamlit holds for uploaded files, from its memory metrics (0 when none)."""
    with urllib.request.urlopen(f"{base_url}/_stcore/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0
    for line in text.splitlines():
        if line.startswith("cache_memory_bytes") and "UploadedFileManager" in line:
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def wait_for_uploaded_bytes(base_url: str, condition, timeout_s: float) -> float:
    """Poll the metrics until ``condition(bytes)``; return the seconds it took."""
    started = time.monotonic()
    while not condition(value := uploaded_bytes(base_url)):
        assert time.monotonic() - started < timeout_s, f"uploaded bytes in memory: {value}"
        time.sleep(0.25)
    return time.monotonic() - started


def wait_for_app(page, timeout: int = TIMEOUT_MS) -> None:
    """The browser tests' wait for the end of a script run, with this file's longer timeout."""
    from tests.browser.conftest import wait_for_app as wait_for_run

    wait_for_run(page, timeout=timeout)


def open_session(browser, base_url: str):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.goto(base_url, timeout=TIMEOUT_MS)
    wait_for_app(page)
    return context, page


def choose_upload_source(page) -> None:
    expander = page.get_by_text("Choose the data set", exact=True)
    if not page.get_by_text("Your own files (upload)").is_visible():
        expander.click()
    page.get_by_text("Your own files (upload)").click()
    wait_for_app(page)


def set_upload(page, index: int, path: Path) -> None:
    page.locator("[data-testid='stFileUploaderDropzoneInput']").nth(index).set_input_files(str(path))
    wait_for_app(page)


def navigate(page, title: str) -> None:
    link = page.locator("[data-testid='stSidebarNavLink']").filter(has=page.get_by_text(title, exact=True))
    if not link.first.is_visible():
        expand = page.locator("[data-testid='stExpandSidebarButton']")
        if expand.count():
            expand.first.click()
    link.first.click()
    wait_for_app(page)


def upload_folders(data_dir: Path) -> list[Path]:
    root = data_dir / "uploads"
    return sorted(p for p in root.iterdir()) if root.is_dir() else []


def pending_images(data_dir: Path) -> list[Path]:
    """4D images uploaded but not loaded yet, in every session's folder."""
    return sorted((data_dir / "uploads").glob("*/pending/*.nii*"))


def test_sessions_are_isolated_and_a_closed_session_is_purged(browser, server, upload_files):
    from playwright.sync_api import expect

    base_url, data_dir = server
    func, labels, pending = upload_files
    context_a, page_a = open_session(browser, base_url)
    context_b, page_b = open_session(browser, base_url)
    try:
        # Session A uploads its files and loads them.
        choose_upload_source(page_a)
        set_upload(page_a, 0, func)
        set_upload(page_a, 1, labels)
        # Every box's file goes straight to A's upload folder as it arrives (issue 15: the boxes
        # survive leaving the page), and Streamlit's copy is dropped at once.
        assert [p.name for p in pending_images(data_dir)] != []
        expect(page_a.get_by_text("Labels table ready: labels_of_A.txt").first).to_be_visible()
        wait_for_uploaded_bytes(base_url, lambda n: n == 0, METRICS_TTL_S + 10)
        page_a.get_by_role("button", name="Load these files").click()
        wait_for_app(page_a)
        expect(page_a.get_by_text("Your uploaded data set").first).to_be_visible()
        expect(page_a.get_by_text("bold_of_A.nii.gz").first).to_be_visible()
        # Read into the session's own store: Streamlit's copy of the bytes is released at once
        # (the metrics show it after their cache expires).
        wait_for_uploaded_bytes(base_url, lambda n: n == 0, METRICS_TTL_S + 10)
        assert len(upload_folders(data_dir)) == 1
        # A runs the decoding on its upload.
        navigate(page_a, "Configure")
        page_a.get_by_role("button", name="Run the decoding").click()
        wait_for_app(page_a)
        expect(page_a.locator("[data-testid='stApp']")).to_contain_text("fold", timeout=TIMEOUT_MS)

        # Session B sees none of it: its own (built-in) data set, no upload, no result.
        page_b.reload()
        wait_for_app(page_b)
        expect(page_b.get_by_text("Your uploaded data set")).to_have_count(0)
        expect(page_b.get_by_text("bold_of_A.nii.gz")).to_have_count(0)
        navigate(page_b, "Results")
        expect(page_b.get_by_text("No decoding has been run yet", exact=False)).to_be_visible()
        navigate(page_b, "Data")
        expect(page_b.get_by_text("Your uploaded data set")).to_have_count(0)

        # A puts another file in an uploader without loading it (Streamlit holds those bytes)...
        navigate(page_a, "Data")
        choose_upload_source(page_a)
        set_upload(page_a, 0, pending)
        assert any(p.suffix == ".nii" for p in pending_images(data_dir))  # stored on disk, not loaded
        set_upload(page_a, 1, labels)  # stored in A's folder as it arrives, never loaded
        expect(page_a.get_by_text("Labels table ready: labels_of_A.txt").first).to_be_visible()
    finally:
        # ...and closes its tab.
        context_a.close()
    started = time.monotonic()
    while uploaded_bytes(base_url) > 0 or upload_folders(data_dir):
        assert time.monotonic() - started < PURGE_WAIT_S, (
            f"A's data still held {PURGE_WAIT_S} s after it closed: {uploaded_bytes(base_url)} bytes of "
            f"uploads in memory, folders {upload_folders(data_dir)}"
        )
        time.sleep(0.25)
    print(f"\nclosed session purged after {time.monotonic() - started:.1f} s (bound {GRACE_S + SWEEP_S} s "
          f"+ {METRICS_TTL_S} s metrics cache)")
    # B is unaffected and still works.
    page_b.reload()
    wait_for_app(page_b)
    expect(page_b.locator("[data-testid='stException']")).to_have_count(0)
    context_b.close()
