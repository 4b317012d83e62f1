"""Every page opens without an exception, and the menu lists exactly the files in pages/."""

from __future__ import annotations

import re

import pytest

from tests.app._helpers import REPO_ROOT, assert_no_traceback, go_to, start_app
from ui import state

PAGE_FILES = sorted(p.name for p in (REPO_ROOT / "pages").glob("*.py") if not p.name.startswith("_"))


def test_every_page_file_is_in_the_menu_once():
    import app

    listed = [file for entries in app.PAGES.values() for file, _title, _icon in entries]
    assert len(listed) == len(set(listed)), "a page is listed twice"
    assert sorted(listed) == PAGE_FILES == app.page_files()
    assert app.DEFAULT_PAGE in listed


def test_state_keys_are_unique():
    keys = [value for name, value in vars(state).items() if name.isupper() and isinstance(value, str)
            and (name.startswith("W_") or name in state.DEFAULTS or name in ("CONFIG_VALUES", "SESSION_TOKEN"))]
    assert len(keys) == len(set(keys))


def test_pages_hold_no_string_keys_and_no_numpy_or_nilearn():
    for file in PAGE_FILES:
        source = (REPO_ROOT / "pages" / file).read_text()
        assert "key=\"" not in source and "key='" not in source, f"{file} spells a widget key"
        assert not re.search(r"session_state(\.get|\.pop)?[\[(]\s*[\"'f]", source), f"{file} spells a state key"
        for module in ("numpy", "nilearn", "nibabel"):
            assert f"import {module}" not in source, f"{file} imports {module}"


def test_first_screen_shows_the_simulated_data_set():
    at = start_app()
    assert_no_traceback(at)
    assert at.title[0].value == "Data"
    labels = [m.label for m in at.metric]
    for expected in ("Image shape", "Voxel size (mm)", "TR (s)", "Volumes", "Runs"):
        assert expected in labels
    dataset = at.session_state["dataset"]
    assert dataset.name == "simulated"
    assert [m.value for m in at.metric if m.label == "Volumes"] == [str(dataset.n_volumes)]
    assert not at.error


@pytest.mark.parametrize("page_file", PAGE_FILES)
def test_page_opens_without_exception(page_file):
    at = start_app()
    go_to(at, page_file)
    assert_no_traceback(at)
    assert at.title, f"{page_file} shows no title"
    assert not at.error, [e.value for e in at.error]


def test_results_before_any_run_say_what_to_do():
    at = start_app()
    go_to(at, "results.py")
    assert_no_traceback(at)
    assert any("No decoding has been run yet" in info.value for info in at.info)
