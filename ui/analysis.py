"""The analysis as the pages run it: masking, decoding and dummy baselines, through the caches and the queue.

Each function calls the core (`decoding_core.masking`, `decoding_core.decoding`,
`decoding_core.significance`) the way the command line would, with three things
added: the outcome is kept under a content-digest key (`ui.cache`), the work waits
for a slot of the job gate (`ui.feedback.run_heavy`), and masked matrices are made
read-only because every session shares them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from decoding_core import decoding, masking, significance
from decoding_core.config import DecodingConfig
from decoding_core.io.labels import merge_label_variants
from decoding_core.plotting import plot_score_comparison
from decoding_core.progress import share
from ui import cache
from ui.feedback import ProgressCallback, run_heavy


def result_key(dataset, config: DecodingConfig) -> tuple:
    """The cache key of one run: the data set's and the configuration's digests."""
    return (dataset.digest, config.digest())


def masked_data(dataset, mask_name: str, *, standardize="series", detrend="none", high_pass=None,
                confounds=(), smoothing_fwhm=None, progress: ProgressCallback | None = None,
                nonfinite: str = "error"):
    """The data set masked with one mask (all volumes), kept by content digest.

    The cleaning arguments are `decoding_core.masking.mask_dataset`'s; the raw voxels
    are shared across cleaning choices (`ui.cache.raw_voxel_cache_for`). ``nonfinite`` is `decoding_core.masking.mask_dataset`'s: the decoding keeps the
    default (stop on NaN or infinite values, unless the user dropped those voxels from
    the data set: `prepared_dataset`); views of the data may leave them out.
    """
    cleaning = DecodingConfig(standardize=standardize, detrend=detrend, high_pass=high_pass,
                              confounds=confounds).cleaning_options()  # checked, and True/False read as before
    key = (dataset.digest, mask_name, tuple(cleaning.values()), smoothing_fwhm, nonfinite)

    def compute():
        masked = masking.mask_dataset(
            dataset, mask_name, **cleaning, smoothing_fwhm=smoothing_fwhm,
            progress=progress, cache=cache.raw_voxel_cache_for(dataset), nonfinite=nonfinite,
        )
        # Shared by every session: make sure nobody can modify it in place.
        try:
            masked.X.setflags(write=False)
        except (AttributeError, ValueError):
            pass
        return masked

    return cache.get_or_compute("masked", key, lambda: run_heavy(compute), made_from=dataset)


def mean_timecourse(dataset, mask_name: str, progress: ProgressCallback | None = None):
    """The mask's mean raw signal in each volume (voxels with NaN/inf left out), kept by content digest.

    A `decoding_core.masking.MaskedData` whose ``X`` is the (n_volumes, 1) mean over the
    mask's voxels, what the Data page's time course draws (the mean of that one column is the
    same mean). Only this column is kept, never the volumes x voxels matrix it comes from:
    on a shared server, ten sessions' uploads would otherwise keep ten such matrices that
    nothing reads again (the decoding masks with its own cleaning).
    """
    key = (dataset.digest, mask_name, "mean over voxels")

    def compute():
        # The raw signal, as `masked_data(dataset, mask_name, standardize=False)` gives it.
        cleaning = DecodingConfig(standardize=False, detrend="none", high_pass=None, confounds=()).cleaning_options()
        masked = masking.mask_dataset(dataset, mask_name, **cleaning, progress=progress,
                                      cache=cache.raw_voxel_cache_for(dataset), nonfinite="drop")
        mean = masked.X.mean(axis=1, dtype=np.float64, keepdims=True).astype(np.float32)
        mean.setflags(write=False)
        return dataclasses.replace(masked, X=mean)

    return cache.get_or_compute("masked", key, lambda: run_heavy(compute), made_from=dataset)


def nonfinite_scan(dataset, progress: ProgressCallback | None = None) -> masking.NonFiniteScan:
    """Where the data set's image holds NaN or infinite values (one pass for float images), kept by digest."""
    if not masking.may_hold_nonfinite(dataset):
        # An integer image (every built-in one): a header read, no job slot, no place in a store.
        return masking.scan_nonfinite(dataset)
    key = ("nonfinite", dataset.digest)
    return cache.get_or_compute("masked", key, lambda: run_heavy(lambda: masking.scan_nonfinite(dataset, progress)),
                                made_from=dataset)


