"""The command line: the same core calls as the app, from a shell.

Examples
--------
::

    python -m decoding_core decode --dataset simulated
    python -m decoding_core decode --dataset haxby:2 --cv kfold --folds 5 --json
    python -m decoding_core decode --func bold.nii.gz --labels labels.txt \\
        --mask mask_vt.nii.gz --conditions face cat --weights-out weights.nii.gz
    python -m decoding_core decode --dataset simulated --permutations 1000 --seed 0 --json
    python -m decoding_core info --dataset simulated
    python -m decoding_core decode --bids ds/ --task objectviewing --subject 1 --hrf-lag 5 \\
        --mask mask.nii.gz --conditions face cat --cv leave-one-run-out
    python -m decoding_core info --bids ds/
    python -m decoding_core run config.json --dataset haxby:2 --out results/run1
    python -m decoding_core sweep --dataset simulated --setting C --values 0.001..100 --out results/sweep-C
    python -m decoding_core export-data --dataset simulated --out data/simulated
    python -m decoding_core searchlight --dataset simulated --radius 5.6 --out map.nii.gz --json
    python -m decoding_core group --subjects simulated:0..4 --json
    python -m decoding_core sweep --dataset simulated --setting C --out sweep/ --scheduler tcp://127.0.0.1:8786
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

import numpy as np

from decoding_core import cluster, datasets, decoding, export, group, masking, prefetch, significance
from decoding_core.config import CV_SCHEMES, ESTIMATORS, SCORINGS, SETTINGS, DecodingConfig
from decoding_core.errors import DecodingInputError
from decoding_core.export import read_config_json
from decoding_core.history import RunRecord
from decoding_core.reproduce import export_data, export_file_name, export_run_zip
from decoding_core.searchlight import run_searchlight
from decoding_core.sweeps import SWEEPABLE, default_sweep_values, parse_sweep_values, run_sweep, sweep_table
from decoding_core.urlstate import shareable_dataset_spec

#: Exit status for input the user can fix (argparse uses 2 for usage errors too).
EXIT_INPUT_ERROR = 2
#: Exit status for anything unexpected.
EXIT_INTERNAL_ERROR = 1


def _add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data set (one of --dataset, --func/--labels or --bids)")
    group.add_argument("--dataset", help="'simulated' (built-in, offline; 'simulated:SEED' for another seed) "
                                          "or 'haxby:N' with N in 1..6")
    group.add_argument("--data-dir", type=Path, help="directory for the Haxby download (nilearn's data_dir)")
    group.add_argument("--func", type=Path, help="your 4D functional image (.nii or .nii.gz)")
    group.add_argument("--labels", type=Path, help="your labels table: one row per volume (CSV, TSV or space separated)")
    group.add_argument("--label-column", default="labels", help="column of the labels table with the conditions (default: labels)")
    group.add_argument("--run-column", default="chunks",
                       help="column of the labels table with the runs (default: chunks; 'none' for no runs)")
    group.add_argument("--mask", type=Path, help="your 3D mask on the image's grid (default: computed EPI mask)")
    group.add_argument("--anat", type=Path, help="your anatomical image (default: the mean functional image)")
    group.add_argument("--tr", type=float, help="repetition time in seconds (default: from the image header)")
    _add_bids_arguments(parser)


def _add_bids_arguments(parser: argparse.ArgumentParser) -> None:
    from decoding_core.datasets.bids import DESIGNS

    group = parser.add_argument_group(
        "BIDS data set",
        "A raw BIDS folder (fMRIPrep derivatives under derivatives/ are found too) or an fMRIPrep "
        "derivatives folder: one bold file per run, its events.tsv, RepetitionTime from the sidecars. "
        "--mask and --anat apply as for your own files.")
    group.add_argument("--bids", type=Path, metavar="DIR", help="the BIDS folder ('info --bids DIR' lists what it holds)")
    group.add_argument("--subject", metavar="LABEL", help="subject label (with or without 'sub-')")
    group.add_argument("--task", help="task label (with or without 'task-')")
    group.add_argument("--session", metavar="S", help="session label (default: every session's runs)")
    group.add_argument("--space", help="fMRIPrep space of *_desc-preproc_bold files (default: the raw bold files)")
    group.add_argument("--hrf-lag", type=float, metavar="SECONDS",
                       help="block design: seconds added to each event's onset before labelling the volumes, "
                            "for the haemodynamic delay (default: 0, the volume acquired during the stimulus)")
    group.add_argument("--drop-edge-volumes", type=int, metavar="N",
                       help="block design: label the first and last N volumes of each block 'edge', "
                            "left out of decoding (default: 0)")
    group.add_argument("--design", choices=list(DESIGNS),
                       help="how events become samples: " + "; ".join(f"{k}: {v}" for k, v in DESIGNS.items())
                            + " (default: block)")


#: argparse ``type`` of each kind of setting (choices are given by their table).
_ARGUMENT_TYPES = {"int": int, "float": float, "optional_float": float}


def _add_setting_argument(group, setting, default) -> None:
    """One command-line option of a `decoding_core.config.SETTINGS` entry."""
    dest = setting.name
    if setting.kind == "bool" and default is True:  # a flag that turns the setting off
        group.add_argument(setting.cli_flag, dest=dest, action="store_false", default=None,
                           help=f"{setting.help} Off with this flag.")
        return
    if setting.kind == "bool":
        group.add_argument(setting.cli_flag, dest=dest, action="store_true", default=None, help=setting.help)
        return
    if setting.cli_off_flag:  # an older flag kept working: it chooses "none"
        group.add_argument(setting.cli_off_flag, dest=dest, action="store_const", const="none",
                           help=f"the same as {setting.cli_flag} none")
    options = {"nargs": "+"} if setting.kind in ("conditions", "choices") else {}
    if setting.kind in ("choice", "choices"):
        options["choices"] = list(setting.choices)
    if setting.cli_bare_value is not None:  # the flag alone still means what it meant as a yes/no flag
        options.update(nargs="?", const=setting.cli_bare_value)
    if setting.kind in _ARGUMENT_TYPES:
        options["type"] = _ARGUMENT_TYPES[setting.kind]
    shown = (" ".join(default) or "none") if setting.kind in ("conditions", "choices") else default
    group.add_argument(setting.cli_flag, dest=dest, help=f"{setting.help} (default: {shown})", **options)


def _add_config_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DecodingConfig()
    group = parser.add_argument_group("decoding")
    group.add_argument("--config", type=Path, help="a configuration JSON file (as the app exports); other options override it")
    for setting in SETTINGS.values():
        _add_setting_argument(group, setting, getattr(defaults, setting.name))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m decoding_core``."""
    parser = argparse.ArgumentParser(
        prog="python -m decoding_core",
        description="fMRI Decoding Lab from the command line: decode conditions from fMRI volumes.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    decode_parser = commands.add_parser("decode", help="run one decoding analysis and print its scores")
    _add_dataset_arguments(decode_parser)
    _add_config_arguments(decode_parser)
    _add_permutation_arguments(decode_parser)
    _add_scheduler_argument(decode_parser, "the permutations")
    output = decode_parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print one JSON object instead of a text summary")
    output.add_argument("--weights-out", type=Path, help="write the weight map to this .nii.gz file")
    output.add_argument("--quiet", action="store_true", help="no progress messages on stderr")

    info_parser = commands.add_parser("info", help="describe a data set: shape, runs, conditions, masks")
    _add_dataset_arguments(info_parser)
    info_parser.add_argument("--json", action="store_true", help="print one JSON object")

    run_parser = commands.add_parser(
        "run", help="run a configuration file (as the app exports it) and write the run's export",
        description="Run one configuration and write the same export as the app's download: "
                    "config.json, fold_scores.csv, predictions.csv, weights.nii.gz, versions.json, "
                    "reproduce.py (unpacked in --out, and as a zip there).",
    )
    run_parser.add_argument("config_file", type=Path, nargs="?",
                            help="configuration JSON (config.json of an export, or the app's configuration download)")
    _add_dataset_arguments(run_parser)
    _add_config_arguments(run_parser)
    _add_export_arguments(run_parser)

    sweep_parser = commands.add_parser(
        "sweep", help="run a configuration for several values of one setting; one export per value + sweep.csv",
    )
    _add_dataset_arguments(sweep_parser)
    _add_config_arguments(sweep_parser)
    sweep_group = sweep_parser.add_argument_group("sweep")
    sweep_group.add_argument("--setting", required=True, choices=list(SWEEPABLE), help="the setting to vary")
    sweep_group.add_argument("--values", help="values, comma separated; ranges LOW..HIGH or LOW..HIGH:COUNT "
                                              "(default: the setting's usual values)")
    _add_scheduler_argument(sweep_parser, "the runs of the sweep")
    _add_export_arguments(sweep_parser)

    _add_searchlight_parser(commands)
    _add_group_parser(commands)

    data_parser = commands.add_parser(
        "export-data", help="write a data set's files (image, labels, masks) to a folder, e.g. for reproduce.py",
    )
    _add_dataset_arguments(data_parser)
    data_parser.add_argument("--out", type=Path, required=True, help="output folder")
    data_parser.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    return parser


def _add_searchlight_parser(commands) -> None:
    parser = commands.add_parser(
        "searchlight", help="score every voxel of the mask by decoding the sphere around it; write the map",
        description="A searchlight map (nilearn's spheres: the mask's voxels within --radius mm of each "
                    "voxel): each voxel's score is the configuration's cross-validated score on its sphere.")
    _add_dataset_arguments(parser)
    _add_config_arguments(parser)
    group = parser.add_argument_group("searchlight")
    group.add_argument("--radius", type=float, default=5.6, help="sphere radius in millimetres (default: 5.6)")
    group.add_argument("--out", type=Path, required=True, help="write the map to this .nii.gz file")
    group.add_argument("--json", action="store_true", help="print one JSON object instead of a text summary")
    group.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    _add_scheduler_argument(parser, "the chunks of spheres")


def _add_scheduler_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT",
        help=f"run {what} on this Dask scheduler's workers (started with `dask scheduler` and "
             "`dask worker`); only masked matrices and the configuration are sent, the results are "
             "those of a local run (default: run here)",
    )


