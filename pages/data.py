"""Data: choose a data set and explore it (shape, masks over the anatomy, labels, time courses)."""

import streamlit as st

import app
from decoding_core import plotting, summaries
from decoding_core.datasets import HAXBY, DatasetSpec
from decoding_core.errors import DecodingInputError
from decoding_core.io.labels import label_variant_mapping, label_variants
from ui import analysis, datasets, feedback, state, upload_boxes, uploads
from ui import bids as bids_source
from ui.session import session_token

app.ensure_app()  # Streamlit may start this page without app.py: see app.ensure_app


def use_builtin_dataset() -> None:
    """Button callback: go back to the built-in simulated data set."""
    try:
        dataset = datasets.load_builtin_dataset("simulated")
    except Exception as err:  # kept for display after the rerun
        st.session_state[state.LOAD_ERROR] = f"The built-in data set could not be prepared: {err}"
        return
    datasets.adopt_dataset(dataset, "simulated")
    st.session_state[state.SOURCE_CHOICE] = "simulated"
    st.session_state[state.W_SOURCE] = "simulated"


def remember_source() -> None:
    """Radio callback: keep the chosen source and drop the message of an older attempt."""
    st.session_state[state.SOURCE_CHOICE] = st.session_state[state.W_SOURCE]
    st.session_state[state.LOAD_ERROR] = None


def clear_load_error() -> None:
    """Uploader callback: a new file makes the message about the previous attempt stale."""
    st.session_state[state.LOAD_ERROR] = None


def load_haxby(subject: int) -> None:
    """Download (or reuse) Haxby subject ``subject`` with a progress bar."""
    spec = str(DatasetSpec(HAXBY, subject=subject))
    with st.status(f"Getting Haxby 2001 subject {subject}...", expanded=True) as status:
        bar = st.progress(0.0, text="Contacting the server")
        try:
            dataset = datasets.load_builtin_dataset(
                spec, progress=feedback.progress_bar_callback(bar)
            )
        except Exception as err:
            status.update(label=f"Haxby subject {subject} could not be loaded", state="error")
            st.session_state[state.HAXBY_FAILED] = True
            st.session_state[state.LOAD_ERROR] = str(err) if isinstance(err, DecodingInputError) else (
                f"Haxby subject {subject} could not be loaded: {type(err).__name__}: {err}"
            )
            return
        status.update(label=f"Haxby subject {subject} is loaded", state="complete", expanded=False)
    datasets.adopt_dataset(dataset, spec)


def load_uploads(func_upload, stored: dict, label_column, run_column, tr) -> None:
    """Load the stored 4D image (``state.PENDING_FUNC_UPLOAD``) with the other stored files.

    ``stored`` maps "labels", "mask", "anatomy" to their stored files (``state.PENDING_UPLOADS``).
    """
    # Display only: names are never used as paths (the app names its files itself).
    names = {"4D image": func_upload.name, **{role: entry.name for role, entry in stored.items()}}
    token = st.session_state[state.SESSION_TOKEN]
    with st.status("Checking and loading your files...", expanded=False) as status:
        try:
            dataset = uploads.load_uploaded_dataset(
                token,
                func_upload.path,
                func_upload.sha256,
                uploads.read_pending_upload(token, stored["labels"]),
                label_column=label_column,
                run_column=run_column,
                mask_bytes=uploads.read_pending_upload(token, stored.get("mask")),
                anat_bytes=uploads.read_pending_upload(token, stored.get("anatomy")),
                tr=tr,
                title="Your uploaded data set",
            )
        except Exception as err:
            status.update(label="Your files could not be loaded", state="error")
            message = str(err) if isinstance(err, DecodingInputError) else (
                f"Your files could not be loaded: {type(err).__name__}: {err}"
            )
            st.session_state[state.LOAD_ERROR] = uploads.with_upload_names(message, names)
            return
        status.update(label="Your files are loaded", state="complete")
    datasets.adopt_dataset(dataset, "upload", names)


#: The upload boxes of each upload source (their errors show, and hold Load back, only there).
SOURCE_UPLOAD_ROLES = {"upload": ("4D image", "labels", "mask", "anatomy"),
                       "runs": ("run files", "run labels", "mask", "anatomy")}


