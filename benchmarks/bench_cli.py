"""Benchmark: the command line end to end vs the nilearn tutorial script, on a Haxby-size file.

Usage::

    python benchmarks/bench_cli.py                 # 40x64x64x1452 int16 .nii.gz (~300 MB), once each
    python benchmarks/bench_cli.py --repeats 3     # medians of 3 alternated runs

The image (a synthetic Haxby-size series, see ``_synthetic.py``) and the 464-voxel
VT-like mask are generated once under ``benchmarks/_work/``; the labels are subject 2's
real per-volume table (``tests/data/haxby2001-labels/subj2_labels.txt``: 1452 rows,
12 runs). Face vs cat, leave-one-run-out, linear SVC (C=1), z-scored voxels.

Each side runs in a fresh Python process and is timed from outside, start-up and
imports included, as a user waits for it:

* ``cli``: ``python -m decoding_core decode --func ... --labels ... --mask ...
  --conditions face cat --cv leave-one-run-out --json``;
* ``nilearn``: the tutorial script, ``NiftiMasker(mask_img=mask,
  standardize="zscore_sample").fit_transform(func)``, the face and cat volumes,
  ``cross_val_score(SVC(kernel="linear"), X, y, groups=runs, cv=LeaveOneGroupOut())``.

For scale, one decompression of the file (isal, the fastest reader there is) is
timed too. The command line reads the file in a child process forked before its
imports (`decoding_core.prefetch`), so the two overlap: its floor is about the
larger of the imports (about 2 s, scikit-learn's alone 1.9 s) and one read. The two mean
scores must agree (the data are noise, so they sit near chance: the check is that
both compute the same thing, fold by fold). The file is read once before timing so
that both sides find it in the page cache.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
LABELS = REPO_ROOT / "tests" / "data" / "haxby2001-labels" / "subj2_labels.txt"
CONDITIONS = ("face", "cat")
CHUNK = 16 * 1024**2

#: The nilearn tutorial's decoding, as a user would write it (run as ``python -c``).
NILEARN_SCRIPT = """
import json, sys, warnings
import numpy as np
import pandas as pd
from nilearn.maskers import NiftiMasker
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.svm import SVC

func, labels_path, mask = sys.argv[1:4]
warnings.simplefilter("ignore")
labels = pd.read_csv(labels_path, sep=" ")
X = NiftiMasker(mask_img=mask, standardize="zscore_sample").fit_transform(func)
selected = labels["labels"].isin(["face", "cat"]).to_numpy()
scores = cross_val_score(SVC(kernel="linear"), X[selected], labels["labels"][selected],
                         groups=labels["chunks"][selected], cv=LeaveOneGroupOut())
print(json.dumps({"fold_scores": scores.tolist(), "mean_score": float(np.mean(scores)),
                  "n_samples": int(selected.sum()), "n_voxels": int(X.shape[1])}))
"""


#: Runs ``python -m decoding_core ARGS`` and prints, at exit, the bytes it read (``rchar`` of
#: /proc/self/io: every read, page cache or not, its reaped children's included, such as the
#: child that reads the image ahead, `decoding_core.prefetch`); with ``import-only`` it only
#: imports the CLI.
COUNTING_WRAPPER = """
import atexit, runpy, sys

def report():
    fields = dict(line.split(": ") for line in open("/proc/self/io").read().splitlines())
    sys.stderr.write(f"RCHAR {fields['rchar']}\\n")

atexit.register(report)
if sys.argv[1] == "import-only":
    import decoding_core.cli
else:
    sys.argv = ["decoding_core", *sys.argv[1:]]
    runpy.run_module("decoding_core", run_name="__main__", alter_sys=True)
"""


def bytes_read(arguments: list) -> int:
    done = subprocess.run([sys.executable, "-c", COUNTING_WRAPPER, *map(str, arguments)], cwd=REPO_ROOT,
                          capture_output=True, text=True)
    return int(done.stderr.strip().splitlines()[-1].split()[1])


def passes_over_file(cli_command: list, image: Path) -> float:
    """How many times the command line reads the (gzipped) file: its bytes read beyond its imports'."""
    extra = bytes_read(cli_command[3:]) - bytes_read(["import-only"])
    return extra / image.stat().st_size


