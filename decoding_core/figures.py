"""Pure Plotly figure builders: brain slices, ROIs, scores, predictions, designs.

Every function takes plain data (nibabel images, numpy arrays, pandas objects,
`DecodingResult`) and returns a ``plotly.graph_objects.Figure``. Nothing here
shows a figure or reads application state, so the app, notebooks and tests
draw the same figures.

Brain slices
------------
`plot_stat_slices` and `plot_roi` draw 2-D slices the way nilearn's
``plot_stat_map`` / ``plot_roi`` do, in Plotly:

- Images are reoriented to the closest RAS+ orientation for display
  (``nibabel.as_closest_canonical``), and shown in the **neurological
  convention**: the subject's left is on the left of coronal and axial views
  (letters L/R mark the edges; sagittal views run P to A).
- Axes are in millimetres and each panel keeps a 1:1 aspect ratio
  (``scaleanchor``), so anisotropic voxels (Haxby: 3.5 x 3.75 x 3.75 mm) keep
  their true proportions. For an oblique affine the axes are the voxel axes
  closest to x, y, z, graduated in millimetres through the cut.
- ``cut_coords`` are **voxel indices (i, j, k) of the image as given** (not
  of the reoriented image, not millimetres), so the app can store the cut of
  the user's data directly.
- Each panel carries a transparent scatter grid whose points hold the
  original voxel indices as ``customdata``: `voxel_from_click` turns a clicked
  point back into ``(i, j, k)``. This grid also carries the hover text: a
  browser check with plotly.js 4 showed that a scatter drawn over a heatmap
  takes the hover, and that ``hoverinfo="none"`` on it would hide every hover
  label, so it uses a ``hovertemplate`` instead (which keeps it clickable).
- Only 2-D slices are sent, as typed numpy arrays (base64 in the JSON).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import nibabel as nib
import numpy as np
import pandas as pd
import plotly.colors
import plotly.graph_objects as go
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation
from plotly.subplots import make_subplots

from decoding_core.errors import DecodingInputError, DecodingInputTypeError
from decoding_core.export import fold_table

__all__ = [
    "condition_colors",
    "confusion_table",
    "default_cut_coords",
    "plot_class_balance",
    "plot_condition_counts",
    "plot_condition_timeline",
    "plot_confusion_matrix",
    "plot_fold_scores",
    "plot_mean_timecourse",
    "plot_null_distribution",
    "plot_paired_folds",
    "plot_predictions",
    "plot_roi",
    "plot_score_comparison",
    "plot_score_vs_setting",
    "plot_stat_slices",
    "voxel_from_click",
]

# -- shared look ------------------------------------------------------------

#: The label of volumes without a stimulus; drawn in light gray everywhere.
REST_LABEL = "rest"
REST_COLOR = "#d9d9d9"
#: Fixed colour order, so that a category keeps its colour across figures.
_KNOWN_CONDITIONS = ("face", "house", "cat", "bottle", "scissors", "shoe", "chair", "scrambledpix")
_PALETTE = tuple(plotly.colors.qualitative.D3) + tuple(plotly.colors.qualitative.Dark24)
_SCORE_COLOR = "#1f77b4"
_CHANCE_COLOR = "#7f7f7f"
_ERROR_COLOR = "#d62728"
_CORRECT_COLOR = "#2ca02c"
_FONT = dict(size=13)

# -- slice views ------------------------------------------------------------


@dataclass(frozen=True)
class _View:
    letter: str  # "x", "y" or "z": the RAS axis that is cut
    name: str
    axis: int  # canonical axis held fixed
    horizontal: int  # canonical axis along the screen's x
    vertical: int  # canonical axis along the screen's y
    edges: tuple  # letters at the (left, right) edges, neurological convention


_VIEWS = {
    "x": _View("x", "Sagittal", 0, 1, 2, ("P", "A")),
    "y": _View("y", "Coronal", 1, 0, 2, ("L", "R")),
    "z": _View("z", "Axial", 2, 0, 1, ("L", "R")),
}
_AXIS_LETTERS = "xyz"
#: Beyond this many voxels a panel's click grid takes every n-th voxel (JSON size).
_MAX_CLICK_POINTS_PER_PANEL = 12_000
#: Width in pixels the default height is computed for (Streamlit's main column).
_REFERENCE_WIDTH = 900
_SLICE_MARGIN = dict(l=55, r=20, t=60, b=50)


@dataclass(frozen=True)
class _Reorientation:
    """How a 3D grid maps onto its closest RAS+ (canonical) grid.

    ``canonical_data = apply_orientation(data, ornt)``, exactly as
    ``nibabel.as_closest_canonical`` does.
    """

    shape: tuple
    ornt: np.ndarray
    affine: np.ndarray
    canonical_affine: np.ndarray
    canonical_shape: tuple

    @classmethod
    def of(cls, shape, affine) -> "_Reorientation":
        affine = np.asarray(affine, dtype=float)
        if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
            raise DecodingInputError(
                "The image's affine must be a finite 4x4 matrix. Check the image header."
            )
        if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
            raise DecodingInputError(
                "The image's affine is degenerate (a voxel has zero size). "
                "Check the image header (sform/qform)."
            )
        shape = tuple(int(n) for n in shape[:3])
        ornt = io_orientation(affine)
        canonical_affine = affine @ inv_ornt_aff(ornt, shape)
        canonical_shape = [0, 0, 0]
        for axis, (out_axis, _flip) in enumerate(ornt):
            canonical_shape[int(out_axis)] = shape[axis]
        return cls(shape, ornt, affine, canonical_affine, tuple(canonical_shape))

    def data(self, array: np.ndarray) -> np.ndarray:
        return apply_orientation(array, self.ornt)

    def to_canonical(self, ijk) -> tuple:
        canonical = [0, 0, 0]
        for axis, (out_axis, flip) in enumerate(self.ornt):
            index = ijk[axis]
            canonical[int(out_axis)] = index if flip > 0 else self.shape[axis] - 1 - index
        return tuple(canonical)

    def to_original(self, canonical_indices) -> tuple:
        """Original voxel indices of canonical ones (ints or broadcastable arrays)."""
        original = []
        for axis, (out_axis, flip) in enumerate(self.ornt):
            index = canonical_indices[int(out_axis)]
            original.append(index if flip > 0 else self.shape[axis] - 1 - index)
        return tuple(original)

    @property
    def zooms(self) -> np.ndarray:
        return np.sqrt((self.canonical_affine[:3, :3] ** 2).sum(axis=0))

    def axis_mm(self, canonical_cut) -> list:
        """Millimetre coordinates of every voxel along each canonical axis, through the cut."""
        world_cut = self.canonical_affine @ np.array([*canonical_cut, 1.0])
        zooms = self.zooms
        return [
            (world_cut[b] + (np.arange(self.canonical_shape[b]) - canonical_cut[b]) * zooms[b]).astype(
                np.float32
            )
            for b in range(3)
        ]

    def world(self, ijk) -> np.ndarray:
        return (self.affine @ np.array([*ijk, 1.0]))[:3]


def _check_image(img, name: str) -> None:
    if not isinstance(img, nib.spatialimages.SpatialImage):
        raise DecodingInputTypeError(
            f"'{name}' must be a nibabel image (e.g. nibabel.Nifti1Image). Got {type(img).__name__}."
        )
    if any(int(n) == 0 for n in img.shape):
        raise DecodingInputError(f"'{name}' is empty: its shape is {tuple(img.shape)}.")


def _volume(img, name: str, map_index: int | None = None) -> np.ndarray:
    """The image's 3D data as float32 (a 4D image needs ``map_index`` unless it has one volume)."""
    _check_image(img, name)
    shape = tuple(img.shape)
    if len(shape) == 3:
        data = np.asarray(img.dataobj, dtype=np.float32)
    elif len(shape) == 4:
        if map_index is None:
            if shape[3] != 1:
                raise DecodingInputError(
                    f"'{name}' is 4D with {shape[3]} volumes; choose one with 'map_index' "
                    f"(0 to {shape[3] - 1})."
                )
            map_index = 0
        if not isinstance(map_index, Integral) or not 0 <= map_index < shape[3]:
            raise DecodingInputError(
                f"'map_index' must be an integer in the range [0, {shape[3] - 1}]. Got {map_index!r}."
            )
        data = np.asarray(img.dataobj[..., int(map_index)], dtype=np.float32)
    else:
        raise DecodingInputError(
            f"'{name}' must be a 3D image (x, y, z). Got an image of shape {shape}."
        )
    return data


