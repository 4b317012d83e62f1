"""The Results page states how a number was computed: fully nested tuning with screening."""

from __future__ import annotations

import pytest

from decoding_core.decoding.decode import NESTED_SCREENING_NOTE
from tests.app._helpers import assert_no_traceback, go_to, run_from_configure, start_app
from ui import state


@pytest.mark.slow
def test_results_say_the_screening_was_refitted_inside_the_inner_folds():
    at = start_app()
    go_to(at, "configure.py")
    at.checkbox(key=state.W_TUNE_C).check()
    at.slider(key=state.W_SCREENING).set_value(30)
    at.run()
    result = run_from_configure(at)
    at.run()
    assert_no_traceback(at)
    assert result.config.tune_C and result.config.screening_percentile == 30
    assert NESTED_SCREENING_NOTE in [element.value for element in at.info]
