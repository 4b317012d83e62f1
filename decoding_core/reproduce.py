"""Reproducible exports: one zip per run, with a standalone script that reruns it.

`export_run_zip` (or `export_record_zip` for a run from the history) writes::

    README.txt          what is inside and how to rerun the run
    config.json         the configuration and data set identity (`decoding_core.export.config_json`;
                        ``python -m decoding_core run config.json`` reruns it)
    run.json            the run's record: data set identity, scores, timing, warnings
    fold_scores.csv     one row per fold
    predictions.csv     one row per tested sample and fold
    weights.nii.gz      the weight map (3D for two classes, 4D otherwise)
    <map>.nii.gz        further maps of the run when present (activation pattern, stability)
    mask.nii.gz         the decoding mask (the script's default --mask)
    versions.json       Python and package versions that produced the run
    reproduce.py        standalone script (numpy, pandas, nilearn, scikit-learn; never this app)

`export_data` writes a data set's files (image, labels, masks) to a folder, so the
built-in simulated data set can be fed to ``reproduce.py`` like any other.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import platform
import re
import shutil
import zipfile
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np

from decoding_core import export
from decoding_core.cleaning import CONFOUND_STRATEGIES, describe
from decoding_core.datasets import HAXBY, SIMULATED, DatasetSpec
from decoding_core.datasets.bids import BidsSelection, runs_sha256
from decoding_core.decoding import CV_SCHEMES, DEFAULT_C_GRID, ESTIMATORS
from decoding_core.errors import DecodingInputError
from decoding_core.history import RunRecord
from decoding_core.io import nifti

#: Packages whose versions go into versions.json.
VERSIONED_PACKAGES = ("numpy", "scipy", "scikit-learn", "nilearn", "nibabel", "pandas", "streamlit", "plotly")

#: Name of the app in versions.json.
APP_NAME = "fmri-decoding-lab"

# The standalone script. "@@name@@" marks are filled by `build_script`; every
# estimator and split is written from the tables of decoding_core.decoding (their `source`),
# the scores mirror decoding_core.decoding.scoring, and
# tests/core/test_reproduce.py fails when the two diverge.
SCRIPT_TEMPLATE = r'''#!/usr/bin/env python
"""Reproduce the fMRI Decoding Lab run @@run_name@@ with nilearn and scikit-learn only.

Data set: @@dataset_title@@ (@@dataset_name@@; digest @@dataset_digest@@).
@@data_hint@@

Usage
-----
    python reproduce.py --func BOLD.nii.gz --labels LABELS.txt [--mask mask.nii.gz]
    python reproduce.py --func RUN1.nii.gz RUN2.nii.gz ... --labels LABELS.txt   # one file per run
    python reproduce.py --haxby-dir ~/nilearn_data      # Haxby subjects, nilearn's layout

The mask defaults to ``mask.nii.gz`` next to this script (the exact mask of the run).
The script prints one JSON object: the per-fold scores it obtains, the scores the
app recorded, and whether they agree to 6 decimals (exit status 0 if they do, 3 if not).
When they do not, it says which folds differ and by how much, and checks the likely
causes in order: different data (the sha256 of the functional file it read against the
recorded one, the numbers of samples, voxels and conditions), a solver stopped at its
iteration cap, different package versions.

It depends on numpy, pandas, nilearn and scikit-learn only; it does not import
the app. Every step mirrors the app: NiftiMasker on all volumes (z-score with
ddof=1, optional linear detrend and smoothing; when something is fitted per run,
nilearn.signal.clean on each run: detrend, high-pass filter, fMRIPrep confounds
through load_confounds, z-score), keep the chosen conditions,
split, fit (optional ANOVA screening and inner choice of C inside each training
fold), score.
"""

import argparse
import hashlib
import importlib.metadata
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from nilearn.maskers import NiftiMasker
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_selection import SelectPercentile, f_classif
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from sklearn.metrics import balanced_accuracy_score, roc_auc_score
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut, StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.svm import SVC, LinearSVC

#: The run's settings, as the app recorded them.
CONFIG = @@config@@
#: Where the data came from, and the columns of the labels table.
DATASET = @@dataset@@
#: The per-fold scores the app obtained.
EXPECTED_FOLD_SCORES = @@expected@@
#: Values of C tried when C is tuned (tune_C), smallest first.
C_GRID = @@c_grid@@
#: The data the app read: sha256 of the functional file (None: not recorded), samples, voxels, conditions.
RECORDED_DATA = @@recorded_data@@
#: Versions of the packages that exported the run (also in versions.json).
RECORDED_VERSIONS = @@recorded_versions@@
#: The run's confound strategies -> their names in nilearn.interfaces.fmriprep.load_confounds.
CONFOUND_NAMES = @@confound_names@@
#: Fits that stopped at their iteration cap in this process (the app counts them the same way).
CONVERGENCE = {"not_converged": 0}


def make_classifier(C, n_classes):
    """The run's linear classifier for a fit on ``n_classes`` classes, as the app fits it."""
    if n_classes == 2:
        return @@binary_estimator_source@@
    return @@estimator_source@@


def make_screening(percentile):
    """ANOVA screening fitted on the training fold (None: keep every voxel)."""
    if percentile is None:
        return None
    return SelectPercentile(f_classif, percentile=percentile)


def label_score(scoring, y_true, y_pred):
    if scoring == "balanced_accuracy":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(balanced_accuracy_score(y_true, y_pred))
    return float(np.mean(np.asarray(y_true) == np.asarray(y_pred)))


