"""fMRI Decoding Lab: the Streamlit entry point.

Run with ``streamlit run app.py``. This file only sets the page up, initialises the
session state and builds the navigation; every page lives in ``pages/``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ui import links, state
from ui.session import touch_session
from ui.startup import prepare_process

APP_DIR = Path(__file__).resolve().parent
PAGES_DIR = APP_DIR / "pages"

#: The navigation menu: section -> pages (file in ``pages/``, title, Material icon).
#: A test checks that every file in ``pages/`` appears here exactly once.
PAGES = {
    "Analysis": [
        ("data.py", "Data", ":material/database:"),
        ("configure.py", "Configure", ":material/tune:"),
        ("results.py", "Results", ":material/insights:"),
    ],
    "Compare": [
        ("history.py", "History", ":material/history:"),
        ("compare.py", "Compare", ":material/compare_arrows:"),
        ("sweep.py", "Sweep", ":material/ssid_chart:"),
        ("group.py", "Group", ":material/groups:"),
    ],
    "Learn": [
        ("tutorial.py", "Tutorial", ":material/school:"),
    ],
}
#: The page the app opens on.
DEFAULT_PAGE = "data.py"


def page_files() -> list[str]:
    """The page files in ``pages/`` (what the menu must list)."""
    return sorted(p.name for p in PAGES_DIR.glob("*.py") if not p.name.startswith("_"))


def build_navigation() -> dict:
    """The ``st.navigation`` sections built from `PAGES`, skipping entries with no file."""
    present = set(page_files())
    sections = {}
    for section, entries in PAGES.items():
        pages = [
            st.Page(f"pages/{file}", title=title, icon=icon, default=(file == DEFAULT_PAGE))
            for file, title, icon in entries
            if file in present
        ]
        if pages:
            sections[section] = pages
    return sections


def main() -> None:
    """Set the page up, initialise the session state and run the chosen page."""
    with state.running_app():
        prepare_process()  # once per server process: malloc arenas, log lines in the console
        st.set_page_config(layout="wide", page_title="fMRI Decoding Lab", page_icon=":material/neurology:")
        state.init_state()
        # Marks this session as alive for the janitor that purges closed sessions' data.
        touch_session()
        navigation = st.navigation(build_navigation())
        # Once per session: a shared link's configuration is restored (and run for a
        # built-in data set) before the page draws.
        links.restore_from_url()
        links.show_url_messages()
        navigation.run()


def ensure_app() -> None:
    """Run the page through `main` when Streamlit started it directly; pages call this first.

    Streamlit decides once per server process whether the app uses the old automatic
    ``pages/`` folder: until some run has called ``st.navigation``, a request for
    ``/configure`` runs ``pages/configure.py`` without this file, so without the page
    configuration, the menu and `state.init_state`. This runs `main` instead (which
    calls ``st.navigation`` and then the requested page) and stops the direct run.
    """
    if not state.app_running():
        main()
        st.stop()


if __name__ == "__main__":
    main()