def upload_errors(source: str) -> dict:
    """The errors of the upload boxes of ``source`` (role -> message)."""
    return {role: message for role, message in st.session_state[state.UPLOAD_ERRORS].items()
            if role in SOURCE_UPLOAD_ROLES.get(source, ())}


def stored_table_columns(entry, picker_key: str) -> list[str] | None:
    """The columns of a stored labels table (None, with the error shown, when it cannot be read).

    A new table may lack the column picked for the previous one: the picker ``picker_key``
    then forgets it.
    """
    try:
        columns = uploads.read_label_columns(uploads.read_pending_upload(session_token(), entry))
    except Exception as err:
        feedback.show_error(err, "reading the labels table")
        return None
    if st.session_state.get(picker_key) not in columns:
        st.session_state.pop(picker_key, None)
    return columns


def draw_optional_image_boxes(stored: dict) -> None:
    """The mask and anatomy boxes (shared by both upload forms), each with its stored file."""
    for role, title, widget_label in (("mask", "Mask", "Mask (optional, 3D)"),
                                      ("anatomy", "Anatomical image", "Anatomical image (optional, 3D)")):
        st.file_uploader(widget_label, type=["nii", "gz"], key=state.W_UPLOAD_BOXES[role],
                         on_change=upload_boxes.take_box_upload, args=(role,), max_upload_size=uploads.MAX_3D_UPLOAD_MB)
        if stored.get(role):
            upload_boxes.draw_stored_file(role, title, stored[role], upload_boxes.clear_box_upload)
        elif role in st.session_state[state.UPLOAD_ERRORS]:
            upload_boxes.draw_refused_file(role, title, upload_boxes.clear_box_upload)


def draw_upload_form() -> None:
    """File uploaders (each file stored and checked as it arrives), the column pickers and the Load button."""
    st.caption(
        "A 4D NIfTI image (.nii or .nii.gz), a table with one row per volume (CSV, TSV or space "
        "separated, with a header), and optionally a 3D mask and an anatomical image on the same grid. "
        "Files are kept for this browser session: leaving this page or reloading it keeps them."
    )
    stored = st.session_state[state.PENDING_UPLOADS]
    left, right = st.columns(2)
    with left:
        # The callbacks move each file to disk at once and check it (see upload_boxes.take_func_upload): the
        # widget then returns None and the page works from the stored entry.
        st.file_uploader("4D functional image", type=["nii", "gz"], key=state.W_UPLOAD_FUNC,
                         on_change=upload_boxes.take_func_upload)
        func_upload = st.session_state[state.PENDING_FUNC_UPLOAD]
        if func_upload:
            upload_boxes.draw_stored_file("4D image", "4D image", func_upload, upload_boxes.clear_func_upload)
        elif "4D image" in st.session_state[state.UPLOAD_ERRORS]:
            upload_boxes.draw_refused_file("4D image", "4D image", upload_boxes.clear_func_upload)
        st.file_uploader(
            "Labels table (one row per volume)", type=["txt", "csv", "tsv", "tab", "dat"],
            key=state.W_UPLOAD_LABELS, on_change=upload_boxes.take_box_upload, args=("labels",),
            # Per-widget caps (MB): no need to hold 300 MB for a table or a mask.
            max_upload_size=uploads.MAX_LABELS_UPLOAD_MB,
        )
        if stored.get("labels"):
            upload_boxes.draw_stored_file("labels", "Labels table", stored["labels"], upload_boxes.clear_box_upload)
        elif "labels" in st.session_state[state.UPLOAD_ERRORS]:
            upload_boxes.draw_refused_file("labels", "Labels table", upload_boxes.clear_box_upload)
    with right:
        draw_optional_image_boxes(stored)

    label_column = run_column = None
    if stored.get("labels"):
        columns = stored_table_columns(stored["labels"], state.W_LABEL_COLUMN)
        if columns:
            run_options = ["(no runs)"] + columns
            if st.session_state.get(state.W_RUN_COLUMN) not in run_options:
                st.session_state.pop(state.W_RUN_COLUMN, None)
            pick_label, pick_run = st.columns(2)
            label_column = pick_label.selectbox(
                "Column with the conditions", columns,
                index=uploads.default_column(columns, "labels"), key=state.W_LABEL_COLUMN,
            )
            run_index = uploads.default_column(columns, "chunks") + 1 if "chunks" in [c.lower() for c in columns] else 0
            run_choice = pick_run.selectbox(
                "Column with the runs", run_options, index=run_index, key=state.W_RUN_COLUMN,
                help="Runs (sessions, chunks) are needed for leave-one-run-out.",
            )
            run_column = None if run_choice == "(no runs)" else run_choice
    tr = st.number_input(
        "TR in seconds (0 = read it from the image header)", min_value=0.0, max_value=60.0,
        value=0.0, step=0.1, key=state.W_UPLOAD_TR,
    )
    # A refused file is shown with its error until it is replaced or removed: Load waits for that.
    ready = bool(func_upload) and label_column is not None and not upload_errors("upload")
    if st.button("Load these files", key=state.W_UPLOAD_LOAD, type="primary", disabled=not ready):
        load_uploads(func_upload, stored, label_column, run_column, tr or None)