def _finite(data: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(data), data, 0).astype(np.float32, copy=False)


def default_cut_coords(img, *, method: str = "peak", map_index: int | None = None) -> tuple:
    """Default cut of a slice figure, as voxel indices of ``img``.

    Parameters
    ----------
    img : nibabel image, 3D (or 4D with ``map_index``)
    method : {"peak", "center_of_mass"}, default="peak"
        ``"peak"``: the voxel of largest absolute value (first one in C order
        when tied), as nilearn centres a statistical map on its strongest
        voxel. ``"center_of_mass"``: the voxel of the non-zero region nearest to its
        centre of mass (for a mask: its centroid, or, when the centroid lies outside the
        mask, as between two hemispheres, the nearest voxel inside it).
    map_index : int, optional
        The volume of a 4D image.

    Returns
    -------
    tuple of 3 int
        ``(i, j, k)``; the centre of the grid when the image is all zero.
    """
    data = _finite(_volume(img, "img", map_index))
    if method not in ("peak", "center_of_mass"):
        raise DecodingInputError(f"'method' must be one of ['peak', 'center_of_mass']. Got {method!r}.")
    magnitude = np.abs(data)
    if not magnitude.any():
        return tuple(int(n) // 2 for n in data.shape)
    if method == "peak":
        return tuple(int(v) for v in np.unravel_index(int(np.argmax(magnitude)), data.shape))
    inside = np.argwhere(magnitude > 0)
    centre = inside.mean(axis=0)
    nearest = inside[np.argmin(((inside - centre) ** 2).sum(axis=1))]
    return tuple(int(v) for v in nearest)


def _check_cut_coords(cut_coords, shape) -> tuple:
    message = (
        f"'cut_coords' must be three voxel indices (i, j, k) inside the image of shape "
        f"{tuple(shape[:3])}. Got {cut_coords!r}."
    )
    if isinstance(cut_coords, (str, bytes)) or not isinstance(cut_coords, (Sequence, np.ndarray)):
        raise DecodingInputError(message)
    values = list(cut_coords)
    if len(values) != 3:
        raise DecodingInputError(message)
    indices = []
    for value, size in zip(values, shape[:3]):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise DecodingInputError(message)
        if int(value) != value or not 0 <= int(value) < size:
            raise DecodingInputError(message)
        indices.append(int(value))
    return tuple(indices)


def _parse_display_mode(display_mode) -> str:
    message = (
        "'display_mode' must be 'ortho' or one, two or three different letters of "
        f"'x' (sagittal), 'y' (coronal), 'z' (axial), e.g. 'z' or 'yx'. Got {display_mode!r}."
    )
    if not isinstance(display_mode, str):
        raise DecodingInputError(message)
    views = "xyz" if display_mode == "ortho" else display_mode
    if not 1 <= len(views) <= 3 or len(set(views)) != len(views) or set(views) - set("xyz"):
        raise DecodingInputError(message)
    return views


def _check_positive(value, name, *, allow_none=True, allow_zero=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or (
        value < 0 or (value == 0 and not allow_zero)
    ):
        expected = "a non-negative number" if allow_zero else "a positive number"
        raise DecodingInputError(f"'{name}' must be {expected}. Got {value!r}.")
    return float(value)


def _background_and_pointable(bg_img, canonical, shape, affine, reorientation):
    """The displayed anatomy (or None) and which voxels the click grid covers.

    The grid covers the map's nonzero voxels and the head; without anatomy, every voxel
    (any voxel may be the next cut).
    """
    pointable = canonical != 0
    if bg_img is None:
        pointable[:] = True
        return None, pointable
    target = nib.Nifti1Image(np.zeros(shape, dtype=np.uint8), affine)
    grey, head = _background_volume(bg_img, target, shape, affine)
    pointable |= reorientation.data(head)
    return reorientation.data(grey), pointable


def _background_volume(bg_img, target_img, shape, affine) -> tuple:
    """Background anatomy on the target grid: uint8 grey levels (0 = black) and its non-zero voxels."""
    _check_image(bg_img, "bg_img")
    if len(bg_img.shape) == 4 and bg_img.shape[3] == 1:
        bg_img = nib.Nifti1Image(np.asarray(bg_img.dataobj)[..., 0], bg_img.affine)
    if len(bg_img.shape) != 3:
        raise DecodingInputError(
            f"'bg_img' must be a 3D image (e.g. the anatomy or the mean functional image). "
            f"Got an image of shape {tuple(bg_img.shape)}."
        )
    if tuple(bg_img.shape) != tuple(shape) or not np.allclose(bg_img.affine, affine, atol=1e-3):
        # Resample onto the statistical map's grid; nilearn is imported only when needed.
        from nilearn.image import resample_to_img

        source = nib.Nifti1Image(np.asarray(bg_img.dataobj, dtype=np.float32), bg_img.affine)
        bg_img = resample_to_img(
            source, target_img, interpolation="continuous", force_resample=True, copy_header=True
        )
    data = _finite(np.asarray(bg_img.dataobj, dtype=np.float32))
    nonzero = data[data != 0]
    if nonzero.size == 0:
        return np.zeros(data.shape, dtype=np.uint8), data != 0
    low, high = np.percentile(nonzero, [1.0, 99.5])
    if high <= low:
        low, high = float(nonzero.min()), float(nonzero.max())
    if high <= low:
        high = low + 1.0
    scaled = np.clip((data - low) / (high - low), 0.0, 1.0) * 255.0
    scaled[data == 0] = 0
    return np.round(scaled).astype(np.uint8), data != 0


def _take_slice(volume: np.ndarray, view: _View, canonical_cut) -> np.ndarray:
    """The 2-D slice of a canonical volume, transposed so rows run along the vertical axis."""
    plane = np.take(volume, canonical_cut[view.axis], axis=view.axis)  # (horizontal, vertical)
    return np.ascontiguousarray(plane.T)


def _index_dtype(shape):
    largest = max(shape)
    if largest <= np.iinfo(np.uint8).max + 1:
        return np.uint8
    if largest <= np.iinfo(np.uint16).max + 1:
        return np.uint16
    return np.int32


def _axis_ref(col: int, letter: str) -> str:
    return letter if col == 1 else f"{letter}{col}"


def _views_with_area(views: str, canonical_shape) -> str:
    """``views`` without the panels that would be one voxel thick (a line, not a slice).

    A single-slice or thin-slab image has no sagittal or coronal picture to show: its
    in-plane views are kept instead. When every view is flat, they are all kept.
    """
    def has_area(letter: str) -> bool:
        view = _VIEWS[letter]
        return canonical_shape[view.horizontal] > 1 and canonical_shape[view.vertical] > 1

    kept = "".join(letter for letter in views if has_area(letter))
    return kept or "".join(letter for letter in _AXIS_LETTERS if has_area(letter)) or views


def _slice_figure(
    *,
    reorientation: _Reorientation,
    cut_coords: tuple,
    views: str,
    background: np.ndarray | None,
    make_overlay,
    hover_values: np.ndarray,
    pointable: np.ndarray,
    hover_label: str,
    hover_format: str,
    title: str | None,
    height: int | None,
    right_margin: int,
) -> go.Figure:
    """The geometry shared by `plot_stat_slices` and `plot_roi`.

    ``make_overlay(view, canonical_cut, x_mm, y_mm, first)`` returns the overlay
    traces of one panel; ``hover_values`` is the canonical volume whose value the
    hover text shows; ``pointable`` (canonical, bool) marks the voxels the
    click grid covers (inside the head or the map: the black surround needs
    no points, which keeps the JSON small).
    """
    canonical_cut = reorientation.to_canonical(cut_coords)
    coords = reorientation.axis_mm(canonical_cut)
    zooms = reorientation.zooms
    world_cut = reorientation.world(cut_coords)
    shape_c = reorientation.canonical_shape
    views = _views_with_area(views, shape_c)
    panel_views = [_VIEWS[letter] for letter in views]

    widths = [shape_c[v.horizontal] * zooms[v.horizontal] for v in panel_views]
    heights_mm = [shape_c[v.vertical] * zooms[v.vertical] for v in panel_views]
    titles = [f"{v.name} {v.letter}={world_cut[v.axis]:.1f} mm" for v in panel_views]
    # Room for the next panel's tick labels and axis title at ~700 px.
    spacing = 0.1 if len(panel_views) > 1 else 0.0
    fig = make_subplots(
        rows=1,
        cols=len(panel_views),
        column_widths=[w / sum(widths) for w in widths],
        horizontal_spacing=spacing,
        subplot_titles=titles,
    )
    index_dtype = _index_dtype(reorientation.shape)

    for col, view in enumerate(panel_views, start=1):
        x_mm = coords[view.horizontal]
        y_mm = coords[view.vertical]
        if background is not None:
            fig.add_trace(
                go.Heatmap(
                    z=_take_slice(background, view, canonical_cut),
                    x=x_mm,
                    y=y_mm,
                    colorscale="gray",
                    zmin=0,
                    zmax=255,
                    showscale=False,
                    hoverinfo="skip",
                    name="anatomy",
                ),
                row=1,
                col=col,
            )
        for trace in make_overlay(view, canonical_cut, x_mm, y_mm, col == 1):
            fig.add_trace(trace, row=1, col=col)

        # Transparent click-and-hover grid, added last so it takes the hover.
        step = max(1, math.ceil(math.sqrt(len(x_mm) * len(y_mm) / _MAX_CLICK_POINTS_PER_PANEL)))
        h_index = np.arange(0, len(x_mm), step)
        v_index = np.arange(0, len(y_mm), step)
        grid_v, grid_h = np.meshgrid(v_index, h_index, indexing="ij")
        canonical = [None, None, None]
        canonical[view.axis] = np.full(grid_h.size, canonical_cut[view.axis])
        canonical[view.horizontal] = grid_h.ravel()
        canonical[view.vertical] = grid_v.ravel()
        original = reorientation.to_original(canonical)
        values = _take_slice(hover_values, view, canonical_cut)[np.ix_(v_index, h_index)].ravel()
        keep = _take_slice(pointable, view, canonical_cut)[np.ix_(v_index, h_index)].ravel()
        if not keep.any():  # an empty slice stays clickable everywhere
            keep[:] = True
        h_letter = _AXIS_LETTERS[view.horizontal]
        v_letter = _AXIS_LETTERS[view.vertical]
        fig.add_trace(
            go.Scatter(
                x=x_mm[grid_h.ravel()[keep]],
                y=y_mm[grid_v.ravel()[keep]],
                mode="markers",
                marker=dict(size=6, opacity=0, color=values[keep].astype(np.float32), showscale=False),
                selected=dict(marker=dict(opacity=0)),
                unselected=dict(marker=dict(opacity=0)),
                customdata=np.stack(original, axis=1)[keep].astype(index_dtype),
                hovertemplate=(
                    f"{view.name}<br>voxel (i, j, k) = (%{{customdata[0]}}, %{{customdata[1]}}, "
                    f"%{{customdata[2]}})<br>{h_letter} = %{{x:.1f}} mm, {v_letter} = %{{y:.1f}} mm"
                    f"<br>{hover_label}: %{{marker.color:{hover_format}}}<extra></extra>"
                ),
                hoverlabel=dict(bgcolor="rgba(255,255,255,0.92)", font=dict(color="black")),
                showlegend=False,
                name="voxels",
            ),
            row=1,
            col=col,
        )

        x_ref, y_ref = _axis_ref(col, "x"), _axis_ref(col, "y")
        half_h, half_v = zooms[view.horizontal] / 2, zooms[view.vertical] / 2
        x_range = [float(x_mm[0] - half_h), float(x_mm[-1] + half_h)]
        y_range = [float(y_mm[0] - half_v), float(y_mm[-1] + half_v)]
        fig.update_xaxes(
            range=x_range,
            title=dict(text=f"{h_letter} (mm)", standoff=4, font=dict(size=12)),
            tickfont=dict(size=11),
            constrain="domain",
            showgrid=False,
            zeroline=False,
            ticks="outside",
            row=1,
            col=col,
        )
        fig.update_yaxes(
            range=y_range,
            title=dict(text=f"{v_letter} (mm)", standoff=2, font=dict(size=12)),
            tickfont=dict(size=11),
            scaleanchor=x_ref,
            scaleratio=1,
            constrain="domain",
            constraintoward="top",
            showgrid=False,
            zeroline=False,
            ticks="outside",
            row=1,
            col=col,
        )
        # Crosshair through the cut.
        cross = dict(color="rgba(0,220,0,0.75)", width=1)
        cut_x = float(x_mm[canonical_cut[view.horizontal]])
        cut_y = float(y_mm[canonical_cut[view.vertical]])
        fig.add_shape(type="line", xref=x_ref, yref=y_ref, x0=cut_x, x1=cut_x, y0=y_range[0],
                      y1=y_range[1], line=cross, name="crosshair")
        fig.add_shape(type="line", xref=x_ref, yref=y_ref, x0=x_range[0], x1=x_range[1], y0=cut_y,
                      y1=cut_y, line=cross, name="crosshair")
        for position, letter in zip((0.02, 0.98), view.edges):
            fig.add_annotation(
                text=f"<b>{letter}</b>", xref=f"{x_ref} domain", yref=f"{y_ref} domain", x=position,
                y=0.98, xanchor="left" if position < 0.5 else "right", yanchor="top",
                showarrow=False, font=dict(color="white", size=13),
            )

    if height is None:
        margin = _SLICE_MARGIN
        usable = _REFERENCE_WIDTH - margin["l"] - right_margin - spacing * _REFERENCE_WIDTH * (len(widths) - 1)
        px_per_mm = usable / sum(widths)
        height = int(min(700, max(260, max(heights_mm) * px_per_mm + margin["t"] + margin["b"])))
    else:
        if isinstance(height, bool) or not isinstance(height, Integral) or not 100 <= height <= 4000:
            raise DecodingInputError(f"'height' must be an integer in the range [100, 4000]. Got {height!r}.")
    for annotation in fig.layout.annotations:
        if annotation.text in titles:
            annotation.font.size = 13
            # Lift the panel titles off the image (their descenders touched its top edge).
            annotation.yshift = 6
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)) if title else None,
        height=int(height),
        margin=dict(_SLICE_MARGIN, r=right_margin, t=_SLICE_MARGIN["t"] + (25 if title else 0)),
        plot_bgcolor="black",
        # The default template adds ~6 KB and nothing these panels use.
        template="none",
        hovermode="closest",
        font=_FONT,
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
        meta=dict(
            cut_coords=[int(c) for c in cut_coords],
            display_mode=views,
            convention="neurological (left on the left)",
        ),
    )
    return fig


