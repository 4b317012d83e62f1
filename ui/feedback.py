"""What the user sees while work runs or fails: errors, status boxes, progress bars, the queue.

Everything a page shows about work in progress or gone wrong goes through here, so
it reads the same on every page: one clear message instead of a traceback
(`show_error`), a status box with a progress bar (`run_with_status`), a core
progress callback that moves a bar (`progress_bar_callback`), and "you are number N
in the queue" while heavy work waits for a slot (`run_heavy`). User text (file
names, column names) is shown as text, never as Markdown (`plain_markdown`,
`safe_display_name`).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from decoding_core.errors import DecodingInputError
from decoding_core.progress import ProgressCallback, timed
from ui.cache import job_gate
from ui.server.memory import return_freed_memory

#: ``progress(fraction, message)``, as the core's long steps call it.


# -- user text -----------------------------------------------------------------------------
def safe_display_name(name, max_chars: int = 80) -> str:
    """An uploaded file's name made safe to show: printable, no markup, bounded length.

    The name is never used as a path; this keeps it from carrying Markdown or HTML
    (links, images) into the page.
    """
    text = "".join(ch if ch.isprintable() else "?" for ch in str(name or ""))
    text = "".join(ch if ch.isalnum() or ch in " ._-()+" else "_" for ch in text).strip()
    if len(text) > max_chars:
        text = text[: max_chars - 3] + "..."
    return text or "unnamed file"


def plain_markdown(text) -> str:
    """``text`` with ``\\``, ``[``, ``]``, ``<`` and ``>`` escaped, for ``st.error`` and friends.

    Error messages may quote what a user uploaded (a column name, a header cell); escaped,
    such text cannot become a link or an image (a request to another site) in the page.
    """
    text = str(text)
    for char in ("\\", "[", "]", "<", ">"):
        text = text.replace(char, "\\" + char)
    return text


# -- errors ------------------------------------------------------------------------------------
def show_error(err: BaseException, doing: str) -> None:
    """Show an error as one clear message, never a traceback.

    `DecodingInputError` messages already say what is wrong and what to do; anything
    else is reported with what the app was doing.
    """
    if isinstance(err, DecodingInputError):
        st.error(plain_markdown(err), icon=":material/error:")
    elif isinstance(err, MemoryError):
        st.error(f"Not enough memory while {doing}. Try a smaller mask or a smaller image.",
                 icon=":material/error:")
    else:
        st.error(f"Something went wrong while {doing}: {type(err).__name__}: {err}",
                 icon=":material/error:")


# -- progress ----------------------------------------------------------------------------------
def run_with_status(work: Callable[[ProgressCallback], object], *, label: str,
                    done_label: str = "Finished", failed_label: str = "The run stopped"):
    """Run ``work(progress)`` inside an ``st.status`` box with a progress bar.

    Returns
    -------
    (value, error) : tuple
        ``work``'s return value and None, or None and the exception it raised (the caller
        shows it, so what the user had before stays in place).
    """
    with st.status(label, expanded=True) as status:
        bar = st.progress(0.0, text="Masking the volumes")
        try:
            value = work(progress_bar_callback(bar))
        except Exception as err:
            status.update(label=failed_label, state="error")
            return None, err
        status.update(label=done_label, state="complete", expanded=False)
        return value, None


def progress_bar_callback(bar, done_before: float = 0.0) -> ProgressCallback:
    """A core progress callback that moves an ``st.progress`` bar, with the time elapsed and left.

    Parameters
    ----------
    bar : streamlit element returned by ``st.progress``
    done_before : float, default=0.0
        The fraction done before this script run (a run continued after Stop or a rerun):
        the time left is estimated from this run's pace on the new work only.

    Returns
    -------
    callable
        ``progress(fraction, message)``; the bar's text is the message, the time elapsed
        since this call and, once the pace is known, an estimate of the time left
        (`decoding_core.progress.timed`). The bar is updated only when the percentage or
        the text changes (at most about once a second for the times), so a long loop
        does not flood the browser.
    """
    shown = {"percent": -1, "message": None}

    def progress(fraction: float, message: str = "") -> None:
        try:
            fraction = float(fraction)
        except (TypeError, ValueError):
            fraction = 0.0
        fraction = min(max(fraction, 0.0), 1.0)
        percent = int(fraction * 100)
        if percent != shown["percent"] or message != shown["message"]:
            shown["percent"], shown["message"] = percent, message
            bar.progress(fraction, text=str(message) if message else None)

    return timed(progress, done_before=done_before)


# -- the queue of heavy work -------------------------------------------------------------------
def run_heavy(compute: Callable[[], object]):
    """Run ``compute()`` through the app's job gate; a waiting user sees their place in the queue.

    At most ``ui.cache.job_gate().max_jobs`` heavy jobs run at once in the process;
    beyond that, this shows "you are number N in the queue" until the job starts.
    Exceptions propagate; the slot is always released, and the memory the job freed
    is handed back to the system.
    """
    gate = job_gate()
    # Drawn only when the job has to wait: most jobs start at once and leave no trace.
    notice = []

    def on_wait(position: int) -> None:
        if not notice:
            notice.append(st.empty())
        notice[0].info(
            f"The app is busy: you are number {position} in the queue. Your job starts as soon as one "
            f"of the {gate.max_jobs} running jobs finishes.",
            icon=":material/hourglass_top:",
        )

    try:
        return gate.run(compute, on_wait=on_wait)
    finally:
        if notice:
            notice[0].empty()
        return_freed_memory()
