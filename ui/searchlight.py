"""The searchlight on the Results page: a radius, Run and Stop, progress, the map, a NIfTI download.

A searchlight takes longer than one script run may last: the user can press Stop (which
interrupts the script), move to another page, or come back. It is therefore a record in
the session state (`SearchlightRun`) that `continue_searchlight` advances chunk by chunk
of spheres, each chunk through the job gate, keeping every chunk finished before a Stop.
A stopped run keeps a partial map, always shown and downloaded as partial; Run again
continues it. A complete map is kept in the results store under a content digest (the
data set's, the configuration's and the radius), so the same searchlight shows at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from decoding_core import cluster, environment, export, map_views, plotting, searchlight
from decoding_core.config import SCORINGS
from ui import analysis, cache, feedback, state
from ui.feedback import ProgressCallback, run_heavy

#: Spheres per chunk in the app: each chunk takes a slot of the job gate, so other users'
#: jobs start between chunks, and Stop is seen within a chunk's time (about a second).
APP_CHUNK_SIZE = 48
#: The radius input's bounds, in millimetres.
RADIUS_RANGE = (1.0, 20.0)
#: Chunks sent to a Dask cluster at once (``DECODING_LAB_SCHEDULER``): enough to keep its
#: workers busy, few enough that a Stop is seen soon and the finished chunks are kept.
CLUSTER_BATCH = 8


def searchlight_key(dataset, config, radius: float) -> tuple:
    """The content-digest key of a searchlight map: data set, configuration and radius."""
    return ("searchlight", dataset.digest, config.digest(), round(float(radius), 4))


@dataclass
class SearchlightRun:
    """A searchlight run chunk by chunk (see `continue_searchlight`).

    Attributes
    ----------
    key : tuple
        `searchlight_key` of what it maps.
    radius : float
    scores, scored : ndarray or None
        Every sphere's score so far and which spheres are scored (None before the first chunk).
    next_chunk : int
        The next chunk of spheres to score.
    running : bool
        Whether chunks remain to be run.
    stopped : bool
        Whether the user stopped it before the end (its map is partial).
    result : SearchlightResult or None
        The map of the spheres scored so far (partial until every sphere is).
    """

    key: tuple
    radius: float
    scores: np.ndarray | None = None
    scored: np.ndarray | None = None
    next_chunk: int = 0
    running: bool = True
    stopped: bool = False
    result: object = None

    def stop(self) -> None:
        """The user pressed Stop: keep the spheres scored so far (a partial map)."""
        if self.running:
            self.running = False
            self.stopped = True

    def resume(self) -> None:
        """Run again: continue from the next chunk."""
        self.running, self.stopped = True, False

    def fail(self) -> None:
        """A chunk raised: nothing more runs (the page shows the error)."""
        self.running = False


def continue_searchlight(run: SearchlightRun, dataset, config, *, progress: ProgressCallback | None = None,
                         should_stop=None) -> None:
    """Score the remaining chunks of ``run``, storing each as it finishes; keep a complete map by digest."""
    selected = analysis.selected_masked(dataset, config)  # masked and cleaned as the decoding was (kept)
    task = searchlight.prepare_task(selected, config, run.radius)
    chunks = searchlight.sphere_chunks(len(task.spheres), APP_CHUNK_SIZE)
    if run.scores is None:
        run.scores = np.full(len(task.spheres), np.nan)
        run.scored = np.zeros(len(task.spheres), dtype=bool)
    scheduler = environment.read(environment.SCHEDULER)
    while run.running and run.next_chunk < len(chunks):
        if should_stop is not None and should_stop():
            run.stop()
            break
        batch = chunks[run.next_chunk:run.next_chunk + (CLUSTER_BATCH if scheduler else 1)]
        for ids, values in _score_chunks(task, batch, scheduler):
            run.scores[ids], run.scored[ids] = values, True
        run.next_chunk += len(batch)
        if progress is not None:
            done = int(run.scored.sum())
            progress(done / len(task.spheres), f"{done} of {len(task.spheres)} spheres scored")
    run.result = searchlight.searchlight_result(task, run.scores, run.scored, selected.mask_img)
    if run.next_chunk >= len(chunks):
        run.running = False
        complete = run.result
        cache.get_or_compute("results", run.key, lambda: complete, made_from=dataset)


def _score_chunks(task, batch, scheduler: str | None) -> tuple:
    """Score a batch of sphere chunks here (one chunk, through the job gate) or on the Dask cluster.

    On a cluster the job gate is not held: the work is on the workers, and the chunks'
    results come back in order (`cluster.run_tasks`), or an error says what was lost.
    """
    if scheduler is None:
        return tuple(run_heavy(lambda chunk=chunk: searchlight.score_chunk(task, chunk)) for chunk in batch)
    return cluster.run_tasks(searchlight.score_chunk, batch, shared=(task,), scheduler=scheduler,
                             what="sphere chunks").results


class _NotKept(Exception):
    """Raised instead of computing: `cached_map` only looks."""


def _not_kept():
    raise _NotKept


def current_map(run: SearchlightRun, dataset, config):
    """The map of every sphere scored so far.

    A Stop interrupts the script run between chunks, before `continue_searchlight` makes
    the map of the chunks it stored: the map is then rebuilt from the stored scores.
    """
    if run.scored is None or not run.scored.any():
        return run.result  # nothing scored here: a map from the store, or none yet
    if run.result is None or run.result.n_done != int(run.scored.sum()):
        selected = analysis.selected_masked(dataset, config)
        task = searchlight.prepare_task(selected, config, run.radius)
        run.result = searchlight.searchlight_result(task, run.scores, run.scored, selected.mask_img)
    return run.result


def cached_map(dataset, config, radius: float):
    """The complete map of this searchlight when it was computed before, else None."""
    try:
        return cache.get_or_compute("results", searchlight_key(dataset, config, radius), _not_kept,
                                    made_from=dataset)
    except _NotKept:
        return None


# -- callbacks ---------------------------------------------------------------------------------
def _start(dataset, config) -> None:
    """Run-button callback: a cached map at once, a stopped run continued, else a new run."""
    radius = float(st.session_state[state.W_SEARCHLIGHT_RADIUS])
    st.session_state[state.SEARCHLIGHT_RADIUS] = radius
    st.session_state[state.SEARCHLIGHT_STOP] = False
    key = searchlight_key(dataset, config, radius)
    run = st.session_state[state.SEARCHLIGHT_RUN]
    if run is not None and run.key == key and run.stopped:
        run.resume()
        return
    done = cached_map(dataset, config, radius)
    run = SearchlightRun(key=key, radius=radius)
    if done is not None:
        run.running, run.result = False, done
    st.session_state[state.SEARCHLIGHT_RUN] = run


def _stop() -> None:
    """Stop-button callback: keep the spheres scored so far."""
    st.session_state[state.SEARCHLIGHT_STOP] = True
    run = st.session_state[state.SEARCHLIGHT_RUN]
    if run is not None:
        run.stop()


def _move_cut_to_click() -> None:
    """Chart callback: a click on a slice moves the searchlight map's cut to that voxel."""
    event = st.session_state.get(state.W_SEARCHLIGHT_CHART) or {}
    voxel = map_views.cut_from_selection(event.get("selection") if hasattr(event, "get") else None)
    if voxel is not None:
        st.session_state[state.SEARCHLIGHT_CUT] = voxel


