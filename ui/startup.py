"""What the app sets up once per server process, before its first page: memory and logs.

`prepare_process` is called by ``app.main`` on every script run and does its work
the first time only. Nothing here happens when a module is imported: tests, the
command line and notebooks import ``ui`` without these process-wide changes.
"""

from __future__ import annotations

import functools

from streamlit.logger import get_logger

from ui.server.memory import limit_malloc_arenas

#: Packages whose log lines go to the server's console, formatted and filtered as Streamlit's own.
LOGGED_PACKAGES = ("decoding_core", "ui")


@functools.cache
def prepare_process() -> None:
    """Limit glibc's malloc arenas, and show the project's log lines in the server's console.

    Done here, explicitly and once, rather than on import: both change the whole
    process (how it allocates memory, where its log lines go), which is the
    server's decision, not a side effect of importing a module.

    Python's loggers print nothing below WARNING until someone gives them a handler;
    Streamlit's ``get_logger`` gives a package its console handler and its level
    (``logger.level``, INFO by default), so lines such as "Generating the built-in
    simulated data set" appear in the output of ``streamlit run app.py``.
    """
    limit_malloc_arenas()
    for package in LOGGED_PACKAGES:
        get_logger(package)