def plot_stat_slices(
    stat_img,
    bg_img=None,
    *,
    cut_coords=None,
    display_mode: str = "ortho",
    threshold: float = 0.0,
    vmax: float | None = None,
    title: str | None = None,
    colorbar_title: str = "weight",
    height: int | None = None,
    map_index: int | None = None,
) -> go.Figure:
    """Orthogonal slices of a statistical map over an anatomy, like nilearn's ``plot_stat_map``.

    Parameters
    ----------
    stat_img : nibabel image
        3D map (e.g. ``DecodingResult.weight_img``); a 4D map needs ``map_index``.
    bg_img : nibabel image, optional
        3D background anatomy, drawn in grey. Resampled onto the map's grid
        (trilinear) when its grid differs.
    cut_coords : sequence of 3 int, optional
        Voxel indices ``(i, j, k)`` of ``stat_img`` as given (before any
        reorientation) where the slices cut. Default: `default_cut_coords`
        (the voxel of largest absolute value).
    display_mode : str, default="ortho"
        ``"ortho"`` (sagittal, coronal, axial), one view ``"x"``, ``"y"``,
        ``"z"``, or several in the order given, e.g. ``"yx"`` (coronal then
        sagittal, as in nilearn's decoding tutorial), ``"xz"``, ``"yz"``.
    threshold : float, default=0.0
        Voxels with ``|value| < threshold`` are transparent. Voxels exactly 0
        (outside the mask) are always transparent, as with nilearn's default.
    vmax : float, optional
        The colour scale runs symmetrically from ``-vmax`` to ``vmax``
        (``RdBu_r``); default: the largest absolute value of the map.
    title : str, optional
    colorbar_title : str, default="weight"
        Also the name of the value in the hover text.
    height : int, optional
        Figure height in pixels; default: fitted to a ~900 px wide column.
    map_index : int, optional
        The volume of a 4D ``stat_img``.

    Returns
    -------
    plotly.graph_objects.Figure
        One panel per view; every slice panel ends with a transparent scatter
        trace whose ``customdata`` rows are original voxel indices (see
        `voxel_from_click`).

    Raises
    ------
    DecodingInputError
        A bad image, cut, display mode, threshold or vmax.
    """
    data = _volume(stat_img, "stat_img", map_index)
    shape = data.shape
    reorientation = _Reorientation.of(shape, stat_img.affine)
    views = _parse_display_mode(display_mode)
    threshold = _check_positive(threshold, "threshold", allow_none=False, allow_zero=True)
    vmax = _check_positive(vmax, "vmax")
    cut_coords = _check_cut_coords(
        default_cut_coords(nib.Nifti1Image(data, stat_img.affine)) if cut_coords is None else cut_coords,
        shape,
    )
    finite = _finite(data)
    if vmax is None:
        vmax = float(np.abs(finite).max()) or 1.0
    canonical = reorientation.data(finite)
    shown = np.abs(canonical) >= threshold
    shown &= canonical != 0
    overlay = np.where(shown, canonical, np.nan).astype(np.float32)
    background, pointable = _background_and_pointable(bg_img, canonical, shape, stat_img.affine, reorientation)

    def make_overlay(view, canonical_cut, x_mm, y_mm, first):
        colorbar = dict(
            title=dict(text=colorbar_title, side="right"), thickness=14, len=0.85, x=1.0, xpad=8,
            y=0.5, yanchor="middle",
        )
        return [
            go.Heatmap(
                z=_take_slice(overlay, view, canonical_cut),
                x=x_mm,
                y=y_mm,
                colorscale="RdBu_r",
                zmin=-vmax,
                zmax=vmax,
                showscale=first,
                colorbar=colorbar if first else None,
                hoverongaps=False,
                hoverinfo="skip",
                name=colorbar_title,
            )
        ]

    return _slice_figure(
        reorientation=reorientation,
        cut_coords=cut_coords,
        views=views,
        background=background,
        make_overlay=make_overlay,
        hover_values=canonical,
        pointable=pointable,
        hover_label=colorbar_title,
        hover_format=".4g",
        title=title,
        height=height,
        right_margin=95,
    )


