"""What the app sets up once per process: memory and the log lines in the server's console (ui.startup)."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest

from decoding_core.datasets import load_simulated
from ui import startup


def test_importing_ui_changes_nothing_in_the_process():
    """No malloc tuning and no log handler just because a ui module was imported."""
    code = ("import logging, ui.feedback, ui.runs, ui.links, ui.server.memory as memory; "
            "assert memory.limit_malloc_arenas.cache_info().currsize == 0; "
            "assert not logging.getLogger('decoding_core').handlers")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_prepare_process_shows_the_projects_info_lines():
    startup.prepare_process()
    startup.prepare_process()  # once per process: a second call changes nothing
    for package in startup.LOGGED_PACKAGES:
        logger = logging.getLogger(package)
        assert logger.handlers and logger.getEffectiveLevel() <= logging.INFO
    assert logging.getLogger("decoding_core.datasets.simulated").isEnabledFor(logging.INFO)


@pytest.mark.slow
def test_generating_the_built_in_data_set_is_logged_before_and_after(tmp_path):
    lines = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: lines.append(record.getMessage())
    logger = logging.getLogger("decoding_core.datasets.simulated")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        load_simulated(cache_dir=tmp_path)
        assert [line.split(" (")[0] for line in lines] == [
            "Generating the built-in simulated data set", "Generated the built-in simulated data set"]
        lines.clear()
        load_simulated(cache_dir=tmp_path)  # read from disk: nothing to say
        assert lines == []
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
