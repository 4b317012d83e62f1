"""Brain slice views: a statistical map or a region over an anatomy, as Plotly figures.

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
  the user's data directly; `default_cut_coords` picks one.
- Each panel carries a transparent scatter grid whose points hold the
  original voxel indices as ``customdata``: `voxel_from_click` turns a clicked
  point back into ``(i, j, k)``. This grid also carries the hover text: a
  browser check with plotly.js 4 showed that a scatter drawn over a heatmap
  takes the hover, and that ``hoverinfo="none"`` on it would hide every hover
  label, so it uses a ``hovertemplate`` instead (which keeps it clickable).
- Only 2-D slices are sent, as typed numpy arrays (base64 in the JSON).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real

import nibabel as nib
import numpy as np
import plotly.colors
import plotly.graph_objects as go
from nibabel.orientations import apply_orientation, inv_ornt_aff, io_orientation
from plotly.subplots import make_subplots

from decoding_core.errors import DecodingInputError, DecodingInputTypeError
from decoding_core.plotting._common import FONT, PALETTE, check_positive, discrete_colorscale

__all__ = ["default_cut_coords", "plot_roi", "plot_stat_slices", "voxel_from_click"]

# -- geometry: views, reorientation, cuts ----------------------------------------


@dataclass(frozen=True)
class _View:
    letter: str  # "x", "y" or "z": the RAS axis that is cut
    name: str
    axis: int  # canonical axis held fixed
    horizontal: int  # canonical axis along the screen's x
    vertical: int  # canonical axis along the screen's y
    edges: tuple  # letters at the (left, right) edges, neurological convention

    @property
    def horizontal_letter(self) -> str:
        return _AXIS_LETTERS[self.horizontal]

    @property
    def vertical_letter(self) -> str:
        return _AXIS_LETTERS[self.vertical]


_VIEWS = {
    "x": _View("x", "Sagittal", 0, 1, 2, ("P", "A")),
    "y": _View("y", "Coronal", 1, 0, 2, ("L", "R")),
    "z": _View("z", "Axial", 2, 0, 1, ("L", "R")),
}
_AXIS_LETTERS = "xyz"
#: Beyond this many voxels a panel's click grid takes every n-th voxel (JSON size).
_MAX_CLICK_POINTS_PER_PANEL = 12_000
#: The default size: panels at most this tall and, with the gaps between them, this wide (pixels),
#: at one scale in pixels per millimetre for every panel, so a view is never stretched to a column.
_TARGET_PANEL_HEIGHT = 360
_MAX_PANELS_WIDTH = 780
_PANEL_GAP = 60
_SLICE_MARGIN = dict(l=55, r=20, t=60, b=50)
#: Millimetres shown around the zoom region's bounding box.
_ZOOM_MARGIN_MM = 8.0
#: nilearn's ``cold_hot`` colour map (``nilearn.plotting.cm.cold_hot`` sampled at 17 points):
#: dark near zero, so weak weights do not look like signal; cyan-blue negative, red-yellow positive.
COLD_HOT = (
    "#ffffff", "#81ffff", "#03ffff", "#00adff", "#0059ff", "#0005ff", "#0000b0", "#00005c", "#0d0000",
    "#610000", "#b50000", "#ff0a00", "#ff5e00", "#ffb200", "#ffff0b", "#ffff89", "#ffffff",
)
#: The colour bar's band of hidden values (|value| < threshold): a neutral grey.
_HIDDEN_BAND_COLOR = "#bdbdbd"
_OUTLINE_COLOR = "rgba(120,220,255,0.9)"


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


# -- one figure of slice panels ------------------------------------------------------


@dataclass(frozen=True)
class _Panel:
    """One slice panel: its view, its subplot column and its axes in millimetres."""

    view: _View
    col: int
    x_mm: np.ndarray  # millimetres of each voxel along the screen's x
    y_mm: np.ndarray
    x_range: list  # the voxel centres shown and half a voxel beyond each end
    y_range: list

    @classmethod
    def of(cls, view: _View, col: int, coords: list, zooms: np.ndarray, box=None) -> "_Panel":
        """A panel of the whole field, or of ``box`` (canonical ``(low, high)`` indices per axis)."""
        x_mm, y_mm = coords[view.horizontal], coords[view.vertical]
        x_range = _axis_range(x_mm, zooms[view.horizontal], None if box is None else box[view.horizontal])
        y_range = _axis_range(y_mm, zooms[view.vertical], None if box is None else box[view.vertical])
        return cls(view, col, x_mm, y_mm, x_range, y_range)

    @property
    def x_ref(self) -> str:
        return _axis_ref(self.col, "x")

    @property
    def y_ref(self) -> str:
        return _axis_ref(self.col, "y")

    @property
    def width_mm(self) -> float:
        return self.x_range[1] - self.x_range[0]

    @property
    def height_mm(self) -> float:
        return self.y_range[1] - self.y_range[0]


def _axis_range(mm: np.ndarray, zoom: float, bounds) -> list:
    """The millimetres an axis shows: every voxel, or ``bounds`` plus `_ZOOM_MARGIN_MM`, within the field."""
    field = [float(mm[0] - zoom / 2), float(mm[-1] + zoom / 2)]
    if bounds is None:
        return field
    low, high = float(mm[bounds[0]] - zoom / 2), float(mm[bounds[1]] + zoom / 2)
    return [max(field[0], low - _ZOOM_MARGIN_MM), min(field[1], high + _ZOOM_MARGIN_MM)]


def _zoom_box(zoom_img, reorientation: "_Reorientation"):
    """Canonical ``(low, high)`` voxel indices per axis of ``zoom_img``'s non-zero voxels, or None."""
    if zoom_img is None:
        return None
    data = _finite(_volume(zoom_img, "zoom_img"))
    if data.shape != reorientation.shape or not np.allclose(zoom_img.affine, reorientation.affine, atol=1e-3):
        raise DecodingInputError(
            f"'zoom_img' must be on the map's grid (shape {reorientation.shape}). Got shape {data.shape}."
        )
    inside = np.argwhere(reorientation.data(data) != 0)
    if inside.size == 0:
        return None  # nothing to zoom to: the whole field
    return tuple((int(low), int(high)) for low, high in zip(inside.min(axis=0), inside.max(axis=0)))