def plot_roi(
    mask_img,
    bg_img=None,
    *,
    cut_coords=None,
    display_mode: str = "ortho",
    title: str | None = None,
    color: str = "#ff7f0e",
    opacity: float = 0.7,
    label_names: Mapping | None = None,
    height: int | None = None,
) -> go.Figure:
    """A region of interest over an anatomy, like nilearn's ``plot_roi``.

    Parameters
    ----------
    mask_img : nibabel image, 3D
        A mask (non-zero voxels form the region) or an atlas of integer labels
        (several distinct non-zero integers: one colour per label, with a legend).
    bg_img : nibabel image, optional
        3D background anatomy; resampled onto the mask's grid when it differs.
    cut_coords : sequence of 3 int, optional
        Voxel indices ``(i, j, k)`` of ``mask_img`` as given. Default: the
        voxel of the region nearest to its centre of mass (see `default_cut_coords`).
    display_mode : str, default="ortho"
        As in `plot_stat_slices`.
    title : str, optional
        Default: the number of voxels of the region.
    color : str, default="#ff7f0e"
        Colour of a single region (any CSS colour).
    opacity : float, default=0.7
    label_names : mapping of label value to name, optional
        Names of an atlas's labels for the legend and hover text.
    height : int, optional

    Returns
    -------
    plotly.graph_objects.Figure
    """
    data = _finite(_volume(mask_img, "mask_img"))
    shape = data.shape
    reorientation = _Reorientation.of(shape, mask_img.affine)
    views = _parse_display_mode(display_mode)
    if isinstance(opacity, bool) or not isinstance(opacity, Real) or not 0 < opacity <= 1:
        raise DecodingInputError(f"'opacity' must be a number in the range (0, 1]. Got {opacity!r}.")
    cut_coords = _check_cut_coords(
        default_cut_coords(nib.Nifti1Image(data, mask_img.affine), method="center_of_mass")
        if cut_coords is None
        else cut_coords,
        shape,
    )
    labels = np.unique(data[data != 0])
    multi_label = labels.size > 1 and np.all(labels == np.round(labels))
    canonical = reorientation.data(data)
    label_names = dict(label_names or {})
    n_voxels = int(np.count_nonzero(data))

    if multi_label:
        codes = np.full(canonical.shape, np.nan, dtype=np.float32)
        codes[canonical != 0] = np.searchsorted(labels, canonical[canonical != 0])
        colors = [_PALETTE[n % len(_PALETTE)] for n in range(labels.size)]
        colorscale = _discrete_colorscale(colors)
        zmin, zmax = -0.5, labels.size - 0.5
    else:
        codes = np.where(canonical != 0, 1.0, np.nan).astype(np.float32)
        colorscale = [[0.0, color], [1.0, color]]
        zmin, zmax = 0.0, 1.0
    background, pointable = _background_and_pointable(bg_img, canonical, shape, mask_img.affine, reorientation)

    def make_overlay(view, canonical_cut, x_mm, y_mm, first):
        return [
            go.Heatmap(
                z=_take_slice(codes, view, canonical_cut),
                x=x_mm,
                y=y_mm,
                colorscale=colorscale,
                zmin=zmin,
                zmax=zmax,
                opacity=opacity,
                showscale=False,
                hoverongaps=False,
                hoverinfo="skip",
                name="ROI",
            )
        ]

    fig = _slice_figure(
        reorientation=reorientation,
        cut_coords=cut_coords,
        views=views,
        background=background,
        make_overlay=make_overlay,
        hover_values=canonical,
        pointable=pointable,
        hover_label="label" if multi_label else "in region",
        hover_format=".0f",
        title=title if title is not None else f"Region: {n_voxels} voxels",
        height=height,
        right_margin=20,
    )
    if multi_label:
        shown = labels if labels.size <= 30 else labels[:30]
        for n, value in enumerate(shown):
            name = str(label_names.get(value, label_names.get(int(value), f"label {int(value)}")))
            fig.add_trace(
                go.Scatter(x=[None], y=[None], mode="markers", name=name, showlegend=True,
                           marker=dict(symbol="square", size=12, color=colors[n]), hoverinfo="skip")
            )
        fig.update_layout(margin_b=_SLICE_MARGIN["b"] + 40)
    return fig


def voxel_from_click(point_customdata) -> tuple:
    """The original voxel indices ``(i, j, k)`` of a clicked slice point.

    Parameters
    ----------
    point_customdata : dict, list, tuple or ndarray
        The ``customdata`` of one point of a slice figure's selection, as
        Streamlit returns it: ``{'0': i, '1': j, '2': k}`` (plotly.js typed
        arrays become objects) or ``[i, j, k]``. A whole point (a dict with a
        ``"customdata"`` key) or a whole selection (a dict with ``"points"``)
        is accepted too.

    Returns
    -------
    tuple of 3 int or None
        None only for a selection without any point (e.g. a click that
        cleared the selection).

    Raises
    ------
    DecodingInputError
        When the data are not three non-negative integers.

    Examples
    --------
    >>> voxel_from_click({"0": 12, "1": 30, "2": 5})
    (12, 30, 5)
    """
    data = point_customdata
    if isinstance(data, Mapping) and "points" in data:
        # A whole Streamlit selection: the first point that carries voxel indices.
        points = [p for p in (data.get("points") or []) if isinstance(p, Mapping) and "customdata" in p]
        if not points:
            return None
        data = points[0]
    if isinstance(data, Mapping) and "customdata" in data:
        data = data["customdata"]
    if isinstance(data, Mapping):
        try:
            values = [data[key] if key in data else data[str(key)] for key in range(3)]
        except KeyError:
            raise DecodingInputError(
                f"A clicked point must carry voxel indices under keys '0', '1', '2'. Got {point_customdata!r}."
            ) from None
    elif isinstance(data, (Sequence, np.ndarray)) and not isinstance(data, (str, bytes)):
        values = list(data)[:3]
    else:
        values = []
    if len(values) != 3:
        raise DecodingInputError(
            f"A clicked point must carry three voxel indices (i, j, k). Got {point_customdata!r}."
        )
    result = []
    for value in values:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                value = math.nan
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or (
            value != int(value) or value < 0
        ):
            raise DecodingInputError(
                f"Voxel indices must be non-negative integers. Got {point_customdata!r}."
            )
        result.append(int(value))
    return tuple(result)


# -- conditions and design -----------------------------------------------------


