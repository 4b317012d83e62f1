"""History: every finished run, to rename, delete, export, import, download or compare."""

import streamlit as st

import app
from decoding_core import summaries
from ui import feedback, history, state

app.ensure_app()  # Streamlit may start this page without app.py: see app.ensure_app


def set_message(kind: str, text: str) -> None:
    st.session_state[state.HISTORY_MESSAGE] = (kind, text)


def name_of_selected_run(names: dict) -> None:
    """Selection callback: the rename box shows the chosen run's name."""
    run_id = st.session_state.get(state.W_HISTORY_RUN)
    st.session_state[state.W_HISTORY_NAME] = names.get(run_id, "")


def rename_run() -> None:
    run_id = st.session_state.get(state.W_HISTORY_RUN)
    try:
        record = history.run_store().rename(run_id, st.session_state.get(state.W_HISTORY_NAME, ""))
    except Exception as err:
        set_message("error", str(err))
    else:
        st.session_state[state.W_HISTORY_NAME] = record.name
        set_message("success", f"Renamed to '{record.name}'.")


def delete_run() -> None:
    run_id = st.session_state.get(state.W_HISTORY_RUN)
    try:
        record = history.run_store().get(run_id)
        history.run_store().delete(run_id)
    except Exception as err:
        set_message("error", str(err))
    else:
        st.session_state[state.W_HISTORY_DELETE_CONFIRM] = False
        st.session_state.pop(state.W_HISTORY_RUN, None)
        st.session_state.pop(state.W_HISTORY_NAME, None)
        set_message("success", f"Deleted the run '{record.name}'.")


def import_history() -> None:
    uploaded = st.session_state.get(state.W_HISTORY_IMPORT_FILE)
    if uploaded is None:
        set_message("error", "Choose a history file (.zip saved with 'Export') first.")
        return
    try:
        added = history.run_store().import_bytes(uploaded.getvalue())
    except Exception as err:
        set_message("error", str(err))
    else:
        set_message("success", f"Imported {len(added)} run(s) from {feedback.safe_display_name(uploaded.name)}.")


def compare_selected(run_ids: list) -> None:
    st.session_state[state.COMPARE_SELECTION] = list(run_ids)
    st.session_state.pop(state.W_COMPARE_RUNS, None)


st.title("History")
st.markdown("Every finished run is recorded here with its settings, data set, scores per fold and weight map.")
try:
    store = history.run_store()
    summary = store.summary_table()
except Exception as err:
    feedback.show_error(err, "opening the run history")
    st.stop()
st.caption(history.history_location())

message = st.session_state.get(state.HISTORY_MESSAGE)
if message is not None:
    kind, text = message
    # Run names are the user's text (or an imported file's): shown as text, never as links.
    (st.error if kind == "error" else st.success)(feedback.plain_markdown(text))
    st.session_state[state.HISTORY_MESSAGE] = None

if summary.empty:
    st.info("No runs yet. Run a decoding on the Configure page (or a sweep): each finished run appears here.")
    st.page_link("pages/configure.py", label="Go to Configure", icon=":material/tune:")
else:
    # The score and the name stay in view however far the table scrolls sideways.
    st.dataframe(summaries.history_table(summary), hide_index=True, column_config={
        "mean score": st.column_config.NumberColumn(pinned=True), "name": st.column_config.TextColumn(pinned=True)})
    run_ids = list(summary["id"])
    labels = summaries.run_labels(summary)
    names = dict(zip(summary["id"], summary["name"]))

    st.subheader("One run")
    if st.session_state.get(state.W_HISTORY_RUN) not in run_ids:
        st.session_state[state.W_HISTORY_RUN] = run_ids[0]
        st.session_state[state.W_HISTORY_NAME] = names[run_ids[0]]
    run_id = st.selectbox("Run", run_ids, format_func=labels.get, key=state.W_HISTORY_RUN,
                          on_change=name_of_selected_run, args=(names,))
    state.seed_widget(state.W_HISTORY_NAME, names.get(run_id, ""))
    name_column, rename_column = st.columns([3, 1], vertical_alignment="bottom")
    name_column.text_input("Name", max_chars=200, key=state.W_HISTORY_NAME)
    rename_column.button("Rename", key=state.W_HISTORY_RENAME, on_click=rename_run)
    record = history.get_record(run_id)
    if record is not None and st.button("Open on the Results page", key=state.W_HISTORY_OPEN,
                                        icon=":material/insights:", on_click=history.open_record, args=(record,),
                                        help="Scores, predictions and maps of this run, as when it ran."):
        st.switch_page("pages/results.py")
    download_column, confirm_column, delete_column = st.columns([2, 2, 1], vertical_alignment="bottom")
    if record is not None:
        download_column.download_button(
            "Reproducible export of this run (.zip)", data=lambda: history.record_zip(record),
            file_name=history.record_zip_name(record), mime="application/zip",
            key=state.W_HISTORY_RUN_ZIP, on_click="ignore", icon=":material/download:",
            help="Configuration, scores, predictions, weight map, mask, package versions and a standalone "
                 "reproduce.py script.",
        )
    confirmed = confirm_column.checkbox("Yes, delete this run", key=state.W_HISTORY_DELETE_CONFIRM)
    delete_column.button("Delete", key=state.W_HISTORY_DELETE, on_click=delete_run, disabled=not confirmed)

    st.subheader("Several runs")
    current = [i for i in st.session_state.get(state.W_HISTORY_SELECTED, []) if i in run_ids]
    st.session_state[state.W_HISTORY_SELECTED] = current
    selected = st.multiselect("Selected runs", run_ids, format_func=labels.get, key=state.W_HISTORY_SELECTED,
                              placeholder="Choose runs to compare or export")
    compare_column, export_selected_column, export_all_column = st.columns(3)
    if compare_column.button("Compare the selected runs", key=state.W_HISTORY_COMPARE, disabled=len(selected) < 2,
                             on_click=compare_selected, args=(selected,), icon=":material/compare_arrows:"):
        st.switch_page("pages/compare.py")
    export_selected_column.download_button(
        f"Export the {len(selected)} selected run(s)", data=lambda: store.export_bytes(selected),
        file_name=history.history_file_name(), mime="application/zip", key=state.W_HISTORY_EXPORT_SELECTED,
        disabled=not selected, on_click="ignore", icon=":material/download:",
    )
    export_all_column.download_button(
        f"Export all {len(run_ids)} runs", data=lambda: store.export_bytes(None),
        file_name=history.history_file_name(), mime="application/zip", key=state.W_HISTORY_EXPORT_ALL,
        on_click="ignore", icon=":material/download:",
    )

st.subheader("Import")
st.file_uploader("History file (.zip saved with 'Export')", type=["zip"], key=state.W_HISTORY_IMPORT_FILE)
st.button("Import the runs", key=state.W_HISTORY_IMPORT, on_click=import_history, icon=":material/upload:")
