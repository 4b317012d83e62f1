"""Speed and scores of each estimator on real Haxby subject 1 VT data, leave-one-run-out.

Run: ``python benchmarks/bench_estimators.py [--repeats N] [estimator ...]``. Reads
``tests/data/haxby2001-subj1-vt/`` (see its README). For face vs cat and for all 8
categories it times, side by side in one run, the reference of issue 13 (a plain
``cross_val_score(SVC(kernel="linear"), X, y, groups=runs, cv=LeaveOneGroupOut())`` on
the same float64 matrix) and the project's `decode` of each estimator (scores, weight,
pattern and stability maps: everything the Results page shows first), and prints each
time, its ratio to the reference (target: 3x or less for 8 categories, 1-2x for face
vs cat), the mean score and the fold scores. Times are the minimum of ``--repeats``
runs (the machine is shared: the minimum is the least disturbed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.svm import SVC

from decoding_core.config import ESTIMATORS, DecodingConfig
from decoding_core.datasets import load_files
from decoding_core.decoding import decode
from decoding_core.masking import mask_dataset, select_conditions

from _timing import best_time  # benchmarks/ is on the path of a script run from it

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "haxby2001-subj1-vt"


def reference_time(masked, conditions, repeats: int) -> float:
    """``cross_val_score(SVC(kernel="linear"))`` on the same float64 matrix, leave-one-run-out."""
    selected = select_conditions(masked, conditions)
    X = np.asarray(selected.X, dtype=np.float64)
    y, runs = np.asarray(selected.labels).astype(str), np.asarray(selected.runs)
    elapsed, _ = best_time(
        lambda: cross_val_score(SVC(kernel="linear"), X, y, groups=runs, cv=LeaveOneGroupOut()), repeats)
    return elapsed


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("estimators", nargs="*", default=list(ESTIMATORS))
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    dataset = load_files(DATA / "bold_vt.nii.gz", DATA / "labels.txt", mask=DATA / "mask_vt.nii.gz")
    masked = mask_dataset(dataset, "uploaded")
    all_categories = tuple(sorted(set(masked.labels) - {"rest"}))
    print(f"Haxby subject 1, VT mask: {masked.X.shape[1]} voxels, leave-one-run-out")
    for conditions, target in ((("face", "cat"), "1-2x"), (all_categories, "3x")):
        reference = reference_time(masked, conditions, args.repeats)
        print(f"\n{len(conditions)} classes: reference cross_val_score(SVC(kernel='linear')) "
              f"{reference:.2f} s (target: within {target})")
        print(f"{'estimator':12s} {'time':>8s} {'ratio':>6s}  {'mean':>6s}  folds")
        for name in args.estimators:
            config = DecodingConfig(conditions=conditions, mask_name="uploaded", estimator=name)
            elapsed, result = best_time(lambda: decode(masked, config, tr=dataset.tr), args.repeats)
            print(f"{name:12s} {elapsed:7.2f}s {elapsed / reference:5.1f}x  {result.mean_score:.4f}  "
                  f"{np.round(result.fold_scores, 3).tolist()}"
                  + (f"  NOT CONVERGED: {result.not_converged} fits" if result.not_converged else ""),
                  flush=True)


if __name__ == "__main__":
    main()