def _as_labels(labels, name: str = "labels") -> np.ndarray:
    if isinstance(labels, (pd.Series, pd.Index)):
        array = labels.to_numpy(dtype=str)
    elif isinstance(labels, (str, bytes)) or labels is None:
        raise DecodingInputError(f"'{name}' must be a sequence of condition labels. Got {labels!r}.")
    else:
        array = np.asarray(labels).astype(str)
    if array.ndim != 1 or array.size == 0:
        raise DecodingInputError(
            f"'{name}' must be a non-empty one-dimensional sequence. Got shape {array.shape}."
        )
    return array


def _as_runs(runs, n: int) -> np.ndarray | None:
    if runs is None:
        return None
    array = runs.to_numpy() if isinstance(runs, (pd.Series, pd.Index)) else np.asarray(runs)
    if array.ndim != 1 or array.size != n:
        raise DecodingInputError(
            f"'runs' must have one value per volume ({n}). Got shape {array.shape}."
        )
    return array


def _sorted_unique(values: np.ndarray) -> list:
    unique = pd.unique(pd.Series(values))
    try:
        return sorted(unique.tolist())
    except TypeError:
        return sorted(unique.tolist(), key=str)


def _run_name(run) -> str:
    if isinstance(run, (float, np.floating)) and float(run).is_integer():
        run = int(run)
    return f"run {run}"


def _ordered_conditions(conditions) -> list:
    """Known (Haxby) categories in their fixed order, others sorted, rest last."""
    unique = list(dict.fromkeys(str(c) for c in conditions))
    known = [c for c in _KNOWN_CONDITIONS if c in unique]
    others = sorted(c for c in unique if c not in _KNOWN_CONDITIONS and c != REST_LABEL)
    return known + others + ([REST_LABEL] if REST_LABEL in unique else [])


def condition_colors(conditions) -> dict:
    """A colour per condition, the same in every figure.

    Haxby's eight categories keep fixed colours when only they occur; other
    conditions take colours in sorted order; ``"rest"`` is light grey.

    Parameters
    ----------
    conditions : iterable of str

    Returns
    -------
    dict of str to str
        Ordered as the figures list the conditions.
    """
    ordered = _ordered_conditions(conditions)
    active = [c for c in ordered if c != REST_LABEL]
    if all(c in _KNOWN_CONDITIONS for c in active):
        index = {c: _KNOWN_CONDITIONS.index(c) for c in active}
    else:
        index = {c: n for n, c in enumerate(active)}
    colors = {c: _PALETTE[index[c] % len(_PALETTE)] for c in active}
    if REST_LABEL in ordered:
        colors[REST_LABEL] = REST_COLOR
    return colors


def _discrete_colorscale(colors: Sequence[str]) -> list:
    n = len(colors)
    scale = []
    for k, color in enumerate(colors):
        scale.append([k / n, color])
        scale.append([(k + 1) / n, color])
    return scale


def _legend_swatch(name: str, color: str, group: str | None = None) -> go.Scatter:
    return go.Scatter(
        x=[None], y=[None], mode="markers", name=name, legendgroup=group or name,
        marker=dict(symbol="square", size=12, color=color), hoverinfo="skip", showlegend=True,
    )


def _check_tr(tr):
    if tr is None:
        return None
    return _check_positive(tr, "tr", allow_none=False)


def plot_condition_timeline(labels, runs=None, tr: float | None = None) -> go.Figure:
    """The condition of every volume, one row per run.

    Parameters
    ----------
    labels : sequence of str
        Condition of each volume, in acquisition order.
    runs : sequence, optional
        Run of each volume; None draws one row.
    tr : float, optional
        Repetition time in seconds: the x axis is then time within the run.

    Returns
    -------
    plotly.graph_objects.Figure
        A categorical heatmap (rows = runs) with a legend of the conditions.
    """
    labels = _as_labels(labels)
    runs = _as_runs(runs, labels.size)
    tr = _check_tr(tr)
    if runs is None:
        run_values = [None]
        members = [np.arange(labels.size)]
        row_names = ["all volumes"]
    else:
        run_values = _sorted_unique(runs)
        members = [np.flatnonzero(runs == run) for run in run_values]
        row_names = [_run_name(run) for run in run_values]
    colors = condition_colors(labels)
    order = list(colors)
    code_of = {c: n for n, c in enumerate(order)}
    length = max(len(m) for m in members)
    codes = np.full((len(members), length), np.nan, dtype=np.float32)
    text = [[""] * length for _ in members]
    for row, indices in enumerate(members):
        codes[row, : len(indices)] = [code_of[c] for c in labels[indices]]
        for col, index in enumerate(indices):
            text[row][col] = f"{labels[index]} (volume {index} of the image)"
    x = np.arange(length, dtype=np.float32) * (tr or 1.0)
    fig = go.Figure(
        go.Heatmap(
            z=codes,
            x=x,
            y=row_names,
            text=text,
            colorscale=_discrete_colorscale([colors[c] for c in order]),
            zmin=-0.5,
            zmax=len(order) - 0.5,
            showscale=False,
            hoverongaps=False,
            xgap=0,
            ygap=2,
            hovertemplate="%{y}, " + ("t = %{x:.1f} s" if tr else "volume %{x}") + "<br>%{text}<extra></extra>",
        )
    )
    for condition in order:
        fig.add_trace(_legend_swatch(condition, colors[condition]))
    fig.update_yaxes(autorange="reversed", type="category", title=None)
    fig.update_xaxes(
        title="time within run (s)" if tr else "volume within run", showgrid=False, zeroline=False
    )
    fig.update_layout(
        title=dict(text="Conditions over time", x=0.01, xanchor="left"),
        height=int(150 + 24 * len(members)),
        margin=dict(l=70, r=20, t=80, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0, title=None),
        plot_bgcolor="white",
        font=_FONT,
    )
    return fig


def plot_condition_counts(labels, runs=None) -> go.Figure:
    """Number of volumes of each condition, per run when runs are given.

    Parameters
    ----------
    labels : sequence of str
    runs : sequence, optional
        Run of each volume: one stacked bar per run, stacked by condition.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    labels = _as_labels(labels)
    runs = _as_runs(runs, labels.size)
    colors = condition_colors(labels)
    fig = go.Figure()
    if runs is None:
        counts = pd.Series(labels).value_counts()
        order = list(colors)
        fig.add_trace(
            go.Bar(
                x=order,
                y=[int(counts[c]) for c in order],
                marker_color=[colors[c] for c in order],
                text=[int(counts[c]) for c in order],
                textposition="outside",
                hovertemplate="%{x}: %{y} volumes<extra></extra>",
                showlegend=False,
            )
        )
        fig.update_xaxes(title="condition")
    else:
        run_values = _sorted_unique(runs)
        names = [_run_name(r) for r in run_values]
        table = pd.crosstab(pd.Series(runs, name="run"), pd.Series(labels, name="condition"))
        for condition in colors:
            column = table[condition] if condition in table.columns else pd.Series(dtype=int)
            fig.add_trace(
                go.Bar(
                    x=names,
                    y=[int(column.get(r, 0)) for r in run_values],
                    name=condition,
                    marker_color=colors[condition],
                    hovertemplate=f"%{{x}}: %{{y}} {condition} volumes<extra></extra>",
                )
            )
        fig.update_layout(barmode="stack")
        fig.update_xaxes(title="run", type="category")
    fig.update_yaxes(title="volumes", rangemode="tozero")
    fig.update_layout(
        title=dict(text="Volumes per condition", x=0.01, xanchor="left"),
        height=380,
        margin=dict(l=60, r=20, t=60, b=60),
        legend=dict(title="condition"),
        font=_FONT,
    )
    return fig


def plot_class_balance(labels) -> go.Figure:
    """Counts of the selected conditions, with the majority-class rate.

    The majority-class rate is the accuracy of always guessing the most
    frequent condition: the chance level accuracy is measured against.

    Parameters
    ----------
    labels : sequence of str
        Condition of each selected sample.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    labels = _as_labels(labels)
    counts = pd.Series(labels).value_counts()
    colors = condition_colors(labels)
    order = list(colors)
    values = np.array([int(counts[c]) for c in order])
    total = int(values.sum())
    majority = values.max() / total
    fig = go.Figure(
        go.Bar(
            x=order,
            y=values,
            marker_color=[colors[c] for c in order],
            text=[f"{v} ({v / total:.0%})" for v in values],
            textposition="outside",
            hovertemplate="%{x}: %{y} samples<extra></extra>",
            showlegend=False,
        )
    )
    balanced = np.all(values == values[0])
    fig.update_layout(
        title=dict(
            text=f"Class balance: {total} samples, majority-class rate {majority:.1%}"
            + ("" if balanced else " (unbalanced)"),
            x=0.01,
            xanchor="left",
        ),
        height=340,
        margin=dict(l=60, r=20, t=60, b=50),
        yaxis=dict(title="samples", range=[0, values.max() * 1.2]),
        xaxis=dict(title="condition"),
        font=_FONT,
    )
    return fig


