"""Load test: N sessions run the default decoding at once against a local server.

Starts ``streamlit run app.py`` on a free loopback port (a fresh server per N, sharing one
data folder so the built-in data set is generated once), opens N independent Streamlit
sessions, and in all of them at the same moment presses "Run the decoding" on the
Configure page, then waits for the Results page. Prints, per N: p50/p95/max latency from
the press to the drawn Results page, errors, the peak resident memory of the server's
process tree (sampled every 0.2 s), the CPU seconds the server and the clients used during
the runs, and the machine's 1-minute load average before the runs.

Two kinds of client:

* ``ws`` (default): each session is a websocket client in this one asyncio process that
  speaks Streamlit's own protocol (protobuf ``BackMsg``/``ForwardMsg`` on
  ``/_stcore/stream``) as the browser's frontend does: it takes the XSRF cookie from
  ``/_stcore/health`` and offers it as the second websocket subprotocol, sends
  ``rerun_script`` for the default page, then for the Configure page (client-side
  navigation: same session), then presses the button whose widget id ends in the
  ``w_run`` key (a ``trigger_value``), and follows ``st.switch_page`` until a run of the
  Results page has finished. Clients cost almost no CPU, so latencies are the server's.
  Each Results page must show a "Mean ..." metric; the values seen are printed.
* ``playwright``: N contexts of Debian's headless Chromium (real browsers; on a 2-core
  machine their rendering competes with the server, so latencies include the browsers').

Two workloads:

* ``builtin`` (default): the built-in simulated data set and the default configuration
  (face vs cat, ventral temporal mask, linear SVC, leave-one-run-out). Identical
  runs of public data share the server's cache, so this measures serving N sessions.
* ``upload`` (``--client playwright`` only): each session first uploads its own small 4D
  image and labels table (session-scoped: nothing is shared) and then decodes it, so every
  session really masks and decodes, through the job gate.

Bounded: loopback only (127.0.0.1, proxies ignored), at most 40 sessions, a time limit per
session run and one for the whole script; the server is stopped through its own process
group. Not part of the test suite. Usage::

    python benchmarks/load_test.py                   # N = 1, 5, 10, 20, ws clients, builtin
    python benchmarks/load_test.py --sessions 10 --client playwright --workload upload
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
APP_IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
APP_RUNNING = "[data-testid='stApp'][data-test-script-state='running']"
MAX_SESSIONS = 40
#: Titles in the app's navigation (app.PAGES) and the key of the Configure page's Run button (ui.state.W_RUN).
CONFIGURE_TITLE = "Configure"
RESULTS_TITLE = "Results"
RUN_BUTTON_KEY = "w_run"
XSRF_COOKIE = "_streamlit_xsrf"
# A request for 127.0.0.1 must never go through a proxy named in the environment.
LOOPBACK_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


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
                with LOOPBACK_OPENER.open(f"{self.url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        self._sampler.start()
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError("streamlit did not become healthy")

    def tree(self) -> list[psutil.Process]:
        """The server process and all its descendants (empty once it has exited)."""
        try:
            root = psutil.Process(self.process.pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    def rss(self) -> int:
        total = 0
        for process in self.tree():
            try:
                total += process.memory_info().rss
            except psutil.Error:  # a child that exited meanwhile
                pass
        return total

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_rss = max(self.peak_rss, self.rss())

    def reset_peak(self) -> None:
        self.peak_rss = self.rss()

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's process tree."""
        return _cpu_seconds(self.tree())

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


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU seconds used so far by ``processes`` (ones that exited count 0)."""
    total = 0.0
    for process in processes:
        try:
            total += sum(process.cpu_times()[:2])
        except psutil.Error:
            pass
    return total


def client_cpu_seconds(server: Server) -> float:
    """CPU seconds used so far by this script and its children except the server (the clients)."""
    own = psutil.Process()
    server_pids = {process.pid for process in server.tree()}
    children = [child for child in own.children(recursive=True) if child.pid not in server_pids]
    return _cpu_seconds([own, *children])


# -- websocket clients: Streamlit's own protocol -------------------------------------------------

SCRIPT_FINISHED_EARLY_FOR_RERUN = 2  # ForwardMsg.FINISHED_EARLY_FOR_RERUN: a rerun or st.switch_page follows
SCRIPT_FINISHED_FRAGMENT = 3  # ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY: not a whole-page run


@dataclass
class PageRun:
    """What one whole-page run sent to the client, reduced to what the load test checks."""

    page_name: str = ""
    page_script_hash: str = ""
    finished_status: int | None = None
    headings: list[str] = field(default_factory=list)
    metrics: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    #: Button widget ids by label and by user key (the id's last ``-`` part).
    buttons: dict[str, str] = field(default_factory=dict)
    #: page title -> page_script_hash, from the last ``navigation`` message.
    pages: dict[str, str] = field(default_factory=dict)


class StreamlitWsSession:
    """One Streamlit session driven over ``/_stcore/stream`` as the browser's frontend drives it.

    The server sends ``ForwardMsg`` protobufs; the client sends ``BackMsg`` protobufs. A
    run starts when the client sends ``rerun_script`` (a ``ClientState`` with the page's
    ``page_script_hash``, the query string and the widget states) and ends with a
    ``script_finished`` message. ``st.switch_page`` ends a run "early for rerun" and
    starts the next page's run on the server, without a message from the client.
    """

    def __init__(self, port: int, timeout: float):
        self.port = port
        self.timeout = timeout
        self.connection = None
        self.query_string = ""
        self.pages: dict[str, str] = {}

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        # The browser fetches the health endpoint first, which sets the XSRF cookie, and
        # offers the token as the second subprotocol of the websocket ("streamlit", token).
        token = await asyncio.to_thread(self._xsrf_token)
        subprotocols = ["streamlit"] + ([token] if token else [])
        headers = {"Cookie": f"{XSRF_COOKIE}={token}"} if token else {}
        # No pings (a browser sends none; under load a late pong would drop the session),
        # no size limit (plots are large), no proxy (loopback only).
        self.connection = await connect(
            f"ws://127.0.0.1:{self.port}/_stcore/stream", origin=f"http://127.0.0.1:{self.port}",
            subprotocols=subprotocols, additional_headers=headers, proxy=None, max_size=None,
            ping_interval=None, compression=None, open_timeout=self.timeout)

    def _xsrf_token(self) -> str | None:
        with LOOPBACK_OPENER.open(f"http://127.0.0.1:{self.port}/_stcore/health", timeout=self.timeout) as response:
            for header in response.headers.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                if name.strip() == XSRF_COOKIE:
                    return rest.split(";", 1)[0]
        return None

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()

    async def rerun(self, page_script_hash: str = "", widget_triggers: tuple[str, ...] = (),
                    query_string: str | None = None) -> PageRun:
        """Ask for a run of a page (optionally pressing buttons) and follow it to its end.

        Returns the last whole-page run, after any ``st.switch_page``; its
        ``finished_status`` is None when the connection closed first.
        """
        from streamlit.proto.BackMsg_pb2 import BackMsg

        message = BackMsg()
        message.rerun_script.query_string = self.query_string if query_string is None else query_string
        message.rerun_script.page_script_hash = page_script_hash
        for widget_id in widget_triggers:
            widget = message.rerun_script.widget_states.widgets.add()
            widget.id = widget_id
            widget.trigger_value = True
        await self.connection.send(message.SerializeToString())
        return await asyncio.wait_for(self._follow_run(), self.timeout)

    async def _follow_run(self) -> PageRun:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from websockets.exceptions import ConnectionClosed

        run = PageRun()
        while True:
            try:
                payload = await self.connection.recv()
            except ConnectionClosed as err:
                run.errors.append(f"connection closed ({err.rcvd.code if err.rcvd else 'no close frame'})")
                return run
            message = ForwardMsg()
            message.ParseFromString(payload)
            kind = message.WhichOneof("type")
            if kind == "new_session":  # a run starts (also the run after st.switch_page)
                run = PageRun(pages=dict(self.pages))
            elif kind == "navigation":
                self.pages = {page.page_name: page.page_script_hash for page in message.navigation.app_pages}
                run.pages = dict(self.pages)
                run.page_script_hash = message.navigation.page_script_hash
                run.page_name = next((name for name, page_hash in self.pages.items()
                                      if page_hash == run.page_script_hash), "")
            elif kind == "page_info_changed":  # st.query_params changed: the browser's URL follows
                self.query_string = message.page_info_changed.query_string
            elif kind == "delta" and message.delta.WhichOneof("type") == "new_element":
                self._note_element(run, message.delta.new_element)
            elif kind == "script_finished":
                status = message.script_finished
                if status not in (SCRIPT_FINISHED_EARLY_FOR_RERUN, SCRIPT_FINISHED_FRAGMENT):
                    run.finished_status = status
                    return run

    @staticmethod
    def _note_element(run: PageRun, element) -> None:
        from streamlit.proto.Alert_pb2 import Alert

        kind = element.WhichOneof("type")
        if kind == "heading":
            run.headings.append(element.heading.body)
        elif kind == "metric":
            run.metrics[element.metric.label] = element.metric.body
        elif kind == "button":
            # Element ids look like "$$ID-<hash>-<user key>": the key finds the button on any page.
            run.buttons[element.button.label] = element.button.id
            run.buttons[element.button.id.rsplit("-", 1)[-1]] = element.button.id
        elif kind == "alert" and element.alert.format == Alert.ERROR:
            run.errors.append(f"error shown: {element.alert.body[:100]}")
        elif kind == "exception":
            run.errors.append(f"exception shown: {element.exception.type}: {element.exception.message[:80]}")


async def open_configure_ws(port: int, timeout: float) -> tuple[StreamlitWsSession, str]:
    """A session on the Configure page: the default page first, then the menu's Configure entry.

    Returns the session and the Run button's widget id.
    """
    session = StreamlitWsSession(port, timeout)
    try:
        return session, await _reach_configure(session)
    except BaseException:
        await session.close()
        raise


async def _reach_configure(session: StreamlitWsSession) -> str:
    await session.open()
    first = await session.rerun()
    if first.errors or first.finished_status is None:
        raise RuntimeError(f"default page: {first.errors or 'no end of run'}")
    if CONFIGURE_TITLE not in session.pages:
        raise RuntimeError(f"no {CONFIGURE_TITLE!r} page in the navigation: {sorted(session.pages)}")
    configure = await session.rerun(session.pages[CONFIGURE_TITLE], query_string="")
    if configure.errors or configure.page_name != CONFIGURE_TITLE:
        raise RuntimeError(f"Configure page: {configure.errors or configure.page_name}")
    if RUN_BUTTON_KEY not in configure.buttons:
        raise RuntimeError(f"no button with key {RUN_BUTTON_KEY!r} on the Configure page")
    return configure.buttons[RUN_BUTTON_KEY]


async def run_one_ws(session: StreamlitWsSession, run_button_id: str, configure_hash: str,
                     start: asyncio.Event) -> tuple[float, str | None, dict]:
    """Press Run; returns the seconds until the Results page's run finished, an error or None, its metrics."""
    await start.wait()
    started = time.perf_counter()
    try:
        run = await session.rerun(configure_hash, widget_triggers=(run_button_id,))
    except Exception as err:  # a timeout or a broken connection is an error of this session
        return time.perf_counter() - started, f"{type(err).__name__}: {str(err)[:80]}", {}
    seconds = time.perf_counter() - started
    if run.errors:
        return seconds, run.errors[0], run.metrics
    if run.finished_status is None:
        return seconds, "run did not finish", run.metrics
    if run.page_name != RESULTS_TITLE:
        return seconds, f"ended on page {run.page_name!r}, not {RESULTS_TITLE!r}", run.metrics
    if not any(label.startswith("Mean ") for label in run.metrics):
        return seconds, "Results page shows no mean score", run.metrics
    return seconds, None, run.metrics


