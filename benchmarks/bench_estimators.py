"""Speed and scores of each estimator on real Haxby subject 1 VT data, leave-one-run-out.

Run: ``python benchmarks/bench_estimators.py [estimator ...]``. Reads
``tests/data/haxby2001-subj1-vt/`` (see its README); prints, per estimator,
the time and the per-fold scores of face vs cat and of all 8 categories.
"""

import sys
import time
from pathlib import Path

import numpy as np

from decoding_core.config import ESTIMATORS, DecodingConfig
from decoding_core.datasets import load_files
from decoding_core.decoding import decode
from decoding_core.masking import mask_dataset

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "haxby2001-subj1-vt"


def main(names) -> None:
    dataset = load_files(DATA / "bold_vt.nii.gz", DATA / "labels.txt", mask=DATA / "mask_vt.nii.gz")
    masked = mask_dataset(dataset, "uploaded")
    all_categories = tuple(sorted(set(masked.labels)))
    print(f"Haxby subject 1, VT mask: {masked.X.shape[0]} volumes x {masked.X.shape[1]} voxels")
    for name in names:
        for conditions in (("face", "cat"), all_categories):
            config = DecodingConfig(conditions=conditions, mask_name="uploaded", estimator=name)
            start = time.perf_counter()
            result = decode(masked, config, tr=dataset.tr)
            elapsed = time.perf_counter() - start
            print(f"{name:12s} {len(conditions)} classes  {elapsed:6.2f} s  mean={result.mean_score:.3f}  "
                  f"chance={result.chance_level:.3f}  folds={np.round(result.fold_scores, 3).tolist()}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:] or sorted(ESTIMATORS))