def _scheduler(args) -> str | None:
    """``--scheduler``, checked (None when not given)."""
    return None if args.scheduler is None else cluster.check_scheduler_address(args.scheduler)


def _add_group_parser(commands) -> None:
    parser = commands.add_parser(
        "group", help="decode one configuration in several subjects and test the group against chance",
        description="Each subject is decoded as 'decode' would; the per-subject scores minus chance are "
                    "tested with a one-sided one-sample t-test and a sign-flip permutation test.")
    subjects = parser.add_argument_group("subjects (--subjects, or --bids with --task)")
    subjects.add_argument("--subjects", nargs="+", metavar="NAME",
                          help="data sets: simulated:SEED, haxby:N, or ranges simulated:0..4, haxby:1..6 "
                               f"(default: simulated:{group.DEFAULT_SIMULATED_SEEDS[0]}.."
                               f"{group.DEFAULT_SIMULATED_SEEDS[-1]})")
    subjects.add_argument("--data-dir", type=Path, help="directory for the Haxby download (nilearn's data_dir)")
    subjects.add_argument("--bids", type=Path, metavar="DIR", help="every subject of this BIDS folder")
    subjects.add_argument("--task", help="the BIDS task (with --bids)")
    _add_config_arguments(parser)
    tests = parser.add_argument_group("group test")
    tests.add_argument("--sign-flips", type=int, default=group.DEFAULT_SIGN_FLIPS, metavar="N",
                       help="random sign patterns of the sign-flip test; all 2**subjects when fewer "
                            f"(default: {group.DEFAULT_SIGN_FLIPS})")
    tests.add_argument("--seed", type=int, default=0, help="seed of the random sign patterns (default: 0)")
    _add_scheduler_argument(parser, "the subjects")
    output = parser.add_argument_group("output")
    output.add_argument("--json", action="store_true", help="print one JSON object instead of a text summary")
    output.add_argument("--table-out", type=Path, help="write the per-subject table to this CSV file")
    output.add_argument("--map-out", type=Path, help="write the group mean weight map to this .nii.gz file")
    output.add_argument("--quiet", action="store_true", help="no progress messages on stderr")