# -- one 4D file per run (uploaded; logic in ui/upload_boxes.py and ui/uploads.py) -----------------


def load_run_files(label_column: str, tr: float | None) -> None:
    """Load the stored run files and labels as the session's data set; on failure keep the one in use."""
    stored = st.session_state[state.PENDING_UPLOADS]
    # Only the mask and anatomy boxes are shared with the one-file form (not its labels table).
    names = {role: entry.name for role, entry in stored.items() if role in ("mask", "anatomy")}
    token = session_token()
    with st.status("Checking and joining your runs...", expanded=True) as status:
        bar = st.progress(0.0, text="Joining the runs")
        try:
            dataset = uploads.load_run_file_uploads(
                token, st.session_state[state.PENDING_RUN_FILES], st.session_state[state.PENDING_RUN_LABELS],
                label_column=label_column, mask_bytes=uploads.read_pending_upload(token, stored.get("mask")),
                anat_bytes=uploads.read_pending_upload(token, stored.get("anatomy")), tr=tr,
                progress=feedback.progress_bar_callback(bar))
        except Exception as err:
            status.update(label="Your runs could not be loaded", state="error", expanded=False)
            message = str(err) if isinstance(err, DecodingInputError) else (
                f"Your runs could not be loaded: {type(err).__name__}: {err}")
            st.session_state[state.LOAD_ERROR] = uploads.with_upload_names(message, names)
            return
        status.update(label="Your runs are loaded", state="complete", expanded=False)
    runs, tables = st.session_state[state.PENDING_RUN_FILES], st.session_state[state.PENDING_RUN_LABELS]
    datasets.adopt_dataset(dataset, "upload", {
        **names, "4D image": f"{len(runs)} run files", "run files": [entry.name for entry in runs],
        "run labels": [entry.name for entry in tables]})


