"""Results: scores against chance, predictions, the weight map, downloads and significance."""

import streamlit as st

import app
from decoding_core import export, map_views, plotting, summaries
from decoding_core.config import CV_SCHEMES, ESTIMATORS, SCORINGS
from ui import analysis, feedback, history, links, runs, state
from ui.searchlight import draw_searchlight

app.ensure_app()  # Streamlit may start this page without app.py: see app.ensure_app

#: The viewer's zoom switch: a widget of this page only (on by default, so no session-state key).
W_ZOOM_TO_MASK = "results_zoom_to_mask"

TRAINING_ACCURACY_EXPLANATION = (
    "This score is the accuracy on the **same samples the classifier was trained on**. "
    "With hundreds of voxels and a few hundred samples, a linear classifier can separate "
    "almost any labelling of the training data, even random labels, so 1.0 here says nothing "
    "about whether the brain activity carries information about the conditions. "
    "Choose a cross-validation scheme (leave-one-run-out is the right one for fMRI runs) to "
    "measure how well the classifier predicts data it has never seen."
)


def move_cut_to_click() -> None:
    """Chart callback: a click on a slice moves the cut to the clicked voxel."""
    event = st.session_state.get(state.W_WEIGHT_CHART) or {}
    selection = event.get("selection") if hasattr(event, "get") else None
    voxel = map_views.cut_from_selection(selection)
    if voxel is None:
        return
    st.session_state[state.CUT_COORDS] = voxel
    st.session_state[state.W_CUT_I], st.session_state[state.W_CUT_J], st.session_state[state.W_CUT_K] = voxel


def start_permutations() -> None:
    """Run-button callback of the permutation test."""
    st.session_state[state.PERMUTATION_STOP] = False
    st.session_state[state.PERMUTATION_COUNT] = int(st.session_state[state.W_N_PERMUTATIONS])
    tested = analysis.result_key(st.session_state[state.DATASET], st.session_state[state.RESULT].config)
    st.session_state[state.PERMUTATION_RESULT] = runs.PermutationRun(key=tested, n_target=st.session_state[state.PERMUTATION_COUNT])


def stop_permutations() -> None:
    """Stop-button callback: keep the permutations done so far."""
    st.session_state[state.PERMUTATION_STOP] = True
    run = st.session_state[state.PERMUTATION_RESULT]
    if run is not None:
        run.stop()


def draw_scores(result) -> None:
    config = result.config
    # A wrapping row, not columns: in a narrow window a metric moves to the next line instead of being cut off.
    row = st.container(horizontal=True, horizontal_alignment="distribute", gap="medium")
    row.metric(
        f"Mean {SCORINGS[config.scoring].short}", f"{result.mean_score:.3f}",
        delta=f"{result.mean_score - result.chance_level:+.3f} vs chance", delta_color="normal",
        help=f"Standard deviation across folds: {result.std_score:.3f}", width="content",
    )
    row.metric("Chance level", f"{result.chance_level:.3f}", help="What guessing scores: for accuracy the share of the most frequent class, for balanced accuracy 1 / number of classes, for ROC AUC 0.5.", width="content")
    row.metric("Samples x voxels", f"{result.n_samples} x {result.n_voxels}", width="content")
    row.metric("Folds", len(result.fold_scores), help=f"Spread (sd) across folds: {result.std_score:.3f}",
               width="content")
    st.caption(f"Mean {result.mean_score:.3f} +/- {result.std_score:.3f} (sd across folds); "
               f"computed in {result.elapsed_seconds:.2f} s.")
    if result.meaningless:
        st.warning(TRAINING_ACCURACY_EXPLANATION, icon=":material/warning:")
    for warning in summaries.warnings_to_show(result):  # without a second training-accuracy warning
        st.warning(warning, icon=":material/warning:")
    for note in getattr(result, "notes", []):  # how a number was computed (nested tuning, SVC's ROC AUC)
        st.info(note, icon=":material/info:")

    st.subheader("Score of each fold")
    try:
        st.plotly_chart(plotting.plot_fold_scores(result), width="stretch")
    except Exception as err:
        feedback.show_error(err, "drawing the fold scores")
    st.dataframe(summaries.fold_scores_table(result), hide_index=True)


