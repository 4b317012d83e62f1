"""Shareable links: a configuration in the page's URL, and restoring (and running) one a link carries.

The query parameters are those of `decoding_core.urlstate` (``?v=1&data=haxby:2&C=0.1...``).
An uploaded data set is never named in a link: whoever opens it loads the same
files. A link's values are anyone's text, so messages about them are shown as
text, never as Markdown.
"""

from __future__ import annotations

import streamlit as st

from decoding_core import urlstate
from decoding_core.config import DecodingConfig
from decoding_core.datasets import HAXBY, DatasetSpec
from decoding_core.errors import DecodingInputError
from decoding_core.summaries import check_design
from ui import analysis, state
from ui.datasets import adopt_dataset, load_builtin_dataset
from ui.feedback import plain_markdown, run_with_status
from ui.history import adopt_result, current_result_record


# -- configuration out -------------------------------------------------------------------------
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


# -- configuration in ------------------------------------------------------------------------------
def _has_url_state(params: dict) -> bool:
    return any(key in params for key in urlstate.QUERY_KEYS.values()) or urlstate.DATASET_KEY in params


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _set_messages(messages: list) -> None:
    st.session_state[state.URL_MESSAGES] = messages


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
    try:
        config, spec = urlstate.config_from_query_params(params)
    except DecodingInputError as err:
        _set_messages([("error", f"{err} The default configuration is kept.")])
        return
    requested = config.to_dict()
    state.apply_config_values(requested)
    if spec is None:
        _set_messages([(
            "info", "The configuration from the link is set (see Configure). The link names no built-in data "
                    "set: load the data on the Data page, then press Run.",
        )])
        return
    dataset = _load_linked_dataset(spec)
    if dataset is not None:
        _run_linked_configuration(dataset, spec, requested)


def _load_linked_dataset(spec: str):
    """Load and adopt the link's built-in data set; None (with a message) when it cannot be loaded."""
    try:
        with st.spinner(f"Loading the data set '{spec}' named in the link..."):
            dataset = load_builtin_dataset(spec)
    except Exception as err:
        _set_messages([(
            "error", f"The link's data set '{spec}' could not be loaded: {err} The settings from the link are "
                     "set on the Configure page; load a data set on the Data page and press Run.",
        )])
        return None
    adopt_dataset(dataset, spec)
    parsed = DatasetSpec.parse(spec)
    if parsed.kind == HAXBY:
        st.session_state[state.SOURCE_CHOICE] = "haxby"
        st.session_state[state.HAXBY_SUBJECT] = parsed.subject
    else:
        st.session_state[state.SOURCE_CHOICE] = "simulated"
    st.session_state.pop(state.W_SOURCE, None)
    return dataset


def _run_linked_configuration(dataset, spec: str, requested: dict) -> None:
    """Run the link's configuration (as adapted to the data set) and move to Results."""
    messages = []
    values = st.session_state[state.CONFIG_VALUES]
    changed = [words for name, words in (("mask_name", "mask"), ("conditions", "conditions"))
               if list(_as_list(values[name])) != list(_as_list(requested[name]))]
    if changed:
        messages.append(("warning", f"The link's {' and '.join(changed)} (not in '{spec}') were replaced by "
                                    "the app's defaults."))
    try:
        config = DecodingConfig.from_dict(dict(values))
    except Exception as err:
        _set_messages(messages + [("error", f"The link's configuration cannot be run: {err}")])
        return
    problems = check_design(dataset, config)
    if problems:
        _set_messages(messages + [("error", problem) for problem in problems])
        return
    result, failure = run_with_status(
        lambda progress: analysis.run_decoding(dataset, config, progress=progress),
        label="Running the configuration from the link...", done_label="Decoding finished",
        failed_label="The decoding stopped",
    )
    if failure is not None:
        _set_messages(messages + [("error", f"The link's configuration could not be run: {failure}")])
        return
    adopt_result(result, dataset)
    _set_messages(messages + [(
        "success", f"Restored the configuration from the link and ran it on '{dataset.title}'.",
    )])
    st.switch_page("pages/results.py", query_params=urlstate.config_to_query_params(config, spec))


def show_url_messages() -> None:
    """Show (once) what restoring a link did."""
    messages = st.session_state.get(state.URL_MESSAGES)
    if not messages:
        return
    st.session_state[state.URL_MESSAGES] = None
    show = {"error": st.error, "warning": st.warning, "info": st.info, "success": st.success}
    for kind, text in messages:
        # A link is anyone's text: its values are shown as text, never as links or images.
        show.get(kind, st.info)(plain_markdown(text), icon=":material/link:")