def plot_mean_timecourse(X, labels=None, runs=None, tr: float | None = None, *,
                         volume_index=None) -> go.Figure:
    """Mean signal over the masked voxels, one point per volume coloured by condition.

    Parameters
    ----------
    X : ndarray of shape (n_volumes, n_voxels) or MaskedData
        The masked data; a `MaskedData` also gives labels, runs and volume indices.
    labels : sequence of str, optional
        Condition of each row (required with an array).
    runs : sequence, optional
        Run of each row: runs are separated by dotted lines.
    tr : float, optional
        Repetition time in seconds: the x axis is then time.
    volume_index : sequence of int, optional
        Index of each row in the 4D image (default: 0, 1, ...); gaps between
        kept volumes break the line.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if hasattr(X, "X") and hasattr(X, "labels"):
        masked = X
        X = masked.X
        labels = masked.labels if labels is None else labels
        runs = masked.runs if runs is None else runs
        volume_index = masked.volume_index if volume_index is None else volume_index
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise DecodingInputError(
            f"'X' must be a non-empty 2D array (volumes x voxels). Got shape {X.shape}."
        )
    labels = _as_labels(labels)
    if labels.size != X.shape[0]:
        raise DecodingInputError(
            f"'labels' must have one value per row of X ({X.shape[0]}). Got {labels.size}."
        )
    runs = _as_runs(runs, labels.size)
    tr = _check_tr(tr)
    volume_index = (
        np.arange(labels.size) if volume_index is None else np.asarray(volume_index, dtype=np.int64)
    )
    if volume_index.shape != labels.shape:
        raise DecodingInputError(
            f"'volume_index' must have one value per row of X ({X.shape[0]}). Got shape {volume_index.shape}."
        )
    mean = np.nanmean(X.astype(np.float64, copy=False), axis=1).astype(np.float32)
    position = volume_index * (tr or 1.0)
    # Break the line where volumes were dropped or a run changes.
    breaks = np.diff(volume_index) != 1
    if runs is not None:
        breaks |= runs[1:] != runs[:-1]
    line_x = np.insert(position.astype(np.float64), np.flatnonzero(breaks) + 1, np.nan)
    line_y = np.insert(mean.astype(np.float64), np.flatnonzero(breaks) + 1, np.nan)
    fig = go.Figure(
        go.Scatter(
            x=line_x.astype(np.float32), y=line_y.astype(np.float32), mode="lines",
            line=dict(color="#555555", width=1), name="mean signal", hoverinfo="skip",
            connectgaps=False,
        )
    )
    colors = condition_colors(labels)
    for condition, color in colors.items():
        chosen = labels == condition
        fig.add_trace(
            go.Scatter(
                x=position[chosen].astype(np.float32),
                y=mean[chosen],
                mode="markers",
                marker=dict(color=color, size=4 if condition == REST_LABEL else 5),
                name=condition,
                customdata=volume_index[chosen],
                hovertemplate=f"{condition}<br>volume %{{customdata}}<br>mean %{{y:.3f}}<extra></extra>",
            )
        )
    if runs is not None:
        starts = np.flatnonzero(np.r_[True, runs[1:] != runs[:-1]])
        for start in starts[1:]:
            fig.add_vline(x=float(position[start]) - 0.5 * (tr or 1.0), line=dict(color="#999999", width=1, dash="dot"))
    fig.update_layout(
        title=dict(text=f"Mean signal over {X.shape[1]} voxels", x=0.01, xanchor="left"),
        xaxis=dict(title="time (s)" if tr else "volume", showgrid=False),
        yaxis=dict(title="mean signal"),
        height=360,
        margin=dict(l=60, r=20, t=80, b=50),
        legend=dict(orientation="h", yanchor="bottom", y=1.01, x=0, itemsizing="constant"),
        hovermode="closest",
        font=_FONT,
    )
    return fig


# -- results -----------------------------------------------------------------


def _score_name(result) -> str:
    scoring = getattr(result.config, "scoring", "accuracy")
    return {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "roc_auc": "ROC AUC"}.get(
        scoring, str(scoring)
    )


def _fold_names(result, table: pd.DataFrame) -> list:
    cv = result.config.cv
    if result.meaningless or cv == "train":
        return ["training data"]
    if cv == "holdout":
        return ["held-out samples"] if len(table) == 1 else [f"fold {n + 1}" for n in range(len(table))]
    if cv == "leave-one-run-out" and "test_run" in table:
        return [_run_name(run) if run is not None and run == run else f"fold {n + 1}"
                for n, run in enumerate(table["test_run"])]
    return [f"fold {n + 1}" for n in range(len(table))]


def plot_fold_scores(result) -> go.Figure:
    """One bar per fold, with the chance level (dashed) and the mean (solid).

    Parameters
    ----------
    result : DecodingResult

    Returns
    -------
    plotly.graph_objects.Figure
        Bars named ``"run <r>"`` (the test run) for leave-one-run-out; a note
        when the scheme scores the training data (meaningless).
    """
    table = fold_table(result)
    names = _fold_names(result, table)
    score_name = _score_name(result)
    scores = table["score"].to_numpy(dtype=float)
    fig = go.Figure(
        go.Bar(
            x=names,
            y=scores,
            marker_color="#bbbbbb" if result.meaningless else _SCORE_COLOR,
            opacity=0.85,
            text=[f"{s:.2f}" if np.isfinite(s) else "n/a" for s in scores],
            textposition="inside",
            insidetextanchor="end",
            customdata=table["n_test"].to_numpy(dtype=np.int64),
            hovertemplate=f"%{{x}}<br>{score_name} %{{y:.3f}}<br>%{{customdata}} test samples<extra></extra>",
            name=score_name,
            showlegend=False,
        )
    )
    # Line labels sit in the right margin, where no bar can hide them.
    fig.add_hline(y=float(result.chance_level), line=dict(color=_CHANCE_COLOR, dash="dash", width=2), name="chance")
    labels = [(float(result.chance_level), f"chance {result.chance_level:.2f}", _CHANCE_COLOR)]
    if len(scores) > 1 and np.isfinite(result.mean_score):
        fig.add_hline(y=float(result.mean_score), line=dict(color="#ff7f0e", width=2), name="mean")
        labels.append((float(result.mean_score), f"mean {result.mean_score:.2f}<br>± {result.std_score:.2f}", "#d35400"))
    if len(labels) == 2 and abs(labels[0][0] - labels[1][0]) < 0.08:
        # Keep close labels apart: the lower one goes below its line.
        low, high = sorted(range(2), key=lambda n: labels[n][0])
        anchors = {low: "top", high: "bottom"}
    else:
        anchors = {n: "middle" for n in range(len(labels))}
    for n, (y, text, color) in enumerate(labels):
        fig.add_annotation(x=1.0, xref="paper", xanchor="left", y=y, yref="y", yanchor=anchors[n], text=text,
                           showarrow=False, font=dict(color=color, size=12), xshift=4)
    title = f"{score_name.capitalize()} per fold ({result.config.cv})"
    if result.meaningless:
        fig.add_annotation(
            text="Scored on the training samples themselves: says nothing about decoding new data.",
            xref="paper", yref="paper", x=0, y=1.0, xanchor="left", yanchor="bottom",
            showarrow=False, font=dict(color=_ERROR_COLOR, size=12),
        )
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left", y=0.97),
        yaxis=dict(title=score_name, range=[0, 1]),
        xaxis=dict(title=None, type="category"),
        height=380,
        margin=dict(l=60, r=95, t=80, b=50),
        bargap=0.25,
        font=_FONT,
    )
    return fig


def plot_predictions(result) -> go.Figure:
    """True and predicted condition of every tested sample, grouped by run.

    A ring marks the true condition; a dot the prediction: a dot inside its
    ring is correct, a red cross is a mistake.

    Parameters
    ----------
    result : DecodingResult

    Returns
    -------
    plotly.graph_objects.Figure
    """
    predictions = result.predictions
    needed = {"true", "predicted"}
    if not isinstance(predictions, pd.DataFrame) or needed - set(predictions.columns):
        raise DecodingInputError("The result has no predictions table with 'true' and 'predicted' columns.")
    fig = go.Figure()
    if predictions.empty:
        fig.add_annotation(text="No predictions", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        return fig
    true = predictions["true"].to_numpy(dtype=str)
    predicted = predictions["predicted"].to_numpy(dtype=str)
    correct = true == predicted
    x_column = "volume" if "volume" in predictions else ("sample" if "sample" in predictions else None)
    x = predictions[x_column].to_numpy() if x_column else np.arange(len(predictions))
    runs = predictions["run"].to_numpy() if "run" in predictions else None
    folds = predictions["fold"].to_numpy() if "fold" in predictions else np.zeros(len(predictions), int)
    run_text = np.array([_run_name(r) for r in runs]) if runs is not None else np.full(len(x), "")
    customdata = np.stack([run_text, folds.astype(str), true, predicted], axis=1)
    hover = ("%{customdata[0]}, fold %{customdata[1]}<br>" + (x_column or "sample") + " %{x}"
             "<br>true %{customdata[2]}, predicted %{customdata[3]}<extra></extra>")
    classes = [str(c) for c in result.classes] or _ordered_conditions(np.r_[true, predicted])
    fig.add_trace(go.Scatter(
        x=x, y=true, mode="markers", name="true condition",
        marker=dict(symbol="circle-open", size=11, color="#444444", line=dict(width=1.5)),
        hoverinfo="skip",
    ))
    fig.add_trace(go.Scatter(
        x=x[correct], y=predicted[correct], mode="markers", name="correct prediction",
        marker=dict(size=6, color=_CORRECT_COLOR), customdata=customdata[correct], hovertemplate=hover,
    ))
    fig.add_trace(go.Scatter(
        x=x[~correct], y=predicted[~correct], mode="markers", name="wrong prediction",
        marker=dict(symbol="x", size=9, color=_ERROR_COLOR), customdata=customdata[~correct],
        hovertemplate=hover,
    ))
    if runs is not None:
        run_values = _sorted_unique(runs)
        for n, run in enumerate(run_values):
            inside = x[runs == run]
            low, high = float(inside.min()) - 0.5, float(inside.max()) + 0.5
            if n % 2 == 0:
                fig.add_vrect(x0=low, x1=high, fillcolor="#eeeeee", line_width=0, layer="below")
            if len(run_values) <= 24:
                fig.add_annotation(
                    x=(low + high) / 2, y=1.0, xref="x", yref="paper", yanchor="bottom",
                    text=_run_name(run).replace("run ", "r"), showarrow=False, font=dict(size=10),
                )
    accuracy = correct.mean()
    title = f"Predictions: {int(correct.sum())} of {correct.size} correct ({accuracy:.0%})"
    if result.meaningless:
        title += " on the training data (meaningless)"
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left"),
        xaxis=dict(title="volume" if x_column == "volume" else "sample", showgrid=False, zeroline=False),
        yaxis=dict(title=None, type="category", categoryorder="array", categoryarray=classes),
        height=int(230 + 45 * len(classes)),
        margin=dict(l=90, r=20, t=80, b=90),
        legend=dict(orientation="h", yanchor="top", y=-0.3, x=0),
        plot_bgcolor="white",
        font=_FONT,
    )
    return fig


def confusion_table(result) -> pd.DataFrame:
    """Counts of (true, predicted) conditions over all tested samples of a result.

    Parameters
    ----------
    result : DecodingResult

    Returns
    -------
    pandas.DataFrame
        Indexed by true condition, one column per predicted condition, both in
        the order of ``result.classes``.
    """
    predictions = result.predictions
    classes = [str(c) for c in result.classes] or _ordered_conditions(
        np.r_[predictions["true"].to_numpy(dtype=str), predictions["predicted"].to_numpy(dtype=str)]
    )
    table = pd.crosstab(
        pd.Series(predictions["true"].to_numpy(dtype=str), name="true"),
        pd.Series(predictions["predicted"].to_numpy(dtype=str), name="predicted"),
    )
    return table.reindex(index=classes, columns=classes, fill_value=0).astype(int)


def plot_confusion_matrix(confusion_df, normalize: bool = False) -> go.Figure:
    """An annotated confusion matrix (rows: true condition, columns: predicted).

    Parameters
    ----------
    confusion_df : pandas.DataFrame or DecodingResult
        Counts, indexed by true condition, columns by predicted condition; or
        a result, whose predictions are counted by `confusion_table`.
    normalize : bool, default=False
        Show each row as fractions of its true condition's samples.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if hasattr(confusion_df, "predictions") and hasattr(confusion_df, "classes"):
        confusion_df = confusion_table(confusion_df)
    if not isinstance(confusion_df, pd.DataFrame) or confusion_df.empty:
        raise DecodingInputError("'confusion_df' must be a non-empty DataFrame of counts (true x predicted).")
    counts = confusion_df.to_numpy(dtype=float)
    if not np.all(np.isfinite(counts)) or np.any(counts < 0):
        raise DecodingInputError("'confusion_df' must hold non-negative counts.")
    row_totals = counts.sum(axis=1, keepdims=True)
    fractions = np.divide(counts, row_totals, out=np.zeros_like(counts), where=row_totals > 0)
    values = fractions if normalize else counts
    text = [[f"{f:.0%}" if normalize else f"{int(c)}" for c, f in zip(crow, frow)]
            for crow, frow in zip(counts, fractions)]
    rows = [str(v) for v in confusion_df.index]
    cols = [str(v) for v in confusion_df.columns]
    custom = np.stack([counts, fractions * 100], axis=-1)
    fig = go.Figure(
        go.Heatmap(
            z=values, x=cols, y=rows, text=text, texttemplate="%{text}", colorscale="Blues",
            zmin=0, zmax=1 if normalize else max(1.0, float(counts.max())),
            customdata=custom,
            hovertemplate="true %{y}, predicted %{x}<br>%{customdata[0]:.0f} samples "
                          "(%{customdata[1]:.0f}% of the row)<extra></extra>",
            colorbar=dict(title=dict(text="fraction" if normalize else "samples"), thickness=14),
        )
    )
    size = max(260, min(700, 80 + 55 * len(rows)))
    fig.update_layout(
        title=dict(text="Confusion matrix" + (" (row fractions)" if normalize else ""), x=0.01, xanchor="left"),
        # Square cells shrink the plot area (constrain="domain") rather than pad it with
        # empty categories, so the row labels stay next to the matrix; no grid over the cells.
        xaxis=dict(title="predicted", type="category", side="bottom", constrain="domain", showgrid=False),
        yaxis=dict(title="true", type="category", autorange="reversed", scaleanchor="x", scaleratio=1,
                   showgrid=False),
        height=int(size + 80),
        margin=dict(l=100, r=20, t=60, b=80),
        font=_FONT,
    )
    return fig


