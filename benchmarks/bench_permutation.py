"""Time the permutation test against scikit-learn's ``permutation_test_score``.

Face vs cat, ventral temporal mask, leave-one-run-out, linear SVC (C=1):

1. on the built-in simulated data set: ``significance.permutation_test``
   (1000 permutations, one worker, then all cores) beside
   ``sklearn.model_selection.permutation_test_score`` with ``n_jobs=1`` on the
   same matrix, folds and seed. scikit-learn runs fewer permutations by
   default (``--sklearn-permutations``) and its time is extrapolated linearly
   to the same count; both draw the same permutations in the same order, so
   the null scores they share are compared one by one;
2. on the real Haxby subject-1 VT data in ``tests/data`` (216 samples x 577
   voxels), side by side in one run and all measured (nothing extrapolated):
   the project's test (one worker, all cores), scikit-learn's
   ``permutation_test_score`` (``n_jobs=1``, and all cores), both at the full
   count and seed, their p-values and null scores compared, the speed ratios;
   then the command line end to end (``python -m decoding_core decode ...
   --permutations N --seed S --json`` in a fresh process: start-up, reading the
   file, decoding and the test).

Run from the repository root::

    python benchmarks/bench_permutation.py [--n-permutations 1000] [--sklearn-permutations 200]
    python benchmarks/bench_permutation.py --skip-simulated   # the real data only
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut, permutation_test_score
from sklearn.svm import SVC

from decoding_core.config import DecodingConfig
from decoding_core.datasets import load_simulated
from decoding_core.masking import (
    MaskedData,
    clean_signals,
    extract_masked_voxels,
    mask_dataset,
    select_conditions,
)
from decoding_core.significance import dummy_scores, permutation_test

REPO_ROOT = Path(__file__).resolve().parents[1]
HAXBY_VT_DIR = REPO_ROOT / "tests" / "data" / "haxby2001-subj1-vt"
CONFIG = DecodingConfig(conditions=("face", "cat"), mask_name="vt", estimator="svc", C=1.0,
                        cv="leave-one-run-out")


def real_face_cat() -> MaskedData:
    mask_img = nib.load(HAXBY_VT_DIR / "mask_vt.nii.gz")
    raw = extract_masked_voxels(HAXBY_VT_DIR / "bold_vt.nii.gz", {"vt": mask_img})["vt"]
    table = pd.read_csv(HAXBY_VT_DIR / "labels.txt", sep=r"\s+")
    masked = MaskedData(
        X=clean_signals(raw, standardize=True), labels=table["labels"].to_numpy(dtype=str),
        runs=table["chunks"].to_numpy(), volume_index=np.arange(len(table)), mask_img=mask_img,
        mask_name="vt",
    )
    return select_conditions(masked, CONFIG.conditions)


def describe(result) -> str:
    return (
        f"observed {result.observed_score:.4f}, p = {result.p_value:.4g} "
        f"(minimum {result.min_p_value:.4g}), null mean {result.null_mean:.4f} "
        f"sd {np.std(result.null_scores):.4f}, max {np.max(result.null_scores):.4f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-permutations", type=int, default=1000)
    parser.add_argument("--sklearn-permutations", type=int, default=200,
                        help="permutations run by scikit-learn (its time is extrapolated)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-real", action="store_true", help="skip the real Haxby data")
    parser.add_argument("--skip-simulated", action="store_true", help="only the real Haxby data")
    args = parser.parse_args()
    n_ours, n_sklearn = args.n_permutations, min(args.sklearn_permutations, args.n_permutations)
    if args.skip_simulated:
        compare_on_real_data(n_ours, args.seed)
        return

    load_before = load_average()
    masked = select_conditions(mask_dataset(load_simulated(), "vt"), CONFIG.conditions)
    print(f"Simulated data, face vs cat: {masked.X.shape[0]} samples x {masked.X.shape[1]} voxels, "
          f"{len(np.unique(masked.runs))} runs; leave-one-run-out, SVC(kernel='linear', C=1)")
    chance = dummy_scores(masked, CONFIG)
    print(f"  dummy classifiers: most_frequent {chance['most_frequent'].mean():.3f}, "
          f"stratified {chance['stratified'].mean():.3f}")

    start, cpu_start = time.perf_counter(), time.process_time()
    serial = permutation_test(masked, CONFIG, n_permutations=n_ours, seed=args.seed, n_jobs=1)
    ours_serial, ours_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    start = time.perf_counter()
    parallel = permutation_test(masked, CONFIG, n_permutations=n_ours, seed=args.seed, n_jobs=-1)
    ours_parallel = time.perf_counter() - start
    assert np.array_equal(serial.null_scores, parallel.null_scores)

    start, cpu_start = time.perf_counter(), time.process_time()
    sk_score, sk_null, sk_p = permutation_test_score(
        SVC(kernel="linear", C=1.0), masked.X, masked.labels, groups=masked.runs,
        cv=LeaveOneGroupOut(), n_permutations=n_sklearn, random_state=args.seed, n_jobs=1,
    )
    sklearn_seconds, sklearn_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    # Each call fits the real labels once, then one cross-validation per permutation.
    sklearn_extrapolated = sklearn_seconds * (n_ours + 1) / (n_sklearn + 1)
    sklearn_cpu_extrapolated = sklearn_cpu * (n_ours + 1) / (n_sklearn + 1)

    shared_difference = np.max(np.abs(serial.null_scores[:n_sklearn] - sk_null))
    sk_p_on_ours = (np.sum(serial.null_scores[:n_sklearn] >= serial.observed_score) + 1) / (n_sklearn + 1)
    print(f"  (load average before: {load_before}; wall times grow when other processes share the cores,"
          " CPU times much less)")
    print(f"  ours ({serial.method}), {n_ours} permutations, 1 worker: {ours_serial:7.2f} s wall, "
          f"{ours_cpu:7.2f} s CPU")
    print(f"  ours, {n_ours} permutations, all cores ({parallel.n_jobs} workers): {ours_parallel:7.2f} s wall")
    label = "measured" if n_sklearn == n_ours else f"extrapolated from {n_sklearn} permutations in {sklearn_seconds:.2f} s"
    print(f"  scikit-learn permutation_test_score, n_jobs=1: {sklearn_extrapolated:7.2f} s wall, "
          f"{sklearn_cpu_extrapolated:7.2f} s CPU ({label})")
    print(f"  speed-up: {sklearn_extrapolated / ours_serial:.1f}x wall ({sklearn_cpu_extrapolated / ours_cpu:.1f}x CPU) "
          f"on 1 worker, {sklearn_extrapolated / ours_parallel:.1f}x wall on all cores")
    print(f"  observed score: ours {serial.observed_score:.6f}, scikit-learn {sk_score:.6f}")
    print(f"  first {n_sklearn} null scores equal: {shared_difference == 0} "
          f"(max |difference| {shared_difference:.1e}); p over them: ours {sk_p_on_ours:.4g}, "
          f"scikit-learn {sk_p:.4g}")
    print(f"  ours, {n_ours} permutations: {describe(serial)}")

    if args.skip_real:
        return
    compare_on_real_data(n_ours, args.seed)


def timed(function):
    """``function()``'s value, its wall time and its CPU time in this process, in seconds."""
    start, cpu_start = time.perf_counter(), time.process_time()
    value = function()
    return value, time.perf_counter() - start, time.process_time() - cpu_start


