"""8-class and face-vs-cat LORO on real Haxby subject 1 VT, per estimator."""
import time, sys
import numpy as np
from decoding_core.datasets import load_files
from decoding_core.masking import mask_dataset
from decoding_core.config import DecodingConfig, ESTIMATORS
from decoding_core.decoding import decode
D = "/work/shared/data/haxby2001-subj1-vt/"
ds = load_files(D + "bold_vt.nii.gz", D + "labels.txt", mask=D + "mask_vt.nii.gz")
m = mask_dataset(ds, "uploaded")
eight = tuple(sorted(set(m.labels)))
which = sys.argv[1:] or sorted(ESTIMATORS)
for name in which:
    for conds in (("face", "cat"), eight):
        cfg = DecodingConfig(conditions=conds, mask_name="uploaded", estimator=name)
        t = time.perf_counter(); r = decode(m, cfg, tr=ds.tr); el = time.perf_counter() - t
        print(f"{name:12s} {len(conds)} classes  {el:6.2f}s  mean={r.mean_score:.3f}  folds={np.round(r.fold_scores, 2).tolist()}", flush=True)
