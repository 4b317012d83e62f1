"""The session's run history: where it is kept, recording finished runs, reading and exporting them.

Where the history lives
-----------------------
* Locally (``streamlit run app.py``), one `SQLiteRunStore` per database file, shared
  by the sessions of the process through ``st.cache_resource``: the history survives
  app restarts (``$DECODING_LAB_HISTORY_PATH``, default ``<data dir>/history.sqlite3``).
* In a shared deployment (``DECODING_LAB_SHARED=1``), one `MemoryRunStore` per
  browser session, kept in that session's ``st.session_state`` and never in a
  process-wide cache: nobody sees anybody else's runs, and nothing is written to disk.

Every finished run (Configure, sweeps, "change one setting and rerun", a link that
runs) is recorded through `record_run` (or `adopt_result`, which also shows it on
Results). The work itself is done by the core (`decoding_core.history`, `reproduce`).
"""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from decoding_core import compare, history, reproduce, sweeps
from decoding_core.config import DecodingConfig
from decoding_core.errors import DecodingInputError
from decoding_core.summaries import check_design
from ui import analysis, state
from ui.datasets import load_builtin_dataset
from ui.feedback import plain_markdown

#: Runs one browser session keeps in a shared deployment (the oldest are dropped beyond
#: it): a run with a whole-brain map holds a few hundred kB, and a small host has well
#: under 1 GB for every visitor together. A full sweep (50 values) still fits.
SHARED_MAX_RUNS = 60


# -- the store -------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=8)
def _sqlite_store(path: str) -> history.SQLiteRunStore:
    """One SQLite store per database file, for the whole process (local mode only)."""
    return history.SQLiteRunStore(path)


def run_store():
    """This session's run history (see the module docstring).

    Raises
    ------
    DecodingInputError
        When the local history file cannot be opened (not writable, not SQLite, newer).
    """
    if history.history_mode() == "shared":
        store = st.session_state.get(state.RUN_STORE)
        if store is None:
            store = history.MemoryRunStore(max_runs=SHARED_MAX_RUNS)
            st.session_state[state.RUN_STORE] = store
        return store
    return _sqlite_store(str(history.default_history_path().resolve()))


def history_location() -> str:
    """One sentence saying where the history is kept."""
    if history.history_mode() == "shared":
        return ("Runs are kept for this browser session only: nobody else sees them and nothing is "
                f"written to the server's disk. The newest {SHARED_MAX_RUNS} are kept; export them to keep them "
                "beyond this session.")
    return (f"Runs are saved in `{history.default_history_path()}` and kept across app restarts "
            f"(set {history.HISTORY_PATH_ENV} to use another file).")


# -- recording ----------------------------------------------------------------------------
def _run_key(dataset_digest: str, config: DecodingConfig) -> str:
    return f"{dataset_digest}:{config.digest()}"


def record_run(result, dataset, name: str | None = None):
    """Record a finished run in the history; returns its `RunRecord`, or None on failure.

    A result this session already recorded (the same data and configuration, e.g. a
    cached result shown again) is not recorded twice unless its record was deleted.
    A failure to record never breaks the run: it is shown as a warning.
    """
    key = _run_key(dataset.digest, result.config)
    recorded = st.session_state.get(state.RECORDED_RUNS) or {}
    try:
        store = run_store()
        run_id = recorded.get(key)
        if run_id is not None:
            try:
                return store.get(run_id)
            except DecodingInputError:
                pass  # deleted since: record it again
        if name is None:  # an automatic name, never one the history already shows
            summary = store.summary_table()
            taken = summary["name"] if len(summary) else []
            name = history.unique_run_name(history.default_run_name(result.config, dataset.name), taken)
        record = store.add(result, dataset, name=name)
    except Exception as err:  # the run itself succeeded: say why it is not in the history
        st.warning(plain_markdown(f"The run finished but could not be saved in the history: {err}"),
                   icon=":material/warning:")
        return None
    st.session_state[state.RECORDED_RUNS] = {**recorded, key: record.id}
    return record


def adopt_result(result, dataset):
    """Make ``result`` the one Results shows, and record it; returns its record or None."""
    st.session_state[state.RESULT] = result
    st.session_state[state.RESULT_DATASET_TITLE] = dataset.title
    st.session_state[state.RESULT_DATASET_DIGEST] = dataset.digest
    st.session_state[state.PERMUTATION_RESULT] = None
    st.session_state[state.CUT_COORDS] = None
    return record_run(result, dataset)


def open_record(record) -> None:
    """Make a recorded run the one the Results page shows (History's "Open on the Results page").

    A `RunRecord` stands in for the `DecodingResult` it was made from (scores, predictions,
    maps). The permutation test and the reproducible export of the Results page then use
    the loaded data set when it is the run's one, and say so otherwise.
    """
    st.session_state[state.RESULT] = record
    st.session_state[state.RESULT_DATASET_TITLE] = record.dataset_title
    st.session_state[state.RESULT_DATASET_DIGEST] = record.dataset_digest
    st.session_state[state.PERMUTATION_RESULT] = None
    st.session_state[state.CUT_COORDS] = None
    recorded = st.session_state.get(state.RECORDED_RUNS) or {}
    st.session_state[state.RECORDED_RUNS] = {**recorded, _run_key(record.dataset_digest, record.config): record.id}