@dataclass(frozen=True)
class _Layout:
    """The figure's size in pixels, at one scale (pixels per millimetre) for every panel."""

    width: int
    height: int
    spacing: float  # the gap between panels, as a fraction of the plotting area's width
    column_widths: list

    @classmethod
    def of(cls, panels: list, *, height, right_margin: int, top_margin: int) -> "_Layout":
        widths = [p.width_mm for p in panels]
        tallest = max(p.height_mm for p in panels)
        gaps = _PANEL_GAP * (len(panels) - 1)
        vertical_margin = top_margin + _SLICE_MARGIN["b"]
        if height is None:
            px_per_mm = min(_TARGET_PANEL_HEIGHT / tallest, (_MAX_PANELS_WIDTH - gaps) / sum(widths))
        else:
            px_per_mm = max(height - vertical_margin, 20) / tallest
        plot_width = sum(widths) * px_per_mm + gaps
        return cls(
            width=int(round(_SLICE_MARGIN["l"] + plot_width + right_margin)),
            height=int(round(tallest * px_per_mm + vertical_margin)) if height is None else int(height),
            spacing=gaps / plot_width / max(len(panels) - 1, 1),
            column_widths=[w / sum(widths) for w in widths],
        )


def _checked_height(height):
    if height is None:
        return None
    if isinstance(height, bool) or not isinstance(height, Integral) or not 100 <= height <= 4000:
        raise DecodingInputError(f"'height' must be an integer in the range [100, 4000]. Got {height!r}.")
    return int(height)


def _background_heatmap(background: np.ndarray, panel: _Panel, canonical_cut) -> go.Heatmap:
    return go.Heatmap(
        z=_take_slice(background, panel.view, canonical_cut),
        x=panel.x_mm,
        y=panel.y_mm,
        colorscale="gray",
        zmin=0,
        zmax=255,
        showscale=False,
        hoverinfo="skip",
        name="anatomy",
    )


