"""Run hostile inputs through the core under a memory limit, one forked process per case.

Used by the security tests (and ``benchmarks/hostile_inputs.py``) as a script::

    python -m tests.security._child < request.json > results.jsonl   # from the repository root

The request names a target and the cases. The process imports the core, warms
it up, limits its address space (``resource.setrlimit(RLIMIT_AS)``: current size
plus ``headroom_mb``), then forks once per case. Each fork resets its peak
resident size (``/proc/self/clear_refs``), runs the case and reports one JSON line:
the outcome (``input_error`` with the app's message, ``ok``, or ``exception`` with
the type and message), the seconds it took, and how much its resident memory grew
at its peak (MB). A case that does not finish within ``timeout_s`` is killed and
reported as ``timeout``.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import sys
import time
import traceback
from pathlib import Path

def _status() -> dict:
    values = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM", "VmSize"):
                values[key] = int(rest.split()[0]) * 1024
    return values


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:  # pragma: no cover - old kernels: the peak then includes the warm-up
        pass


def make_target(name: str):
    """The function a case is run through: ``fn(case) -> short description``."""
    from decoding_core import datasets, masking
    from decoding_core.io import nifti

    if name == "inspect":
        return lambda case: repr(nifti.inspect_nifti(case["path"], expected_ndim=case.get("ndim", 4)).shape)
    if name == "inspect_bytes":
        return lambda case: repr(nifti.inspect_nifti(Path(case["path"]).read_bytes(),
                                                     expected_ndim=case.get("ndim", 4)).shape)
    if name == "load_image":
        return lambda case: repr(nifti.load_image(case["path"], expected_ndim=case.get("ndim", 4)).shape)
    if name == "stream":
        def stream(case):
            total = 0
            for _, volumes in nifti.iter_volume_chunks(case["path"]):
                total += volumes.shape[3]
            return f"{total} volumes"
        return stream
    if name == "mean_volume":
        return lambda case: repr(nifti.mean_volume(case["path"]).shape)
    if name == "load_files":
        def load(case):
            dataset = datasets.load_files(case["path"], case["labels"], mask=case.get("mask"),
                                          anat=case.get("anat"), run_column=case.get("run_column", "chunks"))
            masked = masking.mask_dataset(dataset, next(iter(dataset.masks)))
            return f"{dataset.shape} masked {masked.X.shape}"
        return load
    if name == "labels":
        def labels(case):
            source = Path(case["path"]).read_bytes() if case.get("as_bytes") else case["path"]
            table = datasets.read_labels_table(source, n_volumes=case.get("n_volumes"))
            return f"{table.shape}"
        return labels
    if name == "cli":
        import contextlib
        import io

        from decoding_core import cli
        from decoding_core.errors import DecodingInputError

        def run_cli(case):
            argv = ["decode", "--func", case["path"], "--labels", case["labels"], "--quiet"]
            if case.get("mask"):
                argv += ["--mask", case["mask"]]
            stderr = io.StringIO()
            with contextlib.redirect_stderr(stderr):
                status = cli.main(argv)
            text = stderr.getvalue().strip()
            if status == cli.EXIT_INPUT_ERROR:
                # The command line's own refusal: exit status 2 and one "error:" line.
                raise DecodingInputError(text)
            if status != 0:
                raise RuntimeError(f"exit status {status}: {text}")
            return "exit status 0"
        return run_cli
    raise ValueError(f"unknown target {name!r}")


def _run_case(target, case) -> dict:
    from decoding_core.errors import DecodingInputError

    _reset_peak()
    before = _status()["VmRSS"]
    started = time.perf_counter()
    try:
        detail = target(case)
        outcome, message = "ok", str(detail)
    except DecodingInputError as err:
        outcome, message = "input_error", str(err)
    except MemoryError:
        outcome, message = "exception", "MemoryError"
    except BaseException as err:  # everything else is a finding
        outcome = "exception"
        message = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=6)}"
    seconds = time.perf_counter() - started
    peak = _status()["VmHWM"]
    return {"name": case["name"], "outcome": outcome, "message": message[:2000], "seconds": seconds,
            "peak_growth_mb": max(0.0, (peak - before) / 1e6)}


def _fork_case(target, case, timeout_s: float) -> dict:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the case, alone in its process
        os.close(read_end)
        try:
            result = _run_case(target, case)
            payload = json.dumps(result).encode()
        except BaseException as err:  # pragma: no cover - reporting must not fail
            payload = json.dumps({"name": case["name"], "outcome": "exception", "message": repr(err),
                                  "seconds": 0.0, "peak_growth_mb": 0.0}).encode()
        os.write(write_end, payload)
        os.close(write_end)
        os._exit(0)
    os.close(write_end)
    chunks = []
    deadline = time.monotonic() + timeout_s
    timed_out = False
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read_end], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    if timed_out:
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    if timed_out:
        return {"name": case["name"], "outcome": "timeout", "message": f"killed after {timeout_s} s",
                "seconds": timeout_s, "peak_growth_mb": 0.0}
    if not chunks:
        return {"name": case["name"], "outcome": "crash", "message": f"exit status {status}",
                "seconds": 0.0, "peak_growth_mb": 0.0}
    return json.loads(b"".join(chunks))


def main() -> int:
    request = json.load(sys.stdin)
    target = make_target(request["target"])
    for warm in request.get("warmup", []):  # import lazily loaded modules before the limit
        _run_case(target, warm)
    headroom = int(request.get("headroom_mb", 256)) * 1024**2
    limit = _status()["VmSize"] + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for case in request["cases"]:
        result = _fork_case(target, case, float(request.get("timeout_s", 30)))
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
