"""Every session-state key of the app, its default, and `init_state`.

Two kinds of keys live here:

* **Persistent keys** (``DATASET``, ``CONFIG_VALUES``, ``RESULT``, ...) hold what must
  survive a page change: the loaded data set, the configuration, the last run.
  No widget uses them, so Streamlit never drops them.
* **Widget keys** (``W_*``) name widgets, so tests and browser tests can find them.
  Widget state belongs to its page and is dropped when the user leaves it; pages seed
  a widget from the persistent value before drawing it (`seed_widget`) and write the
  widget's value back afterwards.

Pages use these constants and never spell a key themselves.
"""

from __future__ import annotations

import contextlib
import contextvars
import secrets

import streamlit as st

from decoding_core import map_views
from decoding_core.config import DecodingConfig

# -- persistent keys -------------------------------------------------------------
#: The loaded `decoding_core.datasets.Dataset` (replaced only after a successful load).
DATASET = "dataset"
#: How the loaded data set was obtained: "simulated", "haxby:N" or "upload".
DATASET_SPEC = "dataset_spec"
#: Display name of the uploaded files (text only, never a path).
UPLOAD_DISPLAY_NAMES = "upload_display_names"
#: The uploaded 4D image, taken out of Streamlit's memory into this session's upload folder
#: as soon as it arrives (see pages/data.py): None or a dict with "path" (the app's own file
#: name), "sha256", "name" (safe display name) and "size" (bytes).
PENDING_FUNC_UPLOAD = "pending_func_upload"
#: The labels table, mask and anatomy uploaded, stored on disk as they arrive and checked
#: (like the 4D image): {"labels" | "mask" | "anatomy": `ui.uploads.PendingImage`}. The page
#: offers them again when the user comes back to the Data page or reloads it.
PENDING_UPLOADS = "pending_uploads"
#: The runs uploaded as one 4D file each, stored and checked as they arrive (like the 4D
#: image): a list of `ui.uploads.PendingImage` in run order (`ui.uploads.run_order`).
PENDING_RUN_FILES = "pending_run_files"
#: Their labels: one stored table for all volumes, or one per run (a list, in run order).
PENDING_RUN_LABELS = "pending_run_labels"
#: Which data source the Data page shows ("simulated", "haxby", "upload", "runs", "bids").
SOURCE_CHOICE = "source_choice"
#: Haxby subject chosen on the Data page.
HAXBY_SUBJECT = "haxby_subject"
#: The last error of a data set load, kept so it shows after the rerun.
LOAD_ERROR = "load_error"
#: The error of each upload box's last file (role -> message), kept until that box changes:
#: a later upload in another box must not hide it.
UPLOAD_ERRORS = "upload_errors"
#: True when the last Haxby download failed (offers "use the built-in data set").
HAXBY_FAILED = "haxby_failed"
#: Mask shown over the anatomy on the Data page.
ROI_MASK_NAME = "roi_mask_name"
#: When the session's data set was prepared on the Data page (condition names merged, voxels
#: with NaN/inf dropped): {its digest: `ui.analysis.Preparation`}, so the choices show and
#: can be undone; {} otherwise.
PREPARED_FROM = "prepared_from"
#: The configuration as a plain dict (`DecodingConfig.to_dict` layout); it may hold
#: a choice the user has not fixed yet (one condition), so it is not a DecodingConfig.
CONFIG_VALUES = "config_values"
#: The last `DecodingResult`, and the title and digest of the data set it came from.
RESULT = "result"
RESULT_DATASET_TITLE = "result_dataset_title"
RESULT_DATASET_DIGEST = "result_dataset_digest"
#: Cut position (voxel indices i, j, k) of the weight map on the Results page.
CUT_COORDS = "cut_coords"
#: Results-page display settings that persist across pages.
DISPLAY_MODE = "display_mode"
THRESHOLD = "threshold"
MAP_KIND = "map_kind"
MAP_CLASS = "map_class"
#: Permutation test: the run in progress, finished or stopped (a `ui.runs.PermutationRun`),
#: the stop flag, and the number of permutations asked for.
PERMUTATION_RESULT = "permutation_result"
PERMUTATION_STOP = "permutation_stop"
PERMUTATION_COUNT = "permutation_count"
#: Searchlight (ui.searchlight): the run in progress, finished or stopped (a
#: `ui.searchlight.SearchlightRun`), the stop flag, the radius (mm), the map's threshold and cut.
SEARCHLIGHT_RUN = "searchlight_run"
SEARCHLIGHT_STOP = "searchlight_stop"
SEARCHLIGHT_RADIUS = "searchlight_radius"
SEARCHLIGHT_THRESHOLD = "searchlight_threshold"
SEARCHLIGHT_CUT = "searchlight_cut"
#: Random token naming this session's private upload folder (never shown, never guessable).
SESSION_TOKEN = "session_token"
#: True once this session asked whether it continues one of the same browser (a reload; see
#: `ui.session.resume_session`).
RESUME_CHECKED = "resume_checked"

