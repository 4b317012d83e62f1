"""Fuzzing the NIfTI reader and the labels parser: only our own error, and no memory blow-up.

`_fuzz.py` runs 10,000 mutated NIfTI files (extreme header fields, flipped bytes,
bad extensions, truncations, appended junk, damaged gzip streams, random bytes) through
`inspect_nifti`, `load_image` and (one in four) `iter_volume_chunks`, and 3,000 mutated
labels tables through `read_labels_table` with and without a volume count, in a
process whose address space is limited to its warmed-up size plus 256 MB.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.security import _fuzz
from tests.security._harness import REPO_ROOT


def run_fuzzer(seed: int, n_nifti: int, n_labels: int) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    completed = subprocess.run(
        [sys.executable, "-m", "tests.security._fuzz", "--seed", str(seed), "--nifti", str(n_nifti),
         "--labels", str(n_labels), "--headroom-mb", "256"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_ten_thousand_mutated_files_raise_only_our_error():
    summary = run_fuzzer(seed=0, n_nifti=10_000, n_labels=3_000)
    print("\nfuzz:", {k: v for k, v in summary.items() if k != "findings"})
    assert summary["nifti_cases"] >= 10_000
    # 2 calls per NIfTI case, 1 in 4 streamed, 2 per labels case.
    assert summary["calls"] == 2 * 10_000 + 10_000 // 4 + 2 * 3_000
    assert summary["n_findings"] == 0, json.dumps(summary["findings"], indent=1)[:6000]
    # Both outcomes occur: the mutations produce readable files and refused ones.
    assert summary["ok"] > 1000 and summary["input_error"] > 1000
    assert summary["peak_growth_mb"] < 64


def test_fuzz_cases_are_reproducible():
    assert _fuzz.nifti_case(123) == _fuzz.nifti_case(123)
    assert _fuzz.labels_case(5) == _fuzz.labels_case(5)
    assert _fuzz.nifti_case(123) != _fuzz.nifti_case(124)