def _click_grid(
    panel: _Panel,
    canonical_cut,
    reorientation: _Reorientation,
    *,
    hover_values: np.ndarray,
    pointable: np.ndarray,
    hover_label: str,
    hover_format: str,
) -> go.Scatter:
    """The panel's transparent scatter of voxels: it shows the hover text and tells a click its voxel.

    Large slices take every n-th voxel (at most `_MAX_CLICK_POINTS_PER_PANEL` points), and
    only the ``pointable`` ones, so that the JSON stays small.
    """
    view, x_mm, y_mm = panel.view, panel.x_mm, panel.y_mm
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
    return go.Scatter(
        x=x_mm[grid_h.ravel()[keep]],
        y=y_mm[grid_v.ravel()[keep]],
        mode="markers",
        marker=dict(size=6, opacity=0, color=values[keep].astype(np.float32), showscale=False),
        selected=dict(marker=dict(opacity=0)),
        unselected=dict(marker=dict(opacity=0)),
        customdata=np.stack(original, axis=1)[keep].astype(_index_dtype(reorientation.shape)),
        hovertemplate=(
            f"{view.name}<br>voxel (i, j, k) = (%{{customdata[0]}}, %{{customdata[1]}}, "
            f"%{{customdata[2]}})<br>{view.horizontal_letter} = %{{x:.1f}} mm, "
            f"{view.vertical_letter} = %{{y:.1f}} mm"
            f"<br>{hover_label}: %{{marker.color:{hover_format}}}<extra></extra>"
        ),
        hoverlabel=dict(bgcolor="rgba(255,255,255,0.92)", font=dict(color="black")),
        showlegend=False,
        name="voxels",
    )


def _style_panel_axes(fig: go.Figure, panel: _Panel) -> None:
    """Millimetre axes that keep the voxels' true proportions (1:1), image at the top."""
    view, col = panel.view, panel.col
    fig.update_xaxes(
        range=panel.x_range,
        title=dict(text=f"{view.horizontal_letter} (mm)", standoff=4, font=dict(size=12)),
        tickfont=dict(size=11),
        constrain="domain",
        showgrid=False,
        zeroline=False,
        ticks="outside",
        row=1,
        col=col,
    )
    fig.update_yaxes(
        range=panel.y_range,
        title=dict(text=f"{view.vertical_letter} (mm)", standoff=2, font=dict(size=12)),
        tickfont=dict(size=11),
        scaleanchor=panel.x_ref,
        scaleratio=1,
        constrain="domain",
        constraintoward="top",
        showgrid=False,
        zeroline=False,
        ticks="outside",
        row=1,
        col=col,
    )


def _add_crosshair_and_edges(fig: go.Figure, panel: _Panel, canonical_cut) -> None:
    """Green lines through the cut, and the orientation letters at the panel's edges."""
    view, x_ref, y_ref = panel.view, panel.x_ref, panel.y_ref
    x_range, y_range = panel.x_range, panel.y_range
    cross = dict(color="rgba(0,220,0,0.75)", width=1)
    cut_x = float(panel.x_mm[canonical_cut[view.horizontal]])
    cut_y = float(panel.y_mm[canonical_cut[view.vertical]])
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