# -- drawing -----------------------------------------------------------------------------------
def draw_searchlight(result, dataset) -> None:
    """The Results page's searchlight section for the decoding ``result`` on ``dataset`` (None: not loaded)."""
    st.subheader("Where is the information? A searchlight map")
    st.markdown(
        "Each voxel of the mask is scored by decoding only the voxels of a sphere around it (nilearn's "
        "spheres: the mask's voxels within the radius, in millimetres), with the same classifier, "
        "evaluation scheme and score as this run."
    )
    if dataset is None or dataset.digest != st.session_state[state.RESULT_DATASET_DIGEST]:
        st.info("Load the data set these results come from again to compute a searchlight map.")
        return
    config = result.config
    state.seed_widget(state.W_SEARCHLIGHT_RADIUS, float(st.session_state[state.SEARCHLIGHT_RADIUS]))
    radius_column, run_column, stop_column = st.columns([2, 1, 1], vertical_alignment="bottom")
    radius_column.number_input("Sphere radius (mm)", min_value=RADIUS_RANGE[0], max_value=RADIUS_RANGE[1],
                               step=0.5, key=state.W_SEARCHLIGHT_RADIUS,
                               help="nilearn's tutorial uses 5.6 mm: about 19 voxels of 3.5 x 3.75 x 3.75 mm.")
    run_column.button("Run the searchlight", key=state.W_SEARCHLIGHT_RUN, on_click=_start, args=(dataset, config))
    stop_column.button("Stop", key=state.W_SEARCHLIGHT_STOP, on_click=_stop)

    run = st.session_state[state.SEARCHLIGHT_RUN]
    if run is not None and run.key[1:3] != searchlight_key(dataset, config, run.radius)[1:3]:
        run = st.session_state[state.SEARCHLIGHT_RUN] = None  # made for another run or data set
    if run is not None and run.running:
        done_before = 0.0 if run.scored is None else float(run.scored.mean())
        bar = st.progress(done_before, text="Scoring the spheres")
        try:
            # Chunks are stored as they finish, so Stop (which interrupts this run) keeps them.
            continue_searchlight(run, dataset, config, progress=feedback.progress_bar_callback(bar, done_before),
                                 should_stop=lambda: st.session_state[state.SEARCHLIGHT_STOP])
        except Exception as err:
            run.fail()
            feedback.show_error(err, "running the searchlight")
        bar.empty()
    if run is None:
        return
    try:
        light = current_map(run, dataset, config)
    except Exception as err:
        feedback.show_error(err, "making the searchlight map")
        return
    if light is not None and light.n_done > 0:
        _draw_map(light, dataset)


