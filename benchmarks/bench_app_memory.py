"""Benchmark: peak memory of the real Streamlit server on the default path with a Haxby-size upload.

The goal (fast-masking issue): the whole default path of the app on a Haxby-size
subject (40x64x64x1452 int16 .nii.gz, ~283 MB) -- upload, load, mask, decode face vs
cat with leave-one-run-out, show the weight map -- stays under 690 MB (690 * 10^6
bytes, the smallest Streamlit Community Cloud host) of resident memory for the
Streamlit process.

What it does:

1. Starts ``streamlit run app.py`` on a free loopback port, with a temporary
   ``DECODING_LAB_DATA_DIR`` and ``DECODING_LAB_HISTORY_PATH``, in its own process
   group, and waits for ``/_stcore/health``.
2. Samples the server's resident memory (RSS of the process and of any children,
   with psutil) every ~50 ms in a thread. Where Linux allows it, the kernel's own
   high-water mark (``VmHWM``, reset through ``/proc/PID/clear_refs``) is read for each
   step too, so a spike shorter than the sampling interval is not missed.
3. Drives the app with Playwright in Debian's Chromium: opens the Data page (the
   built-in simulated data set loads first, as for every visitor), chooses the upload
   source, uploads the 4D image, the labels table and the 464-voxel VT mask through
   the file uploaders, presses Load, goes to Configure (face vs cat, the uploaded
   mask, linear SVC, leave-one-run-out: the defaults), presses Run and waits for the
   Results page with the weight-map slices; then downloads the weight map (.nii.gz).
4. Prints the server's RSS at each step, each step's peak and time, the peak over the
   whole path, and PASS/FAIL against 690 MB.

``--core-only`` runs the same path without Streamlit in a fresh Python process
(``load_files``, ``mask_dataset``, ``decode``, ``image_to_nifti_bytes``) and prints its
peak (``ru_maxrss``): what the computation itself needs.

Labels: the real per-volume labels of Haxby subject 2
(``tests/data/haxby2001-labels/subj2_labels.txt``, read from there). For an image
with fewer volumes (``--small``: 150), a subset of those rows is written to the
temporary folder: the face and cat blocks of the first runs, in their original order,
topped up with rest volumes, so leave-one-run-out still has several runs.

Usage::

    python benchmarks/bench_app_memory.py              # Haxby size (~283 MB upload)
    python benchmarks/bench_app_memory.py --small      # 150 volumes (~29 MB), a quick check
    python benchmarks/bench_app_memory.py --core-only  # the core alone, no Streamlit
    python benchmarks/bench_app_memory.py --func other.nii.gz --mask its_mask.nii.gz
    python benchmarks/bench_app_memory.py --samples-csv /tmp/rss.csv   # every sample
    python benchmarks/bench_app_memory.py --data-dir /tmp/lab-data     # run twice: warm start

Bounded: loopback only; one total time limit (``--timeout``, default 900 s) after which
the server's process group is killed; the server's process group is always stopped
at the end. The machine's load average is printed: other processes skew the times
(not the memory). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent

#: The real per-volume labels of Haxby subject 2 (1452 rows, header ``labels chunks``).
HAXBY_LABELS = REPO_ROOT / "tests" / "data" / "haxby2001-labels" / "subj2_labels.txt"
#: The goal: 690 MB, in bytes (the project counts MB as 10^6 bytes, see ui.server.jobs).
LIMIT_BYTES = 690 * 1000**2
MB = 1000**2

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
VIEWPORT = {"width": 1400, "height": 1000}
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
APP_RUNNING = "[data-testid='stApp'][data-test-script-state='running']"
#: Seconds the server may take to answer its health check.
SERVER_START_TIMEOUT = 90
#: Seconds of quiet after the health check before the "idle" figure is taken.
IDLE_SETTLE_SECONDS = 3.0


def _mb(n_bytes: float | None) -> str:
    return "n/a" if n_bytes is None else f"{n_bytes / MB:,.0f}"


def _load_average() -> str:
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


# --------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------


def _n_volumes(func_path: Path) -> int:
    import nibabel as nib

    shape = nib.load(str(func_path)).shape
    if len(shape) != 4:
        raise SystemExit(f"{func_path} is not a 4D image (shape {shape}).")
    return int(shape[3])


def labels_for(n_volumes: int, work_dir: Path) -> Path:
    """The labels table for an image of ``n_volumes`` volumes.

    1452 volumes: Haxby subject 2's own file, used in place. Fewer: a subset of its
    rows written to ``work_dir`` -- the face and cat rows of the first runs, then rest
    rows of the same runs, all in their original order -- so the default decoding
    (face vs cat, leave one run out) has balanced classes in several runs.
    """
    if not HAXBY_LABELS.is_file():
        raise SystemExit(f"The Haxby labels are missing: {HAXBY_LABELS}. See tests/data/README.md.")
    lines = HAXBY_LABELS.read_text().splitlines()
    header, rows = lines[0], lines[1:]
    if n_volumes == len(rows):
        return HAXBY_LABELS
    if n_volumes > len(rows):
        raise SystemExit(f"The image has {n_volumes} volumes but the Haxby labels have {len(rows)} rows: "
                         "give a matching table with --labels.")
    parsed = [(i, row.split()[0], row.split()[1]) for i, row in enumerate(rows)]
    runs_in_order = list(dict.fromkeys(run for _, _, run in parsed))
    chosen: list[int] = []
    used_runs: list[str] = []
    for run in runs_in_order:
        wanted = [i for i, label, r in parsed if r == run and label in ("face", "cat")]
        if len(chosen) + len(wanted) > n_volumes:
            break
        chosen += wanted
        used_runs.append(run)
    if len(used_runs) < 3:
        raise SystemExit(f"{n_volumes} volumes are too few for leave-one-run-out on face vs cat (3 runs need 54).")
    rest = [i for i, label, r in parsed if r in used_runs and label == "rest"]
    chosen = sorted(chosen + rest[: n_volumes - len(chosen)])
    if len(chosen) < n_volumes:
        raise SystemExit(f"Could not build {n_volumes} label rows from {HAXBY_LABELS}; give --labels.")
    path = work_dir / f"labels_{n_volumes}_volumes.txt"
    path.write_text("\n".join([header] + [rows[i] for i in chosen]) + "\n")
    return path


def prepare_inputs(args, work_dir: Path) -> dict:
    """Paths of the 4D image, the labels table and the mask."""
    if args.func:
        func = Path(args.func).resolve()
        if not func.is_file():
            raise SystemExit(f"No such file: {func}")
    else:
        from _synthetic import ensure_data

        func = ensure_data(small=args.small)["image"]
    mask = Path(args.mask).resolve() if args.mask else (HERE / "_work" / "mask_vt.nii.gz")
    if not mask.is_file():
        from _synthetic import ensure_data

        ensure_data(small=True)  # writes the masks (the small image is quick)
    labels = Path(args.labels).resolve() if args.labels else labels_for(_n_volumes(func), work_dir)
    return {"func": func, "labels": labels, "mask": mask}


# --------------------------------------------------------------------------------------
# Memory of the server
# --------------------------------------------------------------------------------------


def _tree_rss(process) -> int:
    """RSS of ``process`` and of all its descendants (bytes)."""
    import psutil

    total = 0
    try:
        total += process.memory_info().rss
        for child in process.children(recursive=True):
            try:
                total += child.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


class RssSampler(threading.Thread):
    """Samples a process tree's RSS every ``interval`` seconds; marks named steps.

    Each step is delimited by `begin` and `end`: its peak is the largest sample in
    between and, when Linux lets us reset it, the kernel's ``VmHWM`` of the server.
    """

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(daemon=True)
        import psutil

        self.pid = pid
        self.process = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.started_at = time.monotonic()
        self._stop_event = threading.Event()
        self._lock = threading.Lock()
        self.steps: list[dict] = []
        self._hwm_works = self._reset_hwm()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss = _tree_rss(self.process)
            with self._lock:
                self.samples.append((time.monotonic() - self.started_at, rss))
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    # -- kernel high-water mark -------------------------------------------------------
    def _reset_hwm(self) -> bool:
        try:
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")  # 5: reset the peak RSS
            return self._read_hwm() is not None
        except OSError:
            return False

    def _read_hwm(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def total_hwm(self) -> int | None:
        """The server process's ``VmHWM`` since the last reset (bytes), or None."""
        return self._read_hwm()

    # -- steps -------------------------------------------------------------------------
    def current(self) -> int:
        return _tree_rss(self.process)

    def begin(self, name: str) -> dict:
        step = {"name": name, "start": time.monotonic() - self.started_at, "hwm_before": self._read_hwm()}
        if self._hwm_works:
            # Only the per-step peak is reset; the whole-path peak is tracked in `steps`.
            self._reset_hwm()
        self.steps.append(step)
        return step

    def end(self, step: dict, settle: float = 0.3) -> dict:
        time.sleep(settle)  # let a last sample land after the step's final rerun
        step["end"] = time.monotonic() - self.started_at
        step["seconds"] = step["end"] - step["start"]
        step["rss_after"] = self.current()
        with self._lock:
            inside = [rss for t, rss in self.samples if step["start"] <= t <= step["end"]]
        step["sampled_peak"] = max(inside + [step["rss_after"]])
        step["kernel_peak"] = self._read_hwm() if self._hwm_works else None
        return step

    def overall_peak(self) -> tuple[int, int | None]:
        """(largest sample, largest per-step kernel high-water mark) over the whole run."""
        with self._lock:
            sampled = max((rss for _, rss in self.samples), default=0)
        kernel = [s.get("kernel_peak") for s in self.steps if s.get("kernel_peak")]
        kernel += [s.get("hwm_before") for s in self.steps if s.get("hwm_before")]
        return sampled, (max(kernel) if kernel else None)

    def write_csv(self, path: Path) -> None:
        with self._lock, open(path, "w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["seconds", "rss_mb"])
            for t, rss in self.samples:
                writer.writerow([f"{t:.3f}", f"{rss / MB:.1f}"])


# --------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(work_dir: Path, port: int, log_path: Path, data_dir: Path | None = None) -> subprocess.Popen:
    env = dict(os.environ)
    env["DECODING_LAB_DATA_DIR"] = str(data_dir or work_dir / "data")
    env["DECODING_LAB_HISTORY_PATH"] = str(work_dir / "history.jsonl")
    env["PYTHONUNBUFFERED"] = "1"
    command = [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.port", str(port),
        "--server.address", "127.0.0.1",
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",
        "--client.toolbarMode", "viewer",
    ]
    with open(log_path, "wb") as log:
        # Its own process group, so the end (or the time limit) stops it and anything it started.
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def wait_healthy(process: subprocess.Popen, base_url: str, log_path: Path, deadline: float) -> None:
    limit = min(deadline, time.monotonic() + SERVER_START_TIMEOUT)
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {process.returncode}:\n{_log_tail(log_path)}")
        try:
            with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                if response.read().decode(errors="replace").strip() == "ok":
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > limit:
            raise RuntimeError(f"streamlit did not become healthy in time:\n{_log_tail(log_path)}")
        time.sleep(0.25)


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)
    except ProcessLookupError:
        pass


