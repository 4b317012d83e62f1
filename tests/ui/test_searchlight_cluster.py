"""The Results page's searchlight on a Dask cluster (DECODING_LAB_SCHEDULER) equals the local run."""

from __future__ import annotations

import numpy as np
import pytest

from tests.ui.conftest import FACE_CAT
from ui import searchlight as app_searchlight
from ui.searchlight import SearchlightRun
RADIUS = 4.0


def _searchlight_scores(monkeypatch, face_cat, scheduler: str | None) -> np.ndarray:
    """Run the app's searchlight to the end, here or on ``scheduler``; its map's scores."""
    monkeypatch.setattr(app_searchlight.analysis, "selected_masked", lambda dataset, config: face_cat)
    monkeypatch.setattr(app_searchlight, "run_heavy", lambda compute: compute())
    monkeypatch.setattr(app_searchlight.cache, "get_or_compute", lambda kind, key, compute, made_from=None: compute())
    if scheduler is None:
        monkeypatch.delenv("DECODING_LAB_SCHEDULER", raising=False)
    else:
        monkeypatch.setenv("DECODING_LAB_SCHEDULER", scheduler)
    run = SearchlightRun(key=("test", scheduler), radius=RADIUS)
    app_searchlight.continue_searchlight(run, dataset=None, config=FACE_CAT)
    assert not run.running and not run.stopped
    assert run.scored.all() and not run.result.partial
    return run.scores


@pytest.mark.slow
def test_app_searchlight_on_a_cluster_equals_the_local_run(monkeypatch, face_cat, dask_scheduler):
    local = _searchlight_scores(monkeypatch, face_cat, None)
    on_cluster = _searchlight_scores(monkeypatch, face_cat, dask_scheduler)
    assert local.shape == (face_cat.X.shape[1],)
    np.testing.assert_array_equal(on_cluster, local)
    assert np.nanmax(local) > 0.6  # VT tells faces from cats somewhere: the map is not all chance
