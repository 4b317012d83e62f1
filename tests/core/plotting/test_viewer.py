"""The weight-map viewer on real data: zoom to the mask, cold-hot colours and threshold, size,
the sign in words, and the background chosen (decoding_core.plotting.slices, decoding_core.map_views)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from decoding_core import map_views, plotting
from decoding_core.config import DecodingConfig
from decoding_core.datasets.files import load_files
from decoding_core.decoding import run_decoding
from decoding_core.errors import DecodingInputError
from decoding_core.plotting import slices


@pytest.fixture(scope="module")
def vt_dataset(haxby_vt_dir):
    """The real VT-only subject-1 file, uploaded with its mask and without an anatomy."""
    return load_files(haxby_vt_dir / "bold_vt.nii.gz", haxby_vt_dir / "labels.txt",
                      mask=haxby_vt_dir / "mask_vt.nii.gz")


@pytest.fixture(scope="module")
def vt_result(vt_dataset):
    return run_decoding(vt_dataset, DecodingConfig(conditions=("face", "cat"), mask_name="uploaded"))


def _panel_ranges(fig):
    return [(list(fig.layout[f"xaxis{n or ''}"].range), list(fig.layout[f"yaxis{n or ''}"].range))
            for n in ("", 2, 3) if fig.layout[f"xaxis{n or ''}"].range is not None]


@pytest.mark.slow
def test_zoom_shows_the_masks_bounding_box_and_the_whole_field_without_it(vt_dataset, vt_result):
    mask = vt_dataset.masks["uploaded"]
    weights = map_views.map_image(vt_result)
    whole = plotting.plot_stat_slices(weights, display_mode="ortho")
    zoomed = plotting.plot_stat_slices(weights, display_mode="ortho", zoom_img=mask)
    assert zoomed.layout.meta["zoomed"] and not whole.layout.meta["zoomed"]
    # The box in millimetres, from the mask's voxels (canonical RAS+ grid) and nibabel's affine.
    canonical = nib.as_closest_canonical(mask)
    inside = np.argwhere(np.asanyarray(canonical.dataobj) != 0)
    corners = nib.affines.apply_affine(canonical.affine, np.stack([inside.min(0), inside.max(0)]))
    zooms = np.asarray(canonical.header.get_zooms()[:3])
    low, high = corners.min(0) - zooms / 2 - 8.0, corners.max(0) + zooms / 2 + 8.0
    sagittal, coronal, axial = _panel_ranges(zoomed)
    assert sagittal[0] == pytest.approx([low[1], high[1]], abs=1e-3)  # y along the sagittal panel
    assert coronal[1] == pytest.approx([low[2], high[2]], abs=1e-3)  # z up the coronal panel
    assert axial[0] == pytest.approx([max(low[0], -1.75), high[0]], abs=1e-3)  # x, clipped to the field
    # Without the zoom: the whole 40 x 64 x 64 field (3.5 x 3.75 x 3.75 mm).
    whole_sagittal = _panel_ranges(whole)[0]
    assert whole_sagittal[0][1] - whole_sagittal[0][0] == pytest.approx(64 * 3.75)
    spans = [sum(x[1] - x[0] for x, _ in _panel_ranges(fig)) for fig in (zoomed, whole)]
    assert spans[0] < 0.6 * spans[1]  # the VT cortex, not a 140 x 240 mm field


@pytest.mark.parametrize("display_mode", ["x", "z", "yx", "ortho"])
def test_every_view_has_equal_millimetres_at_a_sensible_size(display_mode):
    data = np.random.default_rng(0).normal(size=(40, 64, 64)).astype(np.float32)
    img = nib.Nifti1Image(data, np.diag([3.5, 3.75, 3.75, 1.0]))
    fig = plotting.plot_stat_slices(img, display_mode=display_mode)
    layout = fig.layout
    assert 250 <= layout.height <= 480 and layout.width <= 1000  # never a 900 px square for one view
    plot_width = layout.width - layout.margin.l - layout.margin.r
    plot_height = layout.height - layout.margin.t - layout.margin.b
    scales = []
    for n in range(1, len(display_mode.replace("ortho", "xyz")) + 1):
        x_axis, y_axis = layout[f"xaxis{n if n > 1 else ''}"], layout[f"yaxis{n if n > 1 else ''}"]
        x_px = (x_axis.domain[1] - x_axis.domain[0]) * plot_width / (x_axis.range[1] - x_axis.range[0])
        assert y_axis.scaleanchor == f"x{n if n > 1 else ''}" and y_axis.scaleratio == 1
        y_px = plot_height / (y_axis.range[1] - y_axis.range[0])
        scales.append(x_px)
        assert y_px >= x_px - 1e-6  # the y axis fits: scaleanchor keeps 1 mm = 1 mm at x's scale
    assert max(scales) == pytest.approx(min(scales), rel=1e-6)  # one scale for every panel
    # The colour bar sits right of the last panel, in the figure's own right margin.
    assert layout.margin.r <= 130


def test_cold_hot_colours_and_the_threshold_on_the_colour_bar():
    data = np.zeros((6, 6, 6), dtype=np.float32)
    data[1, 1, 1], data[2, 2, 2], data[3, 3, 3] = 2.0, -1.0, 0.1
    fig = plotting.plot_stat_slices(nib.Nifti1Image(data, np.eye(4)), threshold=0.5, cut_coords=(3, 3, 3))
    overlay = next(t for t in fig.data if t.type == "heatmap" and t.showscale)
    assert list(overlay.colorbar.tickvals) == [-2.0, -0.5, 0.0, 0.5, 2.0]
    assert "threshold" in overlay.colorbar.ticktext[3]
    scale = [(float(p), c) for p, c in overlay.colorscale]
    band = [p for p, c in scale if c == slices._HIDDEN_BAND_COLOR]
    assert band == pytest.approx([0.5 - 0.125, 0.5 + 0.125])  # |value| < 0.5 of vmax 2: grey on the bar
    # Below the threshold, and exactly zero, nothing is drawn (transparent).
    z = np.asarray(overlay.z, dtype=float)
    assert np.isnan(z).all() or not np.any(np.abs(z[np.isfinite(z)]) < 0.5)
    assert slices.cold_hot_colorscale(2.0, 0.0)[8][1] == slices.COLD_HOT[8]


def test_mask_outline_is_a_single_contour_line():
    mask = np.zeros((8, 8, 8), dtype=np.uint8)
    mask[2:5, 2:6, 3:5] = 1
    stat = mask * np.float32(1.5)
    fig = plotting.plot_stat_slices(nib.Nifti1Image(stat, np.eye(4)), outline_img=nib.Nifti1Image(mask, np.eye(4)))
    contours = [t for t in fig.data if t.type == "contour"]
    assert len(contours) == 3 and all(c.contours.start == c.contours.end == 0.5 for c in contours)
    assert not any(c.showlegend for c in contours)
    with pytest.raises(DecodingInputError, match="on the map's grid"):
        plotting.plot_stat_slices(nib.Nifti1Image(stat, np.eye(4)),
                                  zoom_img=nib.Nifti1Image(np.ones((4, 4, 4), np.uint8), np.eye(4)))


@pytest.mark.slow
def test_the_sign_sentence_names_scikit_learns_second_class(vt_dataset, vt_result):
    assert tuple(vt_result.classes) == ("cat", "face")
    assert map_views.sign_sentence(vt_result) == "Positive weights: face; negative weights: cat."
    # The sentence is the decision function's own sign: face volumes score higher than cat volumes.
    decision = vt_result.predictions.groupby("true")["decision"].mean()
    assert decision["face"] > 0 > decision["cat"]


def test_multi_class_maps_are_described_one_class_against_the_rest():
    from types import SimpleNamespace

    result = SimpleNamespace(classes=("cat", "face", "house"), weights=np.zeros((3, 5)))
    sentence = map_views.sign_sentence(result, "pattern", 1)
    assert sentence.startswith("One map per class (one vs rest): positive pattern values: face")
    assert "the other 2 classes" in sentence


@pytest.mark.slow
def test_background_is_the_mean_image_with_the_masks_outline_for_a_masked_file(vt_dataset):
    mask = vt_dataset.masks["uploaded"]
    background = map_views.viewer_background(vt_dataset, mask)
    assert "mean functional image" in background.source
    assert background.outline_img is mask  # the mean image is empty outside the VT mask
    assert map_views.viewer_background(None, mask).img is None


def test_background_is_the_mni_template_when_the_image_is_in_mni_space(vt_dataset):
    import dataclasses

    mni_header = vt_dataset.anat_img.header.copy()
    mni_header.set_sform(vt_dataset.affine, code=4)
    anat = nib.Nifti1Image(np.ones(vt_dataset.shape[:3], np.float32), vt_dataset.affine, mni_header)
    dataset = dataclasses.replace(vt_dataset, anat_img=anat)
    background = map_views.viewer_background(dataset)
    assert "MNI152" in background.source
    assert background.img.shape == (99, 117, 95)  # nilearn's 2 mm template, shipped with nilearn


def test_an_uploaded_anatomy_is_the_background(vt_dataset):
    import dataclasses

    dataset = dataclasses.replace(vt_dataset, description=vt_dataset.description.replace(
        "the mean functional image", "the uploaded anatomical image"))
    background = map_views.viewer_background(dataset)
    assert background.img is dataset.anat_img and background.outline_img is None


def test_titles_and_colour_bar_titles_are_escaped():
    img = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4))
    fig = plotting.plot_stat_slices(img, title="<b>x</b> vs =cmd|' /C calc'!A0", colorbar_title="<i>w</i>")
    assert fig.layout.title.text.startswith("&lt;b&gt;x&lt;/b&gt;")
    overlay = next(t for t in fig.data if t.type == "heatmap" and t.showscale)
    assert overlay.colorbar.title.text == "&lt;i&gt;w&lt;/i&gt;"


def test_atlas_label_names_are_escaped_in_the_legend():
    atlas = np.zeros((6, 6, 6), dtype=np.int16)
    atlas[1:3, 1:3, 1:3], atlas[3:5, 3:5, 3:5] = 1, 2
    fig = plotting.plot_roi(nib.Nifti1Image(atlas, np.eye(4)), label_names={1: "<b>x</b>", 2: "=cmd|' /C calc'!A0"})
    names = [t.name for t in fig.data if t.showlegend]
    assert names == ["&lt;b&gt;x&lt;/b&gt;", "=cmd|&#x27; /C calc&#x27;!A0"]