def _as_scores(values, name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float).ravel() if values is not None else np.array([])
    if array.size == 0:
        raise DecodingInputError(f"'{name}' must hold at least one score.")
    return array


def plot_null_distribution(null_scores, observed: float | None = None, p_value: float | None = None,
                           chance: float | None = None) -> go.Figure:
    """Histogram of permutation scores with the observed score marked.

    Parameters
    ----------
    null_scores : sequence of float or PermutationResult
        Scores with shuffled labels; or a permutation result, which gives
        the null scores, observed score and p-value.
    observed : float
        Score with the true labels (taken from a PermutationResult when omitted).
    p_value : float
        (taken from a PermutationResult when omitted).
    chance : float, optional
        Drawn as a dashed line.

    Returns
    -------
    plotly.graph_objects.Figure
    """
    if hasattr(null_scores, "null_scores"):
        outcome = null_scores
        observed = getattr(outcome, "observed_score", getattr(outcome, "observed", None)) if observed is None else observed
        p_value = outcome.p_value if p_value is None else p_value
        null_scores = outcome.null_scores
    for name, value in (("observed", observed), ("p_value", p_value)):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise DecodingInputError(f"'{name}' must be a finite number. Got {value!r}.")
    null = _as_scores(null_scores, "null_scores")
    null = null[np.isfinite(null)]
    if null.size == 0:
        raise DecodingInputError("'null_scores' has no finite score.")
    fig = go.Figure(
        go.Histogram(x=null, nbinsx=min(60, max(10, null.size // 10)), marker_color="#9ecae1",
                     name="shuffled labels", hovertemplate="score %{x}<br>%{y} permutations<extra></extra>")
    )
    fig.add_vline(x=float(observed), line=dict(color=_ERROR_COLOR, width=3), name="observed",
                  annotation_text=f"observed {observed:.3f}<br>p = {p_value:.3g}",
                  annotation_position="top left" if observed > np.median(null) else "top right")
    if chance is not None:
        fig.add_vline(x=float(chance), line=dict(color=_CHANCE_COLOR, dash="dash"), name="chance",
                      annotation_text="chance", annotation_position="bottom right")
    # Room on both sides, so neither the null bars nor the observed line sit on the plot's edge.
    marks = [float(null.min()), float(null.max()), float(observed)] + ([float(chance)] if chance is not None else [])
    pad = max(0.1 * (max(marks) - min(marks)), 0.01)
    fig.update_layout(
        title=dict(text=f"Permutation test: {null.size} permutations", x=0.01, xanchor="left"),
        xaxis=dict(title="score", range=[min(marks) - pad, max(marks) + pad]), yaxis=dict(title="permutations"),
        height=360, margin=dict(l=60, r=20, t=70, b=50), bargap=0.05, showlegend=False, font=_FONT,
    )
    return fig


def plot_score_comparison(scores: Mapping, chance: float | None = None) -> go.Figure:
    """Fold scores of several classifiers side by side (e.g. real vs dummy).

    Parameters
    ----------
    scores : mapping of str to sequence of float
        Fold scores of each classifier, in display order.
    chance : float, optional

    Returns
    -------
    plotly.graph_objects.Figure
        A box per name, with every fold as a point and the mean as a diamond.
    """
    if not isinstance(scores, Mapping) or not scores:
        raise DecodingInputError("'scores' must map each classifier's name to its fold scores.")
    fig = go.Figure()
    for n, (name, values) in enumerate(scores.items()):
        array = _as_scores(values, f"scores[{name!r}]")
        color = _PALETTE[n % len(_PALETTE)]
        fig.add_trace(go.Box(
            y=array, name=str(name), boxpoints="all", jitter=0.35, pointpos=0, marker_color=color,
            boxmean=True, hovertemplate=f"{name}<br>fold score %{{y:.3f}}<extra></extra>",
        ))
    if chance is not None:
        fig.add_hline(y=float(chance), line=dict(color=_CHANCE_COLOR, dash="dash"), name="chance",
                      annotation_text=f"chance {chance:.2f}", annotation_position="bottom right")
    fig.update_layout(
        title=dict(text="Fold scores by classifier", x=0.01, xanchor="left"),
        yaxis=dict(title="score", range=[0, 1.02]), showlegend=False,
        height=380, margin=dict(l=60, r=20, t=60, b=60), font=_FONT,
    )
    return fig


def plot_score_vs_setting(values, fold_scores_list, setting_name: str, log_x: bool = False,
                          chance: float | None = None) -> go.Figure:
    """Mean fold score as a setting varies (a sweep), with the spread over folds.

    Parameters
    ----------
    values : sequence
        The setting's values (numbers, or names drawn as categories).
    fold_scores_list : sequence of sequences of float
        The fold scores obtained at each value.
    setting_name : str
    log_x : bool, default=False
        Logarithmic x axis (e.g. for C); needs positive numeric values.
    chance : float, optional

    Returns
    -------
    plotly.graph_objects.Figure
    """
    values = list(values)
    fold_scores_list = list(fold_scores_list)
    if not values or len(values) != len(fold_scores_list):
        raise DecodingInputError(
            f"'values' and 'fold_scores_list' must have the same non-zero length. "
            f"Got {len(values)} and {len(fold_scores_list)}."
        )
    numeric = all(isinstance(v, Real) and not isinstance(v, bool) for v in values)
    if log_x and not (numeric and all(v > 0 for v in values)):
        raise DecodingInputError("'log_x' needs positive numeric setting values.")
    arrays = [_as_scores(s, "fold_scores_list") for s in fold_scores_list]
    x = [float(v) for v in values] if numeric else [str(v) for v in values]
    means = np.array([np.nanmean(a) for a in arrays])
    stds = np.array([np.nanstd(a) for a in arrays])
    fig = go.Figure()
    points_x = [xv for xv, a in zip(x, arrays) for _ in a]
    points_y = np.concatenate(arrays)
    fig.add_trace(go.Scatter(
        x=points_x, y=points_y, mode="markers", name="fold", marker=dict(color="#9ecae1", size=6),
        hovertemplate=f"{setting_name} = %{{x}}<br>fold score %{{y:.3f}}<extra></extra>",
    ))
    fig.add_trace(go.Scatter(
        x=x, y=means, mode="lines+markers", name="mean ± SD", line=dict(color=_SCORE_COLOR, width=2),
        error_y=dict(type="data", array=stds, visible=True, thickness=1.2),
        hovertemplate=f"{setting_name} = %{{x}}<br>mean %{{y:.3f}}<extra></extra>",
    ))
    if chance is not None:
        fig.add_hline(y=float(chance), line=dict(color=_CHANCE_COLOR, dash="dash"), name="chance",
                      annotation_text=f"chance {chance:.2f}", annotation_position="bottom right")
    fig.update_layout(
        title=dict(text=f"Score vs {setting_name}", x=0.01, xanchor="left"),
        xaxis=dict(title=setting_name, type="log" if log_x else ("linear" if numeric else "category")),
        yaxis=dict(title="score", range=[0, 1.02]),
        height=380, margin=dict(l=60, r=20, t=60, b=60),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, x=1, xanchor="right"), font=_FONT,
    )
    return fig


def plot_paired_folds(run_a_scores, run_b_scores, names, fold_labels=None) -> go.Figure:
    """Two settings compared fold by fold: one line per fold joining its two scores.

    Parameters
    ----------
    run_a_scores, run_b_scores : sequence of float
        Fold scores of the two settings, on the same folds in the same order.
    names : sequence of 2 str
        Names of the two settings.
    fold_labels : sequence of str, optional
        Names of the folds (default "fold 1", ...).

    Returns
    -------
    plotly.graph_objects.Figure
        Lines that rise show folds where the second setting scored higher; the title
        gives the mean difference and how many folds improved.
    """
    a = _as_scores(run_a_scores, "run_a_scores")
    b = _as_scores(run_b_scores, "run_b_scores")
    if a.size != b.size:
        raise DecodingInputError(
            f"Paired scores need the same folds: got {a.size} and {b.size} fold scores."
        )
    if isinstance(names, str) or len(names) != 2:
        raise DecodingInputError(f"'names' must hold the two settings' names. Got {names!r}.")
    # "A: ..." and "B: ..." so the title's "B − A" reads against the axis.
    names = [f"A: {names[0]}", f"B: {names[1]}"]
    fold_labels = [f"fold {n + 1}" for n in range(a.size)] if fold_labels is None else [str(f) for f in fold_labels]
    if len(fold_labels) != a.size:
        raise DecodingInputError(f"'fold_labels' must name each of the {a.size} folds.")
    fig = go.Figure()
    for label, score_a, score_b in zip(fold_labels, a, b):
        color = _CORRECT_COLOR if score_b > score_a else (_ERROR_COLOR if score_b < score_a else "#999999")
        fig.add_trace(go.Scatter(
            x=names, y=[score_a, score_b], mode="lines+markers", line=dict(color=color, width=1),
            marker=dict(size=6), name=label, showlegend=False,
            hovertemplate=f"{label}<br>%{{x}}: %{{y:.3f}}<extra></extra>",
        ))
    fig.add_trace(go.Scatter(
        x=names, y=[np.nanmean(a), np.nanmean(b)], mode="lines+markers", name="mean",
        line=dict(color="black", width=3), marker=dict(size=10, symbol="diamond"),
        hovertemplate="mean %{x}: %{y:.3f}<extra></extra>",
    ))
    difference = np.nanmean(b - a)
    improved = int(np.sum(b > a))
    fig.update_layout(
        title=dict(text=f"Paired folds: mean difference B − A = {difference:+.3f}; {improved} of {a.size} folds higher with B", x=0.01, xanchor="left"),
        yaxis=dict(title="score", range=[0, 1.02]), xaxis=dict(type="category"),
        height=380, margin=dict(l=60, r=20, t=60, b=50), font=_FONT,
    )
    return fig
