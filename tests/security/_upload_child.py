"""Hostile uploads through the app's upload widget (AppTest), in a memory-limited process.

Run as ``python -m tests.security._upload_child`` from the repository root, with a JSON request
on stdin (see `test_upload_widget.py`). The app is
started once, with the built-in data set loaded and every module imported; then the
address space is limited to its size plus ``headroom_mb`` and each case is uploaded
through the Data page's file uploaders and loaded with its button. One JSON line per
case: the error messages the page shows, whether a traceback (``st.exception``) appeared,
which data set is in use afterwards, the seconds it took, and how much the resident memory
grew at its peak (MB).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

from tests.security._child import _reset_peak, _status

REPO_ROOT = Path(__file__).resolve().parents[2]
os.chdir(REPO_ROOT)


def _read(case: dict) -> dict:
    """The case's bytes, read before its memory is measured (the upload's own size is not the app's)."""
    data = {"func": Path(case["func"]).read_bytes(), "labels": Path(case["labels"]).read_bytes()}
    if case.get("mask"):
        data["mask"] = Path(case["mask"]).read_bytes()
    return data


def _upload(at, state, case: dict, data: dict) -> None:
    at.file_uploader(key=state.W_UPLOAD_FUNC).set_value((case["func_name"], data["func"], "application/octet-stream"))
    at.file_uploader(key=state.W_UPLOAD_LABELS).set_value((case["labels_name"], data["labels"], "text/plain"))
    if case.get("mask"):
        at.file_uploader(key=state.W_UPLOAD_MASK).set_value(
            (case.get("mask_name", "mask.nii.gz"), data["mask"], "application/octet-stream"))
    else:
        at.file_uploader(key=state.W_UPLOAD_MASK).set_value(None)
        # The page keeps a stored mask until its Remove button is pressed (issue 15: boxes survive).
        removes = [button for button in at.button if button.key == state.W_UPLOAD_BOX_CLEAR["mask"]]
        if removes:
            removes[0].click()
    at.run()
    load = at.button(key=state.W_UPLOAD_LOAD)
    if not load.disabled:
        load.click()
        at.run()


def main() -> int:
    from streamlit.testing.v1 import AppTest

    from ui import state

    request = json.load(sys.stdin)
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=float(request.get("timeout_s", 120)))
    at.run()
    at.radio(key=state.W_SOURCE).set_value("upload")
    at.run()
    for warm in request.get("warmup", []):
        _upload(at, state, warm, _read(warm))
    headroom = int(request.get("headroom_mb", 256)) * 1024**2
    limit = _status()["VmSize"] + headroom
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    for case in request["cases"]:
        data = _read(case)
        _reset_peak()
        before = _status()["VmRSS"]
        started = time.perf_counter()
        try:
            _upload(at, state, case, data)
            crash = None
        except BaseException as err:  # a failure of the test harness or the app's process
            crash = f"{type(err).__name__}: {err}"
        seconds = time.perf_counter() - started
        peak = _status()["VmHWM"]
        dataset = at.session_state[state.DATASET] if state.DATASET in at.session_state else None
        result = {
            "name": case["name"],
            "errors": [element.value for element in at.error],
            "exceptions": [str(element.value) for element in at.exception],
            "crash": crash,
            "dataset_spec": at.session_state[state.DATASET_SPEC] if state.DATASET_SPEC in at.session_state else None,
            "dataset_title": getattr(dataset, "title", None),
            "markdown": [element.value for element in at.markdown][-40:],
            "text": [element.value for element in at.text],
            "seconds": seconds,
            "peak_growth_mb": max(0.0, (peak - before) / 1e6),
        }
        del data
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
