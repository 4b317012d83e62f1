"""Hostile uploads through the Data page's upload widget (AppTest), under a memory limit.

Each case is uploaded with the page's file uploaders and loaded with its button in a
process limited to the warmed-up app's address space plus 256 MB. The page must show
the app's own error (no traceback), keep the data set loaded before, and grow by less
than `_harness.MAX_GROWTH_MB` at its peak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.security._harness import MAX_GROWTH_MB, REPO_ROOT

CHILD_MODULE = "tests.security._upload_child"


def run_uploads(cases: list[dict], warmup: list[dict], tmp_path) -> dict:
    request = {"cases": cases, "warmup": warmup, "headroom_mb": 256}
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               DECODING_LAB_DATA_DIR=os.environ.get("DECODING_LAB_DATA_DIR", str(tmp_path)))
    completed = subprocess.run([sys.executable, "-m", CHILD_MODULE], input=json.dumps(request), capture_output=True,
                               text=True, cwd=REPO_ROOT, env=env, timeout=1200)
    assert completed.returncode == 0, completed.stderr[-4000:]
    results = {}
    for line in completed.stdout.splitlines():
        result = json.loads(line)
        results[result["name"]] = result
    assert set(results) == {case["name"] for case in cases}, completed.stderr[-4000:]
    return results


def describe(results: dict) -> str:
    return "\n".join(
        f"{name:34s} {r['seconds']:6.2f} s {r['peak_growth_mb']:6.1f} MB exc={bool(r['exceptions'])} "
        f"crash={r['crash']} errors={[e[:90] for e in r['errors']]}"
        for name, r in results.items()
    )


@pytest.fixture(scope="module")
def upload_results(hostile_nifti_paths, hostile_label_paths, hostile_mask_paths, valid_func, valid_labels,
                   valid_mask, tmp_path_factory):
    cases = [{"name": f"func:{name}", "func": str(path), "func_name": path.name,
              "labels": str(valid_labels), "labels_name": "labels.txt"}
             for name, path in hostile_nifti_paths.items()]
    cases += [{"name": f"labels:{name}", "func": str(valid_func), "func_name": "bold.nii.gz",
               "labels": str(path), "labels_name": path.name}
              for name, path in hostile_label_paths.items()]
    cases += [{"name": f"mask:{name}", "func": str(valid_func), "func_name": "bold.nii.gz",
               "labels": str(valid_labels), "labels_name": "labels.txt", "mask": str(path)}
              for name, path in hostile_mask_paths.items() if name != "all_zero_functional"]
    # A valid upload whose names try markup and path traversal: loaded, names shown inert.
    cases.append({"name": "valid:hostile_names", "func": str(valid_func),
                  "func_name": "<img src=x onerror=alert(1)>..\\..\\evil.nii.gz",
                  "labels": str(valid_labels), "labels_name": "![x](javascript:alert(1)).txt",
                  "mask": str(valid_mask), "mask_name": "..\\..\\passwd.nii"})
    warmup = [{"name": "warmup", "func": str(valid_func), "func_name": "bold.nii.gz",
               "labels": str(valid_labels), "labels_name": "labels.txt", "mask": str(valid_mask)}]
    results = run_uploads(cases, warmup, tmp_path_factory.mktemp("uploads"))
    print("\n" + describe(results))
    return results


def test_hostile_uploads_show_the_apps_error_and_keep_the_app_usable(upload_results):
    # The page names its files by content, never by the uploaded name: a plain .nii named
    # .nii.gz is simply a valid image there, and loads.
    renamed = upload_results["func:plain_nifti_named_gz"]
    assert not renamed["exceptions"] and not any("gzip" in e for e in renamed["errors"]), renamed
    hostile_results = {name: r for name, r in upload_results.items()
                       if not name.startswith("valid:") and name != "func:plain_nifti_named_gz"}
    crashed = {n: r for n, r in hostile_results.items() if r["exceptions"] or r["crash"]}
    assert not crashed, describe(crashed)
    silent = {n: r for n, r in hostile_results.items() if not r["errors"]}
    assert not silent, "no error shown:\n" + describe(silent)
    foreign = {n: r for n, r in hostile_results.items()
               if any("Traceback" in e or "Something went wrong" in e for e in r["errors"])}
    assert not foreign, "not the app's own message:\n" + describe(foreign)
    # The data set loaded before (the warm-up upload) is still the one in use.
    changed = {n: r for n, r in hostile_results.items() if r["dataset_spec"] != "upload"}
    assert not changed, describe(changed)


def test_hostile_uploads_stay_within_the_memory_bound(upload_results):
    grown = {n: r for n, r in upload_results.items() if r["peak_growth_mb"] > MAX_GROWTH_MB}
    assert not grown, describe(grown)


def test_refusals_say_what_is_wrong(upload_results):
    expected = {
        "func:terabyte_header": "more than the",
        "func:gzip_bomb_small_header": "holds more data than its header describes",
        "func:extension_huge": "invalid header extension",
        "func:random_bytes": "not a NIfTI image",
        "labels:five_million_columns": "characters long",
        "labels:more_rows_than_volumes": "11 rows but the image has 10 volumes",
        "labels:binary_junk": "binary, not a text table",
        "mask:mask_bomb_within_budget": "has shape (800, 800, 800)",
    }
    for name, fragment in expected.items():
        assert any(fragment in error for error in upload_results[name]["errors"]), (name, upload_results[name])


def test_uploaded_names_are_shown_inert_and_never_used_as_paths(upload_results):
    result = upload_results["valid:hostile_names"]
    assert not result["exceptions"] and not result["errors"], result
    assert result["dataset_spec"] == "upload"
    shown = "\n".join(result["text"] + result["markdown"])
    assert "evil.nii.gz" in shown  # the name is shown...
    for dangerous in ("<img", "](javascript", "onerror=alert(1)>", "\\", "![x]"):
        assert dangerous not in shown  # ...without markup or path separators