def inner_splits(y, groups):
    """The inner split that chooses C: whole runs when there are 3 or more, else stratified."""
    if groups is not None:
        n_groups = len(np.unique(groups))
        if n_groups >= 3:
            return list(GroupKFold(n_splits=min(n_groups, 5)).split(np.zeros(len(y)), y, groups))
    _, counts = np.unique(y, return_counts=True)
    n_splits = min(3, int(counts.min()))
    if n_splits < 2:
        return []
    return list(StratifiedKFold(n_splits=n_splits).split(np.zeros(len(y)), y))


def fit_quietly(model, X, y):
    """Fit, counting (not showing) the fits that stop at their iteration cap."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="Features .* are constant", category=UserWarning)
        warnings.filterwarnings("ignore", category=RuntimeWarning, module="sklearn.feature_selection")
        model.fit(X, y)
    CONVERGENCE["not_converged"] += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    return model


def screened_fit(X, y, C, percentile):
    """The screening (if any) and the classifier, both fitted on ``(X, y)``."""
    screening = make_screening(percentile)
    if screening is not None:
        X = fit_quietly(screening, X, y).transform(X)
    return screening, fit_quietly(make_classifier(C, len(np.unique(y))), X, y)


def choose_C(X, y, groups, config):
    """C chosen by the inner split; the screening is refitted inside each inner training fold."""
    inner_scoring = "accuracy" if config["scoring"] == "accuracy" else "balanced_accuracy"
    splits = [(tr, te) for tr, te in inner_splits(y, groups) if len(np.unique(y[tr])) >= 2]
    if not splits:
        return config["C"]
    scores = np.zeros((len(C_GRID), len(splits)))
    for j, (tr, te) in enumerate(splits):
        for i, candidate in enumerate(C_GRID):
            screening, model = screened_fit(X[tr], y[tr], candidate, config["screening_percentile"])
            X_te = X[te] if screening is None else screening.transform(X[te])
            scores[i, j] = label_score(inner_scoring, y[te], model.predict(X_te))
    # argmax takes the first maximum: the smallest C among ties.
    return float(C_GRID[int(np.argmax(scores.mean(axis=1)))])


def fit_fold(X, y, groups, config):
    """Fit screening + classifier on one training fold; returns (screening, classifier, chosen C)."""
    C = choose_C(X, y, groups, config) if config["tune_C"] else config["C"]
    screening, classifier = screened_fit(X, y, C, config["screening_percentile"])
    return screening, classifier, C


def one_vs_rest_svc(classifier, X_train, y_train, C):
    """For a multi-class SVC (one-vs-one votes), a one-vs-rest SVC with the same C on the same
    training fold, whose decision values give the ROC AUC (as the app does); else None."""
    if not isinstance(classifier, SVC) or len(classifier.classes_) <= 2:
        return None
    return fit_quietly(OneVsRestClassifier(make_classifier(C, 2)), X_train, y_train)


def make_splits(config, labels, runs):
    """The run's outer (train, test) splits, as the app makes them."""
    indices = np.arange(len(labels))
    return @@scheme_source@@


def class_scores(classifier, X_test, classes):
    """Decision values and probabilities laid out by ``classes`` (all classes of the selection)."""
    fitted = np.asarray(classifier.classes_).astype(str)
    columns = np.searchsorted(classes, fitted)
    decision = proba = None
    if hasattr(classifier, "decision_function"):
        raw = np.asarray(classifier.decision_function(X_test), dtype=float)
        if len(classes) == 2:
            decision = raw if raw.ndim == 1 else raw[:, -1]
        else:
            decision = np.full((len(X_test), len(classes)), -np.inf)
            if raw.ndim == 1:  # this fold trained on two classes only
                decision[:, columns[1]], decision[:, columns[0]] = raw, -raw
            else:
                decision[:, columns] = raw
    if hasattr(classifier, "predict_proba"):
        raw = np.asarray(classifier.predict_proba(X_test), dtype=float)
        proba = np.zeros((len(X_test), len(classes)))
        proba[:, columns] = raw
    return decision, proba


def score_fold(scoring, classifier, X_test, y_test, y_pred, classes):
    """The fold's score (NaN for ROC AUC when the test fold holds one condition)."""
    if scoring in ("accuracy", "balanced_accuracy"):
        return label_score(scoring, y_test, y_pred)
    decision, proba = class_scores(classifier, X_test, classes)
    scores = proba if (proba is not None and len(classes) > 2) else decision
    if scores is None:
        scores = proba[:, 1] if len(classes) == 2 else proba
    if len(classes) == 2:
        positive = y_test == classes[1]
        if positive.all() or not positive.any():
            return float("nan")
        return float(roc_auc_score(positive, scores))
    # One-vs-rest, averaged over the classes present in this test fold.
    aucs = []
    for k, name in enumerate(classes):
        positive = y_test == name
        if positive.any() and not positive.all() and np.isfinite(scores[:, k]).all():
            aucs.append(roc_auc_score(positive, scores[:, k]))
    return float(np.mean(aucs)) if aucs else float("nan")


def scope(value):
    """Where a z-score or detrend is fitted: "series", "run" or "none" (True/False as older runs wrote)."""
    if value is True:
        return "series"
    if value is False or value is None:
        return "none"
    return value


def run_groups(runs, n_volumes):
    """Row indices of each run, runs in the order they first appear (one run when there are none)."""
    if runs is None:
        return [np.arange(n_volumes)]
    _, first, inverse = np.unique(runs, return_index=True, return_inverse=True)
    return [np.flatnonzero(inverse == k) for k in np.argsort(first)]