def _add_permutation_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "significance",
        "A permutation test of the mean score, as scikit-learn's permutation_test_score: the whole "
        "cross-validation is rerun on copies of the data whose labels are shuffled within each run "
        "(across all samples when there are no runs).",
    )
    group.add_argument(
        "--permutations", type=int, metavar="N",
        help=f"run a permutation test with N shuffled copies (1 to {significance.MAX_PERMUTATIONS:,}) and "
             "report its p-value, (1 + #null scores >= score) / (1 + N), and the null scores; "
             "uses every available core (default: no test)",
    )
    group.add_argument(
        "--seed", type=int, metavar="S",
        help=f"seed of the shuffling, 0 to {2**32 - 1}: the same seed gives the same permutations as "
             "permutation_test_score(..., random_state=S) (default: 0; only with --permutations)",
    )


def _checked_permutation_args(args) -> tuple[int | None, int]:
    """``--permutations`` and ``--seed`` after checking them (before any data are read).

    Raises
    ------
    DecodingInputError
        A count out of range, a negative or too large seed, or a seed without a test.
    """
    n_permutations, seed = args.permutations, args.seed
    if n_permutations is None:
        if seed is not None:
            raise DecodingInputError("--seed sets the shuffling of a permutation test: give --permutations N too.")
        return None, 0
    if not 1 <= n_permutations <= significance.MAX_PERMUTATIONS:
        raise DecodingInputError(
            f"--permutations must be between 1 and {significance.MAX_PERMUTATIONS:,}; got {n_permutations}. "
            "1000 gives p-values down to 0.001."
        )
    seed = 0 if seed is None else seed
    if not 0 <= seed < 2**32:
        raise DecodingInputError(f"--seed must be between 0 and {2**32 - 1}; got {seed}.")
    return n_permutations, seed


