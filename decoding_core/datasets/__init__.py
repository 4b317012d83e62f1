"""Data sets: the built-in simulated one, real Haxby 2001 subjects, the user's files.

Every loader returns one `Dataset`. The 4D functional image stays on disk
(``func_path``) and is read by streaming in `decoding_core.masking`, so that a
whole subject never sits in memory.

Modules
-------
spec
    `DatasetSpec`: the one parser of the names ``"simulated"``,
    ``"simulated:SEED"`` and ``"haxby:N"``; `DATASET_CHOICES`.
simulated
    `load_simulated`: the built-in data set, generated once and cached.
simulation
    The generator of the simulated data set (anatomy, design, signal, noise).
haxby
    `load_haxby`: a subject of Haxby et al. (2001) through nilearn, offline
    when its files are on disk.
files
    `load_files`: the user's own image, labels table, mask and anatomy;
    `load_run_files`: several images, one per run.
bids
    `load_bids`: the runs of one subject and task of a BIDS folder, labelled from
    their events (or one beta per trial); `bids_choices`, `find_runs`.

The labels table and NIfTI readers they share are in `decoding_core.io`.
"""

from __future__ import annotations

from decoding_core.datasets._base import HAXBY_CATEGORIES, MASK_TITLES, Dataset
from decoding_core.datasets.bids import BidsSelection, bids_choices, find_runs, load_bids
from decoding_core.datasets.files import load_files, load_run_files
from decoding_core.datasets.haxby import haxby_missing_files, load_haxby
from decoding_core.datasets.simulated import SimulatedGroundTruth, load_simulated
from decoding_core.datasets.spec import DATASET_CHOICES, HAXBY, SIMULATED, DatasetSpec
from decoding_core.io.labels import MAX_LABELS_BYTES, read_labels_table


def load_dataset(spec: str | DatasetSpec, **kwargs) -> Dataset:
    """Load a built-in data set by name: ``"simulated"`` (or ``"simulated:SEED"``) or ``"haxby:N"``.

    Parameters
    ----------
    spec : str or DatasetSpec
        A key of `DATASET_CHOICES`, or ``"simulated:SEED"`` (read by
        `DatasetSpec.parse`).
    **kwargs
        Passed to `load_simulated` or `load_haxby`.

    Returns
    -------
    Dataset

    Raises
    ------
    DecodingInputError
        An unknown data set, a bad seed or subject; or what the loader raises.
    """
    if not isinstance(spec, DatasetSpec):
        spec = DatasetSpec.parse(spec)
    if spec.kind == HAXBY:
        return load_haxby(spec.subject, **kwargs)
    return load_simulated(**{"seed": spec.seed, **kwargs})


__all__ = [
    "DATASET_CHOICES", "HAXBY", "HAXBY_CATEGORIES", "MASK_TITLES", "MAX_LABELS_BYTES", "SIMULATED",
    "BidsSelection", "Dataset", "DatasetSpec", "SimulatedGroundTruth",
    "bids_choices", "find_runs", "haxby_missing_files", "load_bids", "load_dataset", "load_files", "load_haxby",
    "load_run_files", "load_simulated", "read_labels_table",
]