def _log_tail(path: Path, n_chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-n_chars:]
    except OSError:
        return "(no server log)"


# --------------------------------------------------------------------------------------
# Driving the app
# --------------------------------------------------------------------------------------


class Deadline:
    """The total time limit, handed to every Playwright wait as its timeout."""

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds

    def ms(self, cap_seconds: float | None = None) -> int:
        remaining = self.at - time.monotonic()
        if cap_seconds is not None:
            remaining = min(remaining, cap_seconds)
        if remaining <= 0:
            raise TimeoutError("The benchmark's total time limit is over.")
        return int(remaining * 1000)


def wait_for_app(page, deadline: Deadline, cap_seconds: float = 600) -> None:
    """Wait for the rerun started by the last action to finish and draw (see tests/browser)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    try:
        page.wait_for_selector(APP_RUNNING, timeout=min(1500, deadline.ms()))
    except PlaywrightTimeoutError:
        pass
    expect(page.locator(APP_IDLE)).to_have_count(1, timeout=deadline.ms(cap_seconds))
    expect(page.locator("[data-testid='stSkeleton']")).to_have_count(0, timeout=deadline.ms(cap_seconds))


def assert_no_problem(page, what: str) -> None:
    """Stop with the page's message when it shows an exception or an error box."""
    boxes = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']")
    texts = [text for text in boxes.all_inner_texts() if text.strip()]
    if texts:
        raise RuntimeError(f"{what}: the app shows:\n" + "\n---\n".join(texts))