def _draw_map(light, dataset) -> None:
    scoring = SCORINGS[light.config.scoring].short
    if light.partial:
        st.warning(
            f"Partial map: stopped after {light.n_done} of {light.n_spheres} spheres. Voxels not scored are "
            "blank here and NaN in the download (marked partial in its header). Press Run to continue.",
            icon=":material/warning:",
        )
    scores = light.scores[np.isfinite(light.scores)]
    row = st.container(horizontal=True, horizontal_alignment="distribute", gap="medium")
    row.metric("Spheres scored", f"{light.n_done} / {light.n_spheres}", width="content")
    row.metric(f"Best {scoring}", f"{scores.max():.3f}", width="content")
    row.metric(f"Mean {scoring}", f"{scores.mean():.3f}", width="content")
    row.metric("Chance level", f"{light.chance_level:.3f}", width="content")
    row.metric("Voxels per sphere", f"{light.sphere_sizes.min()}-{light.sphere_sizes.max()}",
               help=f"Mean {light.sphere_sizes.mean():.1f}", width="content")

    img = light.above_chance_img()
    abs_max = map_views.map_abs_max(img)
    threshold = 0.0
    if abs_max > 0:
        stored = min(float(st.session_state[state.SEARCHLIGHT_THRESHOLD]), abs_max)
        state.seed_widget(state.W_SEARCHLIGHT_THRESHOLD, stored)
        if st.session_state[state.W_SEARCHLIGHT_THRESHOLD] > abs_max:
            st.session_state[state.W_SEARCHLIGHT_THRESHOLD] = stored
        threshold = st.slider(f"Threshold (hide voxels whose {scoring} is within this of chance)", min_value=0.0,
                              max_value=abs_max, step=abs_max / 100, key=state.W_SEARCHLIGHT_THRESHOLD, format="%.3f")
        st.session_state[state.SEARCHLIGHT_THRESHOLD] = threshold
    cut = map_views.clamp_cut(st.session_state[state.SEARCHLIGHT_CUT] or map_views.default_cut(img), img.shape)
    value = light.score_at(cut)
    shown = "outside the mask" if value is None else ("not scored yet" if np.isnan(value) else f"{value:.3f}")
    st.caption(f"Colour: {scoring} minus chance ({light.chance_level:.3f}), warm above chance, cold below. "
               f"Voxel {cut}: {scoring} {shown}. Click a voxel on a slice to move the cut there.")
    try:
        background = map_views.viewer_background(dataset, light.mask_img)
        figure = plotting.plot_stat_slices(
            img, background.img, cut_coords=cut, display_mode=st.session_state[state.DISPLAY_MODE],
            threshold=threshold, title=f"Searchlight ({light.radius:g} mm): {scoring} minus chance",
            colorbar_title=f"{scoring} - chance", zoom_img=light.mask_img, outline_img=background.outline_img,
        )
        st.plotly_chart(figure, key=state.W_SEARCHLIGHT_CHART, on_select=_move_cut_to_click,
                        selection_mode="points", width="content")
    except Exception as err:
        feedback.show_error(err, "drawing the searchlight map")
    name = "searchlight_partial.nii.gz" if light.partial else "searchlight.nii.gz"
    st.download_button(f"Searchlight map{' (partial)' if light.partial else ''} (.nii.gz)",
                       data=lambda: export.image_to_nifti_bytes(light.score_img), file_name=name,
                       mime="application/gzip", key=state.W_SEARCHLIGHT_DOWNLOAD, on_click="ignore")