def draw_run_files_form() -> None:
    """Several 4D files, one per run, their labels table(s), an optional mask and anatomy, and Load."""
    st.caption(
        "One 4D NIfTI file per run (all on one grid), and their labels: one table for all volumes (rows in "
        "run order) or one table per run. Runs come from the files, in the order of their names "
        "(numbers compared as numbers: run-2 before run-10). Files are kept for this browser session."
    )
    left, right = st.columns(2)
    with left:
        st.file_uploader("4D images, one per run", type=["nii", "gz"], accept_multiple_files=True,
                         key=state.W_UPLOAD_RUN_FILES, on_change=upload_boxes.take_run_uploads, args=("run files",),
                         max_upload_size=uploads.MAX_RUN_UPLOAD_MB,
                         help=f"At most {uploads.MAX_RUN_FILES} files. Select several at once, or add more later; "
                              "'Remove all' starts again.")
        upload_boxes.draw_run_uploads("run files", "Run files")
        st.file_uploader("Labels: one table for all volumes, or one per run", accept_multiple_files=True,
                         type=["txt", "csv", "tsv", "tab", "dat"], key=state.W_UPLOAD_RUN_LABELS,
                         on_change=upload_boxes.take_run_uploads, args=("run labels",),
                         max_upload_size=uploads.MAX_LABELS_UPLOAD_MB)
        upload_boxes.draw_run_uploads("run labels", "Labels tables")
    with right:
        draw_optional_image_boxes(st.session_state[state.PENDING_UPLOADS])
    runs, tables = st.session_state[state.PENDING_RUN_FILES], st.session_state[state.PENDING_RUN_LABELS]
    label_column = None
    if tables:
        columns = stored_table_columns(tables[0], state.W_RUNS_LABEL_COLUMN)
        if columns:
            label_column = st.selectbox("Column with the conditions", columns, key=state.W_RUNS_LABEL_COLUMN,
                                        index=uploads.default_column(columns, "labels"))
    tr = st.number_input("TR in seconds (0 = read it from the images' headers)", min_value=0.0, max_value=60.0,
                         value=0.0, step=0.1, key=state.W_RUNS_TR)
    ready = bool(runs) and label_column is not None and not upload_errors("runs")
    if st.button(f"Load these {len(runs)} runs" if runs else "Load the runs", key=state.W_RUNS_LOAD,
                 type="primary", disabled=not ready):
        load_run_files(label_column, tr or None)


# -- BIDS data sets (a folder on the server, or an uploaded .zip; logic in ui/bids.py) ------------


def take_bids_zip() -> None:
    """Zip-uploader callback: extract the zip into the session's folder and release Streamlit's copy.

    A hostile or unusable zip is refused by the core's extractor; its error is kept for
    display after the rerun and nothing the user had is touched.
    """
    st.session_state[state.BIDS_ZIP_ERROR] = None
    st.session_state[state.LOAD_ERROR] = None
    uploaded = st.session_state.get(state.W_BIDS_ZIP)
    if uploaded is None or not hasattr(uploaded, "getvalue"):
        return  # removed, or a file already taken (Streamlit reports it as deleted)
    try:
        st.session_state[state.BIDS_ZIP] = bids_source.store_bids_zip(session_token(), uploaded)
    except Exception as err:  # kept for display after the rerun
        st.session_state[state.BIDS_ZIP_ERROR] = err
    finally:
        uploads.release_uploaded_files(uploaded)
        del uploaded
        del st.session_state[state.W_BIDS_ZIP]


def clear_bids_zip() -> None:
    """Button callback: forget the extracted zip (its files stay while a data set loaded from them is in use)."""
    entry = st.session_state[state.BIDS_ZIP]
    if not bids_source.zip_in_use(entry, st.session_state.get(state.DATASET)):
        bids_source.discard_bids_zip(session_token(), entry)
    st.session_state[state.BIDS_ZIP] = None
    st.session_state[state.BIDS_ZIP_ERROR] = None


def remember_bids_folder() -> None:
    """Text-input callback: keep the typed folder across pages."""
    st.session_state[state.BIDS_FOLDER] = st.session_state[state.W_BIDS_FOLDER]


