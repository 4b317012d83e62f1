"""The app's side of the run history, comparisons, sweeps and shareable links.

Pages call these functions; the work is done by the core (`decoding_core.history`,
`compare`, `sweeps`, `urlstate`, `reproduce`).

Where the history lives
-----------------------
* Locally (``streamlit run app.py``), one `SQLiteRunStore` per database file, shared
  by the sessions of the process through ``st.cache_resource``: the history survives
  app restarts (``$DECODING_LAB_HISTORY_PATH``, default ``<data dir>/history.sqlite3``).
* In a shared deployment (``DECODING_LAB_SHARED=1``), one `MemoryRunStore` per
  browser session, kept in that session's ``st.session_state`` and never in a
  process-wide cache: nobody sees anybody else's runs, and nothing is written to disk.

Every finished run (Configure, sweeps, "change one setting and rerun", a link that
runs) is recorded through `record_run`.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import streamlit as st

import app_services as services
import state
from decoding_core import compare, history, plotting, reproduce, sweeps, urlstate
from decoding_core.config import DecodingConfig
from decoding_core.errors import DecodingInputError

#: Configure-page widgets, dropped when a configuration is set from elsewhere so that
#: they are seeded again from ``state.CONFIG_VALUES``.
CONFIGURE_WIDGETS = (
    state.W_CONDITIONS, state.W_MASK, state.W_STANDARDIZE, state.W_DETREND, state.W_ESTIMATOR,
    state.W_C, state.W_TUNE_C, state.W_SCREENING, state.W_SCORING, state.W_CV, state.W_N_FOLDS,
    state.W_HOLDOUT,
)


#: Runs one browser session keeps in a shared deployment (the oldest are dropped beyond
#: it): a run with a whole-brain map holds a few hundred kB, and a small host has well
#: under 1 GB for every visitor together. A full sweep (50 values) still fits.
SHARED_MAX_RUNS = 60


# -- the store -------------------------------------------------------------------------
@st.cache_resource(show_spinner=False, max_entries=8)
def _sqlite_store(path: str) -> history.SQLiteRunStore:
    """One SQLite store per database file, for the whole process (local mode only)."""
    return history.SQLiteRunStore(path)


def history_mode() -> str:
    """``"local"`` (SQLite file) or ``"shared"`` (per browser session, in memory)."""
    return history.history_mode()


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
    if history_mode() == "shared":
        return ("Runs are kept for this browser session only: nobody else sees them and nothing is "
                f"written to the server's disk. The newest {SHARED_MAX_RUNS} are kept; export them to keep them "
                "beyond this session.")
    return (f"Runs are saved in `{history.default_history_path()}` and kept across app restarts "
            f"(set {history.HISTORY_PATH_ENV} to use another file).")


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
        record = store.add(result, dataset, name=name)
    except Exception as err:  # the run itself succeeded: say why it is not in the history
        st.warning(services.plain_markdown(f"The run finished but could not be saved in the history: {err}"),
                   icon=":material/warning:")
        return None
    st.session_state[state.RECORDED_RUNS] = {**recorded, key: record.id}
    return record


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


def adopt_result(result, dataset):
    """Make ``result`` the one Results shows, and record it; returns its record or None."""
    st.session_state[state.RESULT] = result
    st.session_state[state.RESULT_DATASET_TITLE] = dataset.title
    st.session_state[state.RESULT_DATASET_DIGEST] = dataset.digest
    st.session_state[state.PERMUTATION_RESULT] = None
    st.session_state[state.CUT_COORDS] = None
    return record_run(result, dataset)


# -- history tables -------------------------------------------------------------------------
def history_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The history for display: name, data set, key settings, scores, date (newest first)."""
    if summary.empty:
        return pd.DataFrame(columns=["name", "data set", "conditions", "mask", "estimator", "C", "cv",
                                     "mean score", "sd", "chance", "folds", "date (UTC)"])
    table = pd.DataFrame({
        "name": summary["name"].astype(str),
        "data set": summary["data set"].astype(str),
        "conditions": summary["conditions"].astype(str),
        "mask": summary["mask"].astype(str),
        "estimator": summary["estimator"].astype(str),
        "C": ["tuned" if tuned else f"{float(c):g}" for c, tuned in zip(summary["C"], summary["tuned C"])],
        "cv": summary["cv"].astype(str),
        "mean score": pd.to_numeric(summary["mean score"], errors="coerce").round(3),
        "sd": pd.to_numeric(summary["sd"], errors="coerce").round(3),
        "chance": pd.to_numeric(summary["chance"], errors="coerce").round(3),
        "folds": summary["folds"],
        "date (UTC)": [format_date(v) for v in summary["created"]],
    })
    return table.reset_index(drop=True)


