"""Tests of decoding_core.plotting.slices: slice geometry, clicks and regions of interest."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import plotly.colors
import pytest

from decoding_core import plotting
from decoding_core.plotting import slices
from decoding_core.errors import DecodingInputError

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
    fig = plotting.plot_stat_slices(img, cut_coords=cut, threshold=0.5)

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
    fig = plotting.plot_stat_slices(nib.Nifti1Image(data, np.eye(4)), cut_coords=(2, 2, 2), threshold=0.5,
                                   display_mode="x")
    z = np.asarray(_panels(fig)[0]["overlay"].z)  # rows: k, columns: j
    assert z[2, 2] == 3.0 and z[2, 4] == pytest.approx(0.6)
    assert np.isnan(z[2, 3])  # |-0.4| < threshold
    assert np.isnan(z[0, 0])  # exact zero
    assert np.count_nonzero(np.isfinite(z)) == 2


def test_colour_scale_is_symmetric():
    data = _random_map()
    data[1, 1, 1] = -9.0
    fig = plotting.plot_stat_slices(nib.Nifti1Image(data, HAXBY_LIKE_AFFINE))
    overlays = [p["overlay"] for p in _panels(fig)]
    for overlay in overlays:
        assert overlay.zmin == -overlay.zmax == -9.0
        # nilearn's cold_hot: dark at zero (weak weights do not look like signal), not RdBu's white.
        assert [color for _, color in overlay.colorscale] == list(slices.COLD_HOT)
        middle = dict(overlay.colorscale)[0.5]
        assert sum(plotly.colors.hex_to_rgb(middle)) < 60
    assert sum(bool(o.showscale) for o in overlays) == 1  # a single colour bar
    fixed = plotting.plot_stat_slices(nib.Nifti1Image(data, HAXBY_LIKE_AFFINE), vmax=2.5)
    assert [(p["overlay"].zmin, p["overlay"].zmax) for p in _panels(fixed)] == [(-2.5, 2.5)] * 3


def test_axes_are_in_millimetres_and_keep_anisotropic_voxels_to_scale():
    img = nib.Nifti1Image(_random_map((40, 64, 64)), HAXBY_LIKE_AFFINE)
    fig = plotting.plot_stat_slices(img, cut_coords=(10, 20, 30))
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
    fig = plotting.plot_stat_slices(img, cut_coords=(3, 4, 5), display_mode="z")
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
    fig = plotting.plot_stat_slices(img, cut_coords=cut)
    for panel in _panels(fig):
        grid = panel["grid"]
        assert grid.marker.opacity == 0
        assert grid.hoverinfo != "skip"  # a skipped trace cannot be clicked
        assert "customdata[0]" in grid.hovertemplate
        customdata = np.asarray(grid.customdata)
        assert customdata.shape[1] == 3
        values = np.asarray(grid.marker.color)
        for row, value in zip(customdata, values):
            voxel = plotting.voxel_from_click({str(n): int(v) for n, v in enumerate(row)})
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
    fig = plotting.plot_stat_slices(img, cut_coords=(2, 5, 6))
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
    assert plotting.default_cut_coords(img) == (6, 1, 2)
    fig = plotting.plot_stat_slices(img)
    assert fig.layout.meta["cut_coords"] == [6, 1, 2]
    empty = nib.Nifti1Image(np.zeros((9, 8, 7), dtype=np.float32), np.eye(4))
    assert plotting.default_cut_coords(empty) == (4, 4, 3)


def test_centre_of_mass_cut_of_a_two_part_mask_lies_inside_the_mask():
    mask = np.zeros((20, 6, 6), dtype=np.uint8)
    mask[1:4, 2:4, 2:4] = 1  # left "hemisphere"
    mask[16:19, 2:4, 2:4] = 1  # right one; the centroid (x=10) is outside both
    cut = plotting.default_cut_coords(nib.Nifti1Image(mask, np.eye(4)), method="center_of_mass")
    assert mask[cut] == 1
    with pytest.raises(DecodingInputError, match="'method' must be one of"):
        plotting.default_cut_coords(nib.Nifti1Image(mask, np.eye(4)), method="middle")


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
    fig = plotting.plot_stat_slices(nib.Nifti1Image(_random_map(), HAXBY_LIKE_AFFINE), display_mode=mode)
    assert [t.split()[0] for t in _panel_titles(fig)] == titles
    assert len(_panels(fig)) == len(titles)


@pytest.mark.parametrize(
    "mode, titles",
    [("ortho", ["Axial"]), ("yx", ["Axial"]), ("xz", ["Axial"]), ("z", ["Axial"])],
)
def test_a_single_slice_image_shows_its_slice_not_flat_lines(mode, titles):
    # Haxby's one-slice file (40 x 20 x 1): sagittal and coronal would be one voxel tall.
    one_slice = nib.Nifti1Image(_random_map((12, 10, 1)), HAXBY_LIKE_AFFINE)
    for fig in (plotting.plot_stat_slices(one_slice, display_mode=mode),
                plotting.plot_roi(nib.Nifti1Image((_random_map((12, 10, 1)) > 0).astype(np.uint8),
                                                 HAXBY_LIKE_AFFINE), display_mode=mode)):
        assert [t.split()[0] for t in _panel_titles(fig)] == titles
        assert fig.layout.meta["display_mode"] == "z"


def test_a_thin_slab_keeps_every_view_with_area():
    slab = nib.Nifti1Image(_random_map((12, 10, 2)), HAXBY_LIKE_AFFINE)
    fig = plotting.plot_stat_slices(slab, display_mode="ortho")
    assert [t.split()[0] for t in _panel_titles(fig)] == ["Sagittal", "Coronal", "Axial"]


@pytest.mark.parametrize("mode", ["xx", "w", "", "xyzx", None, "tiled"])
def test_unknown_display_modes_are_refused(mode):
    with pytest.raises(DecodingInputError, match="'display_mode' must be 'ortho'"):
        plotting.plot_stat_slices(nib.Nifti1Image(_random_map(), np.eye(4)), display_mode=mode)


@pytest.mark.parametrize("cut", [(1, 2), (1, 2, 99), (-1, 0, 0), (1.5, 2, 3), "123", (1, 2, np.nan)])
def test_bad_cut_coords_are_refused(cut):
    with pytest.raises(DecodingInputError, match="'cut_coords' must be three voxel indices"):
        plotting.plot_stat_slices(nib.Nifti1Image(_random_map(), np.eye(4)), cut_coords=cut)


def test_bad_images_and_options_are_refused():
    with pytest.raises(DecodingInputError, match="'stat_img' must be a nibabel image"):
        plotting.plot_stat_slices(np.zeros((3, 3, 3)))
    four_d = nib.Nifti1Image(np.stack([_random_map(), -_random_map()], axis=-1), np.eye(4))
    with pytest.raises(DecodingInputError, match="4D with 2 volumes; choose one with 'map_index'"):
        plotting.plot_stat_slices(four_d)
    second = plotting.plot_stat_slices(four_d, map_index=1, cut_coords=(1, 1, 1), display_mode="x")
    np.testing.assert_array_equal(
        np.nan_to_num(np.asarray(_panels(second)[0]["overlay"].z)), -_random_map()[1].T
    )
    with pytest.raises(DecodingInputError, match="'threshold' must be a non-negative number"):
        plotting.plot_stat_slices(nib.Nifti1Image(_random_map(), np.eye(4)), threshold=-1)
    with pytest.raises(DecodingInputError, match="'vmax' must be a positive number"):
        plotting.plot_stat_slices(nib.Nifti1Image(_random_map(), np.eye(4)), vmax=0)


def test_background_is_grey_without_hover_and_resampled_when_its_grid_differs():
    data = _random_map((20, 16, 12))
    img = nib.Nifti1Image(data, HAXBY_LIKE_AFFINE)
    anatomy = np.random.default_rng(1).uniform(50, 500, size=(20, 16, 12)).astype(np.float32)
    fig = plotting.plot_stat_slices(img, nib.Nifti1Image(anatomy, HAXBY_LIKE_AFFINE), cut_coords=(5, 5, 5))
    for panel in _panels(fig):
        background = panel["anatomy"]
        assert background.showscale is False and background.hoverinfo == "skip"
        assert np.asarray(background.z).shape == np.asarray(panel["overlay"].z).shape
    # A finer anatomy on another grid (1.75 mm) is brought onto the map's grid.
    fine_affine = HAXBY_LIKE_AFFINE.copy()
    fine_affine[:3, :3] /= 2
    fine = nib.Nifti1Image(np.ones((40, 32, 24), dtype=np.float32) * 100, fine_affine)
    resampled = plotting.plot_stat_slices(img, fine, cut_coords=(5, 5, 5))
    for panel in _panels(resampled):
        assert np.asarray(panel["anatomy"].z).shape == np.asarray(panel["overlay"].z).shape


def test_figure_json_stays_small_for_a_haxby_sized_map_with_anatomy():
    rng = np.random.default_rng(0)
    shape = (40, 64, 64)
    # Worst case: map and anatomy non-zero in every voxel.
    img = nib.Nifti1Image(rng.normal(size=shape).astype(np.float32), HAXBY_LIKE_AFFINE)
    anatomy = nib.Nifti1Image(rng.uniform(1, 1000, size=shape).astype(np.float32), HAXBY_LIKE_AFFINE)
    fig = plotting.plot_stat_slices(img, anatomy, title="SVM weights")
    size = len(fig.to_json())
    assert size < 300_000, size
    roi = plotting.plot_roi(nib.Nifti1Image((rng.random(shape) > 0.5).astype(np.uint8), HAXBY_LIKE_AFFINE), anatomy)
    assert len(roi.to_json()) < 300_000
    # Slices, not volumes: no trace holds more than one 64 x 64 plane.
    assert max(np.asarray(t.z).size for t in fig.data if t.type == "heatmap") == 64 * 64


def test_large_grids_thin_the_click_grid():
    img = nib.Nifti1Image(np.ones((200, 200, 4), dtype=np.float32), np.eye(4))
    fig = plotting.plot_stat_slices(img, display_mode="z", cut_coords=(0, 0, 1))
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
    assert plotting.voxel_from_click(payload) == (4, 5, 6)


def test_voxel_from_click_refuses_malformed_points_and_ignores_empty_selections():
    assert plotting.voxel_from_click({"points": [], "box": []}) is None
    for payload in ({"0": 1, "1": 2}, [1, 2], [1, 2, -3], [1, 2, 3.5], "abc", {"0": "x", "1": 2, "2": 3}):
        with pytest.raises(DecodingInputError, match="voxel indices|Voxel indices"):
            plotting.voxel_from_click(payload)


# -- regions of interest -------------------------------------------------------------


def test_roi_is_a_single_colour_overlay_over_anatomy():
    mask = np.zeros((10, 12, 8), dtype=np.uint8)
    mask[3:6, 4:8, 2:5] = 1
    anatomy = nib.Nifti1Image(np.full((10, 12, 8), 300.0, dtype=np.float32), HAXBY_LIKE_AFFINE)
    fig = plotting.plot_roi(nib.Nifti1Image(mask, HAXBY_LIKE_AFFINE), anatomy, color="#00ff00")
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
    fig = plotting.plot_roi(nib.Nifti1Image(atlas, np.eye(4)), cut_coords=(5, 5, 5), label_names={7: "house"})
    legend = [t.name for t in fig.data if t.showlegend]
    assert legend == ["label 2", "house", "label 11"]
    axial = np.asarray(_panels(fig)[2]["overlay"].z)  # rows: j, columns: i
    assert axial[2, 2] == 0 and axial[7, 7] == 1 and axial[5, 5] == 2
    assert np.isnan(axial[0, 0])
