"""Sweep: run the current configuration for several values of one setting, and plot the score."""

import streamlit as st

import app
from decoding_core import summaries
from decoding_core.config import DecodingConfig, format_value
from decoding_core.sweeps import MAX_SWEEP_VALUES, SWEEPABLE, parse_sweep_values
from ui import datasets, feedback, runs, state

app.ensure_app()  # Streamlit may start this page without app.py: see app.ensure_app

VALUES_HELP = (
    "Separate values by commas or spaces. Numbers also take ranges: 0.001..100 (for C, every power of ten) "
    "or 1..100:5 (five values). 'none' means no smoothing or no screening; yes/no for switches. "
    f"At most {MAX_SWEEP_VALUES} values."
)


def reset_values_for_setting(dataset) -> None:
    """Setting callback: offer the new setting's default values."""
    setting = st.session_state[state.W_SWEEP_SETTING]
    st.session_state[state.SWEEP_SETTING] = setting
    st.session_state[state.W_SWEEP_VALUES] = runs.default_values_text(setting, dataset)
    st.session_state[state.SWEEP_VALUES_TEXT] = st.session_state[state.W_SWEEP_VALUES]


def stop_sweep() -> None:
    """Stop-button callback: keep every run finished so far."""
    sweep = st.session_state.get(state.SWEEP)
    if sweep is not None:
        sweep.stop()


def compare_sweep_runs(run_ids) -> None:
    st.session_state[state.COMPARE_SELECTION] = [i for i in run_ids if i]
    st.session_state.pop(state.W_COMPARE_RUNS, None)


st.title("Sweep one setting")
st.markdown("Run the current configuration once for each value of one setting, with one click, and see how "
            "the score and its spread over folds change. Every run is recorded in the History.")
dataset = datasets.current_dataset()
if dataset is None:
    st.page_link("pages/data.py", label="Go to the Data page to load a data set", icon=":material/database:")
    st.stop()
values = summaries.sanitize_config_values(st.session_state[state.CONFIG_VALUES], dataset)
try:
    base_config = DecodingConfig.from_dict(values)
except Exception as err:
    feedback.show_error(err, "checking the configuration")
    st.page_link("pages/configure.py", label="Fix the configuration on Configure", icon=":material/tune:")
    st.stop()
st.caption(feedback.plain_markdown(
    f"Data set: {dataset.title}. Base configuration (from Configure): {' vs '.join(base_config.conditions)}, "
    f"mask {base_config.mask_name}, {base_config.estimator}, C = {base_config.C:g}, {base_config.cv}."
))

if st.session_state[state.SWEEP_SETTING] not in SWEEPABLE:
    st.session_state[state.SWEEP_SETTING] = "C"
state.seed_widget(state.W_SWEEP_SETTING, st.session_state[state.SWEEP_SETTING])
setting = st.selectbox("Setting to vary", list(SWEEPABLE), format_func=lambda s: SWEEPABLE[s].title,
                       key=state.W_SWEEP_SETTING, on_change=reset_values_for_setting, args=(dataset,))
state.seed_widget(state.W_SWEEP_VALUES,
                  st.session_state[state.SWEEP_VALUES_TEXT] or runs.default_values_text(setting, dataset))
text = st.text_input("Values", key=state.W_SWEEP_VALUES, help=VALUES_HELP)
st.session_state[state.SWEEP_VALUES_TEXT] = text

sweep_values = None
try:
    sweep_values = parse_sweep_values(setting, text)
except Exception as err:
    feedback.show_error(err, "reading the sweep values")
else:
    st.caption(f"{len(sweep_values)} runs: " + ", ".join(format_value(v) for v in sweep_values))

sweep = st.session_state.get(state.SWEEP)
run_column, stop_column = st.columns([1, 4])
start = run_column.button("Run the sweep", key=state.W_SWEEP_RUN, type="primary", icon=":material/play_arrow:",
                          disabled=sweep_values is None or (sweep is not None and sweep.running))
if start and sweep_values is not None:
    try:
        sweep = runs.SweepRun.start(setting, sweep_values, base_config, dataset)
    except Exception as err:
        feedback.show_error(err, "preparing the sweep")
    else:
        st.session_state[state.SWEEP] = sweep
# Drawn after a new sweep is set up, so Stop is live while it runs.
stop_column.button("Stop", key=state.W_SWEEP_STOP, on_click=stop_sweep,
                   disabled=sweep is None or not sweep.running, icon=":material/stop:")

if sweep is not None and sweep.running:
    if sweep.dataset_digest != dataset.digest:
        sweep.stop()
        st.info("The data set changed since this sweep started; it was stopped.")
    else:
        done = sweep.next_index / max(sweep.total, 1)
        bar = st.progress(done, text=f"Sweeping {SWEEPABLE[sweep.setting].title}")
        try:
            # Runs are stored as they finish, so Stop (which interrupts this script run) keeps them.
            runs.continue_sweep(sweep, dataset, progress=feedback.progress_bar_callback(bar, done))
        except Exception as err:
            sweep.fail()
            feedback.show_error(err, "running the sweep")
        bar.empty()

if sweep is not None:
    title = SWEEPABLE[sweep.setting].title
    total = sweep.total
    st.subheader(f"Score against {title}")
    if sweep.dataset_digest != dataset.digest:
        st.caption(feedback.plain_markdown(
            f"This sweep ran on '{sweep.dataset_title}', not on the data set loaded now."
        ))
    if sweep.stopped:
        st.info(f"Stopped after {len(sweep.results)} of {total} runs; the runs finished so far are kept.")
    for label, message in sweep.failures:
        st.error(f"{label}: {message}", icon=":material/error:")
    if sweep.results:
        try:
            st.plotly_chart(runs.sweep_figure(sweep), width="stretch")
        except Exception as err:
            feedback.show_error(err, "drawing the sweep")
        st.caption("Each dot is one fold's score; the line is the mean over folds with its spread.")
        st.dataframe(summaries.sweep_score_table(sweep.results, sweep.setting), hide_index=True)
        recorded = sweep.recorded_run_ids
        if st.button("Compare these runs", key=state.W_SWEEP_COMPARE, disabled=len(recorded) < 2,
                     on_click=compare_sweep_runs, args=(recorded,), icon=":material/compare_arrows:"):
            st.switch_page("pages/compare.py")