def draw_predictions(result) -> None:
    st.subheader("Predictions")
    truth_tab, confusion_tab, metrics_tab, wrong_tab = st.tabs(
        ["Predicted vs true", "Confusion matrix", "Per-class precision and recall", "Misclassified samples"]
    )
    with truth_tab:
        try:
            st.plotly_chart(plotting.plot_predictions(result), width="stretch")
        except Exception as err:
            feedback.show_error(err, "drawing the predictions")
        st.dataframe(result.predictions, hide_index=True, height=250)
    with confusion_tab:
        try:
            table = summaries.confusion_table(result)
            st.plotly_chart(plotting.plot_confusion_matrix(table), width="stretch")
            st.dataframe(table)
        except Exception as err:
            feedback.show_error(err, "drawing the confusion matrix")
    with metrics_tab:
        st.dataframe(summaries.class_metrics(result), hide_index=True)
    with wrong_tab:
        wrong = summaries.misclassified(result)
        st.caption(f"{len(wrong)} of {len(result.predictions)} test predictions were wrong.")
        st.dataframe(wrong, hide_index=True, height=250)


def draw_weight_map(result, dataset) -> None:
    st.subheader("Where the information is: the weight map")
    kinds = map_views.available_map_kinds(result)
    names = map_views.map_names(result)
    controls = st.columns(4)
    kind = "weights"
    if len(kinds) > 1:
        state.seed_widget(state.W_MAP_KIND, st.session_state[state.MAP_KIND] if st.session_state[state.MAP_KIND] in kinds else "weights")
        kind = controls[0].radio("Map", kinds, format_func=state.MAP_KINDS.get, key=state.W_MAP_KIND)
        st.session_state[state.MAP_KIND] = kind
    index = 0
    if len(names) > 1:
        state.seed_widget(state.W_MAP_CLASS, min(st.session_state[state.MAP_CLASS], len(names) - 1))
        index = controls[1].selectbox("Class", list(range(len(names))), format_func=lambda i: names[i], key=state.W_MAP_CLASS)
        st.session_state[state.MAP_CLASS] = index
    state.seed_widget(state.W_DISPLAY_MODE, st.session_state[state.DISPLAY_MODE])
    display_mode = controls[2].selectbox(
        "View", state.DISPLAY_MODES, key=state.W_DISPLAY_MODE,
        help="'yx' is the tutorial's view: a coronal (y) and a sagittal (x) slice.",
    )
    st.session_state[state.DISPLAY_MODE] = display_mode

    img = map_views.map_image(result, kind, index)
    abs_max = map_views.map_abs_max(img)
    threshold = 0.0
    if abs_max > 0:
        stored = min(float(st.session_state[state.THRESHOLD]), abs_max)
        state.seed_widget(state.W_THRESHOLD, stored)
        if st.session_state[state.W_THRESHOLD] > abs_max:
            st.session_state[state.W_THRESHOLD] = stored
        threshold = controls[3].slider(
            "Threshold (hide smaller absolute values)", min_value=0.0, max_value=abs_max,
            step=abs_max / 100, key=state.W_THRESHOLD, format="%.4g",
        )
        st.session_state[state.THRESHOLD] = threshold

    shape = img.shape[:3]
    cut = st.session_state[state.CUT_COORDS] or map_views.default_cut(img)
    cut = map_views.clamp_cut(cut, shape)
    for widget_key, value in zip((state.W_CUT_I, state.W_CUT_J, state.W_CUT_K), cut):
        state.seed_widget(widget_key, int(value))
    cut_columns = st.columns(3)
    cut = tuple(
        int(column.number_input(f"Cut {axis} (voxel index, 0-{size - 1})", min_value=0, max_value=int(size) - 1,
                                step=1, key=widget_key))
        for column, axis, size, widget_key in zip(
            cut_columns, ("x (i)", "y (j)", "z (k)"), shape, (state.W_CUT_I, state.W_CUT_J, state.W_CUT_K)
        )
    )
    st.session_state[state.CUT_COORDS] = cut
    zoom_region = map_views.zoom_region(result, dataset)
    zoomed = st.toggle("Zoom to the mask", value=True, key=W_ZOOM_TO_MASK,
                       help="Show the mask's bounding box; off: the whole field of view.")
    try:
        background = map_views.viewer_background(dataset, zoom_region if dataset is not None else None)
        # The sign in words: which class a positive value points to.
        st.markdown(f"**{feedback.plain_markdown(map_views.sign_sentence(result, kind, index))}**")
        st.caption(f"Background: {feedback.plain_markdown(background.source)}. "
                   "Click a voxel on a slice to move the cut there.")
        figure = plotting.plot_stat_slices(
            img, background.img, cut_coords=cut, display_mode=display_mode, threshold=threshold,
            title=f"{state.MAP_KINDS[kind]}: {names[index] if index < len(names) else ''}",
            colorbar_title={"pattern": "pattern", "stability": "stability"}.get(kind, "weight"),
            zoom_img=zoom_region if zoomed else None, outline_img=background.outline_img,
        )
        # At its own size: equal millimetres in every view, the colour bar beside the image.
        st.plotly_chart(
            figure, key=state.W_WEIGHT_CHART, on_select=move_cut_to_click, selection_mode="points", width="content",
        )
        if figure.layout.meta["display_mode"] != display_mode.replace("ortho", "xyz"):
            st.caption("The image is one voxel thick along an axis: views across it would be a line, "
                       "so only the views with area are drawn.")
    except Exception as err:
        feedback.show_error(err, "drawing the weight map")


