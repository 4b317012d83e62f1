"""Pure Plotly figure builders: brain slices, the data before decoding, and results.

Every function takes plain data (nibabel images, numpy arrays, pandas objects,
`DecodingResult`) and returns a ``plotly.graph_objects.Figure``. Nothing here
shows a figure or reads application state, so the app, notebooks and tests
draw the same figures.

What is where
-------------
`decoding_core.plotting.slices`
    Brain slice views: `plot_stat_slices` (a map over an anatomy, as nilearn's
    ``plot_stat_map``), `plot_roi` (a region or an atlas), `default_cut_coords`
    and `voxel_from_click` (a clicked point back to its voxel); the reorientation
    to RAS+, cut coordinates and background anatomy behind them.
`decoding_core.plotting.data`
    The data before decoding: `plot_condition_timeline`, `plot_condition_counts`,
    `plot_class_balance`, `plot_mean_timecourse`, `plot_events_timeline`
    (a BIDS data set's events and the volume labels made from them), and `condition_colors`, the
    colour each condition has in every figure (``REST_COLOR`` for ``"rest"``).
`decoding_core.plotting.results`
    Results: `plot_fold_scores`, `plot_predictions`, `plot_confusion_matrix`
    (of `decoding_core.summaries.confusion_table`), `plot_null_distribution` (permutation test),
    `plot_score_comparison` (real vs dummy), `plot_score_vs_setting` (a sweep)
    and `plot_paired_folds` (two runs fold by fold).
``decoding_core.plotting._common`` (private)
    The shared look: fonts, palette, score and condition colours, and the order
    of conditions.
"""

from decoding_core.plotting.data import (
    REST_COLOR,
    REST_LABEL,
    condition_colors,
    plot_class_balance,
    plot_condition_counts,
    plot_condition_timeline,
    plot_events_timeline,
    plot_mean_timecourse,
)
from decoding_core.plotting.results import (
    plot_confusion_matrix,
    plot_fold_scores,
    plot_null_distribution,
    plot_paired_folds,
    plot_predictions,
    plot_score_comparison,
    plot_score_vs_setting,
)
from decoding_core.plotting.slices import (
    default_cut_coords,
    plot_roi,
    plot_stat_slices,
    voxel_from_click,
)

__all__ = [
    "REST_COLOR",
    "REST_LABEL",
    "condition_colors",
    "default_cut_coords",
    "plot_class_balance",
    "plot_condition_counts",
    "plot_condition_timeline",
    "plot_confusion_matrix",
    "plot_events_timeline",
    "plot_fold_scores",
    "plot_mean_timecourse",
    "plot_null_distribution",
    "plot_paired_folds",
    "plot_predictions",
    "plot_roi",
    "plot_score_comparison",
    "plot_score_vs_setting",
    "plot_stat_slices",
    "voxel_from_click",
]