def clean_by_run(X, runs, config, t_r, run_files):
    """The app's cleaning when a step is fitted per run (nilearn.signal.clean on each run).

    Returns the cleaned matrix and the rows kept (scrubbing drops some).
    """
    from nilearn import signal
    from nilearn.interfaces.fmriprep import load_confounds

    standardize, detrend = scope(config["standardize"]), scope(config["detrend"])
    high_pass = config.get("high_pass")
    X = X.astype(np.float64)
    if detrend == "series":
        X = signal.clean(X, detrend=True, standardize=None, filter=False)
    groups = run_groups(runs, len(X))
    confounds = [None] * len(groups)
    masks = [None] * len(groups)
    if config.get("confounds"):
        if not run_files or len(run_files) != len(groups):
            raise SystemExit(f"This run regressed fMRIPrep confounds: give the {len(groups)} preprocessed bold "
                             "files of its runs with --run-files, in run order.")
        strategy = tuple(CONFOUND_NAMES[name] for name in config["confounds"])
        for k, bold in enumerate(run_files):
            table, masks[k] = load_confounds(str(bold), strategy=strategy)
            confounds[k] = table.to_numpy(dtype=np.float64) if table is not None and table.shape[1] else None
    pieces, kept = [], []
    for k, rows in enumerate(groups):
        cleaned = signal.clean(
            X[rows], detrend=detrend == "run", standardize="zscore_sample" if standardize == "run" else None,
            confounds=confounds[k], sample_mask=masks[k], filter="butterworth" if high_pass is not None else False,
            high_pass=high_pass, t_r=t_r)
        pieces.append(cleaned.astype(np.float32))
        kept.append(rows if masks[k] is None else rows[np.asarray(masks[k], dtype=int)])
    X = np.concatenate(pieces).astype(np.float64)
    if standardize == "series":
        X = signal.clean(X, detrend=False, standardize="zscore_sample", filter=False)
    return X.astype(np.float32).astype(np.float64), np.concatenate(kept)


def read_table(path):
    """A labels table: CSV, TSV or whitespace separated (sniffed from the first line)."""
    first_line = Path(path).read_text(errors="replace").splitlines()[0]
    if "\t" in first_line:
        table = pd.read_csv(path, sep="\t")
    elif "," in first_line:
        table = pd.read_csv(path, sep=",")
    else:
        table = pd.read_csv(path, sep=r"\s+")
    table.columns = [str(c).strip() for c in table.columns]
    return table


def read_labels(path, label_column, run_column):
    """The labels and (with ``run_column``) the runs of the labels table at ``path``."""
    table = read_table(path)
    labels = table[label_column].to_numpy(dtype=str)
    runs = None if run_column is None else table[run_column].to_numpy()
    return labels, runs


def haxby_paths(haxby_dir, subject):
    """nilearn's fetch_haxby layout (the files are used as they are, nothing is downloaded)."""
    root = Path(haxby_dir).expanduser() / "haxby2001" / f"subj{subject}"
    return root / "bold.nii.gz", root / "labels.txt"


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1024**2), b""):
            digest.update(block)
    return digest.hexdigest()


def data_read(func, y, n_voxels):
    """What this script read, in the terms of RECORDED_DATA."""
    classes, counts = np.unique(y, return_counts=True)
    sha256 = runs_sha256(BIDS_READ["run_files"]) if BIDS_READ["run_files"] else file_sha256(func)
    return {"func_sha256": sha256, "n_samples": int(len(y)), "n_voxels": int(n_voxels),
            "class_counts": {str(c): int(n) for c, n in zip(classes, counts)}}


def version_differences():
    """Packages whose version here differs from the one that exported the run."""
    differences = {}
    for package, recorded in RECORDED_VERSIONS.items():
        try:
            here = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            here = None
        if here != recorded:
            differences[package] = {"recorded": recorded, "here": here}
    return differences


def mismatch_message(obtained, expected, read):
    """Which folds differ and by how much, then the likely causes in order of likelihood."""
    if obtained.shape != expected.shape:
        folds = f"{len(obtained)} folds here against {len(expected)} recorded"
    else:
        differing = [k for k in range(len(expected))
                     if not np.isclose(obtained[k], expected[k], rtol=0, atol=5e-7, equal_nan=True)]
        folds = "; ".join(f"fold {k + 1}: {obtained[k]:.6f} here, {expected[k]:.6f} recorded "
                          f"({obtained[k] - expected[k]:+.2g})" for k in differing[:12])
    lines = [f"The fold scores differ from the app's ({folds}). Likely causes, in order:"]
    changed = [key for key, value in read.items() if RECORDED_DATA.get(key) is not None
               and RECORDED_DATA[key] != value]
    if changed:
        detail = ", ".join(f"{key}: {read[key]} here, {RECORDED_DATA[key]} recorded" for key in changed)
        lines.append(f"1. Different data: {detail}. Give the files the app read (see README.txt).")
    elif RECORDED_DATA.get("func_sha256") is None:
        lines.append("1. Possibly different data: the functional file's sha256 was not recorded, so it "
                     f"could not be checked (read here: {read['func_sha256']}). Give the files the app read.")
    else:
        lines.append("1. Not the data: the functional file (sha256), samples, voxels and conditions "
                     "are those of the run.")
    n_capped = CONVERGENCE["not_converged"]
    lines.append(f"2. Solver convergence: {n_capped} fit(s) here stopped at the iteration cap (raise "
                 "max_iter in make_classifier)." if n_capped else
                 "2. Solver convergence: every fit here converged to its tolerance; a different "
                 "numerical library (BLAS) or CPU can still land elsewhere within it.")
    versions = version_differences()
    lines.append("3. Package versions: " + (", ".join(f"{p} {v['here']} here, {v['recorded']} recorded"
                                                       for p, v in versions.items())
                                           if versions else "the same as the run's."))
    return "\n".join(lines)


