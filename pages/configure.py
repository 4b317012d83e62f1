"""Configure: what to decode, from which voxels, with which classifier, evaluated how."""

import streamlit as st

import app
from decoding_core import summaries
from decoding_core.cleaning import scope_of
from decoding_core.config import CV_SCHEMES, ESTIMATORS, SETTINGS, DecodingConfig
from decoding_core.io.labels import label_variants
from decoding_core.masking import NonFiniteVoxelsError
from ui import analysis, datasets, feedback, history, links, state

app.ensure_app()  # Streamlit may start this page without app.py: see app.ensure_app


def choice_widget(name: str, key: str):
    """A select box over one setting's table of choices (estimators, schemes, scores)."""
    setting = SETTINGS[name]
    return st.selectbox(setting.label, list(setting.choices), key=key, help=setting.help,
                        format_func=lambda choice: setting.choices[choice].title)


def select_conditions(conditions: list) -> None:
    """Button callback: put these conditions in the selection (before the multiselect is drawn again)."""
    st.session_state[state.W_CONDITIONS] = list(conditions)


def run_and_show(dataset, config) -> None:
    """Run with a progress bar; on success store the result and go to the Results page."""
    result, failure = feedback.run_with_status(
        lambda progress: analysis.run_decoding(dataset, config, progress=progress),
        label="Decoding...", done_label="Decoding finished", failed_label="The decoding stopped",
    )
    if failure is not None:
        feedback.show_error(failure, "decoding")
        return
    # Replace the previous result only now that the new one exists.
    history.adopt_result(result, dataset)
    st.switch_page("pages/results.py")


st.title("Configure")
st.markdown("Choose what to decode and how to evaluate it, then run.")
dataset = datasets.current_dataset()
if dataset is None:
    st.page_link("pages/data.py", label="Go to the Data page to load a data set", icon=":material/database:")
    st.stop()

values = summaries.sanitize_config_values(st.session_state[state.CONFIG_VALUES], dataset)
st.caption(f"Data set: {feedback.plain_markdown(dataset.title)}")

conditions_available = summaries.condition_names(dataset)
voxel_counts = summaries.mask_voxel_counts(dataset)
state.seed_widget(state.W_CONDITIONS, list(values["conditions"]))
state.seed_widget(state.W_MASK, values["mask_name"])
# Sessions and records from before the per-run choice hold True/False: scope_of reads both.
for key, name in ((state.W_STANDARDIZE, "standardize"), (state.W_DETREND, "detrend")):
    state.seed_widget(key, scope_of(values.get(name, DecodingConfig().to_dict()[name]), name))
    st.session_state[key] = scope_of(st.session_state[key], name)
state.seed_widget(state.W_HIGH_PASS, values.get("high_pass"))
state.seed_widget(state.W_CONFOUNDS, list(values.get("confounds") or ()))
state.seed_widget(state.W_ESTIMATOR, values["estimator"])
state.seed_widget(state.W_C, float(values["C"]))
state.seed_widget(state.W_TUNE_C, bool(values["tune_C"]))
state.seed_widget(state.W_SCREENING, int(round(values["screening_percentile"] or 100)))
state.seed_widget(state.W_SCORING, values["scoring"])
state.seed_widget(state.W_CV, values["cv"])
state.seed_widget(state.W_N_FOLDS, int(values["n_folds"]))
state.seed_widget(state.W_HOLDOUT, int(values["holdout_size"]))
# A data set loaded since the widgets were seeded may lack some choices.
st.session_state[state.W_CONDITIONS] = [c for c in st.session_state[state.W_CONDITIONS] if c in conditions_available]
# Written back on every run (not only when gone): the browser keeps showing the label it last
# got ("uploaded ... (577 voxels)") until the server sends the value again, even when a new
# upload changed the count under the same name.
st.session_state[state.W_MASK] = (st.session_state[state.W_MASK] if st.session_state[state.W_MASK] in dataset.masks
                                  else values["mask_name"])

what, how = st.columns(2)
with what:
    st.subheader("What to decode")
    conditions = st.multiselect(
        SETTINGS["conditions"].label, conditions_available, key=state.W_CONDITIONS,
        help=SETTINGS["conditions"].help,
    )
    categories = summaries.categories_without_rest(conditions_available)
    if len(categories) < len(conditions_available):
        # Beside the list's own "Select all", which would add rest (9 classes on Haxby's data).
        st.button("Categories (no rest)", on_click=select_conditions, args=(categories,),
                  help=f"Select the {len(categories)} conditions other than rest.")
    mask_name = st.selectbox(
        SETTINGS["mask_name"].label, list(dataset.masks), key=state.W_MASK,
        format_func=lambda name: summaries.mask_label(name, voxel_counts),
    )
    standardize = choice_widget("standardize", state.W_STANDARDIZE)
    detrend = choice_widget("detrend", state.W_DETREND)
    high_pass = st.number_input(
        SETTINGS["high_pass"].label, min_value=0.0001, max_value=float(SETTINGS["high_pass"].high), value=None,
        step=0.005, format="%g", key=state.W_HIGH_PASS, help=SETTINGS["high_pass"].help,
        placeholder="none",
    )
    confounds = st.multiselect(
        SETTINGS["confounds"].label, list(SETTINGS["confounds"].choices), key=state.W_CONFOUNDS,
        help=SETTINGS["confounds"].help, format_func=lambda name: SETTINGS["confounds"].choices[name].title,
        disabled=not dataset.run_files,  # they are read next to each run's fMRIPrep bold file
    )
