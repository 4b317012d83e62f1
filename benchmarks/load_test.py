"""Load test: N browser sessions run the default decoding at once against a local server.

Starts ``streamlit run app.py`` on a free loopback port (a fresh server per N, sharing one
data folder so the built-in data set is generated once), opens N Playwright contexts in
Debian's headless Chromium (N independent Streamlit sessions), and in all of them at
the same moment presses "Run the decoding" on the Configure page, then waits for the
Results page. Prints, per N: p50/p95/max latency from click to results, errors, and the
peak resident memory of the server's process tree (sampled every 0.2 s).

Two workloads:

* ``builtin`` (default): the built-in simulated data set and the default configuration
  (face vs cat, ventral temporal mask, linear SVC, leave-one-run-out). Identical
  runs of public data share the server's cache, so this measures serving N sessions.
* ``upload``: each session first uploads its own small 4D image and labels table
  (session-scoped: nothing is shared) and then decodes it, so every session really
  masks and decodes, through the job gate.

Bounded: loopback only, at most 40 sessions, a time limit per run. Not part of the
test suite. Usage::

    python benchmarks/load_test.py                   # N = 1, 5, 10, 20, builtin
    python benchmarks/load_test.py --sessions 10 --workload upload
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
APP_RUNNING = "[data-testid='stApp'][data-test-script-state='running']"
MAX_SESSIONS = 40


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """``streamlit run app.py`` on loopback, with a sampler of its process tree's memory."""

    def __init__(self, data_dir: Path, log_path: Path, extra_env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DECODING_LAB_DATA_DIR=str(data_dir), PYTHONUNBUFFERED="1",
                   DECODING_LAB_HISTORY_PATH=str(data_dir / "history.jsonl"), **(extra_env or {}))
        command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                   "--server.port", str(self.port), "--server.address", "127.0.0.1",
                   "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        self.peak_rss = 0
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)

    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("streamlit exited early")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        self._sampler.start()
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("streamlit did not become healthy")

    def rss(self) -> int:
        try:
            root = psutil.Process(self.process.pid)
            return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            return 0

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_rss = max(self.peak_rss, self.rss())

    def reset_peak(self) -> None:
        self.peak_rss = self.rss()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's process tree."""
        try:
            root = psutil.Process(self.process.pid)
            return sum(sum(p.cpu_times()[:2]) for p in [root, *root.children(recursive=True)])
        except psutil.Error:
            return 0.0

    def stop(self) -> None:
        self._stop.set()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        self.log.close()


