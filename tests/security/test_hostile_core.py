"""Hostile files through the core and the command line, in a memory-limited process.

Each case runs in its own forked process whose address space is limited to what the
warmed-up core already uses plus `_harness.HEADROOM_MB`; a case that tries to allocate
more fails with MemoryError and the test reports it. A case passes when the app's own
error (`DecodingInputError`, or exit status 2 for the command line) refuses it and the
resident memory grew by less than `_harness.MAX_GROWTH_MB` at its peak. Durations are
printed (``pytest -s``), not asserted; ``benchmarks/hostile_inputs.py`` reports them.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from decoding_core import datasets
from decoding_core.errors import DecodingInputError
from tests.security import hostile
from tests.security._harness import MAX_GROWTH_MB, REPO_ROOT, describe, run_cases
from tests.security.conftest import N_VOLUMES


def assert_all_refused(results: dict, what: str, may_pass=frozenset()) -> None:
    print(f"\n{what}\n{describe(results)}")
    wrong = {name: r for name, r in results.items()
             if r["outcome"] != "input_error" and not (name in may_pass and r["outcome"] == "ok")}
    assert not wrong, f"{what}: not refused with the app's error:\n{describe(wrong)}"
    grown = {name: r for name, r in results.items() if r["peak_growth_mb"] > MAX_GROWTH_MB}
    assert not grown, f"{what}: memory grew more than {MAX_GROWTH_MB} MB:\n{describe(grown)}"


def nifti_cases(paths: dict, **extra) -> list[dict]:
    return [{"name": name, "path": str(path), **extra} for name, path in paths.items()]


@pytest.mark.slow
@pytest.mark.parametrize("target", ["inspect", "inspect_bytes", "load_image", "stream"])
def test_hostile_niftis_are_refused(target, hostile_nifti_paths, valid_func):
    results = run_cases(target, nifti_cases(hostile_nifti_paths),
                        warmup=[{"name": "warmup", "path": str(valid_func)}])
    # A header-only check cannot see what is wrong in the data; the readers must.
    may_pass = hostile.DATA_STAGE_CASES if target in ("inspect", "inspect_bytes") else frozenset()
    if target == "inspect_bytes":  # bytes have no name: a plain .nii is then simply valid
        may_pass = may_pass | {"plain_nifti_named_gz"}
    assert_all_refused(results, f"io.nifti via {target}", may_pass=may_pass)


def test_refusal_messages_name_the_problem(hostile_nifti_paths, valid_func):
    results = run_cases("inspect", nifti_cases(hostile_nifti_paths),
                        warmup=[{"name": "warmup", "path": str(valid_func)}])
    expected = {
        "terabyte_header": "more than the",
        "8gib_header_77_bytes": "8,589.9 MB",
        "gzip_bomb_claiming_4gib": "more than the",
        "extension_negative": "extension",
        "extension_huge": "extension",
        "negative_dimension": "dimensions",
        "offset_past_end": "vox_offset",
        "truncated_data": "truncated",
        "random_bytes": "not a NIfTI image",
        "plain_nifti_named_gz": "not gzip-compressed",
        "complex_dtype": "complex64",
        "3d_as_functional": "must be 4D",
    }
    for name, fragment in expected.items():
        assert fragment in results[name]["message"], (name, results[name]["message"])


@pytest.mark.slow
def test_hostile_niftis_through_load_files(hostile_nifti_paths, valid_func, valid_labels):
    cases = nifti_cases(hostile_nifti_paths, labels=str(valid_labels))
    results = run_cases("load_files", cases, warmup=[
        {"name": "warmup", "path": str(valid_func), "labels": str(valid_labels)}])
    assert_all_refused(results, "datasets.load_files (functional image)")


@pytest.mark.slow
def test_hostile_masks_and_anatomy_through_load_files(hostile_mask_paths, valid_func, valid_labels, valid_mask):
    # Warm both paths (uploaded mask, computed EPI mask) so lazy imports are not counted.
    warmup = [{"name": "warmup", "path": str(valid_func), "labels": str(valid_labels), "mask": str(valid_mask)},
              {"name": "warmup-epi", "path": str(valid_func), "labels": str(valid_labels), "anat": str(valid_mask)}]
    special = {"mask_other_grid", "all_zero_functional"}
    as_mask = [{"name": f"mask:{name}", "path": str(valid_func), "labels": str(valid_labels), "mask": str(path)}
               for name, path in hostile_mask_paths.items() if name not in special - {"mask_other_grid"}]
    # Another grid is fine for an anatomical image (it is resampled).
    as_anat = [{"name": f"anat:{name}", "path": str(valid_func), "labels": str(valid_labels), "anat": str(path)}
               for name, path in hostile_mask_paths.items() if name not in special]
    # A constant image has no brain to find: refused with the app's message, not nilearn's ValueError.
    constant = [{"name": "all_zero_functional", "path": str(hostile_mask_paths["all_zero_functional"]),
                 "labels": str(valid_labels)}]
    assert_all_refused(run_cases("load_files", as_mask + as_anat + constant, warmup=warmup),
                       "datasets.load_files (mask and anatomy)")


@pytest.mark.slow
@pytest.mark.parametrize("n_volumes", [N_VOLUMES, None])
def test_hostile_labels_are_refused(n_volumes, hostile_label_paths, valid_labels):
    cases = [{"name": name, "path": str(path), "n_volumes": n_volumes}
             for name, path in hostile_label_paths.items()
             if not (n_volumes is None and name == "more_rows_than_volumes")]
    cases += [{"name": f"bytes:{c['name']}", "path": c["path"], "n_volumes": n_volumes, "as_bytes": True}
              for c in list(cases)]
    results = run_cases("labels", cases, warmup=[{"name": "warmup", "path": str(valid_labels)}])
    assert_all_refused(results, f"datasets.read_labels_table (n_volumes={n_volumes})")


@pytest.mark.slow
def test_hostile_labels_through_load_files(hostile_label_paths, valid_func, valid_labels):
    cases = [{"name": name, "path": str(valid_func), "labels": str(path)}
             for name, path in hostile_label_paths.items()]
    results = run_cases("load_files", cases, warmup=[
        {"name": "warmup", "path": str(valid_func), "labels": str(valid_labels)}])
    assert_all_refused(results, "datasets.load_files (labels)")


def test_more_rows_than_volumes_names_both_counts(hostile_label_paths):
    with pytest.raises(DecodingInputError, match=r"11 rows but the image has 10 volumes"):
        datasets.read_labels_table(hostile_label_paths["more_rows_than_volumes"], n_volumes=N_VOLUMES)


def test_formula_cells_stay_plain_text(hostile_dir, valid_func):
    """Cells like ``=cmd|' /C calc'!A0`` are labels like any other: kept verbatim, never evaluated."""
    path = hostile_dir / "formulas.csv"
    path.write_bytes(hostile.FORMULA_LABELS)
    table = datasets.read_labels_table(path, n_volumes=N_VOLUMES)
    assert table["labels"].tolist()[:5] == ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1)", '=HYPERLINK("x")']
    dataset = datasets.load_files(valid_func, path, run_column=None)
    assert "=cmd|' /C calc'!A0" in set(dataset.conditions)


# -- the command line -----------------------------------------------------------------------------
CLI_CASES = ("terabyte_header", "gzip_bomb_small_header", "extension_huge", "negative_dimension",
             "offset_past_end", "truncated_gzip", "random_bytes", "plain_nifti_named_gz")


@pytest.mark.slow
def test_hostile_files_through_the_command_line(hostile_nifti_paths, hostile_label_paths, valid_func,
                                                valid_labels):
    """``decoding_core.cli.main(["decode", "--func", ..., "--labels", ...])`` in the limited process."""
    cases = nifti_cases(hostile_nifti_paths, labels=str(valid_labels))
    cases += [{"name": f"labels:{name}", "path": str(valid_func), "labels": str(path)}
              for name, path in hostile_label_paths.items()]
    results = run_cases("cli", cases, warmup=[
        {"name": "warmup", "path": str(valid_func), "labels": str(valid_labels)}])
    assert_all_refused(results, "python -m decoding_core decode")
    assert all(r["message"].startswith("error: ") for r in results.values())


def _limit_memory(limit_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    return apply


@pytest.mark.slow
@pytest.mark.parametrize("with_mask", [False, True], ids=["no mask", "with a mask (read ahead)"])
@pytest.mark.parametrize("case", ["terabyte_header", "gzip_bomb_claiming_4gib", "extension_huge"])
def test_command_line_process_under_a_memory_limit(case, with_mask, hostile_nifti_paths, valid_labels, tmp_path):
    """The real entry point, ``python -m decoding_core``, in a process limited to 1.5 GB of address space.

    With a mask, the entry point starts reading the image in threads before its imports
    (`decoding_core.prefetch`): they must meet the same defences, and leave the message to the command.
    """
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    mask = []
    if with_mask:
        nib.save(nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.eye(4)), tmp_path / "mask.nii.gz")
        mask = ["--mask", str(tmp_path / "mask.nii.gz")]
    completed = subprocess.run(
        [sys.executable, "-m", "decoding_core", "decode", "--func", str(hostile_nifti_paths[case]),
         "--labels", str(valid_labels), *mask, "--quiet"],
        capture_output=True, text=True, env=env, timeout=120, preexec_fn=_limit_memory(1536 * 1024**2),
        cwd=REPO_ROOT,
    )
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.startswith("error: The functional image"), completed.stderr
    assert "Traceback" not in completed.stderr