async def measure_ws(n_sessions: int, server: Server, timeout: float) -> dict:
    opened: list[tuple[StreamlitWsSession, str]] = []
    try:
        for _ in range(n_sessions):  # open sequentially: the load is the runs, not the first paint
            opened.append(await open_configure_ws(server.port, timeout))
        configure_hash = opened[0][0].pages[CONFIGURE_TITLE]
        server.reset_peak()
        cpu_before, client_cpu_before = server.cpu_seconds(), client_cpu_seconds(server)
        start = asyncio.Event()
        tasks = [asyncio.create_task(run_one_ws(session, button_id, configure_hash, start))
                 for session, button_id in opened]
        wall = time.perf_counter()
        start.set()
        outcomes = await asyncio.gather(*tasks)
        wall = time.perf_counter() - wall
        server_cpu = server.cpu_seconds() - cpu_before
        client_cpu = client_cpu_seconds(server) - client_cpu_before
    finally:
        await asyncio.gather(*(session.close() for session, _ in opened), return_exceptions=True)
    # Every distinct metric the Results pages showed: one line each when all sessions agree.
    scores = sorted({f"{label} = {value}" for _, _, metrics in outcomes for label, value in metrics.items()})
    return summarize(n_sessions, [(seconds, error) for seconds, error, _ in outcomes], wall, server,
                     server_cpu, client_cpu, scores)