def _finish_slice_layout(fig: go.Figure, *, panel_titles: list, title: str | None, layout: _Layout,
                         top_margin: int, right_margin: int, cut_coords: tuple, views: str,
                         zoomed: bool) -> None:
    for annotation in fig.layout.annotations:
        if annotation.text in panel_titles:
            annotation.font.size = 13
            # Lift the panel titles off the image (their descenders touched its top edge).
            annotation.yshift = 6
    fig.update_layout(
        title=dict(text=html.escape(title), x=0.01, xanchor="left", font=dict(size=15)) if title else None,
        # A fixed size at one scale: drawn at its own width, the colour bar stays beside the image.
        width=layout.width,
        height=layout.height,
        autosize=False,
        margin=dict(_SLICE_MARGIN, r=right_margin, t=top_margin),
        plot_bgcolor="black",
        # The default template adds ~6 KB and nothing these panels use.
        template="none",
        hovermode="closest",
        font=FONT,
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
        meta=dict(
            cut_coords=[int(c) for c in cut_coords],
            display_mode=views,
            zoomed=zoomed,
            convention="neurological (left on the left)",
        ),
    )


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
    box=None,
    outline: np.ndarray | None = None,
) -> go.Figure:
    """The geometry shared by `plot_stat_slices` and `plot_roi`.

    ``make_overlay(view, canonical_cut, x_mm, y_mm, first)`` returns the overlay
    traces of one panel; ``hover_values`` is the canonical volume whose value the
    hover text shows; ``pointable`` (canonical, bool) marks the voxels the
    click grid covers (inside the head or the map: the black surround needs
    no points, which keeps the JSON small). ``box`` (canonical index bounds) is
    the region the panels show; ``outline`` (canonical, bool) a region drawn as a line.
    """
    canonical_cut = reorientation.to_canonical(cut_coords)
    coords = reorientation.axis_mm(canonical_cut)
    world_cut = reorientation.world(cut_coords)
    views = _views_with_area(views, reorientation.canonical_shape)
    panels = [_Panel.of(_VIEWS[letter], col, coords, reorientation.zooms, box)
              for col, letter in enumerate(views, start=1)]
    top_margin = _SLICE_MARGIN["t"] + (25 if title else 0)
    layout = _Layout.of(panels, height=_checked_height(height), right_margin=right_margin, top_margin=top_margin)
    panel_titles = [f"{p.view.name} {p.view.letter}={world_cut[p.view.axis]:.1f} mm" for p in panels]
    fig = make_subplots(
        rows=1,
        cols=len(panels),
        column_widths=layout.column_widths,
        horizontal_spacing=layout.spacing if len(panels) > 1 else 0.0,
        subplot_titles=panel_titles,
    )
    for panel in panels:
        view, col = panel.view, panel.col
        if background is not None:
            fig.add_trace(_background_heatmap(background, panel, canonical_cut), row=1, col=col)
        for trace in make_overlay(view, canonical_cut, panel.x_mm, panel.y_mm, col == 1):
            fig.add_trace(trace, row=1, col=col)
        if outline is not None:
            fig.add_trace(_outline_contour(outline, panel, canonical_cut), row=1, col=col)
        # Added last, so that it takes the hover.
        grid = _click_grid(panel, canonical_cut, reorientation, hover_values=hover_values,
                           pointable=pointable, hover_label=hover_label, hover_format=hover_format)
        fig.add_trace(grid, row=1, col=col)
        _style_panel_axes(fig, panel)
        _add_crosshair_and_edges(fig, panel, canonical_cut)
    _finish_slice_layout(
        fig, panel_titles=panel_titles, title=title, layout=layout, top_margin=top_margin,
        right_margin=right_margin, cut_coords=cut_coords, views=views, zoomed=box is not None,
    )
    return fig


def _outline_contour(outline: np.ndarray, panel: _Panel, canonical_cut) -> go.Contour:
    """The edge of a region on one panel: a single contour line at 0.5 of its 0/1 slice."""
    return go.Contour(
        z=_take_slice(outline, panel.view, canonical_cut).astype(np.uint8),
        x=panel.x_mm,
        y=panel.y_mm,
        contours=dict(start=0.5, end=0.5, size=1, coloring="none"),
        line=dict(color=_OUTLINE_COLOR, width=1.5),
        showscale=False,
        showlegend=False,
        hoverinfo="skip",
        name="mask outline",
    )


# -- the two slice figures -----------------------------------------------------------


def _cut_or_default(cut_coords, data: np.ndarray, affine, method: str) -> tuple:
    """The checked cut, or `default_cut_coords` of ``data`` by ``method`` when none is given."""
    if cut_coords is None:
        cut_coords = default_cut_coords(nib.Nifti1Image(data, affine), method=method)
    return _check_cut_coords(cut_coords, data.shape)