# -- run history, comparison, sweeps and shareable links (ui.history, ui.links, ui.runs)
#: Shared deployments only: this session's `MemoryRunStore` (never in a shared cache).
RUN_STORE = "run_store"
#: Runs recorded by this session: (data digest, config digest) -> history id, so
#: showing a cached result again does not record it twice.
RECORDED_RUNS = "recorded_runs"
#: True once the page's query parameters have been read (once per session).
URL_CHECKED = "url_checked"
#: Messages about restoring a configuration from a link: list of (kind, text).
URL_MESSAGES = "url_messages"
#: History ids picked on the Compare page (persist across pages).
COMPARE_SELECTION = "compare_selection"
#: Message about the last "change one setting and rerun": (kind, text) or None.
RERUN_MESSAGE = "rerun_message"
#: The sweep being run or last run (a `ui.runs.SweepRun`).
SWEEP = "sweep"
#: The sweep's setting and typed values (persist across pages).
SWEEP_SETTING = "sweep_setting"
SWEEP_VALUES_TEXT = "sweep_values_text"
#: Message about the last history action (rename, delete, import): (kind, text) or None.
HISTORY_MESSAGE = "history_message"
#: The group being run or last run (a `ui.group.GroupRun`), and the chosen subjects (persist across pages).
GROUP_RUN = "group_run"
GROUP_SOURCE = "group_source"
GROUP_SEEDS = "group_seeds"
GROUP_HAXBY = "group_haxby"

# -- widget keys -----------------------------------------------------------------
W_SOURCE = "w_source"
W_HAXBY_SUBJECT = "w_haxby_subject"
W_HAXBY_LOAD = "w_haxby_load"
W_USE_BUILTIN = "w_use_builtin"
W_UPLOAD_FUNC = "w_upload_func"
W_UPLOAD_FUNC_CLEAR = "w_upload_func_clear"
W_UPLOAD_LABELS = "w_upload_labels"
W_UPLOAD_MASK = "w_upload_mask"
W_UPLOAD_ANAT = "w_upload_anat"
#: The upload boxes other than the 4D image's, by role, and their "Remove" buttons.
W_UPLOAD_BOXES = {"labels": W_UPLOAD_LABELS, "mask": W_UPLOAD_MASK, "anatomy": W_UPLOAD_ANAT}
W_UPLOAD_BOX_CLEAR = {role: f"{key}_clear" for role, key in W_UPLOAD_BOXES.items()}
W_UPLOAD_RUN_FILES = "w_upload_run_files"
W_UPLOAD_RUN_FILES_CLEAR = "w_upload_run_files_clear"
W_UPLOAD_RUN_LABELS = "w_upload_run_labels"
W_UPLOAD_RUN_LABELS_CLEAR = "w_upload_run_labels_clear"
#: "Go on without the refused files" under each run box.
W_UPLOAD_RUN_FILES_DISMISS = "w_upload_run_files_dismiss"
W_UPLOAD_RUN_LABELS_DISMISS = "w_upload_run_labels_dismiss"
W_RUNS_LABEL_COLUMN = "w_runs_label_column"
W_RUNS_TR = "w_runs_tr"
W_RUNS_LOAD = "w_runs_load"
W_LABEL_COLUMN = "w_label_column"
W_RUN_COLUMN = "w_run_column"
W_UPLOAD_TR = "w_upload_tr"
W_UPLOAD_LOAD = "w_upload_load"
W_ROI_MASK = "w_roi_mask"
W_ROI_CHART = "w_roi_chart"
W_MERGE_VARIANTS = "w_merge_variants"
W_DROP_NONFINITE = "w_drop_nonfinite"