def summarize(n_sessions: int, outcomes: list[tuple[float, str | None]], wall: float, server: Server,
              server_cpu: float, client_cpu: float, scores: list[str] | None = None) -> dict:
    latencies = sorted(seconds for seconds, _ in outcomes)
    return {
        "n": n_sessions,
        "p50": statistics.median(latencies),
        "p95": latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))],
        "max": latencies[-1],
        "wall": wall,
        "errors": [error for _, error in outcomes if error],
        "peak_rss_mb": server.peak_rss / 1e6,
        "server_cpu_s": server_cpu,
        "client_cpu_s": client_cpu,
        "scores": scores or [],
    }


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
    table.write_text("labels chunks\n" + "\n".join(f"{label} {run}" for label, run in zip(labels, runs)) + "\n")
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
            start_rss = server.rss()
            cpu_before, client_cpu_before = server.cpu_seconds(), client_cpu_seconds(server)
            start = asyncio.Event()
            tasks = [asyncio.create_task(run_one(page, start, timeout_ms, upload_files is not None, server.url))
                     for _, page in opened]
            wall = time.perf_counter()
            start.set()
            outcomes = await asyncio.gather(*tasks)
            wall = time.perf_counter() - wall
            end_rss = server.rss()
            server_cpu = server.cpu_seconds() - cpu_before
            client_cpu = client_cpu_seconds(server) - client_cpu_before
            for context, _ in opened:
                await context.close()
        finally:
            await browser.close()
    row = summarize(n_sessions, outcomes, wall, server, server_cpu, client_cpu)
    row["start_rss_mb"], row["end_rss_mb"] = start_rss / 1e6, end_rss / 1e6
    return row


