"""Run cases through `_child.py` (a separate, memory-limited process) and read the results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
#: Run as ``python -m`` from the repository root, so it imports its siblings as ``tests.security``.
CHILD_MODULE = "tests.security._child"
#: Largest growth of the resident set accepted for a refused hostile input (MB).
MAX_GROWTH_MB = 48
#: Address-space headroom given to the memory-limited process (MB): a case that tries
#: to allocate more fails with MemoryError, reported as a finding.
HEADROOM_MB = 256


def run_cases(target: str, cases: list[dict], *, warmup: list[dict] | None = None,
              headroom_mb: int = HEADROOM_MB, timeout_s: float = 30.0) -> dict[str, dict]:
    """Run ``cases`` (dicts with ``name``, ``path``, ...) through ``target``; name -> result."""
    request = {"target": target, "cases": cases, "warmup": warmup or [], "headroom_mb": headroom_mb,
               "timeout_s": timeout_s}
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    completed = subprocess.run(
        [sys.executable, "-m", CHILD_MODULE], input=json.dumps(request), capture_output=True, text=True,
        cwd=REPO_ROOT, env=env, timeout=timeout_s * (len(cases) + len(warmup or []) + 2),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = {}
    for line in completed.stdout.splitlines():
        result = json.loads(line)
        results[result["name"]] = result
    assert set(results) == {case["name"] for case in cases}, completed.stderr[-3000:]
    return results


def describe(results: dict[str, dict]) -> str:
    """One line per case, for failure messages and the benchmark's table."""
    return "\n".join(
        f"{name:36s} {r['outcome']:12s} {r['seconds']:7.3f} s {r['peak_growth_mb']:7.1f} MB  {r['message'][:110]}"
        for name, r in results.items()
    )
