"""Tests of decoding_core.figures: slice geometry, clicks, and the result figures."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from decoding_core import figures
from decoding_core.config import DecodingConfig
from decoding_core.decoding import DecodingResult
from decoding_core.errors import DecodingInputError
from decoding_core.masking import MaskedData

HAXBY_LIKE_AFFINE = np.array([
    [-3.5, 0.0, 0.0, 70.0],
    [0.0, 3.75, 0.0, -100.0],
    [0.0, 0.0, 3.75, -60.0],
    [0.0, 0.0, 0.0, 1.0],
])
# Axes stored as (z, x, y) with x flipped: every axis moves on reorientation.
PERMUTED_AFFINE = np.array([
    [0.0, -3.5, 0.0, 80.0],
    [0.0, 0.0, 3.0, -90.0],
    [2.5, 0.0, 0.0, -40.0],
    [0.0, 0.0, 0.0, 1.0],
])


def _random_map(shape=(12, 10, 8), seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=shape).astype(np.float32)


def _panels(fig):
    """Per panel: (overlay heatmap, click scatter), in display order."""
    panels = {}
    for trace in fig.data:
        if trace.type == "heatmap" and trace.name != "anatomy":
            panels.setdefault(trace.xaxis, {})["overlay"] = trace
        if trace.type == "heatmap" and trace.name == "anatomy":
            panels.setdefault(trace.xaxis, {})["anatomy"] = trace
        if trace.type == "scatter" and trace.name == "voxels":
            panels.setdefault(trace.xaxis, {})["grid"] = trace
    return [panels[key] for key in sorted(panels, key=lambda name: int(name[1:] or 1))]


def _panel_titles(fig):
    return [a.text for a in fig.layout.annotations if a.text and a.text.split()[0] in ("Sagittal", "Coronal", "Axial")]


# -- slice geometry ------------------------------------------------------------


@pytest.mark.parametrize("affine", [HAXBY_LIKE_AFFINE, PERMUTED_AFFINE], ids=["haxby-LAS", "permuted"])
def test_slices_are_the_canonical_volume_at_the_cut(affine):
    data = _random_map()
    img = nib.Nifti1Image(data, affine)
    cut = (3, 7, 2)
    fig = figures.plot_stat_slices(img, cut_coords=cut, threshold=0.5)

    canonical = nib.as_closest_canonical(img)
    canonical_data = np.asarray(canonical.dataobj)
    # Where the original cut voxel lands in the canonical grid, found by its world position.
    world = affine @ np.array([*cut, 1.0])
    canonical_cut = np.round(np.linalg.solve(canonical.affine, world)[:3]).astype(int)
    expected = [
        canonical_data[canonical_cut[0], :, :].T,
        canonical_data[:, canonical_cut[1], :].T,
        canonical_data[:, :, canonical_cut[2]].T,
    ]
    panels = _panels(fig)
    assert len(panels) == 3
    for panel, plane in zip(panels, expected):
        shown = np.where(np.abs(plane) >= 0.5, plane, np.nan)
        np.testing.assert_array_equal(np.asarray(panel["overlay"].z), shown)
        assert np.asarray(panel["overlay"].z).ndim == 2
        assert isinstance(panel["overlay"].z, np.ndarray)


def test_values_under_threshold_and_exact_zeros_are_transparent():
    data = np.zeros((6, 6, 6), dtype=np.float32)
    data[2, 2, 2] = 3.0
    data[2, 3, 2] = -0.4
    data[2, 4, 2] = 0.6
    fig = figures.plot_stat_slices(nib.Nifti1Image(data, np.eye(4)), cut_coords=(2, 2, 2), threshold=0.5,
                                   display_mode="x")
    z = np.asarray(_panels(fig)[0]["overlay"].z)  # rows: k, columns: j
    assert z[2, 2] == 3.0 and z[2, 4] == pytest.approx(0.6)
    assert np.isnan(z[2, 3])  # |-0.4| < threshold
    assert np.isnan(z[0, 0])  # exact zero
    assert np.count_nonzero(np.isfinite(z)) == 2


def test_colour_scale_is_symmetric():
    data = _random_map()
    data[1, 1, 1] = -9.0
    fig = figures.plot_stat_slices(nib.Nifti1Image(data, HAXBY_LIKE_AFFINE))
    overlays = [p["overlay"] for p in _panels(fig)]
    for overlay in overlays:
        assert overlay.zmin == -overlay.zmax == -9.0
        assert overlay.colorscale == go.Heatmap(colorscale="RdBu_r").colorscale
    assert sum(bool(o.showscale) for o in overlays) == 1  # a single colour bar
    fixed = figures.plot_stat_slices(nib.Nifti1Image(data, HAXBY_LIKE_AFFINE), vmax=2.5)
    assert [(p["overlay"].zmin, p["overlay"].zmax) for p in _panels(fixed)] == [(-2.5, 2.5)] * 3


def test_axes_are_in_millimetres_and_keep_anisotropic_voxels_to_scale():
    img = nib.Nifti1Image(_random_map((40, 64, 64)), HAXBY_LIKE_AFFINE)
    fig = figures.plot_stat_slices(img, cut_coords=(10, 20, 30))
    # (horizontal, vertical) voxel sizes of sagittal, coronal, axial panels
    expected_steps = [(3.75, 3.75), (3.5, 3.75), (3.5, 3.75)]
    expected_counts = [(64, 64), (40, 64), (40, 64)]
    for col, (panel, steps, counts) in enumerate(zip(_panels(fig), expected_steps, expected_counts), start=1):
        overlay = panel["overlay"]
        x, y = np.asarray(overlay.x), np.asarray(overlay.y)
        assert (len(x), len(y)) == counts
        np.testing.assert_allclose(np.diff(x), steps[0], rtol=1e-6)
        np.testing.assert_allclose(np.diff(y), steps[1], rtol=1e-6)
        yaxis = fig.layout[f"yaxis{'' if col == 1 else col}"]
        xaxis = fig.layout[f"xaxis{'' if col == 1 else col}"]
        assert yaxis.scaleanchor == ("x" if col == 1 else f"x{col}")
        assert yaxis.scaleratio == 1
        # The displayed extent is the grid's extent in mm: n voxels x voxel size.
        assert xaxis.range[1] - xaxis.range[0] == pytest.approx(counts[0] * steps[0])
        assert yaxis.range[1] - yaxis.range[0] == pytest.approx(counts[1] * steps[1])
        assert "mm" in xaxis.title.text and "mm" in yaxis.title.text


def test_coordinates_are_world_millimetres_in_the_neurological_convention():
    img = nib.Nifti1Image(_random_map(), HAXBY_LIKE_AFFINE)
    fig = figures.plot_stat_slices(img, cut_coords=(3, 4, 5), display_mode="z")
    grid = _panels(fig)[0]["grid"]
    ijk = np.asarray(grid.customdata).astype(int)
    world = (HAXBY_LIKE_AFFINE @ np.c_[ijk, np.ones(len(ijk))].T).T
    np.testing.assert_allclose(np.asarray(grid.x), world[:, 0], atol=1e-4)
    np.testing.assert_allclose(np.asarray(grid.y), world[:, 1], atol=1e-4)
    x_axis = np.asarray(_panels(fig)[0]["overlay"].x)
    assert np.all(np.diff(x_axis) > 0)  # left (negative x) on the left of the screen
    edge_letters = [a.text for a in fig.layout.annotations if a.text in ("<b>L</b>", "<b>R</b>")]
    assert edge_letters == ["<b>L</b>", "<b>R</b>"]


@pytest.mark.parametrize("affine", [HAXBY_LIKE_AFFINE, PERMUTED_AFFINE], ids=["haxby-LAS", "permuted"])
def test_click_customdata_gives_back_the_original_voxel(affine):
    data = _random_map()
    img = nib.Nifti1Image(data, affine)
    cut = (4, 6, 3)
    fig = figures.plot_stat_slices(img, cut_coords=cut)
    for panel in _panels(fig):
        grid = panel["grid"]
        assert grid.marker.opacity == 0
        assert grid.hoverinfo != "skip"  # a skipped trace cannot be clicked
        assert "customdata[0]" in grid.hovertemplate
        customdata = np.asarray(grid.customdata)
        assert customdata.shape[1] == 3
        values = np.asarray(grid.marker.color)
        for row, value in zip(customdata, values):
            voxel = figures.voxel_from_click({str(n): int(v) for n, v in enumerate(row)})
            assert value == data[voxel]  # the hover value is that voxel's value
        # Every point of a panel shares the cut's index along the panel's fixed axis.
        shared = [axis for axis in range(3) if np.all(customdata[:, axis] == cut[axis])]
        assert len(shared) == 1
    # Together the three panels cover the three orthogonal planes through the cut.
    fixed_axes = sorted(
        next(a for a in range(3) if np.all(np.asarray(p["grid"].customdata)[:, a] == cut[a]))
        for p in _panels(fig)
    )
    assert fixed_axes == [0, 1, 2]


def test_cut_coords_are_honoured_and_titled_in_millimetres():
    img = nib.Nifti1Image(_random_map(), HAXBY_LIKE_AFFINE)
    fig = figures.plot_stat_slices(img, cut_coords=(2, 5, 6))
    x, y, z = (HAXBY_LIKE_AFFINE @ np.array([2, 5, 6, 1.0]))[:3]
    assert _panel_titles(fig) == [f"Sagittal x={x:.1f} mm", f"Coronal y={y:.1f} mm", f"Axial z={z:.1f} mm"]
    assert fig.layout.meta["cut_coords"] == [2, 5, 6]
    crosshair_x = [s.x0 for s in fig.layout.shapes if s.name == "crosshair" and s.x0 == s.x1 and s.xref == "x3"]
    assert crosshair_x == [pytest.approx(x)]


def test_default_cut_is_the_peak_and_the_centre_for_an_empty_map():
    data = np.zeros((9, 8, 7), dtype=np.float32)
    data[6, 1, 2] = -5.0
    data[3, 3, 3] = 4.0
    img = nib.Nifti1Image(data, HAXBY_LIKE_AFFINE)
    assert figures.default_cut_coords(img) == (6, 1, 2)
    fig = figures.plot_stat_slices(img)
    assert fig.layout.meta["cut_coords"] == [6, 1, 2]
    empty = nib.Nifti1Image(np.zeros((9, 8, 7), dtype=np.float32), np.eye(4))
    assert figures.default_cut_coords(empty) == (4, 4, 3)


def test_centre_of_mass_cut_of_a_two_part_mask_lies_inside_the_mask():
    mask = np.zeros((20, 6, 6), dtype=np.uint8)
    mask[1:4, 2:4, 2:4] = 1  # left "hemisphere"
    mask[16:19, 2:4, 2:4] = 1  # right one; the centroid (x=10) is outside both
    cut = figures.default_cut_coords(nib.Nifti1Image(mask, np.eye(4)), method="center_of_mass")
    assert mask[cut] == 1
    with pytest.raises(DecodingInputError, match="'method' must be one of"):
        figures.default_cut_coords(nib.Nifti1Image(mask, np.eye(4)), method="middle")


@pytest.mark.parametrize(
    "mode, titles",
    [
        ("ortho", ["Sagittal", "Coronal", "Axial"]),
        ("x", ["Sagittal"]),
        ("y", ["Coronal"]),
        ("z", ["Axial"]),
        ("yx", ["Coronal", "Sagittal"]),
        ("xz", ["Sagittal", "Axial"]),
        ("yz", ["Coronal", "Axial"]),
    ],
)
def test_display_modes_give_their_panels_in_order(mode, titles):
    fig = figures.plot_stat_slices(nib.Nifti1Image(_random_map(), HAXBY_LIKE_AFFINE), display_mode=mode)
    assert [t.split()[0] for t in _panel_titles(fig)] == titles
    assert len(_panels(fig)) == len(titles)


@pytest.mark.parametrize(
    "mode, titles",
    [("ortho", ["Axial"]), ("yx", ["Axial"]), ("xz", ["Axial"]), ("z", ["Axial"])],
)
def test_a_single_slice_image_shows_its_slice_not_flat_lines(mode, titles):
    # Haxby's one-slice file (40 x 20 x 1): sagittal and coronal would be one voxel tall.
    one_slice = nib.Nifti1Image(_random_map((12, 10, 1)), HAXBY_LIKE_AFFINE)
    for fig in (figures.plot_stat_slices(one_slice, display_mode=mode),
                figures.plot_roi(nib.Nifti1Image((_random_map((12, 10, 1)) > 0).astype(np.uint8),
                                                 HAXBY_LIKE_AFFINE), display_mode=mode)):
        assert [t.split()[0] for t in _panel_titles(fig)] == titles
        assert fig.layout.meta["display_mode"] == "z"


def test_a_thin_slab_keeps_every_view_with_area():
    slab = nib.Nifti1Image(_random_map((12, 10, 2)), HAXBY_LIKE_AFFINE)
    fig = figures.plot_stat_slices(slab, display_mode="ortho")
    assert [t.split()[0] for t in _panel_titles(fig)] == ["Sagittal", "Coronal", "Axial"]


@pytest.mark.parametrize("mode", ["xx", "w", "", "xyzx", None, "tiled"])
def test_unknown_display_modes_are_refused(mode):
    with pytest.raises(DecodingInputError, match="'display_mode' must be 'ortho'"):
        figures.plot_stat_slices(nib.Nifti1Image(_random_map(), np.eye(4)), display_mode=mode)


@pytest.mark.parametrize("cut", [(1, 2), (1, 2, 99), (-1, 0, 0), (1.5, 2, 3), "123", (1, 2, np.nan)])
def test_bad_cut_coords_are_refused(cut):
    with pytest.raises(DecodingInputError, match="'cut_coords' must be three voxel indices"):
        figures.plot_stat_slices(nib.Nifti1Image(_random_map(), np.eye(4)), cut_coords=cut)


def test_bad_images_and_options_are_refused():
    with pytest.raises(DecodingInputError, match="'stat_img' must be a nibabel image"):
        figures.plot_stat_slices(np.zeros((3, 3, 3)))
    four_d = nib.Nifti1Image(np.stack([_random_map(), -_random_map()], axis=-1), np.eye(4))
    with pytest.raises(DecodingInputError, match="4D with 2 volumes; choose one with 'map_index'"):
        figures.plot_stat_slices(four_d)
    second = figures.plot_stat_slices(four_d, map_index=1, cut_coords=(1, 1, 1), display_mode="x")
    np.testing.assert_array_equal(
        np.nan_to_num(np.asarray(_panels(second)[0]["overlay"].z)), -_random_map()[1].T
    )
    with pytest.raises(DecodingInputError, match="'threshold' must be a non-negative number"):
        figures.plot_stat_slices(nib.Nifti1Image(_random_map(), np.eye(4)), threshold=-1)
    with pytest.raises(DecodingInputError, match="'vmax' must be a positive number"):
        figures.plot_stat_slices(nib.Nifti1Image(_random_map(), np.eye(4)), vmax=0)


def test_background_is_grey_without_hover_and_resampled_when_its_grid_differs():
    data = _random_map((20, 16, 12))
    img = nib.Nifti1Image(data, HAXBY_LIKE_AFFINE)
    anatomy = np.random.default_rng(1).uniform(50, 500, size=(20, 16, 12)).astype(np.float32)
    fig = figures.plot_stat_slices(img, nib.Nifti1Image(anatomy, HAXBY_LIKE_AFFINE), cut_coords=(5, 5, 5))
    for panel in _panels(fig):
        background = panel["anatomy"]
        assert background.showscale is False and background.hoverinfo == "skip"
        assert np.asarray(background.z).shape == np.asarray(panel["overlay"].z).shape
    # A finer anatomy on another grid (1.75 mm) is brought onto the map's grid.
    fine_affine = HAXBY_LIKE_AFFINE.copy()
    fine_affine[:3, :3] /= 2
    fine = nib.Nifti1Image(np.ones((40, 32, 24), dtype=np.float32) * 100, fine_affine)
    resampled = figures.plot_stat_slices(img, fine, cut_coords=(5, 5, 5))
    for panel in _panels(resampled):
        assert np.asarray(panel["anatomy"].z).shape == np.asarray(panel["overlay"].z).shape


def test_figure_json_stays_small_for_a_haxby_sized_map_with_anatomy():
    rng = np.random.default_rng(0)
    shape = (40, 64, 64)
    # Worst case: map and anatomy non-zero in every voxel.
    img = nib.Nifti1Image(rng.normal(size=shape).astype(np.float32), HAXBY_LIKE_AFFINE)
    anatomy = nib.Nifti1Image(rng.uniform(1, 1000, size=shape).astype(np.float32), HAXBY_LIKE_AFFINE)
    fig = figures.plot_stat_slices(img, anatomy, title="SVM weights")
    size = len(fig.to_json())
    assert size < 300_000, size
    roi = figures.plot_roi(nib.Nifti1Image((rng.random(shape) > 0.5).astype(np.uint8), HAXBY_LIKE_AFFINE), anatomy)
    assert len(roi.to_json()) < 300_000
    # Slices, not volumes: no trace holds more than one 64 x 64 plane.
    assert max(np.asarray(t.z).size for t in fig.data if t.type == "heatmap") == 64 * 64


def test_large_grids_thin_the_click_grid():
    img = nib.Nifti1Image(np.ones((200, 200, 4), dtype=np.float32), np.eye(4))
    fig = figures.plot_stat_slices(img, display_mode="z", cut_coords=(0, 0, 1))
    grid = _panels(fig)[0]["grid"]
    assert len(grid.x) <= 12_000
    assert len(grid.x) >= 5_000


# -- clicks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {"0": 4, "1": 5, "2": 6},
        {0: 4, 1: 5, 2: 6},
        [4, 5, 6],
        (4.0, 5.0, 6.0),
        np.array([4, 5, 6], dtype=np.uint8),
        {"customdata": {"0": 4, "1": 5, "2": 6}, "x": 1.0},
        {"points": [{"x": 1.0}, {"customdata": [4, 5, 6]}], "box": []},
    ],
)
def test_voxel_from_click_accepts_what_streamlit_returns(payload):
    assert figures.voxel_from_click(payload) == (4, 5, 6)


def test_voxel_from_click_refuses_malformed_points_and_ignores_empty_selections():
    assert figures.voxel_from_click({"points": [], "box": []}) is None
    for payload in ({"0": 1, "1": 2}, [1, 2], [1, 2, -3], [1, 2, 3.5], "abc", {"0": "x", "1": 2, "2": 3}):
        with pytest.raises(DecodingInputError, match="voxel indices|Voxel indices"):
            figures.voxel_from_click(payload)


# -- regions of interest -------------------------------------------------------------


def test_roi_is_a_single_colour_overlay_over_anatomy():
    mask = np.zeros((10, 12, 8), dtype=np.uint8)
    mask[3:6, 4:8, 2:5] = 1
    anatomy = nib.Nifti1Image(np.full((10, 12, 8), 300.0, dtype=np.float32), HAXBY_LIKE_AFFINE)
    fig = figures.plot_roi(nib.Nifti1Image(mask, HAXBY_LIKE_AFFINE), anatomy, color="#00ff00")
    cut = fig.layout.meta["cut_coords"]
    assert mask[tuple(cut)] == 1
    canonical = np.asarray(nib.as_closest_canonical(nib.Nifti1Image(mask, HAXBY_LIKE_AFFINE)).dataobj)
    for panel in _panels(fig):
        overlay = panel["overlay"]
        z = np.asarray(overlay.z)
        assert set(np.unique(z[np.isfinite(z)])) == {1.0}
        assert overlay.colorscale[0][1] == overlay.colorscale[-1][1] == "#00ff00"
        assert 0 < overlay.opacity < 1
    sagittal = np.asarray(_panels(fig)[0]["overlay"].z)
    canonical_i = mask.shape[0] - 1 - cut[0]
    np.testing.assert_array_equal(np.isfinite(sagittal), canonical[canonical_i].T > 0)
    assert f"{int(mask.sum())} voxels" in fig.layout.title.text


def test_multi_label_roi_gets_a_colour_and_legend_entry_per_label():
    atlas = np.zeros((10, 10, 10), dtype=np.int16)
    atlas[1:4, 1:4, 4:6] = 2
    atlas[6:9, 6:9, 4:6] = 7
    atlas[4:6, 4:6, 4:6] = 11
    fig = figures.plot_roi(nib.Nifti1Image(atlas, np.eye(4)), cut_coords=(5, 5, 5), label_names={7: "house"})
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["label 2", "house", "label 11"]
    axial = np.asarray(_panels(fig)[2]["overlay"].z)  # rows: j, columns: i
    assert axial[2, 2] == 0 and axial[7, 7] == 1 and axial[5, 5] == 2
    assert np.isnan(axial[0, 0])


# -- design and data figures ------------------------------------------------------------


def test_condition_timeline_has_one_row_per_run_coloured_by_condition():
    labels = np.array(["rest", "face", "face", "cat", "rest", "cat", "house", "rest"])
    runs = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    fig = figures.plot_condition_timeline(labels, runs, tr=2.5)
    heatmap = fig.data[0]
    z = np.asarray(heatmap.z)
    assert list(heatmap.y) == ["run 0", "run 1"]
    np.testing.assert_allclose(np.asarray(heatmap.x), [0.0, 2.5, 5.0, 7.5])
    order = [t.name for t in fig.data[1:]]
    assert order[-1] == "rest"
    decoded = [[order[int(code)] for code in row] for row in z]
    assert decoded == [list(labels[:4]), list(labels[4:])]
    colors = {t.name: t.marker.color for t in fig.data[1:]}
    assert colors["rest"] == figures.REST_COLOR
    assert len(set(colors.values())) == len(colors)
    assert "s" in fig.layout.xaxis.title.text


def test_condition_timeline_pads_unequal_runs_and_refuses_mismatched_runs():
    fig = figures.plot_condition_timeline(pd.Series(["a", "b", "a"]), [1, 1, 2])
    z = np.asarray(fig.data[0].z)
    assert z.shape == (2, 2) and np.isnan(z[1, 1])
    with pytest.raises(DecodingInputError, match="'runs' must have one value per volume"):
        figures.plot_condition_timeline(["a", "b"], [0])


def test_condition_counts_per_run_add_up():
    labels = ["face", "cat", "face", "rest", "face", "cat"]
    runs = [0, 0, 0, 1, 1, 1]
    fig = figures.plot_condition_counts(labels, runs)
    by_condition = {t.name: list(t.y) for t in fig.data}
    assert by_condition == {"face": [2, 1], "cat": [1, 1], "rest": [0, 1]}
    assert fig.layout.barmode == "stack"
    single = figures.plot_condition_counts(labels)
    assert dict(zip(single.data[0].x, single.data[0].y)) == {"face": 3, "cat": 2, "rest": 1}


def test_class_balance_reports_the_majority_rate():
    fig = figures.plot_class_balance(["face"] * 6 + ["cat"] * 2)
    assert dict(zip(fig.data[0].x, fig.data[0].y)) == {"face": 6, "cat": 2}
    assert "75.0%" in fig.layout.title.text and "unbalanced" in fig.layout.title.text


def test_mean_timecourse_plots_the_voxel_mean_by_condition():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(8, 5)).astype(np.float32)
    labels = np.array(["face", "face", "cat", "cat", "face", "cat", "face", "cat"])
    runs = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    volume_index = np.array([0, 1, 2, 3, 10, 11, 13, 14])
    mask = nib.Nifti1Image(np.ones((5, 1, 1), dtype=np.uint8), np.eye(4))
    masked = MaskedData(X=X, labels=labels, runs=runs, volume_index=volume_index, mask_img=mask, mask_name="vt")
    fig = figures.plot_mean_timecourse(masked, tr=2.0)
    markers = {t.name: t for t in fig.data if t.mode == "markers"}
    np.testing.assert_allclose(np.asarray(markers["face"].y), X[labels == "face"].mean(axis=1), atol=1e-6)
    np.testing.assert_allclose(np.asarray(markers["cat"].x), volume_index[labels == "cat"] * 2.0)
    line = fig.data[0]
    assert np.isnan(np.asarray(line.y, dtype=float)).sum() == 2  # the run change and the dropped volume 12
    same = figures.plot_mean_timecourse(X, labels, runs, 2.0, volume_index=volume_index)
    np.testing.assert_allclose(np.asarray(same.data[0].y, dtype=float), np.asarray(line.y, dtype=float))
    with pytest.raises(DecodingInputError, match="one value per row of X"):
        figures.plot_mean_timecourse(X, labels[:3])


# -- results -------------------------------------------------------------------------


def _result(cv="leave-one-run-out", meaningless=False, seed=0):
    """A small decoding result: 3 runs of 6 samples, face vs cat, made-up predictions."""
    rng = np.random.default_rng(seed)
    runs = np.repeat([0, 1, 2], 6)
    true = np.tile(["face", "cat"], 9)
    predicted = np.where(rng.random(18) < 0.7, true, np.where(true == "face", "cat", "face"))
    fold = runs + 1 if cv == "leave-one-run-out" else np.ones(18, dtype=int)
    predictions = pd.DataFrame({
        "sample": np.arange(18), "volume": np.arange(18) * 2 + 1, "run": runs, "fold": fold,
        "true": true, "predicted": predicted, "correct": true == predicted,
    })
    scores = predictions.groupby("fold")["correct"].mean().to_numpy(dtype=float)
    weights = rng.normal(size=(1, 4))
    mask = np.zeros((3, 3, 3), dtype=bool)
    mask[1, 1, :] = mask[0, 0, 0] = True
    volume = np.zeros((3, 3, 3), dtype=np.float32)
    volume[mask] = weights[0]
    return DecodingResult(
        config=DecodingConfig(cv=cv), fold_scores=scores, mean_score=float(scores.mean()),
        std_score=float(scores.std()), chance_level=0.5, meaningless=meaningless, predictions=predictions,
        classes=("cat", "face"), weights=weights, weight_img=nib.Nifti1Image(volume, np.eye(4)),
        n_samples=18, n_voxels=4, warnings=["a warning"], elapsed_seconds=0.25,
    )


def test_fold_score_bars_are_the_result_scores_with_the_chance_line():
    result = _result()
    fig = figures.plot_fold_scores(result)
    bars = fig.data[0]
    np.testing.assert_allclose(np.asarray(bars.y, dtype=float), result.fold_scores)
    assert list(bars.x) == ["run 0", "run 1", "run 2"]
    assert list(bars.customdata) == [6, 6, 6]  # test samples per fold, shown on hover
    chance = [s for s in fig.layout.shapes if s.name == "chance"]
    assert len(chance) == 1 and chance[0].y0 == chance[0].y1 == result.chance_level
    assert chance[0].line.dash == "dash"
    mean = [s for s in fig.layout.shapes if s.name == "mean"]
    assert mean[0].y0 == pytest.approx(result.mean_score)
    assert list(fig.layout.yaxis.range) == [0, 1]


def test_fold_scores_of_the_training_data_carry_a_warning():
    fig = figures.plot_fold_scores(_result(cv="train", meaningless=True))
    assert list(fig.data[0].x) == ["training data"]
    assert any("training samples themselves" in (a.text or "") for a in fig.layout.annotations)


def test_predictions_figure_marks_every_mistake():
    result = _result()
    fig = figures.plot_predictions(result)
    traces = {t.name: t for t in fig.data}
    wrong = ~result.predictions["correct"].to_numpy()
    assert len(traces["wrong prediction"].x) == wrong.sum()
    assert len(traces["correct prediction"].x) == (~wrong).sum()
    np.testing.assert_array_equal(np.asarray(traces["true condition"].x), result.predictions["volume"])
    assert list(traces["wrong prediction"].y) == list(result.predictions["predicted"][wrong])
    assert f"{(~wrong).sum()} of 18 correct" in fig.layout.title.text


def test_confusion_matrix_from_a_result_and_normalised():
    result = _result()
    fig = figures.plot_confusion_matrix(result)
    expected = pd.crosstab(result.predictions["true"], result.predictions["predicted"])
    z = np.asarray(fig.data[0].z)
    assert list(fig.data[0].y) == ["cat", "face"] and list(fig.data[0].x) == ["cat", "face"]
    np.testing.assert_array_equal(z, expected.loc[["cat", "face"], ["cat", "face"]].to_numpy())
    normalised = figures.plot_confusion_matrix(figures.confusion_table(result), normalize=True)
    np.testing.assert_allclose(np.asarray(normalised.data[0].z).sum(axis=1), 1.0)
    with pytest.raises(DecodingInputError, match="non-negative counts"):
        figures.plot_confusion_matrix(pd.DataFrame([[1, -1], [0, 2]]))


def test_null_distribution_marks_the_observed_score():
    null = np.random.default_rng(0).normal(0.5, 0.05, size=200)
    fig = figures.plot_null_distribution(null, observed=0.8, p_value=1 / 201, chance=0.5)
    np.testing.assert_allclose(np.asarray(fig.data[0].x), null)
    observed = [s for s in fig.layout.shapes if s.name == "observed"]
    assert observed[0].x0 == 0.8
    assert [s.x0 for s in fig.layout.shapes if s.name == "chance"] == [0.5]

    class Outcome:  # what significance.PermutationResult provides
        null_scores = null
        observed_score = 0.7
        p_value = 0.02

    from_result = figures.plot_null_distribution(Outcome())
    assert [s.x0 for s in from_result.layout.shapes if s.name == "observed"] == [0.7]
    with pytest.raises(DecodingInputError, match="'observed' must be a finite number"):
        figures.plot_null_distribution(null, observed=None, p_value=0.1)


def test_score_comparison_sweep_and_paired_folds():
    scores = {"SVC": [0.8, 0.9, 0.7], "most_frequent": [0.5, 0.5, 0.5]}
    comparison = figures.plot_score_comparison(scores, chance=0.5)
    assert [t.name for t in comparison.data] == ["SVC", "most_frequent"]
    np.testing.assert_allclose(np.asarray(comparison.data[0].y), scores["SVC"])

    sweep = figures.plot_score_vs_setting([0.01, 1, 100], [[0.5, 0.6], [0.8, 0.9], [0.7, 0.7]], "C", log_x=True)
    mean = next(t for t in sweep.data if t.name == "mean ± SD")
    np.testing.assert_allclose(np.asarray(mean.y), [0.55, 0.85, 0.7])
    assert sweep.layout.xaxis.type == "log"
    with pytest.raises(DecodingInputError, match="same non-zero length"):
        figures.plot_score_vs_setting([1, 2], [[0.5]], "C")

    paired = figures.plot_paired_folds([0.6, 0.7, 0.8], [0.7, 0.6, 0.9], ["raw", "smoothed"])
    assert len(paired.data) == 4
    assert "B − A = +0.033; 2 of 3 folds higher with B" in paired.layout.title.text
    assert list(paired.data[0].x) == ["A: raw", "B: smoothed"]
    with pytest.raises(DecodingInputError, match="same folds"):
        figures.plot_paired_folds([0.6], [0.7, 0.8], ["a", "b"])


def test_condition_colours_are_stable_across_subsets():
    every = figures.condition_colors(["face", "house", "cat", "rest"])
    subset = figures.condition_colors(["cat", "face"])
    assert every["cat"] == subset["cat"] and every["face"] == subset["face"]
    assert list(figures.condition_colors(["b", "rest", "a"])) == ["a", "b", "rest"]


def test_figures_and_export_do_not_import_streamlit():
    code = "import sys, decoding_core.figures, decoding_core.export; print('streamlit' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"


def test_every_builder_returns_serialisable_figures():
    result = _result()
    built = [
        figures.plot_fold_scores(result),
        figures.plot_predictions(result),
        figures.plot_stat_slices(result.weight_img, display_mode="yx"),
        figures.plot_roi(nib.Nifti1Image((np.asarray(result.weight_img.dataobj) != 0).astype(np.uint8), np.eye(4))),
    ]
    for fig in built:
        assert isinstance(fig, go.Figure)
        json.loads(fig.to_json())
