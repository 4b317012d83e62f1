"""The searchlight on the Results page: the map it shows is the core's, a stopped map says it is partial."""

from __future__ import annotations

import numpy as np
import pytest

from decoding_core import masking
from decoding_core.searchlight import searchlight
from tests.app._helpers import assert_no_traceback, error_texts, go_to, metric_value, run_from_configure, start_app
from ui import state
from ui.searchlight import APP_CHUNK_SIZE, SearchlightRun, continue_searchlight, searchlight_key


def results_page():
    at = start_app()
    go_to(at, "configure.py")
    result = run_from_configure(at)
    at.run()
    assert_no_traceback(at)
    return at, result


def core_map(at, result, radius):
    dataset = at.session_state[state.DATASET]
    config = result.config
    masked = masking.mask_dataset(dataset, config.mask_name, standardize=config.standardize,
                                  detrend=config.detrend)
    return searchlight(masked, config, radius)


@pytest.mark.slow
def test_the_searchlight_map_shown_is_the_cores():
    at, result = results_page()
    at.number_input(key=state.W_SEARCHLIGHT_RADIUS).set_value(7.5)
    at.button(key=state.W_SEARCHLIGHT_RUN).click()
    at.run()
    assert_no_traceback(at)
    assert not at.error, error_texts(at)
    run = at.session_state[state.SEARCHLIGHT_RUN]
    assert not run.running and not run.stopped and not run.result.partial
    expected = core_map(at, result, 7.5)
    np.testing.assert_array_equal(run.result.scores, expected.scores)
    assert metric_value(at, "Spheres scored") == f"{expected.n_spheres} / {expected.n_spheres}"
    best = float(metric_value(at, "Best"))
    assert best == pytest.approx(np.nanmax(expected.scores), abs=5e-4)
    assert not [w for w in at.warning if w.value.startswith("Partial map")]
    assert at.get("download_button") and "partial" not in str(at.get("download_button")[-1].proto.label)

    # The same searchlight again: the complete map comes from the store at once.
    at.button(key=state.W_SEARCHLIGHT_RUN).click()
    at.run()
    assert at.session_state[state.SEARCHLIGHT_RUN].result is run.result


@pytest.mark.slow
def test_a_stopped_searchlight_shows_a_partial_map_and_run_continues_it():
    at, result = results_page()
    dataset = at.session_state[state.DATASET]
    radius = 5.6
    run = SearchlightRun(key=searchlight_key(dataset, result.config, radius), radius=radius)
    chunks_seen = []

    def stop_after_one_chunk():
        chunks_seen.append(run.next_chunk)
        return run.next_chunk >= 1

    continue_searchlight(run, dataset, result.config, should_stop=stop_after_one_chunk)
    assert run.stopped and run.result.partial and run.result.n_done == APP_CHUNK_SIZE
    # In the browser, Stop interrupts the script run before it makes the map of the stored chunks.
    run.result = None
    at.session_state[state.SEARCHLIGHT_RUN] = run
    at.session_state[state.SEARCHLIGHT_RADIUS] = radius
    at.run()
    assert_no_traceback(at)
    warnings = [w.value for w in at.warning if w.value.startswith("Partial map")]
    assert warnings and f"{APP_CHUNK_SIZE} of {run.result.n_spheres} spheres" in warnings[0]
    assert metric_value(at, "Spheres scored") == f"{APP_CHUNK_SIZE} / {run.result.n_spheres}"
    assert "partial" in str(at.get("download_button")[-1].proto.label)

    at.button(key=state.W_SEARCHLIGHT_RUN).click()  # continues the stopped run
    at.run()
    assert_no_traceback(at)
    assert at.session_state[state.SEARCHLIGHT_RUN] is run and not run.running and not run.result.partial
    np.testing.assert_array_equal(run.result.scores, core_map(at, result, radius).scores)
    assert not [w for w in at.warning if w.value.startswith("Partial map")]