def draw_bids_origin():
    """Folder on the server (local runs only) or uploaded zip; returns (root, zip entry, mask) or None."""
    origins = {"zip": "A .zip of one subject's func/ files"}
    if bids_source.server_folders_allowed():
        origins = {"folder": "A folder on this computer", **origins}
    origin = st.radio("Where the BIDS files are", list(origins), format_func=origins.get, key=state.W_BIDS_ORIGIN,
                      horizontal=True)
    if origin == "folder":
        state.seed_widget(state.W_BIDS_FOLDER, st.session_state[state.BIDS_FOLDER])
        text = st.text_input("BIDS folder on this computer (the folder holding sub-*/)", key=state.W_BIDS_FOLDER,
                             on_change=remember_bids_folder, placeholder="/data/my-study")
        mask_text = st.text_input("Mask on this computer (optional, 3D NIfTI on the runs' grid)",
                                  key=state.W_BIDS_MASK_PATH,
                                  help="Without one, a brain mask is computed from the mean image.")
        if not text.strip():
            return None
        try:
            return bids_source.server_folder(text), None, bids_source.server_mask(mask_text)
        except Exception as err:
            feedback.show_error(err, "opening the folder")
            return None
    st.file_uploader("Zip of one subject's func/ files (BIDS names)", type=["zip"], key=state.W_BIDS_ZIP,
                     on_change=take_bids_zip,
                     help="sub-<label>_task-<task>_run-<n>_bold.nii.gz with their _events.tsv and _bold.json; "
                          f"checked before it is unpacked (at most {bids_source.zip_limits_text()}).")
    if st.session_state[state.BIDS_ZIP_ERROR] is not None:
        feedback.show_error(st.session_state[state.BIDS_ZIP_ERROR], "unpacking the zip")
    entry = st.session_state[state.BIDS_ZIP]
    if entry is None:
        return None
    name_column, remove_column = st.columns([3, 1], vertical_alignment="center")
    name_column.text(f"Zip ready: {entry.name} ({entry.n_files} files, {entry.size / 1e6:,.1f} MB)")
    remove_column.button("Remove", key=state.W_BIDS_ZIP_CLEAR, on_click=clear_bids_zip,
                         help="Forget this zip (a data set already loaded from it stays in use).")
    mask_file = st.file_uploader("Mask (optional, 3D NIfTI on the runs' grid)", type=["nii", "gz"],
                                 key=state.W_BIDS_MASK, max_upload_size=uploads.MAX_3D_UPLOAD_MB)
    return entry.root, entry, (mask_file.getvalue() if mask_file is not None else None)


def draw_bids_selection(root, entry):
    """Subject, task, session, space from what the folder holds; returns the runs found, or None."""
    try:
        choices = bids_source.choices(root)
    except Exception as err:
        feedback.show_error(bids_source.with_zip_name(err, entry), "reading the BIDS folder")
        return None
    subject_column, task_column, session_column, space_column = st.columns(4)
    subject = subject_column.selectbox("Subject", choices.subjects, key=state.W_BIDS_SUBJECT,
                                       format_func=lambda s: f"sub-{s}")
    task = task_column.selectbox("Task", choices.tasks, key=state.W_BIDS_TASK)
    # Text choices stand for "no filter" (a None option would show as an empty box); BIDS labels are
    # alphanumeric, so they never collide with these.
    session = session_column.selectbox("Session", (bids_source.ALL_SESSIONS, *choices.sessions),
                                       key=state.W_BIDS_SESSION, disabled=not choices.sessions)
    spaces = ((bids_source.RAW_SPACE,) if choices.has_raw else ()) + choices.spaces
    space = space_column.selectbox("Space", spaces, key=state.W_BIDS_SPACE,
                                   help="fMRIPrep's output spaces; raw data have none.")
    session = None if session == bids_source.ALL_SESSIONS else session
    space = None if space == bids_source.RAW_SPACE else space
    try:
        return bids_source.find_runs(root, subject=subject, task=task, session=session, space=space)
    except Exception as err:
        feedback.show_error(bids_source.with_zip_name(err, entry), "listing the runs")
        return None


def draw_bids_design():
    """Design, lag and edge volumes; returns (design, lag, edge)."""
    designs = list(bids_source.DESIGN_HELP)
    design = st.radio("Samples from the events", designs, key=state.W_BIDS_DESIGN, horizontal=True,
                      format_func={"block": "Block design", "lsa": "Event-related: LSA",
                                   "lss": "Event-related: LSS"}.get)
    st.caption(bids_source.DESIGN_HELP[design])
    if design != "block":
        return design, 0.0, 0
    lag_column, edge_column = st.columns(2)
    lag = lag_column.number_input(
        "Haemodynamic lag (seconds)", min_value=0.0, max_value=20.0, value=0.0, step=0.5, key=state.W_BIDS_LAG,
        help="Added to every onset before labelling the volumes: the response peaks 4-6 s after the stimulus. "
             "0 labels each volume by the stimulus shown when it was acquired.")
    edge = edge_column.number_input(
        "Volumes to drop at each block's start and end", min_value=0, max_value=10, value=0, step=1,
        key=state.W_BIDS_EDGE, help="They hold the rise and fall of the response; they are labelled 'edge' and "
                                    "left out of decoding (they stay in the series for cleaning).")
    return design, float(lag), int(edge)