def bids_entities(path):
    from nilearn.interfaces.bids import parse_bids_filename

    return parse_bids_filename(str(path))["entities"]


def bids_bold_files(root, selection):
    """The recorded selection's bold files, in run order, found as the app finds them (nilearn's BIDS helpers)."""
    from nilearn.interfaces.bids import get_bids_files

    root = Path(root)
    derivatives = sorted(p for p in (root / "derivatives").glob("*") if p.is_dir())
    found = []
    for top in [root, *derivatives]:
        for path in get_bids_files(top, file_tag="bold", file_type="nii*", sub_label=selection["subject"],
                                   modality_folder="func"):
            e = bids_entities(path)
            if (e.get("sub") == selection["subject"] and e.get("task") == selection["task"]
                    and e.get("space") == selection["space"] and e.get("desc", "preproc") == "preproc"
                    and selection["session"] in (None, e.get("ses")) and path.endswith((".nii", ".nii.gz"))):
                run = e.get("run", "")
                key = (e.get("ses", ""), int(run) if run.isdigit() else float("inf"), run, Path(path).name)
                found.append((key, Path(path)))
    if not found:
        raise SystemExit(f"No bold files for the recorded selection {selection} under {root}: give --bids DIR.")
    return [path for _, path in sorted(found)]


def bids_run_folder_files(root, bold, suffix):
    """Files *_<suffix> that apply to a bold file: beside it, in the raw data set's run folder, at the top."""
    e = bids_entities(bold)
    acquisition = {k: v for k, v in e.items() if k not in ("space", "res", "den", "desc", "hemi", "label")}
    folder = Path(*bold.parts[max(i for i, part in enumerate(bold.parts[:-1]) if part == f"sub-{e['sub']}"):-1])
    for place in (bold.parent, Path(root) / folder, Path(root)):
        # The most specific file of the nearest folder: its entities all in the bold file's name.
        matches = [(len(bids_entities(path)), path) for path in sorted(place.glob(f"*_{suffix}"))
                   if all(acquisition.get(k, e.get(k)) == v for k, v in bids_entities(path).items())]
        if matches:
            return max(matches, key=lambda match: match[0])[1]
    return None


def bids_tr(root, bold):
    """RepetitionTime of the run: its sidecar JSON (nearest first), else the image header."""
    from nilearn.image import load_img

    sidecar = bids_run_folder_files(root, bold, "bold.json")
    if sidecar is not None and json.loads(sidecar.read_text()).get("RepetitionTime") is not None:
        return float(json.loads(sidecar.read_text())["RepetitionTime"])
    return float(load_img(str(bold)).header.get_zooms()[3])


def volume_labels(events, n_volumes, tr, lag, edge):
    """Each volume's trial_type: the event with onset + lag <= i * TR < onset + lag + duration (else rest)."""
    times = np.arange(n_volumes) * tr
    labels = np.full(n_volumes, "rest", dtype=object)
    for onset, duration, trial_type in zip(events["onset"], events["duration"], events["trial_type"].astype(str)):
        start = float(onset) + lag
        inside = np.flatnonzero((times >= start - 1e-6) & (times < start + float(duration) - 1e-6))
        labels[inside] = trial_type.strip()
        if edge and inside.size:
            labels[np.r_[inside[:edge], inside[-edge:]]] = "edge"
    return labels.astype(str)


def trial_beta_images(bold, events, tr, method, mask):
    """One beta per trial with nilearn's FirstLevelModel: LSA (one model) or LSS (a model per trial)."""
    from nilearn.glm.first_level import FirstLevelModel

    events = events[["onset", "duration", "trial_type"]].reset_index(drop=True)
    events["trial_type"] = events["trial_type"].astype(str).str.strip()
    names = [f"{t}__{int(k):03d}" for t, k in zip(events["trial_type"], events.groupby("trial_type", sort=False).cumcount())]

    def model(design_events):
        return FirstLevelModel(t_r=tr, mask_img=mask, hrf_model="glover", drift_model="cosine", high_pass=0.01,
                               noise_model="ar1", minimize_memory=True, standardize=False,
                               signal_scaling=0).fit(str(bold), events=design_events)

    if method == "lsa":
        fitted = model(events.assign(trial_type=names))
        return [fitted.compute_contrast(name, output_type="effect_size") for name in names]
    betas = []
    for row, name in enumerate(names):
        lss_events = events.copy()
        lss_events.loc[row, "trial_type"] = name
        betas.append(model(lss_events).compute_contrast(name, output_type="effect_size"))
    return betas


def runs_sha256(paths):
    """sha256 of the run files' sha256s, one a line, in run order (as the app records it)."""
    return hashlib.sha256("\n".join(file_sha256(path) for path in paths).encode()).hexdigest()


