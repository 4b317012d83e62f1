"""Long runs on the Results page: a progress bar that tells the time, and a Stop that keeps the work."""

from __future__ import annotations

import re

import pytest
import streamlit as st

from decoding_core import progress as core_progress
from tests.app._helpers import assert_no_traceback, go_to, metric_value, run_from_configure, start_app
from ui import feedback, state


@pytest.mark.slow
def test_permutation_bar_shows_time_elapsed_and_left_and_stop_keeps_every_permutation(monkeypatch):
    # No waiting for the pace to settle: an estimate from the first permutation on.
    monkeypatch.setattr(core_progress, "ESTIMATE_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(core_progress, "ESTIMATE_AFTER_FRACTION", 0.0)
    texts = []
    real_callback = feedback.progress_bar_callback

    class RecordingBar:
        """The page's bar, recording its texts; presses Stop once 7 permutations are done."""

        def __init__(self, bar):
            self.bar = bar

        def progress(self, fraction, text=None):
            texts.append(text)
            run = st.session_state[state.PERMUTATION_RESULT]
            if run is not None and run.n_done >= 7 and not st.session_state[state.PERMUTATION_STOP]:
                # What the Stop button's callback does when a click arrives during the test.
                st.session_state[state.PERMUTATION_STOP] = True
                run.stop()
            return self.bar.progress(fraction, text=text)

    monkeypatch.setattr(feedback, "progress_bar_callback",
                        lambda bar, done_before=0.0: real_callback(RecordingBar(bar), done_before))
    at = start_app()
    go_to(at, "configure.py")
    run_from_configure(at)
    at.number_input(key=state.W_N_PERMUTATIONS).set_value(500)
    at.button(key=state.W_PERMUTATION_RUN).click()
    at.run()
    assert_no_traceback(at)

    permutation_texts = [t for t in texts if t and t.startswith("Permutation")]
    assert permutation_texts, (texts[-5:], [e.value for e in at.error])
    duration = r"(\d+ h )?(\d+ min )?\d+ (s|min)"
    assert all(re.search(rf"\({duration} elapsed(, about {duration} left)?\)$", t) for t in permutation_texts), \
        permutation_texts
    assert any("left)" in t for t in permutation_texts)
    run = at.session_state[state.PERMUTATION_RESULT]
    # Every permutation finished before the Stop is kept (before: none, below a chunk of 50).
    assert 7 <= run.n_done < 50 and run.stopped_early
    assert metric_value(at, "Permutations done") == f"{run.n_done} / 500"
    assert any("Stopped early" in info.value for info in at.info)