async def _bounded(coroutine, seconds: float):
    return await asyncio.wait_for(coroutine, seconds)


def main() -> int:
    parser = argparse.ArgumentParser(description="Concurrent sessions running the default decoding.")
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--client", choices=["ws", "playwright"], default="ws",
                        help="ws: websocket clients speaking Streamlit's protocol (cheap); "
                             "playwright: headless Chromium contexts (real browsers)")
    parser.add_argument("--workload", choices=["builtin", "upload"], default="builtin")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per session run")
    parser.add_argument("--total-timeout", type=float, default=1800,
                        help="seconds for the whole script; the current N is abandoned when they run out")
    parser.add_argument("--max-jobs", type=int, help="DECODING_LAB_MAX_JOBS for the server")
    args = parser.parse_args()
    if any(n < 1 or n > MAX_SESSIONS for n in args.sessions):
        parser.error(f"--sessions must be between 1 and {MAX_SESSIONS}")
    if args.client == "ws" and args.workload == "upload":
        parser.error("--workload upload needs --client playwright (uploads go through the browser)")
    if args.client == "playwright" and not os.access(CHROMIUM_PATH, os.X_OK):
        parser.error(f"{CHROMIUM_PATH} is missing (apt-get install -y chromium)")
    deadline = time.monotonic() + args.total_timeout
    work = Path(tempfile.mkdtemp(prefix="decoding-lab-load-"))
    data_dir = work / "data"
    data_dir.mkdir()
    upload_files = make_upload_files(work) if args.workload == "upload" else None
    extra_env = {"DECODING_LAB_MAX_JOBS": str(args.max_jobs)} if args.max_jobs else {}
    print(f"client={args.client} workload={args.workload} cpus={os.cpu_count()} server log in {work}")
    # Server / client CPU: seconds of CPU that the server's process tree and the clients (this
    # script and its browsers) used during the runs. Everything shares the machine's cores, so
    # latency above server CPU / cores comes from the clients or from other load (load 1m: the
    # 1-minute load average just before the runs, which includes this script's setup).
    print(f"{'N':>3} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'wall s':>7} {'errors':>6} {'peak RSS MB':>12} "
          f"{'server CPU s':>12} {'client CPU s':>12} {'load 1m':>7}")
    status = 0
    for n_sessions in args.sessions:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            print(f"stopped before N={n_sessions}: --total-timeout of {args.total_timeout:.0f} s used up")
            return 1
        server = Server(data_dir, work / f"server-{n_sessions}.log", extra_env)
        try:
            server.wait_healthy(timeout=min(90, remaining))
            load = os.getloadavg()[0]
            if args.client == "ws":
                coroutine = measure_ws(n_sessions, server, args.timeout)
            else:
                coroutine = measure(n_sessions, server, int(args.timeout * 1000), upload_files)
            row = asyncio.run(_bounded(coroutine, deadline - time.monotonic()))
        except TimeoutError:
            print(f"stopped during N={n_sessions}: --total-timeout of {args.total_timeout:.0f} s used up")
            return 1
        finally:
            server.stop()
        print(f"{row['n']:>3} {row['p50']:7.2f} {row['p95']:7.2f} {row['max']:7.2f} {row['wall']:7.2f} "
              f"{len(row['errors']):>6} {row['peak_rss_mb']:12.0f} {row['server_cpu_s']:12.1f} "
              f"{row['client_cpu_s']:12.1f} {load:7.2f}", flush=True)
        if "start_rss_mb" in row:  # where the memory is: before the runs (sessions open, files in the boxes), after
            print(f"      server RSS: {row['start_rss_mb']:.0f} MB before the runs, {row['end_rss_mb']:.0f} MB after "
                  f"them, peak {row['peak_rss_mb']:.0f} MB (limit 690 MB: "
                  f"{'under' if row['peak_rss_mb'] < 690 else 'OVER'})")
        for score in row["scores"]:
            print(f"      results show: {score}")
        for error in sorted(set(row["errors"])):
            print(f"      error ({row['errors'].count(error)}x): {error}")
        if row["errors"]:
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