def load_bids_source(root, entry, mask, runs, design, lag, edge) -> None:
    """Load the runs as the session's data set; on failure show why and keep the data set in use."""
    with st.status("Loading the BIDS runs...", expanded=True) as status:
        bar = st.progress(0.0, text="Reading the runs")
        try:
            dataset = bids_source.load_bids_dataset(
                session_token(), root, subject=runs.subject, task=runs.task, session=runs.session,
                space=runs.space, hrf_lag=lag, drop_edge_volumes=edge, design=design, mask=mask,
                zip_entry=entry, progress=feedback.progress_bar_callback(bar))
        except Exception as err:
            status.update(label="The BIDS runs could not be loaded", state="error")
            feedback.show_error(err, "loading the BIDS runs")
            current = st.session_state.get(state.DATASET)
            if current is not None:
                st.info(f"The data set loaded before is still in use: {feedback.plain_markdown(current.title)}.")
            return
        status.update(label="The BIDS runs are loaded", state="complete", expanded=False)
    datasets.adopt_dataset(dataset, "bids", {"BIDS zip": entry.name} if entry is not None else None)


def draw_bids_form() -> None:
    """A BIDS data set: where it is, the selection, its runs, the design, the events timeline, Load."""
    st.caption(
        "A BIDS data set, raw or fMRIPrep derivatives: one *_bold.nii.gz per run, its *_events.tsv (onset, "
        "duration, trial_type in seconds) and RepetitionTime in a *_bold.json. Runs come from the files."
    )
    origin = draw_bids_origin()
    if origin is None:
        return
    root, entry, mask = origin
    runs = draw_bids_selection(root, entry)
    if runs is None:
        return
    # Tall enough for a dozen runs without scrolling (35 px a row, plus the header).
    st.dataframe(bids_source.runs_table(runs), hide_index=True, height=min(38 + 35 * runs.n_runs, 460))
    design, lag, edge = draw_bids_design()
    try:
        preview = bids_source.preview_labels(runs, lag, edge, design)
        st.plotly_chart(bids_source.timeline_figure(preview, lag), key=state.W_BIDS_TIMELINE, width="stretch")
    except Exception as err:
        feedback.show_error(bids_source.with_zip_name(err, entry), "reading the events")
        return
    if st.button(f"Load these {runs.n_runs} runs", key=state.W_BIDS_LOAD, type="primary"):
        load_bids_source(root, entry, mask, runs, design, lag, edge)


def draw_source_picker(dataset) -> None:
    """Where the data come from: built-in, Haxby download or upload."""
    state.seed_widget(state.W_SOURCE, st.session_state[state.SOURCE_CHOICE])
    source = st.radio(
        "Data set", list(state.SOURCES), format_func=state.SOURCES.get, key=state.W_SOURCE,
        horizontal=True, on_change=remember_source,
    )
    spec = st.session_state[state.DATASET_SPEC]
    if source == "simulated":
        st.caption(
            "Simulated fMRI shaped like Haxby 2001 subject 2 (12 runs, 8 categories, a ventral temporal "
            "mask): it needs no download and decodes like the real data."
        )
        if spec != "simulated":
            st.button("Use the built-in simulated data set", key=state.W_USE_BUILTIN, on_click=use_builtin_dataset)
    elif source == "haxby":
        st.caption(
            "Haxby et al. (2001), Science 293:2425-2430, via nilearn's fetch_haxby (about 300 MB per "
            "subject, downloaded once and kept)."
        )
        state.seed_widget(state.W_HAXBY_SUBJECT, st.session_state[state.HAXBY_SUBJECT])
        subject = st.selectbox("Subject", state.HAXBY_SUBJECTS, key=state.W_HAXBY_SUBJECT)
        st.session_state[state.HAXBY_SUBJECT] = subject
        if st.button(f"Download and load subject {subject}", key=state.W_HAXBY_LOAD, type="primary"):
            load_haxby(subject)
    elif source == "bids":
        draw_bids_form()
    elif source == "runs":
        draw_run_files_form()
    else:
        draw_upload_form()

    shown_errors = list(upload_errors(source).values())
    if st.session_state[state.LOAD_ERROR]:
        shown_errors.append(st.session_state[state.LOAD_ERROR])
    for message in shown_errors:
        st.error(feedback.plain_markdown(message), icon=":material/error:")
    if shown_errors:
        if dataset is not None:
            st.info(f"The data set loaded before is still in use: {feedback.plain_markdown(dataset.title)}.")
    if st.session_state[state.HAXBY_FAILED] and source == "haxby":
        st.button("Use the built-in data set instead", key=state.W_USE_BUILTIN, on_click=use_builtin_dataset)