def make_upload_files(folder: Path) -> tuple[Path, Path]:
    """A small 4D image (24x28x24, 12 runs x 24 volumes) with a face/cat signal, and its labels."""
    rng = np.random.default_rng(0)
    shape, n_runs, per_run = (24, 28, 24), 12, 24
    conditions = ["face", "cat", "house", "rest"]
    labels = [conditions[(i // 3) % 4] for i in range(per_run)] * n_runs
    runs = np.repeat(np.arange(n_runs), per_run)
    data = rng.normal(0, 30, size=shape + (len(labels),))
    data[4:20, 4:24, 4:20, :] += 1000
    signal_voxels = (slice(8, 14), slice(10, 16), slice(8, 14))
    for index, label in enumerate(labels):
        if label in ("face", "cat"):
            data[signal_voxels + (index,)] += 25 if label == "face" else -25
    import nibabel as nib

    image = nib.Nifti1Image(data.astype(np.int16), np.diag([3.0, 3.0, 3.0, 1.0]))
    image.header.set_zooms((3.0, 3.0, 3.0, 2.5))
    func = folder / "bold.nii.gz"
    func.write_bytes(gzip.compress(image.to_bytes(), compresslevel=1, mtime=0))
    table = folder / "labels.txt"
    table.write_text("labels chunks\n" + "\n".join(f"{l} {r}" for l, r in zip(labels, runs)) + "\n")
    return func, table


async def wait_for_app(page, timeout_ms: int) -> None:
    from playwright.async_api import TimeoutError as PlaywrightTimeoutError

    try:
        await page.wait_for_selector(APP_RUNNING, timeout=1500)
    except PlaywrightTimeoutError:
        pass
    await page.wait_for_selector(APP_IDLE, timeout=timeout_ms)
    await page.wait_for_function("document.querySelectorAll(\"[data-testid='stSkeleton']\").length === 0",
                                 timeout=timeout_ms)


async def open_configure(browser, url: str, timeout_ms: int, upload: tuple | None):
    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    context.set_default_timeout(timeout_ms)
    page = await context.new_page()
    await page.goto(url, timeout=timeout_ms)
    await wait_for_app(page, timeout_ms)
    if upload is not None:
        await page.get_by_text("Choose the data set", exact=True).click()
        await page.get_by_text("Your own files (upload)").click()
        await wait_for_app(page, timeout_ms)
        inputs = page.locator("[data-testid='stFileUploaderDropzoneInput']")
        await inputs.nth(0).set_input_files(str(upload[0]))
        await wait_for_app(page, timeout_ms)
        await inputs.nth(1).set_input_files(str(upload[1]))
        await wait_for_app(page, timeout_ms)
        return context, page  # stays on the Data page: a page load would start a new session
    await page.goto(f"{url}/configure", timeout=timeout_ms)
    await wait_for_app(page, timeout_ms)
    return context, page


async def click_nav(page, title: str, timeout_ms: int) -> None:
    """Open a page through the sidebar menu (client-side: the session is kept)."""
    link = page.locator("[data-testid='stSidebarNavLink']").filter(has=page.get_by_text(title, exact=True))
    await link.first.click()
    await wait_for_app(page, timeout_ms)


async def run_one(page, start: asyncio.Event, timeout_ms: int, upload: bool, url: str) -> tuple[float, str | None]:
    """Press Run (after loading the upload and opening Configure, in the upload workload).

    Returns the seconds until the Results page has drawn, and an error or None.
    """
    await start.wait()
    started = time.perf_counter()
    try:
        if upload:
            await page.get_by_role("button", name="Load these files").click()
            await wait_for_app(page, timeout_ms)
            if await page.locator("[data-testid='stAlert']").filter(has_text="could not").count():
                return time.perf_counter() - started, "upload refused"
            await click_nav(page, "Configure", timeout_ms)
        await page.get_by_role("button", name="Run the decoding").click()
        await page.wait_for_selector("h1:has-text('Results')", timeout=timeout_ms)
        await wait_for_app(page, timeout_ms)
        seconds = time.perf_counter() - started
        if await page.locator("[data-testid='stException']").count():
            return seconds, "exception shown"
        errors = page.locator("[data-testid='stAlert']").filter(has_text="went wrong")
        if await errors.count():
            return seconds, "error shown"
        return seconds, None
    except Exception as err:  # a timeout or a crash of the page is an error of this session
        return time.perf_counter() - started, f"{type(err).__name__}: {str(err)[:80]}"


async def measure(n_sessions: int, server: Server, timeout_ms: int, upload_files) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
        try:
            opened = []
            for _ in range(n_sessions):  # open sequentially: the load is the runs, not the first paint
                opened.append(await open_configure(browser, server.url, timeout_ms, upload_files))
            server.reset_peak()
            cpu_before = server.cpu_seconds()
            start = asyncio.Event()
            tasks = [asyncio.create_task(run_one(page, start, timeout_ms, upload_files is not None, server.url))
                     for _, page in opened]
            wall = time.perf_counter()
            start.set()
            outcomes = await asyncio.gather(*tasks)
            wall = time.perf_counter() - wall
            server_cpu = server.cpu_seconds() - cpu_before
            for context, _ in opened:
                await context.close()
        finally:
            await browser.close()
    latencies = sorted(seconds for seconds, _ in outcomes)
    errors = [error for _, error in outcomes if error]
    return {
        "n": n_sessions,
        "p50": statistics.median(latencies),
        "p95": latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))],
        "max": latencies[-1],
        "wall": wall,
        "errors": errors,
        "peak_rss_mb": server.peak_rss / 1e6,
        "server_cpu_s": server_cpu,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description="Concurrent sessions running the default decoding.")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--workload", choices=["builtin", "upload"], default="builtin")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per session run")
    parser.add_argument("--max-jobs", type=int, help="DECODING_LAB_MAX_JOBS for the server")
    args = parser.parse_args()
    if any(n < 1 or n > MAX_SESSIONS for n in args.sessions):
        parser.error(f"--sessions must be between 1 and {MAX_SESSIONS}")
    if not os.access(CHROMIUM_PATH, os.X_OK):
        parser.error(f"{CHROMIUM_PATH} is missing (apt-get install -y chromium)")
    work = Path(tempfile.mkdtemp(prefix="decoding-lab-load-"))
    data_dir = work / "data"
    data_dir.mkdir()
    upload_files = make_upload_files(work) if args.workload == "upload" else None
    extra_env = {"DECODING_LAB_MAX_JOBS": str(args.max_jobs)} if args.max_jobs else {}
    print(f"workload={args.workload} cpus={os.cpu_count()} server log in {work}")
    # Server CPU: seconds of CPU the server used during the runs; the browsers run on the same
    # machine, so wall-clock latency above server CPU / cores is the browsers' share.
    print(f"{'N':>3} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'wall s':>7} {'errors':>6} {'peak RSS MB':>12} "
          f"{'server CPU s':>12}")
    for n_sessions in args.sessions:
        server = Server(data_dir, work / f"server-{n_sessions}.log", extra_env)
        try:
            server.wait_healthy()
            row = asyncio.run(measure(n_sessions, server, int(args.timeout * 1000), upload_files))
        finally:
            server.stop()
        print(f"{row['n']:>3} {row['p50']:7.2f} {row['p95']:7.2f} {row['max']:7.2f} {row['wall']:7.2f} "
              f"{len(row['errors']):>6} {row['peak_rss_mb']:12.0f} {row['server_cpu_s']:12.1f}", flush=True)
        for error in sorted(set(row["errors"])):
            print(f"      error: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