def _add_export_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument("--out", type=Path, required=True, help="output folder (created when missing)")
    group.add_argument("--name", help="name of the run (default: made from the settings)")
    group.add_argument("--no-unpack", action="store_true", help="write only the zip, not its files")
    group.add_argument("--json", action="store_true", help="print one JSON object instead of a text summary")
    group.add_argument("--quiet", action="store_true", help="no progress messages on stderr")


def _bids_only_options(args) -> list[str]:
    names = {"subject": "--subject", "task": "--task", "session": "--session", "space": "--space",
             "hrf_lag": "--hrf-lag", "drop_edge_volumes": "--drop-edge-volumes", "design": "--design"}
    return [flag for name, flag in names.items() if getattr(args, name, None) is not None]


def load_bids_from_args(args, progress=None):
    """Load the BIDS selection ``--bids``, ``--subject``, ``--task`` (and the other BIDS options) name."""
    from decoding_core.datasets.bids import load_bids

    if args.dataset or args.func or args.labels:
        raise DecodingInputError("Give either --bids or --dataset or --func/--labels, not two of them.")
    if args.subject is None or args.task is None:
        raise DecodingInputError(
            "A BIDS data set needs --subject and --task: see what it holds with  python -m decoding_core info "
            f"--bids {args.bids}"
        )
    return load_bids(args.bids, subject=args.subject, task=args.task, session=args.session, space=args.space,
                     hrf_lag=0.0 if args.hrf_lag is None else args.hrf_lag,
                     drop_edge_volumes=args.drop_edge_volumes or 0, design=args.design or "block",
                     mask=args.mask, anat=args.anat, progress=progress)


def load_dataset_from_args(args, progress=None):
    """Load the data set that ``--dataset``, ``--func``/``--labels`` or ``--bids`` names."""
    if getattr(args, "bids", None) is not None:
        return load_bids_from_args(args, progress=progress)
    if _bids_only_options(args):
        raise DecodingInputError(f"{', '.join(_bids_only_options(args))}: options of a BIDS data set; give --bids DIR too.")
    if args.dataset and args.func:
        raise DecodingInputError("Give either --dataset or --func/--labels, not both.")
    if args.dataset:
        try:
            spec = datasets.DatasetSpec.parse(args.dataset)
        except DecodingInputError as error:
            raise DecodingInputError(f"{error} Or give your own files with --func and --labels.") from None
        if spec.kind == datasets.HAXBY:
            return datasets.load_haxby(spec.subject, data_dir=args.data_dir, progress=progress)
        return datasets.load_simulated(spec.seed)
    if args.func is None and args.labels is None:
        return datasets.load_simulated()
    if args.func is None or args.labels is None:
        raise DecodingInputError("Your own data need both --func (the 4D image) and --labels (the labels table).")
    run_column = None if str(args.run_column).lower() == "none" else args.run_column
    return datasets.load_files(
        args.func, args.labels, label_column=args.label_column, run_column=run_column,
        mask=args.mask, anat=args.anat, tr=args.tr,
    )


def read_config_file(path: Path):
    """A configuration file (as the app or an export writes it) -> (DecodingConfig, data set info or None)."""
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise DecodingInputError(f"Cannot read the configuration file {path}: {err.strerror}.") from None
    except UnicodeDecodeError:
        raise DecodingInputError(f"The configuration file {path} is not text; give a .json file.") from None
    return read_config_json(text)