def decompress_once(image: Path) -> float:
    """Seconds to decompress the whole file once with isal (the floor for one pass)."""
    from isal import igzip

    buffer = bytearray(CHUNK)
    start = time.perf_counter()
    with igzip.open(image, "rb") as stream:
        while stream.readinto(buffer):
            pass
    return time.perf_counter() - start


def timed_process(command: list) -> tuple[dict, float]:
    """Run ``command`` in a fresh process; its JSON output (last line) and its wall time."""
    start = time.perf_counter()
    done = subprocess.run([str(part) for part in command], cwd=REPO_ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command[:4]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1]), seconds


def commands(image: Path, labels: Path, mask: Path) -> dict:
    cli = [sys.executable, "-m", "decoding_core", "decode", "--func", image, "--labels", labels, "--mask", mask,
           "--conditions", *CONDITIONS, "--cv", "leave-one-run-out", "--json"]
    nilearn = [sys.executable, "-c", NILEARN_SCRIPT, image, labels, mask]
    return {"cli": cli, "nilearn": nilearn}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=1, help="alternated runs of each side (medians printed)")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(HERE))
    from _synthetic import ensure_data

    import nibabel as nib
    import numpy as np

    started = time.perf_counter()
    paths = ensure_data()
    image, mask = paths["image"], paths["vt"]
    shape = nib.load(image).shape
    n_mask = int(np.count_nonzero(nib.load(mask).get_fdata()))
    print(f"data ready in {time.perf_counter() - started:.1f} s: {image.name} {shape} int16, "
          f"{image.stat().st_size / 1e6:.0f} MB gzipped ({np.prod(shape) * 2 / 1e6:.0f} MB raw); "
          f"mask {n_mask} voxels; labels {LABELS.name}")
    decompress_once(image)  # into the page cache, for both sides alike
    runs = {"cli": [], "nilearn": []}
    floor = []
    for repeat in range(args.repeats):
        for name, command in commands(image, LABELS, mask).items():
            runs[name].append(timed_process(command))
        floor.append(decompress_once(image))
        print(f"  repeat {repeat + 1}/{args.repeats}: cli {runs['cli'][-1][1]:.2f} s, "
              f"nilearn {runs['nilearn'][-1][1]:.2f} s; load average {os.getloadavg()[0]:.2f}", flush=True)
    report(runs, statistics.median(floor), args.repeats)
    passes = passes_over_file(commands(image, LABELS, mask)["cli"], image)
    print(f"  the command line reads the file {passes:.2f} times (bytes read beyond its imports' / file size; "
          "one pass for its content digest, one for the masked voxels, both made by the child process that "
          "reads ahead during the imports, whose reads the kernel adds to its parent's; the rest is that "
          "child's own imports)")


def report(runs: dict, floor: float, repeats: int) -> None:
    cli_seconds = statistics.median(seconds for _, seconds in runs["cli"])
    nilearn_seconds = statistics.median(seconds for _, seconds in runs["nilearn"])
    cli, nilearn = runs["cli"][-1][0], runs["nilearn"][-1][0]
    label = "one run" if repeats == 1 else f"medians of {repeats} runs"
    print(f"\nface vs cat, leave-one-run-out, linear SVC; wall time of a fresh process, start-up included ({label})")
    print(f"  command line (python -m decoding_core decode ...): {cli_seconds:7.2f} s   "
          f"mean score {cli['mean_score']:.6f} ({cli['n_samples']} samples x {cli['n_voxels']} voxels)")
    print(f"  nilearn tutorial (NiftiMasker + cross_val_score):  {nilearn_seconds:7.2f} s   "
          f"mean score {nilearn['mean_score']:.6f} ({nilearn['n_samples']} samples x {nilearn['n_voxels']} voxels)")
    print(f"  one decompression of the file (isal), for scale:   {floor:7.2f} s")
    print(f"  ratio nilearn / command line: {nilearn_seconds / cli_seconds:.1f}x (target: 6x or more)")
    difference = max(abs(a - b) for a, b in zip(cli["fold_scores"], nilearn["fold_scores"]))
    agree = abs(cli["mean_score"] - nilearn["mean_score"]) < 1e-9 and difference < 1e-9
    print(f"  mean scores agree: {agree} (max fold difference {difference:.1e})")
    print(f"  load average now: {', '.join(f'{v:.2f}' for v in os.getloadavg())} ({os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