def format_date(created) -> str:
    """``2025-11-25 17:03`` from a record's ISO time."""
    try:
        moment = datetime.fromisoformat(str(created))
    except ValueError:
        return str(created)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M")


def run_labels(summary: pd.DataFrame) -> dict:
    """History id -> ``"name (score 0.812, 2025-11-25 17:03)"`` for select boxes."""
    return {row["id"]: _label(row) for row in summary.to_dict("records")}


def _label(row: dict) -> str:
    score = row.get("mean_score", row.get("mean score"))
    score_text = f"{float(score):.3f}" if score is not None and pd.notna(score) else "n/a"
    return f"{row.get('name')} (score {score_text}, {format_date(row.get('created'))})"


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


# -- configuration in and out -----------------------------------------------------------------
def apply_config_values(values: dict) -> None:
    """Make ``values`` the configuration, and let the Configure widgets show it."""
    st.session_state[state.CONFIG_VALUES] = dict(values)
    for key in CONFIGURE_WIDGETS:
        st.session_state.pop(key, None)


def write_query_params(config: DecodingConfig, dataset_spec: str | None) -> dict:
    """Put ``config`` (and a built-in data set's name) into the page's query parameters.

    Only the keys of `decoding_core.urlstate` are touched; an uploaded data set is never
    named (`urlstate.shareable_dataset_spec`). Returns the parameters written.
    """
    params = urlstate.config_to_query_params(config, dataset_spec)
    current = st.query_params.to_dict()
    if {key: current[key] for key in urlstate.ALL_KEYS if key in current} != params:
        for key in urlstate.ALL_KEYS:
            if key in st.query_params and key not in params:
                del st.query_params[key]
        st.query_params.update(params)
    return params


def shareable_link(config: DecodingConfig, dataset_spec: str | None) -> str:
    """The page's address with the configuration in its query (``?v=1&data=...``)."""
    query = urlstate.config_to_query_string(config, dataset_spec)
    try:
        base = st.context.url or ""
    except Exception:  # no browser behind this run (AppTest, bare mode)
        base = ""
    return f"{base}?{query}"


def share_configuration(config: DecodingConfig, dataset_spec: str | None) -> None:
    """Write the configuration into the URL and show the link to copy."""
    spec = urlstate.shareable_dataset_spec(dataset_spec)
    write_query_params(config, spec)
    with st.expander("Copy link to this configuration", icon=":material/link:"):
        st.code(shareable_link(config, spec), language=None, wrap_lines=True)
        if spec is not None:
            st.caption(f"Opening this link restores every setting, loads the data set '{spec}' and runs it.")
        else:
            st.caption("Opening this link restores every setting. Uploaded data are never put in a link: "
                       "whoever opens it must load the same files on the Data page, then press Run.")


def result_dataset_spec() -> str | None:
    """The built-in data set the shown result came from (None for uploads)."""
    record = current_result_record()
    if record is not None:
        return record.dataset_spec
    dataset = st.session_state.get(state.DATASET)
    if dataset is not None and dataset.digest == st.session_state.get(state.RESULT_DATASET_DIGEST):
        return urlstate.shareable_dataset_spec(st.session_state.get(state.DATASET_SPEC))
    return None