def join_run_files(funcs, tables):
    """One image and one labels table from ``--func`` and ``--labels`` (lists of paths).

    One file each: themselves. Several run files: joined in the order given into a
    temporary image, as the app joined them, with their labels (one table for all
    volumes, or one per run, joined in order); the data check digests the run files.
    Returns (image, labels table, volumes per run or None).
    """
    import tempfile

    from nilearn.image import concat_imgs, load_img

    for path in (*funcs, *tables):
        if not Path(path).is_file():
            raise SystemExit(f"The file {path} does not exist.")
    if len(funcs) == 1 and len(tables) == 1:
        return funcs[0], tables[0], None
    if len(tables) not in (1, len(funcs)):
        raise SystemExit(f"Give one labels table, or one per run: {len(funcs)} run files and {len(tables)} tables.")
    BIDS_READ["folder"] = tempfile.TemporaryDirectory(prefix="reproduce-runs-")  # removed at exit
    BIDS_READ["run_files"] = list(funcs)
    folder = Path(BIDS_READ["folder"].name)
    run_lengths = [int(load_img(str(path)).shape[3]) for path in funcs]
    joined = folder / "bold.nii.gz"
    concat_imgs([str(path) for path in funcs]).to_filename(joined)
    parts = [read_table(path) for path in tables]
    labels = folder / "labels.tsv"
    pd.concat(parts, ignore_index=True).to_csv(labels, sep="\t", index=False)
    return joined, labels, run_lengths


#: The run files read from a BIDS folder (the data check digests them, not the joined file), and the
#: temporary folder of the joined runs (removed when the script ends).
BIDS_READ = {"run_files": None, "folder": None}


def load_bids_samples(root, selection, mask):
    """The BIDS runs as the app made its samples, written to a temporary folder: (image, labels table, TR, runs)."""
    import tempfile

    from nilearn.image import concat_imgs, load_img, new_img_like

    bold_files = bids_bold_files(root, selection)
    trs = {bids_tr(root, bold) for bold in bold_files}
    if len(trs) != 1:
        raise SystemExit(f"The runs have different TRs: {sorted(trs)}.")
    tr = trs.pop()
    tables, images = [], []
    for position, bold in enumerate(bold_files):
        events_file = bids_run_folder_files(root, bold, "events.tsv")
        if events_file is None:
            raise SystemExit(f"No events file for {bold.name}.")
        events = pd.read_csv(events_file, sep="\t", keep_default_na=False, dtype={"trial_type": str})
        if selection["design"] == "block":
            n_volumes = load_img(str(bold)).shape[3]
            labels = volume_labels(events, n_volumes, tr, selection["hrf_lag"], selection["drop_edge_volumes"])
            images.append(str(bold))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                betas = trial_beta_images(bold, events, tr, selection["design"],
                                          str(mask) if selection["glm_mask"] else None)
            labels = events["trial_type"].astype(str).str.strip().to_numpy()
            images += betas
        tables.append(pd.DataFrame({"labels": labels, "run": position}))
    BIDS_READ["folder"] = tempfile.TemporaryDirectory(prefix="reproduce-bids-")  # removed at exit
    folder = Path(BIDS_READ["folder"].name)
    joined = concat_imgs(images)
    if selection["design"] != "block":  # the app stores the betas as float32
        joined = new_img_like(joined, np.asarray(joined.dataobj, dtype=np.float32), joined.affine)
    joined.to_filename(folder / "bold.nii")
    pd.concat(tables).to_csv(folder / "labels.tsv", sep="\t", index=False)
    BIDS_READ["run_files"] = bold_files
    return folder / "bold.nii", folder / "labels.tsv", tr, bold_files