def upload(page, uploader_label: str, path: Path, deadline: Deadline) -> None:
    """Put ``path`` into the file uploader labelled ``uploader_label``; wait until it is listed."""
    from playwright.sync_api import expect

    uploader = page.locator("[data-testid='stFileUploader']").filter(has_text=uploader_label)
    expect(uploader).to_have_count(1, timeout=deadline.ms(60))
    uploader.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path), timeout=deadline.ms())
    # The file is listed (with a "Remove <name>" button; the name shown may be shortened)
    # once the server has stored it.
    expect(uploader.get_by_role("button", name=f"Remove {path.name}")).to_be_visible(timeout=deadline.ms())
    wait_for_app(page, deadline)
    assert_no_problem(page, f"uploading {path.name}")


def drive_app(page, base_url: str, inputs: dict, sampler: RssSampler, deadline: Deadline, download_dir: Path):
    """The default path, step by step; returns the sampler's steps."""
    from playwright.sync_api import expect

    step = sampler.begin("first page (built-in data set)")
    page.goto(base_url, timeout=deadline.ms())
    wait_for_app(page, deadline)
    expect(page.locator("[data-testid='stPlotlyChart']").first).to_be_visible(timeout=deadline.ms())
    sampler.end(step)
    print(f"  first page drawn ({step['seconds']:.1f} s)", flush=True)

    step = sampler.begin("upload (3 files)")
    expander = page.get_by_text("Choose the data set")
    if not page.get_by_text("Your own files (upload)").is_visible():
        expander.click()
    page.get_by_text("Your own files (upload)").click()
    wait_for_app(page, deadline)
    upload(page, "4D functional image", inputs["func"], deadline)
    upload(page, "Labels table", inputs["labels"], deadline)
    upload(page, "Mask (optional, 3D)", inputs["mask"], deadline)
    sampler.end(step)
    print(f"  files uploaded ({step['seconds']:.1f} s)", flush=True)

    step = sampler.begin("load (check, store, mean image, Data page)")
    load = page.get_by_role("button", name="Load these files")
    expect(load).to_be_enabled(timeout=deadline.ms(60))
    load.click()
    wait_for_app(page, deadline)
    expect(page.get_by_text("Your uploaded data set").first).to_be_visible(timeout=deadline.ms())
    assert_no_problem(page, "loading the files")
    sampler.end(step)
    print(f"  data set loaded ({step['seconds']:.1f} s)", flush=True)

    step = sampler.begin("Configure page")
    link = page.locator("[data-testid='stSidebarNavLink']").filter(has=page.get_by_text("Configure", exact=True))
    link.click()
    wait_for_app(page, deadline)
    expect(page.locator("h1").first).to_contain_text("Configure", timeout=deadline.ms())
    wait_for_app(page, deadline)
    # The defaults must be the tutorial's: face vs cat, the uploaded mask, leave one run out.
    # (The aria snapshot holds a select box's chosen value; its inner text does not.)
    conditions = page.locator("[data-testid='stMultiSelect']").filter(has_text="Conditions").aria_snapshot()
    mask_box = page.locator("[data-testid='stSelectbox']").filter(has_text="Mask (which voxels)").aria_snapshot()
    scheme = page.locator("[data-testid='stSelectbox']").filter(has_text="Evaluation scheme").aria_snapshot()
    if not ("face" in conditions and "cat" in conditions and "uploaded" in mask_box
            and "run" in scheme.lower()):
        raise RuntimeError(f"Unexpected defaults on Configure:\n{conditions}\n{mask_box}\n{scheme}")
    sampler.end(step)

    step = sampler.begin("run: mask + decode + Results page")
    page.get_by_role("button", name="Run the decoding").click()
    wait_for_app(page, deadline)
    expect(page.locator("h1").first).to_contain_text("Results", timeout=deadline.ms())
    wait_for_app(page, deadline)
    chart = page.locator(".st-key-w_weight_chart [data-testid='stPlotlyChart']")
    chart.scroll_into_view_if_needed(timeout=deadline.ms())
    expect(chart).to_be_visible(timeout=deadline.ms())
    assert_no_problem(page, "decoding")
    sampler.end(step)
    print(f"  results shown ({step['seconds']:.1f} s)", flush=True)

    step = sampler.begin("download the weight map (.nii.gz)")
    button = page.locator("[data-testid='stDownloadButton']").filter(has_text="Weight map (.nii.gz)")
    with page.expect_download(timeout=deadline.ms()) as info:
        button.locator("button").click()
    saved = download_dir / info.value.suggested_filename
    info.value.save_as(saved)
    wait_for_app(page, deadline)
    sampler.end(step)
    step["note"] = f"{saved.stat().st_size / 1000:.1f} kB"

    step = sampler.begin("idle on Results (5 s)")
    time.sleep(5)
    sampler.end(step)
    return sampler.steps


