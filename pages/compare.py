"""Compare: settings side by side, fold scores paired, weight maps subtracted, one change rerun."""

import streamlit as st

import app
from decoding_core import compare, plotting, summaries
from decoding_core.config import format_value
from decoding_core.errors import DecodingInputError
from decoding_core.sweeps import SWEEPABLE
from ui import feedback, history, state

app.ensure_app()  # Streamlit may start this page without app.py: see app.ensure_app

NUMERIC_KINDS = ("float", "int", "optional_float")


def draw_settings(records) -> None:
    st.subheader("Settings")
    table, differs = compare.config_table(records)
    different = [name for name, flag in differs.items() if flag]
    if different:
        st.markdown("Settings that differ (highlighted): **" + "**, **".join(different) + "**.")
    else:
        st.markdown("The runs have the same settings.")
    only_different = st.checkbox("Show only the settings that differ", key=state.W_COMPARE_ONLY_DIFFERENT)
    if only_different and different:
        table, differs = table.loc[differs], differs.loc[differs]
    # Tall enough for every setting: a hidden highlighted row would defeat the table's purpose.
    st.dataframe(
        compare.style_config_table(table, differs), height=36 * (len(table) + 1) + 3,
        # Wide enough for the longest setting name ("Smoothing FWHM (mm)").
        column_config={"_index": st.column_config.TextColumn("setting", width="medium")},
    )


def draw_fold_scores(records):
    """Fold scores side by side; returns the two runs chosen for the paired comparison."""
    st.subheader("Scores per fold")
    table = compare.paired_fold_scores(records)
    if table.attrs["paired"]:
        st.caption(table.attrs["reason"] + " Each row compares like with like.")
    else:
        st.info(table.attrs["reason"] + " Rows are fold positions only: compare the mean scores, not the rows.")
    st.dataframe(table.round(4))
    try:
        st.plotly_chart(
            plotting.plot_score_vs_setting(list(table.columns), [r.fold_scores for r in records], "Run"),
            width="stretch",
        )
    except Exception as err:
        feedback.show_error(err, "drawing the fold scores")

    st.markdown("**Two runs, fold by fold** (B - A: positive when B scores higher)")
    ids = [r.id for r in records]
    by_id = {r.id: r for r in records}
    label = {r.id: name for r, name in zip(records, table.columns)}
    for widget_key, default in ((state.W_COMPARE_A, ids[0]), (state.W_COMPARE_B, ids[1])):
        if st.session_state.get(widget_key) not in ids:
            st.session_state[widget_key] = default
    a_column, b_column = st.columns(2)
    a_id = a_column.selectbox("Run A", ids, format_func=label.get, key=state.W_COMPARE_A)
    b_id = b_column.selectbox("Run B", ids, format_func=label.get, key=state.W_COMPARE_B)
    record_a, record_b = by_id[a_id], by_id[b_id]
    if a_id == b_id:
        st.info("Choose two different runs as A and B.")
        return record_a, record_b
    paired, reason = compare.folds_are_paired([record_a, record_b])
    if not paired:
        st.info(f"{reason} A paired test is not possible; compare the mean scores instead.")
        return record_a, record_b
    try:
        st.plotly_chart(
            plotting.plot_paired_folds(record_a.fold_scores, record_b.fold_scores,
                                      [label[a_id], label[b_id]], record_a.fold_names),
            width="stretch",
        )
        test = compare.compare_two_runs(record_a, record_b)
    except Exception as err:
        feedback.show_error(err, "comparing the two runs")
        return record_a, record_b
    draw_paired_test(test)
    return record_a, record_b