def cold_hot_colorscale(vmax: float, threshold: float = 0.0) -> list:
    """`COLD_HOT` as a Plotly colour scale from ``-vmax`` to ``vmax``, the hidden band in grey.

    Values with ``|value| < threshold`` are never drawn (they are transparent on the
    slices); on the colour bar their band is `_HIDDEN_BAND_COLOR`, so the bar shows
    where the threshold cuts.
    """
    stops = [[n / (len(COLD_HOT) - 1), color] for n, color in enumerate(COLD_HOT)]
    band = min(threshold / vmax, 1.0) / 2 if vmax > 0 else 0.0
    if band <= 0:
        return stops
    low, high = 0.5 - band, 0.5 + band
    below = [stop for stop in stops if stop[0] < low]
    above = [stop for stop in stops if stop[0] > high]
    return (below + [[low, _interpolated(low)], [low, _HIDDEN_BAND_COLOR], [high, _HIDDEN_BAND_COLOR],
                     [high, _interpolated(high)]] + above)


def _interpolated(position: float) -> str:
    """The `COLD_HOT` colour at ``position`` (0 to 1), linearly between its stops."""
    scaled = position * (len(COLD_HOT) - 1)
    low = min(int(math.floor(scaled)), len(COLD_HOT) - 2)
    red, green, blue = plotly.colors.find_intermediate_color(
        plotly.colors.hex_to_rgb(COLD_HOT[low]), plotly.colors.hex_to_rgb(COLD_HOT[low + 1]),
        scaled - low, colortype="tuple",
    )
    return f"rgb({red:.0f},{green:.0f},{blue:.0f})"


def _colorbar_ticks(vmax: float, threshold: float) -> tuple:
    """Tick values and texts of the colour bar: the ends, zero, and the threshold on each side."""
    values = [-vmax, 0.0, vmax]
    if 0 < threshold < vmax:
        values = [-vmax, -threshold, 0.0, threshold, vmax]
    texts = [f"{v:.3g}" for v in values]
    if 0 < threshold < vmax:
        texts[1], texts[3] = f"-{threshold:.3g} (threshold)", f"{threshold:.3g} (threshold)"
    return values, texts


def _stat_overlay(overlay: np.ndarray, vmax: float, threshold: float, colorbar_title: str):
    """``make_overlay`` of a statistical map: a symmetric cold-hot heatmap, one colour bar."""
    tick_values, tick_texts = _colorbar_ticks(vmax, threshold)
    colorbar = dict(
        title=dict(text=html.escape(colorbar_title), side="right"), thickness=14, len=0.9, x=1.0, xpad=6,
        y=0.5, yanchor="middle", tickvals=tick_values, ticktext=tick_texts, tickfont=dict(size=11),
    )
    colorscale = cold_hot_colorscale(vmax, threshold)

    def make_overlay(view, canonical_cut, x_mm, y_mm, first):
        return [
            go.Heatmap(
                z=_take_slice(overlay, view, canonical_cut),
                x=x_mm,
                y=y_mm,
                colorscale=colorscale,
                zmin=-vmax,
                zmax=vmax,
                showscale=first,
                colorbar=colorbar if first else None,
                hoverongaps=False,
                hoverinfo="skip",
                name=html.escape(colorbar_title),
            )
        ]

    return make_overlay


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
    zoom_img=None,
    outline_img=None,
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
        The colour bar marks ``-threshold`` and ``threshold`` and greys the band between.
    vmax : float, optional
        The colour scale runs symmetrically from ``-vmax`` to ``vmax``
        (nilearn's ``cold_hot``: dark near zero); default: the largest absolute value of the map.
    title : str, optional
        Plain text (escaped: user text never becomes markup).
    colorbar_title : str, default="weight"
        Also the name of the value in the hover text (plain text, escaped).
    height : int, optional
        Figure height in pixels; default: panels at most 360 px tall and 780 px wide
        together. The width follows, at the same pixels per millimetre in every panel.
    map_index : int, optional
        The volume of a 4D ``stat_img``.
    zoom_img : nibabel image, optional
        3D image on the map's grid (e.g. the mask): the panels show the bounding box
        of its non-zero voxels plus 8 mm, instead of the whole field.
    outline_img : nibabel image, optional
        3D image on the map's grid whose non-zero region is outlined (e.g. the mask,
        when the background is empty outside it).

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
    reorientation = _Reorientation.of(data.shape, stat_img.affine)
    views = _parse_display_mode(display_mode)
    threshold = check_positive(threshold, "threshold", allow_none=False, allow_zero=True)
    vmax = check_positive(vmax, "vmax")
    cut_coords = _cut_or_default(cut_coords, data, stat_img.affine, "peak")
    finite = _finite(data)
    if vmax is None:
        vmax = float(np.abs(finite).max()) or 1.0
    canonical = reorientation.data(finite)
    shown = np.abs(canonical) >= threshold
    shown &= canonical != 0
    overlay = np.where(shown, canonical, np.nan).astype(np.float32)
    background, pointable = _background_and_pointable(
        bg_img, canonical, data.shape, stat_img.affine, reorientation
    )
    outline = None
    if outline_img is not None:
        _zoom_box(outline_img, reorientation)  # the same grid check as the zoom's
        outline = reorientation.data(_finite(_volume(outline_img, "outline_img")) != 0)
    return _slice_figure(
        reorientation=reorientation,
        cut_coords=cut_coords,
        views=views,
        background=background,
        make_overlay=_stat_overlay(overlay, vmax, threshold, colorbar_title),
        hover_values=canonical,
        pointable=pointable,
        hover_label=html.escape(colorbar_title),
        hover_format=".4g",
        title=title,
        height=height,
        right_margin=130 if 0 < threshold < vmax else 100,
        box=_zoom_box(zoom_img, reorientation),
        outline=outline,
    )