W_CONDITIONS = "w_conditions"
W_MASK = "w_mask"
W_STANDARDIZE = "w_standardize"
W_DETREND = "w_detrend"
W_HIGH_PASS = "w_high_pass"
W_CONFOUNDS = "w_confounds"
W_ESTIMATOR = "w_estimator"
W_C = "w_C"
W_TUNE_C = "w_tune_C"
W_SCREENING = "w_screening"
W_SCORING = "w_scoring"
W_CV = "w_cv"
W_N_FOLDS = "w_n_folds"
W_HOLDOUT = "w_holdout"
W_RUN = "w_run"

W_DISPLAY_MODE = "w_display_mode"
W_THRESHOLD = "w_threshold"
W_CUT_I = "w_cut_i"
W_CUT_J = "w_cut_j"
W_CUT_K = "w_cut_k"
W_WEIGHT_CHART = "w_weight_chart"
W_MAP_KIND = "w_map_kind"
W_MAP_CLASS = "w_map_class"
W_DOWNLOAD_WEIGHTS = "w_download_weights"
W_DOWNLOAD_SCORES = "w_download_scores"
W_DOWNLOAD_PREDICTIONS = "w_download_predictions"
W_DOWNLOAD_CONFIG = "w_download_config"
W_N_PERMUTATIONS = "w_n_permutations"
W_PERMUTATION_RUN = "w_permutation_run"
W_PERMUTATION_STOP = "w_permutation_stop"
W_SEARCHLIGHT_RADIUS = "w_searchlight_radius"
W_SEARCHLIGHT_RUN = "w_searchlight_run"
W_SEARCHLIGHT_STOP = "w_searchlight_stop"
W_SEARCHLIGHT_THRESHOLD = "w_searchlight_threshold"
W_SEARCHLIGHT_CHART = "w_searchlight_chart"
W_SEARCHLIGHT_DOWNLOAD = "w_searchlight_download"
W_TUTORIAL_WEIGHTS_CHART = "w_tutorial_weights_chart"
W_DOWNLOAD_RUN_ZIP = "w_download_run_zip"

W_HISTORY_RUN = "w_history_run"
W_HISTORY_NAME = "w_history_name"
W_HISTORY_RENAME = "w_history_rename"
W_HISTORY_DELETE = "w_history_delete"
W_HISTORY_DELETE_CONFIRM = "w_history_delete_confirm"
W_HISTORY_RUN_ZIP = "w_history_run_zip"
W_HISTORY_OPEN = "w_history_open"
W_HISTORY_SELECTED = "w_history_selected"
W_HISTORY_EXPORT_SELECTED = "w_history_export_selected"
W_HISTORY_EXPORT_ALL = "w_history_export_all"
W_HISTORY_IMPORT_FILE = "w_history_import_file"
W_HISTORY_IMPORT = "w_history_import"
W_HISTORY_COMPARE = "w_history_compare"