def main(argv=None):
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--func", type=Path, nargs="+", default=@@default_func@@,
                        help="the 4D functional image, or one file per run in run order (runs come from the files)")
    parser.add_argument("--labels", type=Path, nargs="+", default=@@default_labels@@,
                        help="the labels table (one row per volume); with one file per run, it or one table per run")
    parser.add_argument("--mask", type=Path, default=here / "mask.nii.gz", help="the 3D decoding mask")
    parser.add_argument("--haxby-dir", type=Path, help="nilearn data directory holding haxby2001/subjN/ (Haxby runs)")
    parser.add_argument("--bids", type=Path, default=None if DATASET.get("bids") is None else Path(DATASET["bids"]["root"]),
                        help="the BIDS folder the run read (default: where it was); its runs are selected, "
                             "labelled or modelled as the app did")
    parser.add_argument("--tr", type=float, help="repetition time in seconds, for the high-pass filter "
                                                 "(default: from the image header)")
    parser.add_argument("--run-files", type=Path, nargs="+",
                        help="the fMRIPrep *_desc-preproc_bold.nii.gz file of each run, in run order "
                             "(when the run regressed confounds)")
    args = parser.parse_args(argv)
    func, labels_path = args.func, args.labels
    run_lengths = None
    if func is not None and labels_path is not None:
        func, labels_path, run_lengths = join_run_files(func, labels_path)
    if DATASET.get("bids") is not None and func is None:
        func, labels_path, t_r, run_files = load_bids_samples(args.bids, DATASET["bids"], args.mask)
        args.tr = t_r if args.tr is None else args.tr
        args.run_files = args.run_files or run_files
    if args.haxby_dir is not None:
        if DATASET["haxby_subject"] is None:
            raise SystemExit("--haxby-dir works only for runs on a Haxby subject; give --func and --labels.")
        func, labels_path = haxby_paths(args.haxby_dir, DATASET["haxby_subject"])
    if func is None or labels_path is None:
        raise SystemExit("Give the original data files: --func BOLD.nii.gz --labels LABELS.txt (see README.txt).")
    for what, path in (("functional image", func), ("labels table", labels_path), ("mask", args.mask)):
        if not Path(path).is_file():
            raise SystemExit(f"The {what} {path} does not exist.")

    config = CONFIG
    standardize, detrend = scope(config["standardize"]), scope(config["detrend"])
    by_run = ("run" in (standardize, detrend) or config.get("high_pass") is not None
              or bool(config.get("confounds")))
    # 1. Mask every volume, as the app does (cleaning uses the whole time series of each run, or of the data).
    masker = NiftiMasker(
        mask_img=str(args.mask),
        standardize="zscore_sample" if standardize == "series" and not by_run else None,
        detrend=detrend == "series" and not by_run,
        smoothing_fwhm=config["smoothing_fwhm"],
        reports=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        # The app keeps the masked matrix in float32 and fits every estimator on it as float64.
        X_all = masker.fit_transform(str(func)).astype(np.float32).astype(np.float64)
    labels_all, runs_all = read_labels(labels_path, DATASET["label_column"],
                                       None if run_lengths is not None else DATASET["run_column"])
    if run_lengths is not None:  # runs come from the files, as in the app
        runs_all = np.repeat(np.arange(len(run_lengths)), run_lengths)
    # Condition names the app merged at the user's request ("Face" -> "face").
    renames = DATASET.get("label_renames") or {}
    labels_all = np.array([renames.get(label, label) for label in labels_all])
    if len(labels_all) != X_all.shape[0]:
        raise SystemExit(f"The labels table has {len(labels_all)} rows but the image {X_all.shape[0]} volumes.")
    if by_run:
        t_r = args.tr
        if t_r is None and config.get("high_pass") is not None:
            from nilearn.image import load_img

            t_r = float(load_img(str(func)).header.get_zooms()[3])
        X_all, kept = clean_by_run(X_all, runs_all, config, t_r, args.run_files)
        labels_all = labels_all[kept]
        runs_all = None if runs_all is None else runs_all[kept]

    # 2. Keep the conditions of the run, in the data's order.
    keep = np.isin(labels_all, config["conditions"])
    X, y = X_all[keep], labels_all[keep]
    runs = None if runs_all is None else runs_all[keep]

    # 3. Cross-validate.
    classes = np.unique(y)
    fold_scores, chosen_C = [], []
    for train, test in make_splits(config, y, runs):
        groups = None if runs is None else runs[train]
        screening, classifier, C = fit_fold(X[train], y[train], groups, config)
        X_test = X[test] if screening is None else screening.transform(X[test])
        y_pred = np.asarray(classifier.predict(X_test)).astype(str)
        scorer = None
        if config["scoring"] == "roc_auc":
            X_train = X[train] if screening is None else screening.transform(X[train])
            scorer = one_vs_rest_svc(classifier, X_train, y[train], C)
        fold_scores.append(score_fold(config["scoring"], classifier if scorer is None else scorer, X_test, y[test], y_pred, classes))
        chosen_C.append(C)

    expected = np.asarray(EXPECTED_FOLD_SCORES, dtype=float)
    obtained = np.asarray(fold_scores, dtype=float)
    same_shape = expected.shape == obtained.shape
    difference = float(np.nanmax(np.abs(expected - obtained))) if same_shape and obtained.size else None
    match = bool(same_shape and np.allclose(obtained, expected, rtol=0, atol=5e-7, equal_nan=True))
    read = data_read(func, y, X.shape[1])
    message = None if match else mismatch_message(obtained, expected, read)
    if message:
        print(message, file=sys.stderr)
    print(json.dumps({
        "fold_scores": [None if np.isnan(v) else v for v in obtained.tolist()],
        "expected_fold_scores": [None if np.isnan(v) else v for v in expected.tolist()],
        "max_abs_difference": difference,
        "match": match,
        "mean_score": float(np.nanmean(obtained)),
        "n_samples": int(len(y)),
        "n_voxels": int(X.shape[1]),
        "chosen_C": chosen_C if config["tune_C"] else None,
        "not_converged": CONVERGENCE["not_converged"],
        "data_read": read,
        "data_recorded": RECORDED_DATA,
        "mismatch": message,
    }))
    return 0 if match else 3


if __name__ == "__main__":
    sys.exit(main())
'''

def package_versions() -> dict:
    """Versions of Python, the scientific packages and this app (for versions.json)."""
    versions = {"python": platform.python_version(), "platform": platform.platform()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    import decoding_core

    versions[APP_NAME] = getattr(decoding_core, "__version__", None) or _app_version()
    return versions


def _app_version() -> str:
    try:
        return importlib.metadata.version(APP_NAME)
    except importlib.metadata.PackageNotFoundError:
        return "unversioned (source checkout)"


def _plain_text(text, limit: int = 300) -> str:
    """Text safe inside the script's docstring and README: no backslashes, quotes runs or control characters."""
    text = re.sub(r"[\x00-\x1f\x7f\\]+", " ", str(text))
    return text.replace('"""', "'''")[:limit]


def _haxby_subject(dataset_name: str) -> int | None:
    """The Haxby subject a run's data set name gives, or None when it is not a Haxby subject."""
    spec = DatasetSpec.from_name(dataset_name)
    return spec.subject if spec is not None and spec.kind == HAXBY else None


def _bids_selection(record: RunRecord) -> dict | None:
    """The BIDS folder and selection a run read (`BidsSelection`), for the script; None when not from BIDS."""
    selection = BidsSelection.from_name(record.dataset_name)
    if selection is None:
        return None
    # The app modelled the trials within the mask given (the data set's "uploaded" mask), else nilearn's own.
    return {"root": selection.root, **selection.load_arguments(), "glm_mask": record.config.mask_name == "uploaded"}


def _data_hint(record: RunRecord) -> str:
    subject = _haxby_subject(record.dataset_name)
    selection = BidsSelection.from_name(record.dataset_name)
    if selection is not None:
        return (f"The BIDS data set at {_plain_text(selection.root)} (subject {_plain_text(selection.subject)}, "
                f"task {_plain_text(selection.task)}): the script finds its runs again\n"
                "    python reproduce.py                 # or  --bids DIR  if the folder moved")
    if DatasetSpec.from_name(record.dataset_name) == DatasetSpec(SIMULATED):
        return ("Write the built-in simulated data set's files with\n"
                "    python -m decoding_core export-data --dataset simulated --out DATA\n"
                "then run  python reproduce.py --func DATA/bold.nii.gz --labels DATA/labels.tsv")
    if subject is not None:
        return (f"Haxby et al. (2001), subject {subject}, as nilearn.datasets.fetch_haxby stores it:\n"
                f"    python reproduce.py --haxby-dir ~/nilearn_data\n"
                f"(or --func .../haxby2001/subj{subject}/bold.nii.gz --labels .../labels.txt).")
    if record.n_run_files > 1:
        return (f"Your own files, one per run: give the same {record.n_run_files} run files, in run order, and the "
                "labels table (or one table per run, in run order) you loaded in the app:\n"
                "    python reproduce.py --func RUN1.nii.gz RUN2.nii.gz ... --labels LABELS.txt")
    return ("Your own files: give the same functional image and labels table you loaded in the app:\n"
            "    python reproduce.py --func BOLD.nii.gz --labels LABELS.txt")


#: The packages whose versions the script compares with its own when the scores differ.
COMPARED_PACKAGES = ("numpy", "scipy", "scikit-learn", "nilearn", "nibabel", "pandas")


def _recorded_data(record: RunRecord, func_sha256: str | None) -> dict:
    """What the script checks the data it reads against (see its RECORDED_DATA)."""
    counts = record.predictions.drop_duplicates("sample")["true"].astype(str).value_counts()
    complete = len(counts) and int(counts.sum()) == record.n_samples  # every sample tested once or more
    return {
        "func_sha256": func_sha256,
        "n_samples": int(record.n_samples),
        "n_voxels": int(record.n_voxels),
        "class_counts": {str(c): int(n) for c, n in sorted(counts.items())} if complete else None,
    }


def build_script(record: RunRecord, func_sha256: str | None = None) -> str:
    """The standalone ``reproduce.py`` of a run (text).

    It mirrors `decoding_core.decoding`'s estimators, splits and scores for every
    configuration the app accepts; it imports numpy, pandas, nilearn and
    scikit-learn only.

    Parameters
    ----------
    record : RunRecord
    func_sha256 : str, optional
        sha256 of the functional file the run read; the script compares the file it
        reads with it (None: the script says it could not check).
    """
    config = record.config.to_dict()
    subject = _haxby_subject(record.dataset_name)
    dataset = {
        "name": record.dataset_name, "title": record.dataset_title, "digest": record.dataset_digest,
        "label_column": record.label_column, "run_column": record.run_column, "haxby_subject": subject,
        "n_run_files": record.n_run_files,
        "label_renames": dict(record.label_renames), "bids": _bids_selection(record),
    }
    fills = {
        "run_name": repr(_plain_text(record.name)),
        "dataset_title": _plain_text(record.dataset_title),
        "dataset_name": _plain_text(record.dataset_name),
        "dataset_digest": _plain_text(record.dataset_digest[:16]),
        "data_hint": _data_hint(record),
        "config": repr(config),
        "dataset": repr(dataset),
        "expected": "[" + ", ".join(repr(float(v)) if np.isfinite(v) else "float('nan')"
                                    for v in record.fold_scores) + "]",
        "c_grid": repr(tuple(float(c) for c in DEFAULT_C_GRID)),
        "recorded_data": repr(_recorded_data(record, func_sha256)),
        "recorded_versions": repr({p: v for p, v in package_versions().items() if p in COMPARED_PACKAGES}),
        "estimator_source": ESTIMATORS[record.config.estimator].source.format(C="C"),
        "binary_estimator_source": (ESTIMATORS[record.config.estimator].binary_source
                                    or ESTIMATORS[record.config.estimator].source).format(C="C"),
        "scheme_source": CV_SCHEMES[record.config.cv].source,
        "confound_names": repr({name: CONFOUND_STRATEGIES[name].nilearn_name for name in record.config.confounds}),
        "default_func": None,
        "default_labels": None,
    }
    script = SCRIPT_TEMPLATE
    for key, value in fills.items():
        script = script.replace(f"@@{key}@@", value if isinstance(value, str) else repr(value))
    return script


def _readme(record: RunRecord) -> str:
    config = record.config
    scores = ", ".join(f"{s:.6f}" for s in record.fold_scores)
    lines = [
        f"fMRI Decoding Lab export of run: {_plain_text(record.name)}",
        f"Recorded: {record.created_at}",
        f"Data set: {_plain_text(record.dataset_title)} ({_plain_text(record.dataset_name)}; "
        f"digest {record.dataset_digest[:16]})",
        f"Conditions: {', '.join(config.conditions)}; mask {config.mask_name!r} ({record.n_voxels} voxels); "
        f"{record.n_samples} samples",
        f"Estimator {config.estimator}, C={config.C:g}{' (tuned)' if config.tune_C else ''}; "
        f"scheme {config.cv}; scoring {config.scoring}",
        describe(**config.cleaning_options()),
        f"Fold scores: {scores}",
        f"Mean {record.mean_score:.6f} (sd {record.std_score:.6f}); chance level {record.chance_level:.4f}",
        "",
        "Files",
        "  config.json       the configuration; rerun it with  python -m decoding_core run config.json --dataset ...",
        "  run.json          the run's record (data set identity, scores, timing, warnings)",
        "  fold_scores.csv   the score of each fold",
        "  predictions.csv   one row per tested sample (volume index, run, fold, true and predicted label)",
        "  weights.nii.gz    the classifier's weight map, refitted on all selected samples",
        "  mask.nii.gz       the decoding mask",
        "  versions.json     Python and package versions",
        "  reproduce.py      a standalone script (numpy, pandas, nilearn, scikit-learn) that reruns",
        "                    the cross-validation from the original data and checks the fold scores",
        "",
        "Rerun",
        "  " + _data_hint(record).replace("\n", "\n  "),
        "",
        "The script prints the fold scores it obtains next to the recorded ones and exits",
        "with status 0 when they agree to 6 decimals. When they do not, it names the folds",
        "that differ and checks the causes in order: different data (it compares the sha256",
        "of the functional file it reads with the recorded one, and the numbers of samples,",
        "voxels and conditions), a solver stopped at its iteration cap, different package",
        "versions (see versions.json).",
    ]
    if record.warnings:
        lines += ["", "Warnings of the run"] + [f"  - {_plain_text(w, 500)}" for w in record.warnings]
    return "\n".join(lines) + "\n"


def export_record_zip(record: RunRecord, *, result=None, func_sha256: str | None = None) -> bytes:
    """The export zip of a recorded run (see the module docstring for its contents).

    Parameters
    ----------
    record : RunRecord
    result : DecodingResult, optional
        When given, its CSV tables come from `decoding_core.export` (same columns
        as the Results page downloads).
    func_sha256 : str, optional
        sha256 of the functional file the run read, for the script's data check.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", _readme(record))
        identity = SimpleNamespace(name=record.dataset_name, title=record.dataset_title,
                                   digest=record.dataset_digest)
        archive.writestr("config.json", export.config_json(record.config, identity) + "\n")
        archive.writestr("run.json", json.dumps(record.metadata(), indent=2) + "\n")
        source = result if result is not None else record
        archive.writestr("fold_scores.csv", export.fold_scores_csv(source))
        archive.writestr("predictions.csv", export.predictions_csv(source))
        archive.writestr("weights.nii.gz", export.image_to_nifti_bytes(record.weight_img))
        for name, values in record.maps().items():
            safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:40] or "map"
            archive.writestr(f"{safe}.nii.gz", export.image_to_nifti_bytes(record.map_img(values)))
        archive.writestr("mask.nii.gz", export.image_to_nifti_bytes(record.mask_img))
        archive.writestr("versions.json", json.dumps(package_versions(), indent=2) + "\n")
        info = zipfile.ZipInfo("reproduce.py", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, build_script(record, func_sha256))
    return buffer.getvalue()


def export_run_zip(result, dataset, record: RunRecord | None = None) -> bytes:
    """The export zip of a finished run (see the module docstring for its contents).

    Parameters
    ----------
    result : DecodingResult
    dataset : Dataset
        The data set the run used.
    record : RunRecord, optional
        The run's history record (its name and id are kept); made from ``result`` when None.
    """
    if record is None:
        record = RunRecord.from_result(result, dataset)
    try:  # remembered since the data set was loaded: no second pass over the file
        func_sha256 = nifti.file_digest(dataset.func_path)
        if dataset.run_files:
            # The script reads the run files, not the app's joined copy: their digest is the one it checks.
            func_sha256 = runs_sha256(dataset.run_files)
    except OSError:
        func_sha256 = None
    return export_record_zip(record, result=result, func_sha256=func_sha256)


def export_file_name(record: RunRecord) -> str:
    """A file name for the run's zip: ``decoding-run-<name>-<id>.zip`` with safe characters."""
    slug = re.sub(r"[^A-Za-z0-9_.=-]+", "-", record.name).strip("-.")[:60] or "run"
    return f"decoding-run-{slug}-{record.id}.zip"


def export_data(dataset, out_dir) -> dict:
    """Write a data set's files to ``out_dir``: the image, the labels table, masks, anatomy.

    Files: ``bold.nii.gz`` (or ``bold.nii``; a copy of the functional image),
    ``labels.tsv`` (tab separated, the data set's columns), ``mask_<name>.nii.gz``
    for each mask, ``anat.nii.gz`` when the data set has one.

    Returns
    -------
    dict of str to Path
        What was written, by role (``func``, ``labels``, ``mask_vt``, ...).
    """
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DecodingInputError(f"Cannot create the folder {out}: {err.strerror}. Choose another --out.") from None
    written = {}
    source = Path(dataset.func_path)
    func_name = "bold.nii.gz" if source.name.endswith(".gz") else "bold.nii"
    shutil.copyfile(source, out / func_name)
    written["func"] = out / func_name
    labels_path = out / "labels.tsv"
    dataset.labels.to_csv(labels_path, sep="\t", index=False)
    written["labels"] = labels_path
    for name, image in dataset.masks.items():
        safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name)
        path = out / f"mask_{safe}.nii.gz"
        data = (np.asarray(image.dataobj) != 0).astype(np.uint8)
        nib.save(nib.Nifti1Image(data, image.affine), path)
        written[f"mask_{safe}"] = path
    if dataset.anat_img is not None:
        nib.save(dataset.anat_img, out / "anat.nii.gz")
        written["anat"] = out / "anat.nii.gz"
    return written