def prepared_dataset(loaded, *, merge_variants: bool, drop_nonfinite: bool):
    """The loaded data set as the user chose to prepare it on the Data page.

    Parameters
    ----------
    loaded : Dataset
        The data set as it was loaded.
    merge_variants : bool
        Merge condition names that differ only by case or surrounding whitespace
        (`decoding_core.io.labels.merge_label_variants`).
    drop_nonfinite : bool
        Leave the voxels holding NaN or infinite values out of every mask
        (`decoding_core.masking.drop_nonfinite_voxels`).

    Returns
    -------
    Dataset
        ``loaded`` itself when nothing changes; otherwise a data set with its own
        content digest, so nothing cached for ``loaded`` is ever used for it.
    """
    prepared = merge_label_variants(loaded) if merge_variants else loaded
    if drop_nonfinite:
        prepared = masking.drop_nonfinite_voxels(prepared, nonfinite_scan(loaded))
    return prepared


@dataclass(frozen=True)
class Preparation:
    """How the session's data set was made from the one loaded.

    Attributes
    ----------
    loaded : Dataset
        The data set as loaded.
    merge : bool
        Condition names that differ only in case or spaces were merged.
    drop : bool
        Voxels with NaN or infinite values were dropped.
    """

    loaded: object
    merge: bool = False
    drop: bool = False


def preparation(dataset, prepared_from: dict) -> Preparation:
    """How the session's ``dataset`` was prepared.

    ``prepared_from`` is the session's record (``ui.state.PREPARED_FROM``: digest ->
    `Preparation`); a data set it does not know was used as loaded.
    """
    return prepared_from.get(dataset.digest) or Preparation(loaded=dataset)


def nonfinite_in_mask(dataset, prepared_from: dict, mask_name: str) -> masking.NonFiniteVoxels | None:
    """The voxels with NaN or infinite values that masking ``dataset`` with ``mask_name`` would meet.

    The image is scanned as loaded (once); None when the mask has none, or when they were dropped.
    """
    if mask_name not in dataset.masks:
        return None
    prepared = preparation(dataset, prepared_from)
    found = nonfinite_scan(prepared.loaded).by_mask.get(mask_name)
    return None if prepared.drop else found


def selected_masked(dataset, config: DecodingConfig, progress: ProgressCallback | None = None):
    """The masked data reduced to the configuration's conditions (input of significance tests)."""
    masked = masked_data(
        dataset, config.mask_name, **config.cleaning_options(),
        smoothing_fwhm=config.smoothing_fwhm, progress=progress,
    )
    return masking.select_conditions(masked, config.conditions)


def run_decoding(dataset, config: DecodingConfig, progress: ProgressCallback | None = None):
    """Mask (kept) and decode (kept) ``dataset`` under ``config``.

    Progress runs from 0 to 0.5 while masking and 0.5 to 1 while decoding.
    """

    def compute():
        masked = masked_data(
            dataset, config.mask_name, **config.cleaning_options(),
            smoothing_fwhm=config.smoothing_fwhm, progress=share(progress, 0.0, 0.5),
        )
        return decoding.decode(masked, config, progress=share(progress, 0.5, 1.0), tr=dataset.tr)

    result = cache.get_or_compute("results", result_key(dataset, config), lambda: run_heavy(compute),
                                  made_from=dataset)
    if progress is not None:
        progress(1.0, "Done")
    return result


def has_result(dataset, config: DecodingConfig) -> bool:
    """Whether this configuration was run on this data set already (its result shows at once)."""
    return cache.is_cached("results", result_key(dataset, config), made_from=dataset)


def dummy_fold_scores(dataset, config: DecodingConfig) -> dict:
    """Per-fold scores of scikit-learn's dummy classifiers under the same scheme and scoring."""

    def compute():
        return significance.dummy_scores(selected_masked(dataset, config), config)

    key = ("dummy",) + result_key(dataset, config)
    return cache.get_or_compute("permutations", key, lambda: run_heavy(compute), made_from=dataset)


def score_comparison_figure(result, dataset):
    """The decoder's fold scores beside the dummy classifiers' (same folds, same scoring)."""
    scores = {"decoder": result.fold_scores}
    for strategy, values in dummy_fold_scores(dataset, result.config).items():
        scores[f"dummy: {strategy}"] = values
    return plot_score_comparison(scores, chance=result.chance_level)