def _roi_overlay(codes: np.ndarray, colorscale: list, zmin: float, zmax: float, opacity: float):
    """``make_overlay`` of a region: a heatmap of colour codes (NaN outside the region)."""

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

    return make_overlay


def _atlas_overlay(canonical: np.ndarray, labels: np.ndarray, colors: list, opacity: float):
    """An atlas: label ``labels[k]`` drawn in ``colors[k]``."""
    codes = np.full(canonical.shape, np.nan, dtype=np.float32)
    codes[canonical != 0] = np.searchsorted(labels, canonical[canonical != 0])
    return _roi_overlay(codes, discrete_colorscale(colors), -0.5, labels.size - 0.5, opacity)


def _region_overlay(canonical: np.ndarray, color: str, opacity: float):
    """One region: every non-zero voxel in ``color``."""
    codes = np.where(canonical != 0, 1.0, np.nan).astype(np.float32)
    return _roi_overlay(codes, [[0.0, color], [1.0, color]], 0.0, 1.0, opacity)


def _add_atlas_legend(fig: go.Figure, labels: np.ndarray, colors: list, label_names: Mapping) -> None:
    """A legend swatch for each of the first 30 labels, named from ``label_names`` when it knows them."""
    shown = labels if labels.size <= 30 else labels[:30]
    for n, value in enumerate(shown):
        name = html.escape(str(label_names.get(value, label_names.get(int(value), f"label {int(value)}"))))
        fig.add_trace(
            go.Scatter(x=[None], y=[None], mode="markers", name=name, showlegend=True,
                       marker=dict(symbol="square", size=12, color=colors[n]), hoverinfo="skip")
        )
    fig.update_layout(margin_b=_SLICE_MARGIN["b"] + 40)


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
    reorientation = _Reorientation.of(data.shape, mask_img.affine)
    views = _parse_display_mode(display_mode)
    if isinstance(opacity, bool) or not isinstance(opacity, Real) or not 0 < opacity <= 1:
        raise DecodingInputError(f"'opacity' must be a number in the range (0, 1]. Got {opacity!r}.")
    cut_coords = _cut_or_default(cut_coords, data, mask_img.affine, "center_of_mass")
    labels = np.unique(data[data != 0])
    multi_label = labels.size > 1 and np.all(labels == np.round(labels))
    canonical = reorientation.data(data)
    if multi_label:
        colors = [PALETTE[n % len(PALETTE)] for n in range(labels.size)]
        make_overlay = _atlas_overlay(canonical, labels, colors, opacity)
    else:
        make_overlay = _region_overlay(canonical, color, opacity)
    background, pointable = _background_and_pointable(
        bg_img, canonical, data.shape, mask_img.affine, reorientation
    )
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
        title=title if title is not None else f"Region: {int(np.count_nonzero(data))} voxels",
        height=height,
        right_margin=20,
    )
    if multi_label:
        _add_atlas_legend(fig, labels, colors, dict(label_names or {}))
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