def draw_downloads(result, dataset) -> None:
    st.subheader("Downloads")
    # on_click="ignore": a download needs no rerun (each file is built when asked for), and a rerun
    # racing the file's request once left the other download buttons disabled in a browser test.
    kinds = map_views.available_map_kinds(result)
    # One wrapping row of buttons sized to their labels (columns cut the longer labels off).
    row = st.container(horizontal=True)
    weights_column = scores_column = predictions_column = config_column = row
    weights_column.download_button(
        "Weight map (.nii.gz)", data=lambda: export.image_to_nifti_bytes(result.weight_img),
        file_name="decoding_weights.nii.gz", mime="application/gzip", key=state.W_DOWNLOAD_WEIGHTS,
        on_click="ignore",
    )
    for kind in kinds[1:]:
        weights_column.download_button(
            f"{state.MAP_KINDS[kind]} (.nii.gz)",
            data=lambda kind=kind: export.image_to_nifti_bytes(map_views.result_map(result, kind)),
            file_name=f"decoding_{kind}.nii.gz", mime="application/gzip", key=f"{state.W_DOWNLOAD_WEIGHTS}_{kind}",
            on_click="ignore",
        )
    scores_column.download_button(
        "Per-fold scores (CSV)", data=lambda: export.fold_scores_csv(result),
        file_name="fold_scores.csv", mime="text/csv", key=state.W_DOWNLOAD_SCORES, on_click="ignore",
    )
    predictions_column.download_button(
        "Predictions (CSV)", data=lambda: export.predictions_csv(result),
        file_name="predictions.csv", mime="text/csv", key=state.W_DOWNLOAD_PREDICTIONS, on_click="ignore",
    )
    config_column.download_button(
        "Configuration (JSON)", data=lambda: export.config_json(result.config, dataset),
        file_name="decoding_config.json", mime="application/json", key=state.W_DOWNLOAD_CONFIG,
        on_click="ignore",
    )
    history.draw_result_export(result, dataset)


