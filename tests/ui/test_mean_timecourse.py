"""`ui.analysis.mean_timecourse`: the Data page's time course keeps one column, not the masked matrix.

Issue 15, item 7 (memory): ten uploading sessions each kept a volumes x voxels matrix only
to draw its mean. The column kept now draws the same figure.
"""

from __future__ import annotations

import numpy as np

from decoding_core import masking, plotting
from ui import analysis


def test_the_mean_time_course_is_the_masks_mean_and_draws_the_same_figure(simulated_dataset):
    full = masking.mask_dataset(simulated_dataset, "vt", standardize=False, nonfinite="drop")
    kept = analysis.mean_timecourse(simulated_dataset, "vt")
    assert kept.X.shape == (simulated_dataset.n_volumes, 1)
    np.testing.assert_allclose(kept.X[:, 0], full.X.astype(np.float64).mean(axis=1), rtol=1e-6)
    np.testing.assert_array_equal(kept.volume_index, full.volume_index)
    expected = plotting.plot_mean_timecourse(full, tr=simulated_dataset.tr)
    drawn = plotting.plot_mean_timecourse(kept, tr=simulated_dataset.tr)
    assert len(drawn.data) == len(expected.data)
    for ours, theirs in zip(drawn.data, expected.data):
        if getattr(theirs, "y", None) is not None:
            np.testing.assert_allclose(np.asarray(ours.y, dtype=float), np.asarray(theirs.y, dtype=float),
                                       rtol=1e-5, equal_nan=True)