def _has_url_state(params: dict) -> bool:
    return any(key in params for key in urlstate.QUERY_KEYS.values()) or urlstate.DATASET_KEY in params


def restore_from_url() -> None:
    """Once per session: restore the configuration a link carries, and run it for a built-in data set.

    Called by ``app.main`` after ``st.navigation``. Messages are kept in
    ``state.URL_MESSAGES`` and shown by `show_url_messages`. After a successful run
    the app moves to the Results page.
    """
    if st.session_state.get(state.URL_CHECKED):
        return
    st.session_state[state.URL_CHECKED] = True
    params = st.query_params.to_dict()
    if not _has_url_state(params):
        return
    messages = []
    try:
        config, spec = urlstate.config_from_query_params(params)
    except DecodingInputError as err:
        st.session_state[state.URL_MESSAGES] = [("error", f"{err} The default configuration is kept.")]
        return
    requested = config.to_dict()
    apply_config_values(requested)
    if spec is None:
        st.session_state[state.URL_MESSAGES] = [(
            "info", "The configuration from the link is set (see Configure). The link names no built-in data "
                    "set: load the data on the Data page, then press Run.",
        )]
        return
    try:
        with st.spinner(f"Loading the data set '{spec}' named in the link..."):
            dataset = services.load_builtin_dataset(spec)
    except Exception as err:
        st.session_state[state.URL_MESSAGES] = [(
            "error", f"The link's data set '{spec}' could not be loaded: {err} The settings from the link are "
                     "set on the Configure page; load a data set on the Data page and press Run.",
        )]
        return
    services.adopt_dataset(dataset, spec)
    if spec.startswith("haxby:"):
        st.session_state[state.SOURCE_CHOICE] = "haxby"
        st.session_state[state.HAXBY_SUBJECT] = int(spec.partition(":")[2])
    else:
        st.session_state[state.SOURCE_CHOICE] = "simulated"
    st.session_state.pop(state.W_SOURCE, None)
    values = st.session_state[state.CONFIG_VALUES]
    changed = [words for name, words in (("mask_name", "mask"), ("conditions", "conditions"))
               if list(_as_list(values[name])) != list(_as_list(requested[name]))]
    if changed:
        messages.append(("warning", f"The link's {' and '.join(changed)} (not in '{spec}') were replaced by "
                                    "the app's defaults."))
    try:
        config = services.config_from_values(values)
    except Exception as err:
        st.session_state[state.URL_MESSAGES] = messages + [("error", f"The link's configuration cannot be run: {err}")]
        return
    problems = services.check_design(dataset, config)
    if problems:
        st.session_state[state.URL_MESSAGES] = messages + [("error", problem) for problem in problems]
        return
    result, failure = services.run_with_status(
        lambda progress: services.run_decoding(dataset, config, progress=progress),
        label="Running the configuration from the link...", done_label="Decoding finished",
        failed_label="The decoding stopped",
    )
    if failure is not None:
        st.session_state[state.URL_MESSAGES] = messages + [("error", f"The link's configuration could not be run: {failure}")]
        return
    adopt_result(result, dataset)
    st.session_state[state.URL_MESSAGES] = messages + [(
        "success", f"Restored the configuration from the link and ran it on '{dataset.title}'.",
    )]
    st.switch_page("pages/results.py", query_params=urlstate.config_to_query_params(config, spec))


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def show_url_messages() -> None:
    """Show (once) what restoring a link did."""
    messages = st.session_state.get(state.URL_MESSAGES)
    if not messages:
        return
    st.session_state[state.URL_MESSAGES] = None
    show = {"error": st.error, "warning": st.warning, "info": st.info, "success": st.success}
    for kind, text in messages:
        # A link is anyone's text: its values are shown as text, never as links or images.
        show.get(kind, st.info)(services.plain_markdown(text), icon=":material/link:")


# -- comparisons ------------------------------------------------------------------------------
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
        dataset = services.load_builtin_dataset(spec)
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