def prepare_dataset() -> None:
    """Checkbox callback: the session's data set made again from the loaded one, as the boxes now say."""
    prepared_from = st.session_state[state.PREPARED_FROM]
    loaded = analysis.preparation(st.session_state[state.DATASET], prepared_from).loaded
    merge = bool(st.session_state.get(state.W_MERGE_VARIANTS))
    drop = bool(st.session_state.get(state.W_DROP_NONFINITE))
    try:
        prepared = analysis.prepared_dataset(loaded, merge_variants=merge, drop_nonfinite=drop)
    except Exception as err:  # kept for display after the rerun
        st.session_state[state.LOAD_ERROR] = str(err) if isinstance(err, DecodingInputError) else (
            f"The data set could not be prepared: {type(err).__name__}: {err}")
        return
    st.session_state[state.PREPARED_FROM] = (
        {} if prepared is loaded else {prepared.digest: analysis.Preparation(loaded, merge=merge, drop=drop)})
    st.session_state[state.DATASET] = prepared
    # The chosen conditions follow the merge ('Face' becomes 'face'); unknown ones are dropped.
    values = dict(st.session_state[state.CONFIG_VALUES])
    if merge:
        mapping = label_variant_mapping(loaded.conditions)
        values["conditions"] = list(dict.fromkeys(mapping.get(c, c) for c in values.get("conditions", [])))
    st.session_state[state.CONFIG_VALUES] = summaries.sanitize_config_values(values, prepared)
    st.session_state.pop(state.W_CONDITIONS, None)  # seeded again from the values on Configure


def draw_data_checks(dataset) -> None:
    """Warn about condition names spelled two ways and NaN/inf voxels; offer to merge or drop them."""
    prepared = analysis.preparation(dataset, st.session_state[state.PREPARED_FROM])
    loaded = prepared.loaded
    groups = label_variants(loaded.conditions)
    if groups:
        # Escaped: condition names are the user's text.
        st.warning(feedback.plain_markdown(summaries.label_variants_message(groups)), icon=":material/warning:")
        st.session_state[state.W_MERGE_VARIANTS] = prepared.merge
        st.checkbox("Merge condition names that differ only in case or spaces", key=state.W_MERGE_VARIANTS,
                    on_change=prepare_dataset,
                    help="Each group of spellings becomes its most frequent spelling (without surrounding "
                         "spaces), for this data set only; the results and exports name that spelling.")
    try:
        with st.spinner("Checking the image for NaN or infinite values..."):
            scan = analysis.nonfinite_scan(loaded)
    except Exception as err:
        feedback.show_error(err, "checking the image for NaN or infinite values")
        return
    if scan.by_mask:
        st.warning(feedback.plain_markdown(summaries.nonfinite_message(scan)), icon=":material/warning:")
        st.session_state[state.W_DROP_NONFINITE] = prepared.drop
        st.checkbox("Drop the voxels with NaN or infinite values", key=state.W_DROP_NONFINITE,
                    on_change=prepare_dataset,
                    help="They are left out of every mask of this data set: the decoding uses the other "
                         "voxels, and the maps hold 0 in the dropped ones.")


