"""The analysis as the pages run it: masking, decoding and dummy baselines, through the caches and the queue.

Each function calls the core (`decoding_core.masking`, `decoding_core.decoding`,
`decoding_core.significance`) the way the command line would, with three things
added: the outcome is kept under a content-digest key (`ui.cache`), the work waits
for a slot of the job gate (`ui.feedback.run_heavy`), and masked matrices are made
read-only because every session shares them.
"""

from __future__ import annotations

from decoding_core import decoding, masking, significance
from decoding_core.config import DecodingConfig
from decoding_core.plotting import plot_score_comparison
from ui import cache
from ui.feedback import ProgressCallback, run_heavy


def result_key(dataset, config: DecodingConfig) -> tuple:
    """The cache key of one run: the data set's and the configuration's digests."""
    return (dataset.digest, config.digest())


def masked_data(dataset, mask_name: str, *, standardize: bool = True, detrend: bool = False,
                smoothing_fwhm=None, progress: ProgressCallback | None = None):
    """The data set masked with one mask (all volumes), kept by content digest."""
    key = (dataset.digest, mask_name, bool(standardize), bool(detrend), smoothing_fwhm)

    def compute():
        masked = masking.mask_dataset(
            dataset, mask_name, standardize=standardize, detrend=detrend,
            smoothing_fwhm=smoothing_fwhm, progress=progress, cache=cache.raw_voxel_cache_for(dataset),
        )
        # Shared by every session: make sure nobody can modify it in place.
        try:
            masked.X.setflags(write=False)
        except (AttributeError, ValueError):
            pass
        return masked

    return cache.get_or_compute("masked", key, lambda: run_heavy(compute), made_from=dataset)


def selected_masked(dataset, config: DecodingConfig, progress: ProgressCallback | None = None):
    """The masked data reduced to the configuration's conditions (input of significance tests)."""
    masked = masked_data(
        dataset, config.mask_name, standardize=config.standardize, detrend=config.detrend,
        smoothing_fwhm=config.smoothing_fwhm, progress=progress,
    )
    return masking.select_conditions(masked, config.conditions)


def run_decoding(dataset, config: DecodingConfig, progress: ProgressCallback | None = None):
    """Mask (kept) and decode (kept) ``dataset`` under ``config``.

    Progress runs from 0 to 0.5 while masking and 0.5 to 1 while decoding.
    """

    def masking_progress(fraction, message=""):
        if progress is not None:
            progress(0.5 * float(fraction), message or "Masking")

    def decoding_progress(fraction, message=""):
        if progress is not None:
            progress(0.5 + 0.5 * float(fraction), message or "Decoding")

    def compute():
        masked = masked_data(
            dataset, config.mask_name, standardize=config.standardize, detrend=config.detrend,
            smoothing_fwhm=config.smoothing_fwhm, progress=masking_progress,
        )
        return decoding.decode(masked, config, progress=decoding_progress, tr=dataset.tr)

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