#: A setting's value as text (one wording everywhere: sweeps, history, compare).
format_value = sweeps.format_value


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
    problems = services.check_design(dataset, config)
    if problems:
        raise DecodingInputError(" ".join(problems))
    result = services.run_decoding(dataset, config, progress=progress)
    return record_run(result, dataset), result


# -- sweeps --------------------------------------------------------------------------------------
def default_values_text(setting: str, dataset=None) -> str:
    """The default values of a sweep of ``setting``, as the text box shows them."""
    return ", ".join(format_value(v) for v in sweeps.default_sweep_values(setting, dataset))


def new_sweep(setting: str, values, base_config: DecodingConfig, dataset) -> dict:
    """The session-state record of a sweep about to run (configurations validated now).

    Raises
    ------
    DecodingInputError
        When a value cannot be used (e.g. a mask the data set lacks).
    """
    configs = sweeps.sweep_configs(base_config, setting, values, dataset)
    return {
        "setting": setting, "values": list(values), "configs": configs, "base": base_config,
        "dataset_digest": dataset.digest, "dataset_title": dataset.title,
        "results": [], "run_ids": [], "failures": [], "next": 0, "running": True, "stopped": False,
    }


def continue_sweep(sweep: dict, dataset, progress=None) -> None:
    """Run the sweep's remaining values one by one, recording each run; updates ``sweep`` in place.

    A value that fails is reported in ``sweep["failures"]`` and the sweep goes on.
    Stop (``sweep["running"] = False``) keeps every run finished before it.
    """
    total = len(sweep["configs"])
    while sweep["running"] and sweep["next"] < total:
        index = sweep["next"]
        config = sweep["configs"][index]
        label = f"{sweep['setting']} = {format_value(getattr(config, sweep['setting']))} ({index + 1}/{total})"

        def step(fraction, message="", _index=index, _label=label):
            if progress is not None:
                progress(min(1.0, (_index + float(fraction)) / total), f"{_label}: {message}")

        step(0.0, "starting")
        try:
            result = services.run_decoding(dataset, config, progress=step)
        except DecodingInputError as err:
            sweep["failures"].append((label, str(err)))
        except MemoryError:
            sweep["failures"].append((label, "not enough memory; try a smaller mask"))
        else:
            record = record_run(result, dataset)
            sweep["results"].append(result)
            sweep["run_ids"].append(record.id if record is not None else None)
        sweep["next"] = index + 1
    if sweep["next"] >= total:
        sweep["running"] = False


def sweep_figure(sweep: dict):
    """Score against the swept setting, with every fold's score (the spread)."""
    setting = sweep["setting"]
    results = sweep["results"]
    values = [getattr(r.config, setting) for r in results]
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    x = values if numeric else [format_value(v) for v in values]
    log_x = numeric and sweeps.SWEEPABLE[setting].log_scale and all(v > 0 for v in values)
    chances = {round(float(r.chance_level), 6) for r in results}
    chance = chances.pop() if len(chances) == 1 else None
    return plotting.plot_score_vs_setting(
        x, [r.fold_scores for r in results], sweeps.SWEEPABLE[setting].title, log_x=log_x, chance=chance,
    )


def sweep_display_table(sweep: dict) -> pd.DataFrame:
    """One row per value: mean, sd, range over folds, chance, voxels, time."""
    table = sweeps.sweep_table(sweep["results"], sweep["setting"])
    table = table.drop(columns=["value", "fold_scores"])
    for column in ("mean_score", "std_score", "sem", "min_score", "max_score", "chance_level"):
        table[column] = table[column].round(4)
    table["elapsed_seconds"] = table["elapsed_seconds"].round(2)
    return table.rename(columns={
        "label": sweep["setting"], "mean_score": "mean score", "std_score": "sd over folds",
        "sem": "sem", "min_score": "lowest fold", "max_score": "highest fold", "n_folds": "folds",
        "chance_level": "chance", "n_voxels": "voxels", "elapsed_seconds": "seconds",
    })