def time_cli(n_permutations: int, seed: int) -> tuple[dict, float]:
    """The command line's decode with a permutation test, end to end in a fresh process."""
    command = [sys.executable, "-m", "decoding_core", "decode", "--func", HAXBY_VT_DIR / "bold_vt.nii.gz",
               "--labels", HAXBY_VT_DIR / "labels.txt", "--mask", HAXBY_VT_DIR / "mask_vt.nii.gz",
               "--conditions", *CONFIG.conditions, "--cv", CONFIG.cv, "--permutations", n_permutations,
               "--seed", seed, "--json"]
    start = time.perf_counter()
    completed = subprocess.run([str(part) for part in command], cwd=REPO_ROOT, capture_output=True, text=True,
                               check=True)
    return json.loads(completed.stdout), time.perf_counter() - start


def compare_on_real_data(n_permutations: int, seed: int) -> None:
    """Real subject-1 VT face vs cat: the project beside scikit-learn, every figure measured."""
    real = real_face_cat()
    print(f"\nReal Haxby subject 1, VT, face vs cat: {real.X.shape[0]} samples x {real.X.shape[1]} voxels, "
          f"{len(np.unique(real.runs))} runs; {n_permutations} permutations, seed {seed}, all measured")
    print(f"  (load average before: {load_average()}; {os.cpu_count()} cores)")
    chance = dummy_scores(real, CONFIG)
    print(f"  dummy classifiers: most_frequent {chance['most_frequent'].mean():.3f}, "
          f"stratified {chance['stratified'].mean():.3f}")

    rows = {}
    for jobs in (1, -1):
        result, wall, cpu = timed(lambda jobs=jobs: permutation_test(
            real, CONFIG, n_permutations=n_permutations, seed=seed, n_jobs=jobs))
        name = "project, 1 worker" if jobs == 1 else f"project, all cores ({result.n_jobs} used)"
        rows[name] = (result.observed_score, result.null_scores, result.p_value, wall, cpu, jobs)
    for jobs in (1, -1):
        (score, null, p_value), wall, cpu = timed(lambda jobs=jobs: permutation_test_score(
            SVC(kernel="linear", C=1.0), real.X, real.labels, groups=real.runs, cv=LeaveOneGroupOut(),
            n_permutations=n_permutations, random_state=seed, n_jobs=jobs))
        rows[f"scikit-learn, n_jobs={jobs}"] = (score, null, p_value, wall, cpu, jobs)

    print(f"  {'':28s} {'wall s':>8s} {'CPU s*':>8s} {'score':>8s} {'p-value':>9s} {'null mean':>10s}")
    for name, (score, null, p_value, wall, cpu, _) in rows.items():
        print(f"  {name:28s} {wall:8.2f} {cpu:8.2f} {score:8.4f} {p_value:9.4g} {np.mean(null):10.4f}")
    print("  * CPU of this process only (joblib's worker processes are not counted)")
    (ours1, oursall, sk1, skall) = rows.values()
    print(f"  speed-up, same workers: {sk1[3] / ours1[3]:.1f}x on 1 (scikit-learn n_jobs=1 / project 1 worker), "
          f"{skall[3] / oursall[3]:.1f}x on all cores; project on all cores vs scikit-learn n_jobs=1: "
          f"{sk1[3] / oursall[3]:.1f}x")
    same_null = all(np.array_equal(row[1], sk1[1]) for row in rows.values())
    print(f"  p-values: project {ours1[2]:.6g}, scikit-learn {sk1[2]:.6g}; null scores identical in all four: "
          f"{same_null} (max |difference| {np.max(np.abs(ours1[1] - sk1[1])):.1e})")

    summary, wall = time_cli(n_permutations, seed)
    print(f"  command line end to end (fresh process: start-up, reading the file, decoding, the test): "
          f"{wall:.2f} s wall; mean score {summary['mean_score']:.4f}, p = {summary['p_value']:.6g}, "
          f"null scores equal to scikit-learn's: {np.array_equal(summary['null_scores'], sk1[1])}")


def load_average() -> str:
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "?"


if __name__ == "__main__":
    main()