def p_text(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def draw_paired_test(test: compare.PairedTest) -> None:
    level = int(round(test.confidence * 100))
    difference, t_column, wilcoxon_column, corrected_column = st.columns(4)
    difference.metric("Mean difference (B - A)", f"{test.mean_difference:+.4f}",
                      help=f"{level}% interval: {test.ci_low:+.4f} to {test.ci_high:+.4f}")
    t_column.metric("Paired t-test p", p_text(test.t_p_value))
    wilcoxon_column.metric("Wilcoxon signed-rank p", p_text(test.wilcoxon_p_value))
    corrected_column.metric("Corrected t-test p (Nadeau & Bengio)", p_text(test.corrected_t_p_value))
    interval = f"{level}% interval of the mean difference B - A: {test.ci_low:+.4f} to {test.ci_high:+.4f}"
    if test.corrected_ci_low is not None:
        interval += f" (corrected: {test.corrected_ci_low:+.4f} to {test.corrected_ci_high:+.4f})"
    st.caption(f"{interval}. Over {test.n_folds} folds, A scored higher in {test.n_a_better}, "
               f"B in {test.n_b_better}, ties in {test.n_ties}.")
    st.info(f"**Limits of this test.** {test.note}", icon=":material/info:")


def draw_weight_difference(record_a, record_b) -> None:
    st.subheader("Weight map difference (B - A)")
    if record_a.id == record_b.id:
        st.info("Choose two different runs as A and B above.")
        return
    controls = st.columns(3)
    normalize = controls[0].checkbox(
        "Scale each map to its largest weight first", key=state.W_COMPARE_NORMALIZE,
        help="Weights of different estimators or C values live on different scales; scaling compares "
             "the shapes of the maps rather than their sizes.",
    )
    try:
        difference = compare.weight_difference_img(record_a, record_b, normalize=normalize)
    except DecodingInputError as err:  # runs on other data sets or classes: nothing to subtract, no fault
        st.info(feedback.plain_markdown(str(err)), icon=":material/info:")
        return
    except Exception as err:
        feedback.show_error(err, "subtracting the weight maps")
        return
    map_index = None
    if len(difference.shape) == 4:
        classes = list(record_a.classes)
        map_index = controls[1].selectbox(
            "Class", list(range(difference.shape[3])), key=state.W_COMPARE_MAP_CLASS,
            format_func=lambda i: f"{classes[i]} vs rest" if i < len(classes) else f"map {i + 1}",
        )
    state.seed_widget(state.W_COMPARE_DISPLAY_MODE, st.session_state[state.DISPLAY_MODE])
    display_mode = controls[2].selectbox("View", state.DISPLAY_MODES, key=state.W_COMPARE_DISPLAY_MODE)
    try:
        figure = plotting.plot_stat_slices(
            difference, history.background_for(record_a), display_mode=display_mode, map_index=map_index,
            title=f"B - A: {record_b.name} minus {record_a.name}", colorbar_title="B - A",
        )
        st.plotly_chart(figure, width="stretch")
    except Exception as err:
        feedback.show_error(err, "drawing the weight map difference")
    st.caption("Warm colours: larger weight in B; cold colours: larger in A. "
               "A voxel in only one run's mask counts as 0 in the other.")


def draw_exports(record_a, record_b) -> None:
    st.subheader("Reproducible exports")
    columns = st.columns(2)
    for column, record, widget_key, letter in (
        (columns[0], record_a, state.W_COMPARE_ZIP_A, "A"), (columns[1], record_b, state.W_COMPARE_ZIP_B, "B"),
    ):
        column.download_button(
            feedback.plain_markdown(f"Run {letter}: {record.name} (.zip)"),
            data=lambda record=record: history.record_zip(record),
            file_name=history.record_zip_name(record), mime="application/zip", key=widget_key,
            on_click="ignore", icon=":material/download:",
        )


def draw_rerun(labels: dict, run_ids: list, selection: list) -> None:
    st.subheader("Change one setting and rerun")
    st.markdown("Take any run, change one setting, run it on the same data: the new run is recorded "
                "and added to the comparison above.")
    default = selection[0] if selection else run_ids[0]
    if st.session_state.get(state.W_RERUN_FROM) not in run_ids:
        st.session_state[state.W_RERUN_FROM] = default
    from_column, setting_column, value_column = st.columns(3)
    base_id = from_column.selectbox("From run", run_ids, format_func=labels.get, key=state.W_RERUN_FROM)
    setting = setting_column.selectbox("Setting", list(SWEEPABLE), format_func=lambda s: SWEEPABLE[s].title,
                                       key=state.W_RERUN_SETTING)
    base = history.get_record(base_id)
    if base is None:
        st.info("That run is no longer in the history.")
        return
    choices = history.rerun_setting_values(setting, base)
    if st.session_state.get(state.W_RERUN_VALUE) not in choices:
        st.session_state.pop(state.W_RERUN_VALUE, None)
    value = value_column.selectbox(f"New value (now {format_value(getattr(base.config, setting))})", choices,
                                   format_func=format_value, key=state.W_RERUN_VALUE)
    if SWEEPABLE[setting].kind in NUMERIC_KINDS:
        typed = value_column.text_input("...or type a value", key=state.W_RERUN_OTHER_VALUE,
                                        placeholder="e.g. 0.05")
        if typed.strip():
            try:
                value = history.parse_one_value(setting, typed)
            except Exception as err:
                feedback.show_error(err, "reading the value")
                return
    if not st.button(f"Rerun with {SWEEPABLE[setting].title} = {format_value(value)}", key=state.W_RERUN,
                     type="primary", icon=":material/replay:"):
        return
    outcome, failure = feedback.run_with_status(
        lambda progress: history.rerun_with_change(base, setting, value, progress=progress),
        label="Running...", done_label="Run finished",
    )
    record = outcome[0] if outcome is not None else None
    if failure is not None:
        feedback.show_error(failure, "rerunning with the changed setting")
        return
    if record is None:
        return
    change = record.mean_score - base.mean_score
    st.session_state[state.RERUN_MESSAGE] = (
        f"Reran '{base.name}' with {SWEEPABLE[setting].title} = {format_value(value)}: mean score "
        f"{record.mean_score:.3f} ({change:+.3f} vs {base.mean_score:.3f}). Shown as run B below 'Run A' = the original."
    )
    # The original and the new run first, so they are A and B.
    others = [i for i in selection if i not in (base.id, record.id)]
    st.session_state[state.COMPARE_SELECTION] = [base.id, record.id] + others
    for widget_key in (state.W_COMPARE_RUNS, state.W_COMPARE_A, state.W_COMPARE_B):
        st.session_state.pop(widget_key, None)
    st.rerun()


st.title("Compare runs")
st.markdown("Pick two or more runs from the history: their settings side by side, their scores fold by fold, "
            "and the difference of their weight maps.")
try:
    summary = history.run_store().summary_table()
except Exception as err:
    feedback.show_error(err, "opening the run history")
    st.stop()
if summary.empty:
    st.info("No runs yet. Run a decoding on the Configure page (or a sweep); each finished run is recorded "
            "in the history and can be compared here.")
    st.page_link("pages/configure.py", label="Go to Configure", icon=":material/tune:")
    st.stop()

run_ids = list(summary["id"])
labels = summaries.run_labels(summary)
stored = [i for i in (st.session_state.get(state.COMPARE_SELECTION) or []) if i in run_ids]
state.seed_widget(state.W_COMPARE_RUNS, stored or run_ids[:2])
st.session_state[state.W_COMPARE_RUNS] = [i for i in st.session_state[state.W_COMPARE_RUNS] if i in run_ids]
selection = st.multiselect("Runs to compare (two or more)", run_ids, format_func=labels.get,
                           key=state.W_COMPARE_RUNS)
st.session_state[state.COMPARE_SELECTION] = list(selection)

rerun_message = st.session_state.get(state.RERUN_MESSAGE)
if rerun_message:
    st.success(feedback.plain_markdown(rerun_message), icon=":material/replay:")
    st.session_state[state.RERUN_MESSAGE] = None

records = history.get_records(selection)
if len(records) < 2:
    st.info("Pick at least two runs to compare" + (" (the history holds only one: rerun it with one setting "
            "changed below)." if len(run_ids) < 2 else "."))
else:
    st.subheader("Scores")
    st.dataframe(compare.summary_table(records).round(4))
    draw_settings(records)
    record_a, record_b = draw_fold_scores(records)
    draw_weight_difference(record_a, record_b)
    draw_exports(record_a, record_b)
draw_rerun(labels, run_ids, list(selection))