def config_from_args(args, dataset, base: DecodingConfig | None = None) -> DecodingConfig:
    """Merge ``base`` (else ``--config``, else the defaults) with the options given on the command line."""
    from_file = base is not None or bool(args.config)
    if base is not None:
        config = base
    elif args.config:
        config = read_config_file(args.config)[0]
    else:
        config = DecodingConfig()
    changes = {}
    if args.mask_name is None and not from_file and config.mask_name not in dataset.masks:
        # Uploaded data have "uploaded" or "epi" rather than Haxby's "vt".
        changes["mask_name"] = next(iter(dataset.masks))
    for name, setting in SETTINGS.items():
        value = getattr(args, name)
        if value is not None:
            changes[name] = tuple(value) if setting.kind in ("conditions", "choices") else value
    config = config.replace(**changes) if changes else config
    if config.mask_name not in dataset.masks:
        raise DecodingInputError(
            f"The data set has no mask named {config.mask_name!r}. Its masks are: {sorted(dataset.masks)}."
        )
    return config


def _describe(dataset) -> dict:
    conditions, counts = np.unique(dataset.conditions, return_counts=True)
    return {
        "name": dataset.name,
        "title": dataset.title,
        "shape": [int(s) for s in dataset.shape],
        "voxel_size_mm": [round(v, 3) for v in dataset.voxel_size],
        "tr": dataset.tr,
        "n_volumes": dataset.n_volumes,
        "n_runs": dataset.n_runs,
        "conditions": {str(c): int(n) for c, n in zip(conditions, counts)},
        "masks": {name: int((np.asarray(img.dataobj) != 0).sum()) for name, img in dataset.masks.items()},
        "description": dataset.description,
        "digest": dataset.digest,
    }


def _progress_printer(quiet: bool):
    if quiet:
        return None
    last = {"message": None}

    def progress(fraction: float, message: str) -> None:
        if message != last["message"]:
            print(f"[{fraction:4.0%}] {message}", file=sys.stderr, flush=True)
            last["message"] = message

    return progress


def _permutation_test(dataset, config: DecodingConfig, raw_voxels: masking.RawVoxelCache,
                      n_permutations: int, seed: int, progress, scheduler=None) -> significance.PermutationResult:
    """The permutation test of the decode just run, on the same masked matrix and folds.

    ``raw_voxels`` holds the raw matrix the decode read: masking again only redoes
    the cleaning (deterministic, so the matrix is the decode's), not the file pass.
    """
    masked = masking.mask_dataset(
        dataset, config.mask_name, **config.cleaning_options(),
        smoothing_fwhm=config.smoothing_fwhm, cache=raw_voxels,
    )
    return significance.permutation_test(masked, config, n_permutations=n_permutations, seed=seed,
                                         progress=progress, n_jobs=-1, scheduler=scheduler)


def _permutation_summary(test: significance.PermutationResult) -> dict:
    return {"p_value": test.p_value, "null_scores": [float(s) for s in test.null_scores],
            "n_permutations": test.n_done, "seed": test.seed,
            "shuffled_within_runs": test.shuffle_within_runs}


