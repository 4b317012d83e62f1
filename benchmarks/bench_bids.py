"""BIDS input: loading and masking the runs, and trial betas, beside plain nilearn.

Run: ``python benchmarks/bench_bids.py [--repeats N]``. Reads
``tests/data/haxby2001-subj1-bids/`` (12 real runs, see its README) and prints, side by side:

* the project's `load_bids` (first load: the runs are joined into one file in a fresh
  cache; then again with another lag: the joined file is reused) followed by `mask_dataset`,
  against nilearn's ``concat_imgs`` of the 12 run files then
  ``NiftiMasker(mask, standardize="zscore_sample").fit_transform``, and the largest
  difference between the two matrices;
* `trial_betas` by LSA and by LSS on the simulated event-related data set (3 runs, 16
  trials each), with the number of ``FirstLevelModel`` fits each makes.

Times are the minimum of ``--repeats`` runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np

from decoding_core.datasets import load_bids
from decoding_core.datasets.simulation import simulate_event_related
from decoding_core.events import trial_betas
from decoding_core.masking import mask_dataset

from _timing import best_time  # benchmarks/ is on the path of a script run from it

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
BIDS = DATA / "haxby2001-subj1-bids"
MASK = DATA / "haxby2001-subj1-slice" / "mask.nii.gz"


def project_first_load():
    with tempfile.TemporaryDirectory() as cache:
        dataset = load_bids(BIDS, subject="1", task="objectviewing", mask=MASK, cache_dir=cache)
        return mask_dataset(dataset, "uploaded").X


def nilearn_reference():
    from nilearn.image import concat_imgs
    from nilearn.maskers import NiftiMasker

    runs = sorted((BIDS / "sub-1" / "func").glob("*_bold.nii.gz"))
    masker = NiftiMasker(mask_img=str(MASK), standardize="zscore_sample")
    return masker.fit_transform(concat_imgs([str(run) for run in runs]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    first, ours = best_time(project_first_load, args.repeats)
    cache = tempfile.mkdtemp(prefix="bench-bids-")
    load_bids(BIDS, subject="1", task="objectviewing", mask=MASK, cache_dir=cache)
    again, _ = best_time(lambda: mask_dataset(load_bids(BIDS, subject="1", task="objectviewing", hrf_lag=5,
                                                        mask=MASK, cache_dir=cache), "uploaded").X, args.repeats)
    reference, theirs = best_time(nilearn_reference, args.repeats)
    print(f"12 runs x 121 volumes, {ours.shape[1]} voxels (minimum of {args.repeats} runs)")
    print(f"  nilearn concat_imgs + NiftiMasker           {reference:6.2f} s")
    print(f"  load_bids + mask_dataset, first load        {first:6.2f} s  ({first / reference:.1f}x)")
    print(f"  load_bids + mask_dataset, joined file kept  {again:6.2f} s  ({again / reference:.1f}x)")
    print(f"  largest difference of the matrices: {np.abs(ours - theirs).max():.2e}")

    sim = simulate_event_related(seed=0)
    n_trials = sum(len(events) for events in sim.events)
    for method, fits in (("lsa", len(sim.events)), ("lss", n_trials)):
        seconds, _ = best_time(lambda: trial_betas(sim.run_imgs, sim.events, sim.tr, method=method,
                                                   mask_img=sim.mask_img), args.repeats)
        print(f"  trial_betas {method}: {n_trials} trials, {fits} FirstLevelModel fits  {seconds:6.2f} s")


if __name__ == "__main__":
    main()
