"""Group: the current configuration decoded in several subjects, and a test of the group against chance."""

import streamlit as st

import app
from decoding_core import export
from ui import feedback, group, state

app.ensure_app()  # Streamlit may start this page without app.py: see app.ensure_app


def stop_group() -> None:
    """Stop-button callback: keep every subject finished so far."""
    run = st.session_state.get(state.GROUP_RUN)
    if run is not None:
        run.stop()


def remember_choices() -> None:
    """Widget callback: the chosen subjects persist across pages."""
    st.session_state[state.GROUP_SOURCE] = st.session_state[state.W_GROUP_SOURCE]
    st.session_state[state.GROUP_SEEDS] = tuple(st.session_state.get(state.W_GROUP_SEEDS, ()))
    st.session_state[state.GROUP_HAXBY] = tuple(st.session_state.get(state.W_GROUP_HAXBY, ()))


st.title("Group: several subjects")
st.markdown(
    "Decode the current configuration (from Configure) in each subject on its own, then ask whether decoding "
    "beats chance **across subjects**: a one-sided one-sample t-test of *score − chance* over subjects, and a "
    "sign-flip permutation test (exact over every sign pattern when there are few subjects: with 5 subjects "
    "the smallest possible p-value is 1/32)."
)

state.seed_widget(state.W_GROUP_SOURCE, st.session_state[state.GROUP_SOURCE])
state.seed_widget(state.W_GROUP_SEEDS, list(st.session_state[state.GROUP_SEEDS]))
state.seed_widget(state.W_GROUP_HAXBY, list(st.session_state[state.GROUP_HAXBY]))
source = st.radio("Subjects", list(group.SOURCES), format_func=group.SOURCES.get, horizontal=True,
                  key=state.W_GROUP_SOURCE, on_change=remember_choices)
if source == "haxby":
    chosen = st.multiselect("Haxby subjects", group.HAXBY_CHOICES, key=state.W_GROUP_HAXBY,
                            on_change=remember_choices)
    st.caption("Subjects not on disk yet are downloaded first (about 300 MB each; needs a network).")
else:
    chosen = st.multiselect("Simulated subjects (seeds)", group.SEED_CHOICES, key=state.W_GROUP_SEEDS,
                            on_change=remember_choices,
                            help="Each seed is one simulated subject with the same planted category patterns "
                                 "and its own noise; seed 0 is the built-in data set.")

try:
    config, mask_note = group.group_config(st.session_state[state.CONFIG_VALUES], source)
except Exception as err:
    feedback.show_error(err, "checking the configuration")
    st.page_link("pages/configure.py", label="Fix the configuration on Configure", icon=":material/tune:")
    st.stop()
st.caption(feedback.plain_markdown(
    f"Configuration: {' vs '.join(config.conditions)}, mask {config.mask_name}, {config.estimator}, "
    f"C = {config.C:g}, {config.cv}, {config.scoring}."
))
if mask_note:
    st.caption(feedback.plain_markdown(mask_note))
try:
    scheduler = group.scheduler_address()
except Exception as err:
    feedback.show_error(err, "reading the Dask scheduler setting")
    st.stop()
st.caption(f"Runs on the Dask cluster at {scheduler} (DECODING_LAB_SCHEDULER); only masked matrices and the "
           "configuration are sent." if scheduler else "Runs here, subject by subject.")

run = st.session_state.get(state.GROUP_RUN)
specs = group.subject_specs(source, chosen)
run_column, stop_column = st.columns([1, 4])
start = run_column.button("Run the group", key=state.W_GROUP_RUN, type="primary", icon=":material/play_arrow:",
                          disabled=len(specs) < 2 or (run is not None and run.running))
if len(specs) < 2:
    st.caption("Choose at least two subjects.")
if start:
    try:
        run = group.start_group(specs, config)
    except Exception as err:
        feedback.show_error(err, "preparing the group")
    else:
        st.session_state[state.GROUP_RUN] = run
# Drawn after a new run is set up, so Stop is live while it runs.
stop_column.button("Stop", key=state.W_GROUP_STOP, on_click=stop_group, icon=":material/stop:",
                   disabled=run is None or not run.running)

if run is not None and run.running:
    done_before = len(run.results) / run.total
    bar = st.progress(done_before, text=f"Decoding {run.total} subjects")
    try:
        group.continue_group(run, progress=feedback.progress_bar_callback(bar, done_before))
    except Exception as err:
        run.fail()
        feedback.show_error(err, "running the group")
    bar.empty()

if run is not None and run.result is not None:
    result = run.result
    st.subheader(f"{len(result.names)} subjects")
    if run.stopped:
        st.info(f"Stopped after {len(result.names)} of {run.total} subjects; the subjects finished so far are kept.")
    if result.t_test is not None:
        columns = st.columns(4)
        columns[0].metric("Subjects", len(result.names))
        columns[1].metric("Mean score − chance", f"{result.t_test.mean_difference:+.3f}")
        columns[2].metric("t-test p (one-sided)", f"{result.t_test.p_value:.3g}",
                          help=f"t({result.t_test.df}) = {result.t_test.statistic:.2f}")
        flips = "all sign patterns" if result.sign_flip.exact else f"{result.sign_flip.n_flips} random sign patterns"
        columns[3].metric("Sign-flip p", f"{result.sign_flip.p_value:.3g}", help=f"Over {flips}.")
        st.plotly_chart(group.group_figure(result), width="stretch")
        st.caption("Each square is a subject's mean score with the 95 % interval of its fold scores; the diamond "
                   "is the group mean with the 95 % t interval across subjects; the dashed line is chance.")
    else:
        st.info("A group test needs at least two subjects.")
    st.dataframe(group.group_table(result), hide_index=True)
    st.caption(feedback.plain_markdown(result.map_note))
    if result.mean_weight_img is not None:
        st.download_button("Group mean weight map (.nii.gz)", key=state.W_GROUP_MAP_DOWNLOAD,
                           data=lambda: export.image_to_nifti_bytes(result.mean_weight_img),
                           file_name="group_mean_weights.nii.gz", mime="application/gzip",
                           on_click="ignore", icon=":material/download:")