def draw_significance(result, dataset) -> None:
    st.subheader("Is it significant?")
    if dataset is None or dataset.digest != st.session_state[state.RESULT_DATASET_DIGEST]:
        st.info("Load the data set these results come from again to test their significance.")
        return
    config = result.config
    st.markdown(
        "**Dummy classifiers** predict without looking at the brain data, under the same evaluation scheme: "
        "a decoder must beat them to mean anything."
    )
    try:
        table_column, figure_column = st.columns([1, 2])
        table_column.dataframe(summaries.dummy_score_table(analysis.dummy_fold_scores(dataset, config)), hide_index=True)
        figure_column.plotly_chart(analysis.score_comparison_figure(result, dataset), width="stretch")
    except Exception as err:
        feedback.show_error(err, "scoring the dummy classifiers")
    st.markdown(
        "**Permutation test**: shuffle the labels (within runs), rerun the whole cross-validation, and see how "
        "often a score as high as the real one comes out by chance."
    )
    state.seed_widget(state.W_N_PERMUTATIONS, int(st.session_state[state.PERMUTATION_COUNT]))
    number_column, run_column, stop_column = st.columns([2, 1, 1])
    number_column.number_input("Number of permutations", min_value=10, max_value=10_000, step=10,
                               key=state.W_N_PERMUTATIONS)
    run_column.button("Run the permutation test", key=state.W_PERMUTATION_RUN, on_click=start_permutations)
    stop_column.button("Stop", key=state.W_PERMUTATION_STOP, on_click=stop_permutations)

    run = st.session_state[state.PERMUTATION_RESULT]
    if run is not None and run.key != analysis.result_key(dataset, config):
        run = st.session_state[state.PERMUTATION_RESULT] = None
    if run is not None and run.running:
        done_before = run.n_done / run.n_target
        bar = st.progress(done_before, text="Permuting the labels")
        try:
            # Chunks are stored as they finish, so Stop (which interrupts this run) keeps them.
            runs.continue_permutations(
                run, dataset, config, progress=feedback.progress_bar_callback(bar, done_before),
                should_stop=lambda: st.session_state[state.PERMUTATION_STOP],
            )
        except Exception as err:
            run.fail()
            feedback.show_error(err, "running the permutation test")
        bar.empty()
    if run is not None and run.n_done > 0:
        row = st.container(horizontal=True, horizontal_alignment="distribute", gap="medium")
        row.metric("Observed score", f"{run.observed:.3f}", width="content")
        row.metric("p-value", f"{run.p_value:.4f}",
                   help="(1 + permutations scoring at least as high) / (1 + permutations)", width="content")
        row.metric("Permutations done", f"{run.n_done} / {run.n_target}", width="content")
        if run.stopped_early:
            st.info("Stopped early: the p-value uses the permutations done so far.")
        try:
            st.plotly_chart(runs.null_distribution_figure(run, chance=result.chance_level), width="stretch")
        except Exception as err:
            feedback.show_error(err, "drawing the null distribution")


st.title("Results")
result = st.session_state[state.RESULT]
if result is None:
    st.info("No decoding has been run yet. Choose the conditions and the evaluation scheme, then press Run.")
    st.page_link("pages/configure.py", label="Go to Configure and run a decoding", icon=":material/tune:")
    st.stop()

dataset = st.session_state[state.DATASET]
config = result.config
st.markdown(
    f"**{feedback.plain_markdown(' vs '.join(config.conditions))}** in the mask "
    f"**{feedback.plain_markdown(config.mask_name)}** of "
    f"*{feedback.plain_markdown(st.session_state[state.RESULT_DATASET_TITLE])}*; "
    f"{ESTIMATORS[config.estimator].title}, C = {config.C:g}; "
    f"{CV_SCHEMES[config.cv].title}."
)
same_dataset = dataset is not None and dataset.digest == st.session_state[state.RESULT_DATASET_DIGEST]
if not same_dataset:
    st.info("These results come from a data set other than the one loaded now.")
draw_scores(result)
draw_predictions(result)
draw_weight_map(result, dataset if same_dataset else None)
draw_downloads(result, dataset if same_dataset else None)
links.share_configuration(config, links.result_dataset_spec())
draw_significance(result, dataset)
draw_searchlight(result, dataset)
st.page_link("pages/configure.py", label="Change the configuration", icon=":material/tune:")