def _command_decode(args) -> int:
    n_permutations, seed = _checked_permutation_args(args)
    scheduler = _scheduler(args)
    if scheduler is not None and not n_permutations:
        raise DecodingInputError("--scheduler runs the permutations of a test on a cluster: give --permutations N too.")
    progress = _progress_printer(args.quiet or args.json)
    # The voxels `python -m decoding_core` read while this module was imported, if it did;
    # taken first, so that the file's digest is not computed twice.
    raw_voxels = prefetch.take()
    dataset = load_dataset_from_args(args, progress=progress)
    config = config_from_args(args, dataset)
    cost_note = ESTIMATORS[config.estimator].many_classes_note
    if cost_note and len(config.conditions) > 2 and not (args.quiet or args.json):
        print(f"Note: {cost_note}", file=sys.stderr)
    if raw_voxels is None and n_permutations:
        # The permutation test then needs no second pass over the file.
        raw_voxels = masking.RawVoxelCache()
    result = decoding.run_decoding(dataset, config, progress=progress, cache=raw_voxels)
    test = None
    if n_permutations:
        test = _permutation_test(dataset, config, raw_voxels, n_permutations, seed, progress, scheduler)
    if args.weights_out:
        args.weights_out.write_bytes(export.image_to_nifti_bytes(result.weight_img))
    summary = export.result_summary(result)
    summary["dataset"] = dataset.name
    if test is not None:
        summary.update(_permutation_summary(test))
    if args.weights_out:
        summary["weights_out"] = str(args.weights_out)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"Data set: {dataset.title}")
    print(f"Decoding {' vs '.join(config.conditions)} in mask {config.mask_name!r}: "
          f"{result.n_samples} samples x {result.n_voxels} voxels")
    print(f"Scheme: {CV_SCHEMES[config.cv].title}; estimator: {ESTIMATORS[config.estimator].title}, C={config.C:g}")
    scores = ", ".join(f"{s:.3f}" for s in result.fold_scores)
    print(f"Fold scores ({SCORINGS[config.scoring].short}): {scores}")
    print(f"Mean {result.mean_score:.3f} (sd {result.std_score:.3f}); chance level {result.chance_level:.3f}")
    if result.meaningless:
        print("Note: this is accuracy on the training data itself; it says nothing about decoding.")
    if test is not None:
        shuffled = "within runs" if test.shuffle_within_runs else "across all samples (no runs)"
        print(f"Permutation test: p = {test.p_value:.4g} over {test.n_done} permutations (labels shuffled "
              f"{shuffled}, seed {test.seed}); null scores mean {test.null_mean:.3f}, "
              f"max {max(test.null_scores):.3f}; smallest possible p {test.min_p_value:.4g}")
    for warning in result.warnings:
        print(f"Warning: {warning}")
    for note in result.notes:
        print(f"Note: {note}")
    if args.weights_out:
        print(f"Weight map written to {args.weights_out}")
    return 0


def _command_searchlight(args) -> int:
    scheduler = _scheduler(args)
    progress = _progress_printer(args.quiet or args.json)
    dataset = load_dataset_from_args(args, progress=progress)
    config = config_from_args(args, dataset)
    result = run_searchlight(dataset, config, args.radius, progress=progress,
                             map_chunks=None if scheduler is None else cluster.chunk_mapper(scheduler))
    args.out.write_bytes(export.image_to_nifti_bytes(result.score_img))
    scores = result.scores[np.isfinite(result.scores)]
    summary = {
        "dataset": dataset.name, "config": config.to_dict(), "radius_mm": result.radius,
        "n_spheres": result.n_spheres, "sphere_size_min": int(result.sphere_sizes.min()),
        "sphere_size_mean": float(result.sphere_sizes.mean()), "sphere_size_max": int(result.sphere_sizes.max()),
        "mean_score": float(scores.mean()) if scores.size else None,
        "max_score": float(scores.max()) if scores.size else None,
        "chance_level": result.chance_level, "n_samples": result.n_samples, "partial": result.partial,
        "best_voxels": result.best_voxels(5), "elapsed_seconds": result.elapsed_seconds, "out": str(args.out),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"Searchlight of {' vs '.join(config.conditions)} in mask {config.mask_name!r}: {result.n_spheres} "
          f"spheres of radius {result.radius:g} mm ({summary['sphere_size_min']}-{summary['sphere_size_max']} "
          f"voxels), {ESTIMATORS[config.estimator].title}, {CV_SCHEMES[config.cv].title}")
    print(f"Mean {SCORINGS[config.scoring].short} {summary['mean_score']:.3f}, best {summary['max_score']:.3f}; "
          f"chance level {result.chance_level:.3f}; {result.elapsed_seconds:.1f} s")
    for best in summary["best_voxels"]:
        print(f"  voxel {tuple(best['voxel'])} ({', '.join(f'{c:g}' for c in best['mm'])} mm): {best['score']:.3f}")
    print(f"Map written to {args.out}")
    return 0


def _bids_contents(args) -> dict:
    """What a BIDS folder holds; with --subject and --task, the runs of that selection too."""
    from decoding_core.datasets.bids import bids_choices, find_runs

    choices = bids_choices(args.bids)
    contents = {"bids": str(choices.root), "subjects": list(choices.subjects), "tasks": list(choices.tasks),
                "sessions": list(choices.sessions), "spaces": list(choices.spaces), "raw": choices.has_raw}
    if args.subject is not None and args.task is not None:
        runs = find_runs(args.bids, subject=args.subject, task=args.task, session=args.session, space=args.space)
        contents["runs"] = [
            {"run": label, "bold": bold.name, "n_volumes": n, "tr": tr,
             "events": None if events is None else events.name,
             "confounds": None if confounds is None else confounds.name}
            for label, bold, n, tr, events, confounds in zip(runs.run_labels, runs.bold_files, runs.n_volumes,
                                                             runs.tr, runs.events_files, runs.confounds_files)
        ]
    return contents