def draw_overview(dataset) -> None:
    """Metrics, masks over the anatomy, labels, counts, timeline and mean time courses."""
    st.subheader(feedback.plain_markdown(dataset.title))
    if st.session_state[state.DATASET_SPEC] == "upload":
        for role, name in st.session_state[state.UPLOAD_DISPLAY_NAMES].items():
            st.text(f"{role}: {name if isinstance(name, str) else ', '.join(name)}")
    # Escaped: an upload's description quotes its column names, which are the user's text.
    if dataset.description:
        st.caption(feedback.plain_markdown(dataset.description))
    if dataset.source:
        st.caption(f"Source: {feedback.plain_markdown(dataset.source)}")
    summary = summaries.dataset_summary(dataset)
    # A wrapping row: in a narrow window a metric moves to the next line instead of being cut off.
    with st.container(horizontal=True, horizontal_alignment="distribute", gap="medium"):
        for label, value in summary.items():
            st.metric(label, value, width="content")

    counts = summaries.mask_voxel_counts(dataset)
    names = list(dataset.masks)
    chosen = st.session_state[state.ROI_MASK_NAME]
    if chosen not in names:
        chosen = summaries.default_mask_name(dataset)
    state.seed_widget(state.W_ROI_MASK, chosen)
    # Written back on every run: the browser keeps the label it last got (a voxel count) until
    # the server sends the value again, even when a new upload changed the count (see Configure).
    st.session_state[state.W_ROI_MASK] = (st.session_state[state.W_ROI_MASK]
                                          if st.session_state[state.W_ROI_MASK] in names else chosen)
    mask_name = st.selectbox(
        "Mask", names, format_func=lambda name: summaries.mask_label(name, counts), key=state.W_ROI_MASK,
    )
    st.session_state[state.ROI_MASK_NAME] = mask_name
    try:
        roi_figure = plotting.plot_roi(
            dataset.masks[mask_name], dataset.anat_img, title=summaries.mask_label(mask_name, counts)
        )
        st.plotly_chart(roi_figure, key=state.W_ROI_CHART, width="stretch")
    except Exception as err:
        feedback.show_error(err, "drawing the mask")

    labels_tab, counts_tab, timeline_tab, timecourse_tab = st.tabs(
        ["Labels table", "Counts per condition and run", "Timeline", "Mean time course"]
    )
    with labels_tab:
        st.dataframe(summaries.labels_preview(dataset), hide_index=True, height=300)
    with counts_tab:
        try:
            st.plotly_chart(plotting.plot_condition_counts(dataset.conditions, dataset.runs), width="stretch")
        except Exception as err:
            feedback.show_error(err, "drawing the counts")
        st.dataframe(summaries.condition_run_counts(dataset))
    with timeline_tab:
        try:
            st.plotly_chart(
                plotting.plot_condition_timeline(dataset.conditions, dataset.runs, dataset.tr), width="stretch"
            )
        except Exception as err:
            feedback.show_error(err, "drawing the timeline")
    with timecourse_tab:
        st.caption(f"Mean signal of the {counts.get(mask_name, 0)} voxels of the mask '{mask_name}', by condition.")
        bar = st.progress(0.0, text="Reading the volumes")
        try:
            # Voxels with NaN or infinite values (reported above) are left out of the mean.
            masked = analysis.mean_timecourse(dataset, mask_name, progress=feedback.progress_bar_callback(bar))
            bar.empty()
            st.plotly_chart(plotting.plot_mean_timecourse(masked, tr=dataset.tr), width="stretch")
        except Exception as err:
            bar.empty()
            feedback.show_error(err, "computing the mean time course")


st.title("Data")
st.markdown(
    "Choose the fMRI data set to decode and look at it: its size, its masks over the anatomy, "
    "which condition each volume shows, and how the signal moves."
)
current = datasets.current_dataset()
with st.expander("Choose the data set", expanded=st.session_state[state.SOURCE_CHOICE] != "simulated"):
    draw_source_picker(current)
current = st.session_state[state.DATASET]
if current is not None:
    draw_data_checks(current)
    draw_overview(current)
    st.page_link("pages/configure.py", label="Next: configure the decoding", icon=":material/arrow_forward:")