def run_app_benchmark(args) -> int:
    import psutil  # noqa: F401  (fail early when missing)

    if not os.access(CHROMIUM_PATH, os.X_OK):
        raise SystemExit(f"{CHROMIUM_PATH} is missing: apt-get install -y chromium.")
    from playwright.sync_api import sync_playwright

    deadline = Deadline(args.timeout)
    with tempfile.TemporaryDirectory(prefix="bench-app-memory-") as tmp:
        work_dir = Path(tmp)
        inputs = prepare_inputs(args, work_dir)
        print(f"func   {inputs['func']} ({inputs['func'].stat().st_size / MB:.1f} MB)")
        print(f"labels {inputs['labels']}")
        print(f"mask   {inputs['mask']}")
        print(f"load average before: {_load_average()} ({os.cpu_count()} cores)", flush=True)

        port = _free_port()
        base_url = f"http://127.0.0.1:{port}"
        log_path = work_dir / "streamlit.log"
        started = time.monotonic()
        process = start_server(work_dir, port, log_path, Path(args.data_dir).resolve() if args.data_dir else None)
        # The total time limit also holds if Playwright hangs: then the server is killed.
        watchdog = threading.Timer(max(deadline.at - time.monotonic(), 1), lambda: stop_server(process))
        watchdog.daemon = True
        watchdog.start()
        sampler = None
        failure = None
        try:
            wait_healthy(process, base_url, log_path, deadline.at)
            sampler = RssSampler(process.pid, interval=args.interval)
            sampler.start()
            start_step = {"name": "server start (to health ok)", "seconds": time.monotonic() - started}
            step = sampler.begin(f"idle after start ({IDLE_SETTLE_SECONDS:.0f} s)")
            time.sleep(IDLE_SETTLE_SECONDS)
            sampler.end(step)
            step["seconds"] = start_step["seconds"]
            step["note"] = "time = server start to health ok"
            print(f"  server healthy on {base_url} after {start_step['seconds']:.1f} s", flush=True)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, args=CHROMIUM_ARGS)
                try:
                    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
                    context.set_default_timeout(deadline.ms(600))
                    page = context.new_page()
                    drive_app(page, base_url, inputs, sampler, deadline, work_dir)
                except Exception as err:  # reported below with the figures so far
                    failure = err
                    try:
                        page.screenshot(path=str(HERE / "_work" / "bench_app_memory_failure.png"))
                    except Exception:
                        pass
                finally:
                    browser.close()
        finally:
            watchdog.cancel()
            if sampler is not None:
                sampler.stop()
            server_log = _log_tail(log_path)
            stop_server(process)

        if sampler is None:
            raise RuntimeError("The server never became healthy.")
        if args.samples_csv:
            sampler.write_csv(Path(args.samples_csv))
            print(f"samples written to {args.samples_csv}")
        return report(sampler, failure, server_log)