W_COMPARE_RUNS = "w_compare_runs"
W_COMPARE_ONLY_DIFFERENT = "w_compare_only_different"
W_COMPARE_A = "w_compare_a"
W_COMPARE_B = "w_compare_b"
W_COMPARE_NORMALIZE = "w_compare_normalize"
W_COMPARE_MAP_CLASS = "w_compare_map_class"
W_COMPARE_DISPLAY_MODE = "w_compare_display_mode"
W_COMPARE_ZIP_A = "w_compare_zip_a"
W_COMPARE_ZIP_B = "w_compare_zip_b"
W_RERUN_FROM = "w_rerun_from"
W_RERUN_SETTING = "w_rerun_setting"
W_RERUN_VALUE = "w_rerun_value"
W_RERUN_OTHER_VALUE = "w_rerun_other_value"
W_RERUN = "w_rerun"

W_SWEEP_SETTING = "w_sweep_setting"
W_SWEEP_VALUES = "w_sweep_values"
W_SWEEP_RUN = "w_sweep_run"
W_SWEEP_STOP = "w_sweep_stop"
W_SWEEP_COMPARE = "w_sweep_compare"

W_GROUP_SOURCE = "w_group_source"
W_GROUP_SEEDS = "w_group_seeds"
W_GROUP_HAXBY = "w_group_haxby"
W_GROUP_RUN = "w_group_run"
W_GROUP_STOP = "w_group_stop"
W_GROUP_MAP_DOWNLOAD = "w_group_map_download"

# -- BIDS data sets on the Data page (pages/data.py, ui/bids.py) ----------------------------------
#: The BIDS folder typed on the Data page (a folder on the server; local runs only).
BIDS_FOLDER = "bids_folder"
#: The uploaded .zip of BIDS files, extracted into this session's folder: None or a `ui.bids.BidsZip`.
BIDS_ZIP = "bids_zip"
#: The error of the last zip upload (a `DecodingInputError` or other exception), shown once.
BIDS_ZIP_ERROR = "bids_zip_error"
W_BIDS_ORIGIN = "w_bids_origin"
W_BIDS_FOLDER = "w_bids_folder"
W_BIDS_ZIP = "w_bids_zip"
W_BIDS_ZIP_CLEAR = "w_bids_zip_clear"
W_BIDS_SUBJECT = "w_bids_subject"
W_BIDS_TASK = "w_bids_task"
W_BIDS_SESSION = "w_bids_session"
W_BIDS_SPACE = "w_bids_space"
W_BIDS_LAG = "w_bids_lag"
W_BIDS_EDGE = "w_bids_edge"
W_BIDS_DESIGN = "w_bids_design"
W_BIDS_MASK_PATH = "w_bids_mask_path"
W_BIDS_MASK = "w_bids_mask"
W_BIDS_TIMELINE = "w_bids_timeline"
W_BIDS_LOAD = "w_bids_load"

# -- defaults --------------------------------------------------------------------
#: Data sources offered on the Data page, in order.
SOURCES = {
    "simulated": "Built-in simulated data set (offline)",
    "haxby": "Real Haxby 2001 subject (download)",
    "upload": "Your own files (upload)",
    "runs": "One file per run (upload)",
    "bids": "BIDS data set (folder or .zip)",
}
HAXBY_SUBJECTS = (1, 2, 3, 4, 5, 6)
DISPLAY_MODES = ("yx", "ortho", "x", "y", "z", "xz", "yz")
#: Kinds of weight map and their display names (one table: `decoding_core.map_views.MAP_KINDS`).
MAP_KINDS = map_views.MAP_KINDS


def default_config_values() -> dict:
    """The configuration the app starts with (the tutorial's: face vs cat, VT, SVC, LORO)."""
    return DecodingConfig().to_dict()


