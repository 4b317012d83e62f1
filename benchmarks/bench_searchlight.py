"""Time the project's searchlight against nilearn's ``SearchLight``, side by side in one run.

The real Haxby subject-1 VT data in ``tests/data`` (577 voxels), face vs cat, leave one run
out, linear SVC (C=1), each voxel z-scored over the series (the project's default
cleaning), spheres of radius 5.6 mm:

- **project**: ``decoding_core.searchlight.searchlight`` on the masked, cleaned matrix
  (spheres built, folds split, every sphere scored);
- **nilearn**: ``nilearn.decoding.SearchLight(mask_img, radius, SVC(kernel="linear"),
  cv=LeaveOneGroupOut(), n_jobs=1).fit(imgs, y, groups=runs)`` on the same cleaned samples
  put back into a 4D image, so both see the same numbers.

Both run ``--repeat`` times, alternating; the table gives the median wall-clock and CPU
times (the CPU time is the fairer figure on a machine other jobs share), the ratio, and
whether the 577 scores are the same.

Run from the repository root::

    python benchmarks/bench_searchlight.py [--radius 5.6] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
from nilearn.decoding import SearchLight
from sklearn.model_selection import LeaveOneGroupOut
from sklearn.svm import SVC

from decoding_core import datasets, masking
from decoding_core.config import DecodingConfig
from decoding_core.searchlight import searchlight

REPO_ROOT = Path(__file__).resolve().parents[1]
HAXBY_VT_DIR = REPO_ROOT / "tests" / "data" / "haxby2001-subj1-vt"


def timed(function):
    """(value, wall seconds, CPU seconds of this process) of ``function()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = function()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--radius", type=float, default=5.6, help="sphere radius in mm (default 5.6)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (default 3)")
    args = parser.parse_args()

    dataset = datasets.load_files(HAXBY_VT_DIR / "bold_vt.nii.gz", HAXBY_VT_DIR / "labels.txt",
                                  mask=HAXBY_VT_DIR / "mask_vt.nii.gz")
    config = DecodingConfig(conditions=("face", "cat"), mask_name=next(iter(dataset.masks)), estimator="svc",
                            C=1.0, cv="leave-one-run-out")
    masked = masking.mask_dataset(dataset, config.mask_name)  # z-scored over the series
    selected = masking.select_conditions(masked, config.conditions)
    images = masking.unmask(selected.X, masked.mask_img)  # the same cleaned samples, as nilearn's input

    def project():
        return searchlight(masked, config, args.radius).scores

    def nilearn():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "custom estimator at your own risk"
            light = SearchLight(mask_img=masked.mask_img, radius=args.radius, estimator=SVC(kernel="linear", C=1.0),
                                cv=LeaveOneGroupOut(), n_jobs=1)
            return light.fit(images, selected.labels, groups=selected.runs).masked_scores_

    times = {"project": [], "nilearn": []}
    scores = {}
    for _ in range(args.repeat):
        for name, function in (("nilearn", nilearn), ("project", project)):
            scores[name], wall, cpu = timed(function)
            times[name].append((wall, cpu))

    n_spheres = len(scores["project"])
    difference = float(np.max(np.abs(scores["project"] - scores["nilearn"])))
    median = {name: (statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs))
              for name, runs in times.items()}
    print(f"Searchlight, Haxby subject 1 VT ({n_spheres} spheres, radius {args.radius:g} mm), face vs cat "
          f"({len(selected.labels)} samples), leave one run out (12 folds), SVC(kernel='linear', C=1), "
          f"z-scored; median of {args.repeat} runs")
    print(f"{'':32} {'wall (s)':>10} {'CPU (s)':>10} {'per sphere (ms, CPU)':>22}")
    for name, label in (("nilearn", "nilearn SearchLight(n_jobs=1)"), ("project", "project searchlight")):
        wall, cpu = median[name]
        print(f"{label:32} {wall:10.2f} {cpu:10.2f} {cpu / n_spheres * 1e3:22.2f}")
    print(f"{'speed-up (nilearn / project)':32} {median['nilearn'][0] / median['project'][0]:9.1f}x "
          f"{median['nilearn'][1] / median['project'][1]:9.1f}x")
    print(f"same scores: {np.array_equal(scores['project'], scores['nilearn'])} "
          f"(largest difference {difference:.3g} over {n_spheres} voxels; mean score "
          f"{np.mean(scores['project']):.4f}, best {np.max(scores['project']):.4f})")


if __name__ == "__main__":
    main()