def report(sampler: RssSampler, failure, server_log: str) -> int:
    print(f"\nserver RSS (psutil, process tree, every {sampler.interval * 1000:.0f} ms); "
          "kernel peak = VmHWM of the server process during the step")
    print(f"{'step':<44}{'seconds':>9}{'RSS after MB':>14}{'peak MB':>10}{'kernel peak MB':>16}")
    for step in sampler.steps:
        if "end" not in step:
            print(f"{step['name']:<44}{'(did not finish)':>20}")
            continue
        note = f"  {step['note']}" if step.get("note") else ""
        print(f"{step['name']:<44}{step['seconds']:>9.1f}{_mb(step['rss_after']):>14}"
              f"{_mb(step['sampled_peak']):>10}{_mb(step['kernel_peak']):>16}{note}")
    sampled, kernel = sampler.overall_peak()
    peak = max(sampled, kernel or 0)
    print(f"\npeak over the whole path: {_mb(sampled)} MB sampled, {_mb(kernel)} MB kernel high-water mark "
          f"({peak / 1024**2:,.0f} MiB)")
    print(f"load average after: {_load_average()}")
    if failure is not None:
        print(f"\nFAIL: the path did not complete: {type(failure).__name__}: {failure}")
        print(f"server log tail:\n{server_log}")
        return 2
    verdict = "PASS" if peak < LIMIT_BYTES else "FAIL"
    print(f"{verdict}: peak {_mb(peak)} MB vs limit {_mb(LIMIT_BYTES)} MB")
    return 0 if verdict == "PASS" else 1