DEFAULTS = {
    DATASET: None,
    DATASET_SPEC: None,
    UPLOAD_DISPLAY_NAMES: {},
    PENDING_FUNC_UPLOAD: None,
    PENDING_UPLOADS: {},
    PENDING_RUN_FILES: [],
    PENDING_RUN_LABELS: [],
    SOURCE_CHOICE: "simulated",
    HAXBY_SUBJECT: 2,
    LOAD_ERROR: None,
    UPLOAD_ERRORS: {},
    HAXBY_FAILED: False,
    ROI_MASK_NAME: None,
    PREPARED_FROM: {},
    RESULT: None,
    RESULT_DATASET_TITLE: None,
    RESULT_DATASET_DIGEST: None,
    CUT_COORDS: None,
    DISPLAY_MODE: "yx",
    THRESHOLD: 0.0,
    MAP_KIND: "weights",
    MAP_CLASS: 0,
    PERMUTATION_RESULT: None,
    PERMUTATION_STOP: False,
    PERMUTATION_COUNT: 200,
    SEARCHLIGHT_RUN: None,
    SEARCHLIGHT_STOP: False,
    SEARCHLIGHT_RADIUS: 5.6,
    SEARCHLIGHT_THRESHOLD: 0.0,
    SEARCHLIGHT_CUT: None,
    RECORDED_RUNS: {},
    URL_CHECKED: False,
    URL_MESSAGES: None,
    COMPARE_SELECTION: None,
    RERUN_MESSAGE: None,
    SWEEP: None,
    SWEEP_SETTING: "C",
    SWEEP_VALUES_TEXT: None,
    HISTORY_MESSAGE: None,
    GROUP_RUN: None,
    GROUP_SOURCE: "simulated",
    GROUP_SEEDS: (0, 1, 2, 3, 4),
    GROUP_HAXBY: (),
    BIDS_FOLDER: "",
    BIDS_ZIP: None,
    BIDS_ZIP_ERROR: None,
}


#: What a reload of the page brings back (`ui.session.resume_session`): every persistent key
#: but the session's own token and the once-per-session checks.
RESUMED_KEYS = tuple(key for key in (*DEFAULTS, CONFIG_VALUES, RUN_STORE) if key not in (URL_CHECKED, URL_MESSAGES))


#: True while app.py's `main` runs the current page (see `running_app`).
_APP_RUNNING = contextvars.ContextVar("decoding_lab_app_running", default=False)


@contextlib.contextmanager
def running_app():
    """Mark the current script run as started by ``app.main`` (pages check it)."""
    token = _APP_RUNNING.set(True)
    try:
        yield
    finally:
        _APP_RUNNING.reset(token)


def app_running() -> bool:
    """Whether this script run went through ``app.main`` (navigation, page config, `init_state`)."""
    return _APP_RUNNING.get()


def init_state() -> None:
    """Put every persistent key with its default into ``st.session_state`` (once per session)."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            # Copy mutable defaults so sessions never share them.
            st.session_state[key] = dict(value) if isinstance(value, dict) else value
    if CONFIG_VALUES not in st.session_state:
        st.session_state[CONFIG_VALUES] = default_config_values()
    if SESSION_TOKEN not in st.session_state:
        st.session_state[SESSION_TOKEN] = secrets.token_hex(16)


def seed_widget(widget_key: str, value) -> None:
    """Give a widget its persisted value before it is drawn, unless it already has one.

    Widget state is dropped when the user leaves a page; seeding the widget's key from
    the persistent state brings the user's choice back when they return.
    """
    if widget_key not in st.session_state:
        st.session_state[widget_key] = value


#: Configure-page widgets, dropped when a configuration is set from elsewhere so that
#: they are seeded again from ``CONFIG_VALUES``.
CONFIGURE_WIDGETS = (
    W_CONDITIONS, W_MASK, W_STANDARDIZE, W_DETREND, W_HIGH_PASS, W_CONFOUNDS, W_ESTIMATOR, W_C, W_TUNE_C,
    W_SCREENING, W_SCORING, W_CV, W_N_FOLDS, W_HOLDOUT,
)


def apply_config_values(values: dict) -> None:
    """Make ``values`` the configuration, and let the Configure widgets show it."""
    st.session_state[CONFIG_VALUES] = dict(values)
    for key in CONFIGURE_WIDGETS:
        st.session_state.pop(key, None)
