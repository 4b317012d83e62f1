"""Benchmark: streamed masking vs nilearn's NiftiMasker vs decompressing only.

Usage::

    python benchmarks/bench_masking.py            # Haxby size: 40x64x64x1452 int16 (~300 MB .nii.gz)
    python benchmarks/bench_masking.py --small    # 150 volumes, for a quick run
    python benchmarks/bench_masking.py --repeats 5

The image and masks (464-voxel VT-like blob, ~37k-voxel whole brain) are
generated once under benchmarks/_work/. Every measurement runs in a fresh
Python process, which reports its wall time for the work (imports excluded)
and its peak RSS (``ru_maxrss``, imports included); the figures printed are
medians over the repeats. Other processes on the machine skew timings: the
load average is printed with the results.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHUNK = 16 * 1024**2


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------
# Child processes: one measurement each
# --------------------------------------------------------------------------------------


def child(mode: str, image: str, vt: str, brain: str) -> dict:
    import numpy as np

    if mode in ("decompress-isal", "decompress-zlib"):
        import gzip

        from isal import igzip

        opener = igzip.open if mode == "decompress-isal" else gzip.open
        buffer = bytearray(CHUNK)
        start = time.perf_counter()
        total = 0
        with opener(image, "rb") as stream:
            while n := stream.readinto(buffer):
                total += n
        return {"seconds": time.perf_counter() - start, "bytes": total}

    if mode.startswith("nilearn"):
        import warnings

        from nilearn.maskers import NiftiMasker

        mask = vt if mode == "nilearn-vt" else brain
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        X = NiftiMasker(mask_img=mask, standardize="zscore_sample", reports=False).fit_transform(image)
        return {"seconds": time.perf_counter() - start, "shape": list(X.shape)}

    if mode.startswith("ours"):
        from decoding_core.masking import clean_signals, extract_masked_voxels
        from decoding_core.io.nifti import load_image

        names = {"ours-both": ["vt", "brain"], "ours-vt": ["vt"], "ours-brain": ["brain"]}[mode]
        paths = {"vt": vt, "brain": brain}
        start = time.perf_counter()
        masks = {n: load_image(paths[n], expected_ndim=3, kind="mask") for n in names}
        raw = extract_masked_voxels(image, masks)
        cleaned = {n: clean_signals(raw[n], standardize=True, copy=False) for n in names}
        seconds = time.perf_counter() - start
        return {"seconds": seconds, "shape": {n: list(x.shape) for n, x in cleaned.items()}}

    if mode == "equality":
        import warnings

        from nilearn.maskers import NiftiMasker

        from decoding_core.masking import clean_signals, extract_masked_voxels
        from decoding_core.io.nifti import load_image

        warnings.simplefilter("ignore")
        result = {}
        masks = {"vt": load_image(vt, expected_ndim=3), "brain": load_image(brain, expected_ndim=3)}
        raw = extract_masked_voxels(image, masks)
        for name, path in (("vt", vt), ("brain", brain)):
            for standardize in ("zscore_sample", None):
                reference = NiftiMasker(mask_img=path, standardize=standardize, reports=False).fit_transform(image)
                ours = clean_signals(raw[name], standardize=standardize is not None)
                result[f"{name}, standardize={standardize}"] = {
                    "max_abs_diff": float(np.abs(ours - reference).max()),
                    "max_abs_value": float(np.abs(reference).max()),
                    "shape": list(ours.shape),
                }
        return result
    raise ValueError(mode)


def run_child(mode: str, paths: dict) -> dict:
    command = [sys.executable, __file__, "--child", mode, str(paths["image"]), str(paths["vt"]), str(paths["brain"])]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------
# Parent: generate data, run children, print the table
# --------------------------------------------------------------------------------------


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="150 volumes instead of 1452")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", nargs=4, metavar=("MODE", "IMAGE", "VT", "BRAIN"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = child(*args.child)
        result["peak_rss_mb"] = _peak_rss_mb()
        print(json.dumps(result))
        return

    from _synthetic import ensure_data

    started = time.perf_counter()
    paths = ensure_data(small=args.small)
    print(f"data ready in {time.perf_counter() - started:.1f} s: {paths['image']} "
          f"({paths['image'].stat().st_size / 1e6:.1f} MB)")
    import nibabel as nib
    import numpy as np

    shape = nib.load(paths["image"]).shape
    n_vt = int(np.count_nonzero(nib.load(paths["vt"]).get_fdata()))
    n_brain = int(np.count_nonzero(nib.load(paths["brain"]).get_fdata()))
    print(f"image {shape} int16, {np.prod(shape) * 2 / 1e6:.1f} MB raw; masks: vt {n_vt} voxels, "
          f"brain {n_brain} voxels")

    modes = ["decompress-isal", "decompress-zlib", "ours-vt", "ours-both", "ours-brain", "nilearn-vt", "nilearn-brain"]
    results = {mode: [] for mode in modes}
    for repeat in range(args.repeats):
        for mode in modes:
            results[mode].append(run_child(mode, paths))
        print(f"  repeat {repeat + 1}/{args.repeats} done; load average {os.getloadavg()[0]:.2f}", flush=True)

    medians = {m: (statistics.median(r["seconds"] for r in rs), statistics.median(r["peak_rss_mb"] for r in rs))
               for m, rs in results.items()}
    print(f"\nmedians of {args.repeats} fresh processes (time excludes imports; RSS includes them)")
    print(f"{'mode':<18}{'seconds':>10}{'peak RSS MB':>14}   all times")
    for mode in modes:
        seconds, rss = medians[mode]
        all_times = ", ".join(f"{r['seconds']:.2f}" for r in results[mode])
        print(f"{mode:<18}{seconds:>10.2f}{rss:>14.0f}   {all_times}")
    isal = medians["decompress-isal"][0]
    print("\nratios")
    for mode in ("ours-vt", "ours-both", "ours-brain"):
        nilearn_mode = "nilearn-brain" if mode == "ours-brain" else "nilearn-vt"
        print(f"  {mode:<11} / decompress-isal = {medians[mode][0] / isal:.2f}   "
              f"{nilearn_mode} / {mode} = {medians[nilearn_mode][0] / medians[mode][0]:.1f}x")
    print(f"  load average now: {', '.join(f'{v:.2f}' for v in os.getloadavg())} (2 cores)")

    print("\nequality with NiftiMasker (max |ours - nilearn|):")
    for key, value in run_child("equality", paths).items():
        if key == "peak_rss_mb":
            continue
        print(f"  {key:<32} {value['max_abs_diff']:.3g} (values up to {value['max_abs_value']:.3g}), "
              f"shape {tuple(value['shape'])}")


if __name__ == "__main__":
    main()