# --------------------------------------------------------------------------------------
# The core alone, in a fresh process
# --------------------------------------------------------------------------------------


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def core_child(func: str, labels: str, mask: str) -> dict:
    """The app's default path through `decoding_core` only; time and peak after each step."""
    steps = [{"name": "imports", "seconds": 0.0}]
    started = time.perf_counter()
    from decoding_core import datasets, decoding, export, masking
    from decoding_core.config import DecodingConfig

    steps[0].update(seconds=time.perf_counter() - started, peak=_peak_rss_bytes())

    def timed(name, work):
        start = time.perf_counter()
        value = work()
        steps.append({"name": name, "seconds": time.perf_counter() - start, "peak": _peak_rss_bytes()})
        return value

    dataset = timed("load_files", lambda: datasets.load_files(
        func, labels, label_column="labels", run_column="chunks", mask=mask, title="bench"))
    # What the Data page draws after a load: the mean time course of the raw (unstandardised) signal.
    timed("mask_dataset (standardize=False, Data page)", lambda: masking.mask_dataset(
        dataset, "uploaded", standardize=False))
    masked = timed("mask_dataset (standardize=True)", lambda: masking.mask_dataset(
        dataset, "uploaded", standardize=True))
    config = DecodingConfig(conditions=("face", "cat"), mask_name="uploaded", cv="leave-one-run-out")
    result = timed("decode (face vs cat, LOLO)", lambda: decoding.decode(masked, config, tr=dataset.tr))
    payload = timed("image_to_nifti_bytes(weight_img)", lambda: export.image_to_nifti_bytes(result.weight_img))
    return {"steps": steps, "accuracy": float(result.mean_score),
            "X_shape": list(masked.X.shape), "weights_bytes": len(payload)}


def run_core_benchmark(args) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-app-memory-core-") as tmp:
        inputs = prepare_inputs(args, Path(tmp))
        print(f"func   {inputs['func']} ({inputs['func'].stat().st_size / MB:.1f} MB)")
        print(f"load average before: {_load_average()} ({os.cpu_count()} cores)", flush=True)
        command = [sys.executable, __file__, "--child-core", str(inputs["func"]), str(inputs["labels"]),
                   str(inputs["mask"])]
        env = dict(os.environ, DECODING_LAB_DATA_DIR=str(Path(tmp) / "data"))
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=args.timeout, env=env)
    if done.returncode != 0:
        print(f"FAIL: the core path failed:\n{done.stderr[-3000:]}")
        return 2
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\ncore only, fresh process (peak = ru_maxrss so far, imports included); X {tuple(result['X_shape'])}")
    print(f"{'step':<46}{'seconds':>9}{'peak MB':>10}")
    for step in result["steps"]:
        print(f"{step['name']:<46}{step['seconds']:>9.2f}{_mb(step['peak']):>10}")
    peak = max(step["peak"] for step in result["steps"])
    if result.get("accuracy") is not None:
        print(f"mean accuracy {result['accuracy']:.3f}; weight map {result['weights_bytes'] / 1000:.1f} kB")
    print(f"load average after: {_load_average()}")
    verdict = "PASS" if peak < LIMIT_BYTES else "FAIL"
    print(f"{verdict}: core peak {_mb(peak)} MB vs limit {_mb(LIMIT_BYTES)} MB")
    return 0 if verdict == "PASS" else 1


# --------------------------------------------------------------------------------------


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="the 150-volume synthetic image (quick check)")
    parser.add_argument("--func", help="another 4D .nii/.nii.gz to upload (default: the synthetic Haxby-size one)")
    parser.add_argument("--labels", help="labels table for --func (default: Haxby subject 2's, or a subset)")
    parser.add_argument("--mask", help="3D mask on the image's grid (default: the 464-voxel synthetic VT mask)")
    parser.add_argument("--core-only", action="store_true", help="the same path through decoding_core, no Streamlit")
    parser.add_argument("--timeout", type=float, default=900.0, help="total time limit in seconds (default 900)")
    parser.add_argument("--interval", type=float, default=0.05, help="RSS sampling interval in seconds")
    parser.add_argument("--data-dir", help="DECODING_LAB_DATA_DIR to use (default: a temporary one); the built-in "
                        "data set is generated there once, so a second run measures a warm start")
    parser.add_argument("--samples-csv", help="write every RSS sample (seconds, MB) to this CSV file")
    parser.add_argument("--child-core", nargs=3, metavar=("FUNC", "LABELS", "MASK"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # A SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the server is still stopped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.child_core:
        print(json.dumps(core_child(*args.child_core)))
        return 0
    if args.core_only:
        return run_core_benchmark(args)
    return run_app_benchmark(args)


if __name__ == "__main__":
    sys.exit(main())