with how:
    st.subheader("How")
    estimator = choice_widget("estimator", state.W_ESTIMATOR)
    if len(conditions) > 2 and ESTIMATORS[estimator].many_classes_note:
        st.info(ESTIMATORS[estimator].many_classes_note, icon=":material/schedule:")
    C = st.number_input(
        SETTINGS["C"].label, min_value=1e-6, max_value=SETTINGS["C"].high,
        step=0.1, format="%g", key=state.W_C, help=SETTINGS["C"].help,
    )
    tune_C = st.checkbox(SETTINGS["tune_C"].label, key=state.W_TUNE_C, help=SETTINGS["tune_C"].help)
    screening = st.slider(
        SETTINGS["screening_percentile"].label, min_value=1, max_value=100, key=state.W_SCREENING,
        help=SETTINGS["screening_percentile"].help,
    )
    scoring = choice_widget("scoring", state.W_SCORING)
    cv = choice_widget("cv", state.W_CV)
    st.caption(CV_SCHEMES[cv].help)
    n_folds = st.session_state[state.W_N_FOLDS]
    holdout_size = st.session_state[state.W_HOLDOUT]
    if cv == "kfold":
        n_folds = st.number_input(
            SETTINGS["n_folds"].label, min_value=SETTINGS["n_folds"].low, max_value=SETTINGS["n_folds"].high,
            step=1, key=state.W_N_FOLDS,
        )
    elif cv == "holdout":
        holdout_size = st.number_input(
            SETTINGS["holdout_size"].label, min_value=SETTINGS["holdout_size"].low,
            max_value=SETTINGS["holdout_size"].high, step=1, key=state.W_HOLDOUT,
        )

new_values = {
    **values,
    "conditions": list(conditions),
    "mask_name": mask_name,
    "standardize": standardize,
    "detrend": detrend,
    "high_pass": None if high_pass is None else float(high_pass),
    "confounds": list(confounds),
    "estimator": estimator,
    "C": float(C),
    "tune_C": bool(tune_C),
    "screening_percentile": None if screening >= 100 else float(screening),
    "scoring": scoring,
    "cv": cv,
    "n_folds": int(n_folds),
    "holdout_size": int(holdout_size),
}
st.session_state[state.CONFIG_VALUES] = new_values

st.subheader("What will be decoded")
config = None
problems = []
try:
    config = DecodingConfig.from_dict(new_values)
except Exception as err:
    feedback.show_error(err, "checking the configuration")
else:
    problems = summaries.check_design(dataset, config)
    try:
        nonfinite = analysis.nonfinite_in_mask(dataset, st.session_state[state.PREPARED_FROM], mask_name)
    except Exception as err:
        nonfinite = None
        feedback.show_error(err, "checking the image for NaN or infinite values")
    for problem in problems:
        st.error(problem, icon=":material/error:")
    if nonfinite is not None:
        problems.append(str(NonFiniteVoxelsError(nonfinite)))
        st.error(feedback.plain_markdown(problems[-1]), icon=":material/error:")
variants = summaries.selected_variants_message(label_variants(dataset.conditions), conditions)
if variants:
    # Escaped: condition names are the user's text.
    st.warning(feedback.plain_markdown(variants), icon=":material/warning:")

selection = summaries.selection_summary(dataset, conditions, mask_name)
# A wrapping row, not columns: in a narrow window a metric moves to the next line instead of being cut off.
with st.container(horizontal=True, horizontal_alignment="distribute", gap="medium"):
    st.metric("Data to decode (samples x voxels)", f"{selection.n_samples} x {selection.n_voxels}",
              width="content")
    st.metric("Runs among the samples", selection.n_runs, width="content")
    st.metric("Classes", len(conditions), width="content")
st.caption("Class balance of the selected samples:")
st.dataframe(selection.class_counts, hide_index=True)

ready = config is not None and not problems
if ready and analysis.has_result(dataset, config):
    st.caption("This configuration has been run before: its results will show at once.")
if st.button("Run the decoding", key=state.W_RUN, type="primary", disabled=not ready):
    run_and_show(dataset, config)
if st.session_state[state.RESULT] is not None:
    st.page_link("pages/results.py", label="See the last results", icon=":material/insights:")
if config is not None:
    links.share_configuration(config, st.session_state[state.DATASET_SPEC])