# -- reading ---------------------------------------------------------------------------------
def recorded_run_id(dataset_digest: str, config: DecodingConfig) -> str | None:
    """The history id this session recorded for a run, or None."""
    recorded = st.session_state.get(state.RECORDED_RUNS) or {}
    return recorded.get(_run_key(dataset_digest, config))


def get_record(run_id):
    """The record ``run_id`` of the history, or None when it is gone."""
    if not run_id:
        return None
    try:
        return run_store().get(run_id)
    except DecodingInputError:
        return None


def get_records(run_ids) -> list:
    """The records of ``run_ids`` still in the history, in that order."""
    records = []
    for run_id in run_ids or ():
        record = get_record(run_id)
        if record is not None:
            records.append(record)
    return records


def current_result_record():
    """The history record of the result shown on Results (None when not recorded)."""
    result = st.session_state.get(state.RESULT)
    digest = st.session_state.get(state.RESULT_DATASET_DIGEST)
    if result is None or digest is None:
        return None
    return get_record(recorded_run_id(digest, result.config))


# -- exports ---------------------------------------------------------------------------------
def history_file_name() -> str:
    """``decoding-history-20251125-1703.zip``."""
    return f"decoding-history-{datetime.now().strftime('%Y%m%d-%H%M')}.zip"


def record_zip(record) -> bytes:
    """The reproducible export zip of a recorded run."""
    return reproduce.export_record_zip(record)


def record_zip_name(record) -> str:
    """``decoding-run-<name>-<id>.zip``."""
    return reproduce.export_file_name(record)


def result_zip(result, dataset) -> bytes:
    """The reproducible export zip of the result shown on Results (its history record when there is one).

    Raises
    ------
    DecodingInputError
        When the run is neither recorded nor its data set loaded.
    """
    record = current_result_record()
    if record is not None:
        return reproduce.export_record_zip(record, result=result)
    if dataset is not None:
        return reproduce.export_run_zip(result, dataset)
    raise DecodingInputError("This run is not in the history and its data set is not loaded; run it again to export it.")


def draw_result_export(result, dataset) -> None:
    """The Results page's download of the run's reproducible zip."""
    record = current_result_record()
    if record is None and dataset is None:
        st.caption("The reproducible export needs the run's data set: load it again, or export the run from the History.")
        return
    st.download_button(
        "Everything to reproduce this run (.zip)", data=lambda: result_zip(result, dataset),
        file_name=record_zip_name(record) if record is not None else "decoding-run.zip", mime="application/zip",
        key=state.W_DOWNLOAD_RUN_ZIP, on_click="ignore", icon=":material/folder_zip:",
        help="Configuration, scores, predictions, weight map, mask, package versions and a standalone "
             "reproduce.py script that reruns the analysis with nilearn and scikit-learn only.",
    )


# -- a recorded run again: its data, its maps, one setting changed ---------------------------------
def dataset_for_record(record):
    """The data set a recorded run used: the loaded one, or a built-in one loaded by name.

    Raises
    ------
    DecodingInputError
        When that data set is not available (an upload that is not loaded now).
    """
    loaded = st.session_state.get(state.DATASET)
    if loaded is not None and loaded.digest == record.dataset_digest:
        return loaded
    spec = record.dataset_spec
    if spec is not None:
        dataset = load_builtin_dataset(spec)
        if dataset.digest == record.dataset_digest:
            return dataset
    raise DecodingInputError(
        f"The run '{record.name}' used the data set '{record.dataset_title}' (digest "
        f"{record.dataset_digest[:12]}), which is not loaded. Load the same files on the Data page and try again."
    )


def background_for(record):
    """Anatomy under a run's maps: the loaded data set's, when it is the run's data; else None."""
    loaded = st.session_state.get(state.DATASET)
    if loaded is not None and loaded.digest == record.dataset_digest:
        return loaded.anat_img
    return None


def rerun_setting_values(setting: str, record) -> list:
    """Values offered for "change one setting and rerun" (the run's own value left out)."""
    try:
        dataset = dataset_for_record(record) if setting == "mask_name" else None
    except DecodingInputError:
        dataset = None
    choices = compare.setting_choices(setting, dataset)
    if setting == "mask_name" and dataset is None:
        choices = [record.config.mask_name] + [c for c in choices if c != record.config.mask_name]
    current = getattr(record.config, setting)
    return [value for value in choices if value != current] or choices


def parse_one_value(setting: str, text: str):
    """One value of ``setting`` typed by the user (DecodingInputError when not exactly one valid value)."""
    values = sweeps.parse_sweep_values(setting, text)
    if len(values) != 1:
        raise DecodingInputError(
            f"Type one value of {sweeps.SWEEPABLE[setting].title} only; got {len(values)}. "
            "Use the Sweep page to run several values."
        )
    return values[0]


def rerun_with_change(record, setting: str, value, progress=None):
    """Run ``record``'s configuration with one setting changed; record it.

    Returns
    -------
    (RunRecord or None, DecodingResult)

    Raises
    ------
    DecodingInputError
        When the value is invalid for the setting, or the run's data set is not available.
    """
    config = record.config.replace(**{setting: value})
    dataset = dataset_for_record(record)
    problems = check_design(dataset, config)
    if problems:
        raise DecodingInputError(" ".join(problems))
    result = analysis.run_decoding(dataset, config, progress=progress)
    return record_run(result, dataset), result