def _command_info(args) -> int:
    if args.bids is not None and (args.subject is None or args.task is None):
        description = _bids_contents(args)  # what there is to choose from
    else:
        dataset = load_dataset_from_args(args)
        description = _describe(dataset)
        if args.bids is not None:
            description.update({key: value for key, value in _bids_contents(args).items() if key == "runs"})
    if args.json:
        print(json.dumps(description))
        return 0
    for key, value in description.items():
        print(f"{key}: {value}")
    return 0


def _write_export(record, zip_bytes: bytes, out_dir: Path, unpack: bool) -> dict:
    """Write an export zip (and its files) into ``out_dir``; return what was written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DecodingInputError(f"Cannot create the folder {out_dir}: {err.strerror}. Choose another --out.") from None
    zip_path = out_dir / export_file_name(record)
    zip_path.write_bytes(zip_bytes)
    written = {"zip": str(zip_path)}
    if unpack:
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            for member in archive.namelist():
                target = out_dir / Path(member).name  # flat archive; never follow paths out of out_dir
                target.write_bytes(archive.read(member))
        (out_dir / "reproduce.py").chmod(0o755)
        written["files"] = str(out_dir)
    return written


def _use_recorded_bids_selection(args, name) -> bool:
    """For a configuration run on a BIDS data set, its folder and selection (options given win); False if not one."""
    from decoding_core.datasets.bids import BidsSelection

    selection = BidsSelection.from_name(name)
    if selection is None:
        return False
    args.bids = Path(selection.root)
    for key, value in selection.load_arguments().items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)
    return True


def _base_config_and_dataset(args, progress):
    """The configuration file's settings and the data set: the one named, else the file's own."""
    base, recorded = None, None
    config_path = getattr(args, "config_file", None)
    if config_path is not None and args.config is not None:
        raise DecodingInputError("Give the configuration file once: either as CONFIG or with --config.")
    config_path = config_path or args.config
    if config_path is not None:
        base, recorded = read_config_file(config_path)
    if not args.dataset and not args.func and not args.labels and args.bids is None and recorded:
        spec = shareable_dataset_spec(recorded.get("name"))
        if spec is None and not _use_recorded_bids_selection(args, recorded.get("name")):
            raise DecodingInputError(
                f"This configuration was run on your own files ({recorded.get('title') or recorded.get('name')}); "
                "give them with --func and --labels (and --mask)."
            )
        args.dataset = spec
    dataset = load_dataset_from_args(args, progress=progress)
    if recorded and recorded.get("digest") and recorded["digest"] != dataset.digest:
        print("warning: the data differ from those the configuration was run on (content digest); "
              "scores may differ.", file=sys.stderr)
    return config_from_args(args, dataset, base=base), dataset


def _command_run(args) -> int:
    progress = _progress_printer(args.quiet or args.json)
    config, dataset = _base_config_and_dataset(args, progress)
    result = decoding.run_decoding(dataset, config, progress=progress)
    record = RunRecord.from_result(result, dataset, name=args.name)
    written = _write_export(record, export_run_zip(result, dataset, record), args.out, not args.no_unpack)
    summary = {"name": record.name, "dataset": dataset.name, "fold_scores": [float(s) for s in result.fold_scores],
               "mean_score": float(result.mean_score), "chance_level": float(result.chance_level), **written}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{record.name}: mean {result.mean_score:.3f} over {len(result.fold_scores)} folds "
              f"(chance {result.chance_level:.3f})")
        print(f"Export written to {written['zip']}")
    return 0


def _command_sweep(args) -> int:
    scheduler = _scheduler(args)
    progress = _progress_printer(args.quiet or args.json)
    base, dataset = _base_config_and_dataset(args, progress)
    values = (parse_sweep_values(args.setting, args.values) if args.values
              else default_sweep_values(args.setting, dataset))
    results = run_sweep(dataset, base, args.setting, values, progress=progress, scheduler=scheduler)
    table = sweep_table(results, args.setting)
    runs = []
    for result, label in zip(results, table["label"]):
        record = RunRecord.from_result(result, dataset, name=f"{args.name or 'sweep'} {args.setting}={label}")
        folder = args.out / f"{args.setting}={label}".replace("/", "_")
        runs.append(_write_export(record, export_run_zip(result, dataset, record), folder, not args.no_unpack))
    table["export"] = [run["zip"] for run in runs]
    csv_table = table.drop(columns=["fold_scores"]).assign(
        fold_scores=[";".join(f"{s:.10g}" for s in scores) for scores in table["fold_scores"]]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "sweep.csv").write_text(export.csv_text(csv_table))  # safe to open in a spreadsheet
    if args.json:
        print(json.dumps({"setting": args.setting, "sweep_csv": str(args.out / "sweep.csv"),
                          "runs": [{"value": label, "mean_score": float(mean), "export": run["zip"]}
                                   for label, mean, run in zip(table["label"], table["mean_score"], runs)]}))
        return 0
    print(f"Sweep of {args.setting} on {dataset.title}:")
    for label, mean, std in zip(table["label"], table["mean_score"], table["std_score"]):
        print(f"  {args.setting} = {label}: mean {mean:.3f} (sd {std:.3f})")
    print(f"Table written to {args.out / 'sweep.csv'}; one export per value in {args.out}")
    return 0


def _command_export_data(args) -> int:
    dataset = load_dataset_from_args(args, progress=_progress_printer(args.quiet))
    written = export_data(dataset, args.out)
    for role, path in written.items():
        print(f"{role}: {path}")
    return 0


def _group_subjects(args) -> list:
    if args.bids is not None:
        if args.subjects or not args.task:
            raise DecodingInputError("With --bids give --task (and no --subjects): every subject of the folder is used.")
        return group.bids_subjects(args.bids, task=args.task)
    seeds = group.DEFAULT_SIMULATED_SEEDS
    return group.subjects_from_specs(args.subjects or [f"simulated:{seeds[0]}..{seeds[-1]}"], data_dir=args.data_dir)


def _command_group(args) -> int:
    scheduler = _scheduler(args)
    progress = _progress_printer(args.quiet or args.json)
    subjects = _group_subjects(args)
    first = subjects[0].load(progress)  # the configuration's mask is checked against the first subject
    config = config_from_args(args, first)
    subjects[0] = group.Subject(subjects[0].name, lambda _progress: first)
    result = group.run_group(subjects, config, scheduler=scheduler, n_flips=args.sign_flips, seed=args.seed,
                             progress=progress)
    table = group.group_table(result)
    if args.table_out:
        table.to_csv(args.table_out, index=False)  # names are sub-LABEL or data-set names: plain text
    if args.map_out and result.mean_weight_img is not None:
        args.map_out.write_bytes(export.image_to_nifti_bytes(result.mean_weight_img))
    summary = group.group_summary(result)
    if args.json:
        print(json.dumps(summary))
        return 0
    print(f"Group of {len(result.names)} subjects, {' vs '.join(config.conditions)} in mask {config.mask_name!r} "
          f"({SCORINGS[config.scoring].short}, {CV_SCHEMES[config.cv].title}):")
    for row in table.itertuples():
        print(f"  {row.subject}: {row.mean_score:.3f} (chance {row.chance_level:.3f}, 95% CI "
              f"{row.ci_low:.3f}-{row.ci_high:.3f})")
    if result.t_test is not None:
        flips = "all sign patterns" if result.sign_flip.exact else f"{result.sign_flip.n_flips} random sign patterns"
        print(f"Mean score - chance {result.t_test.mean_difference:+.3f}; one-sided t({result.t_test.df}) = "
              f"{result.t_test.statistic:.2f}, p = {result.t_test.p_value:.3g}; sign-flip p = "
              f"{result.sign_flip.p_value:.3g} ({flips})")
    print(result.map_note)
    return 0


COMMANDS = {"decode": _command_decode, "info": _command_info, "run": _command_run, "sweep": _command_sweep,
            "export-data": _command_export_data, "searchlight": _command_searchlight, "group": _command_group}


def main(argv=None) -> int:
    """Run the command line; return the exit status.

    ``argv`` items may be paths or numbers (tests and scripts pass them); they are turned into text.
    """
    if argv is not None:
        argv = [str(item) for item in argv]
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except DecodingInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except (OSError, MemoryError) as err:
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    except Exception as err:  # one clear line instead of a traceback
        print(f"error: unexpected {type(err).__name__}: {err}", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
