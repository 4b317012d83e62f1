"""The session's data set: loading a built-in one, adopting a loaded one, the first-start default.

Pages ask `current_dataset` for the data set to work on; the first time, it loads
the built-in simulated data set (generated on the server's first start: the page
says so while it happens). A data set replaces the session's one only once it has
loaded (`adopt_dataset`), and the stored settings are adapted to it.
"""

from __future__ import annotations

import dataclasses
import logging

import streamlit as st

from decoding_core import datasets
from decoding_core.datasets import DatasetSpec
from decoding_core.summaries import sanitize_config_values
from ui import cache, state
from ui.feedback import ProgressCallback, run_heavy, show_error
from ui.uploads import with_upload_names

_LOGGER = logging.getLogger(__name__)

#: The data set a new session starts with.
DEFAULT_SPEC = "simulated"


def load_builtin_dataset(spec: str, progress: ProgressCallback | None = None):
    """Load a built-in data set: ``"simulated"`` or a Haxby subject (``"haxby:N"``), kept for all sessions.

    Raises
    ------
    DecodingInputError
        For an unknown spec, or when the Haxby download fails (offline).
    """
    parsed = DatasetSpec.parse(spec)

    def compute():
        if parsed.kind == datasets.HAXBY:
            return datasets.load_dataset(parsed, progress=progress)
        return datasets.load_dataset(parsed)

    return cache.get_or_compute("datasets", ("builtin", str(parsed)), lambda: run_heavy(compute))


def current_dataset():
    """The session's data set; loads the built-in simulated one the first time.

    Returns None (after showing an error) only when even the built-in data set fails.
    """
    dataset = st.session_state.get(state.DATASET)
    if dataset is not None:
        return dataset
    try:
        with st.spinner("Preparing the built-in simulated data set (generated on the server's first start: "
                        "a few seconds)...", show_time=True):
            dataset = load_builtin_dataset(DEFAULT_SPEC)
    except Exception as err:  # nothing else to fall back to: say so clearly
        _LOGGER.error("The built-in simulated data set could not be prepared: %s", err)
        show_error(err, "preparing the built-in simulated data set")
        return None
    adopt_dataset(dataset, DEFAULT_SPEC)
    return dataset


def adopt_dataset(dataset, spec: str, display_names: dict | None = None) -> None:
    """Make ``dataset`` the session's data set (call only after it loaded successfully).

    Parameters
    ----------
    dataset : decoding_core.datasets.Dataset
    spec : str
        How it was obtained: ``"simulated"``, ``"haxby:N"`` or ``"upload"``.
    display_names : dict, optional
        For uploads: role ("4D image", "labels", ...) -> the user's file name (safe to show);
        for one file per run, also "run files" and "run labels" -> lists of names in run order.
        The core describes the app's stored copies (``func.nii.gz``); the description then
        says the user's own names, and the title names the image, so runs on two uploads
        tell apart in History.
    """
    if display_names:
        image_name = display_names.get("4D image")
        dataset = dataclasses.replace(
            dataset,
            title=f"{dataset.title} ({image_name})" if image_name else dataset.title,
            description=with_upload_names(dataset.description, display_names),
            source=with_upload_names(dataset.source, display_names),
        )
    st.session_state[state.DATASET] = dataset
    st.session_state[state.DATASET_SPEC] = spec
    st.session_state[state.UPLOAD_DISPLAY_NAMES] = dict(display_names or {})
    st.session_state[state.LOAD_ERROR] = None
    st.session_state[state.UPLOAD_ERRORS] = {}
    st.session_state[state.HAXBY_FAILED] = False
    if st.session_state.get(state.ROI_MASK_NAME) not in dataset.masks:
        st.session_state[state.ROI_MASK_NAME] = None
    st.session_state[state.CONFIG_VALUES] = sanitize_config_values(
        st.session_state.get(state.CONFIG_VALUES) or state.default_config_values(), dataset
    )
