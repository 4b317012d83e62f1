"""What a weight-map view shows of a result: which maps, of which class, where to cut, up to what value.

A `DecodingResult` holds the classifier's weights and, when computed, the
activation pattern (Haufe et al. 2014) and the sign stability across folds, each
with one map for two classes or one per class (one-vs-rest). The Results and
Tutorial pages, and anything else that draws them, pick what to draw with these
functions; the slices themselves are drawn by `decoding_core.plotting`.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from decoding_core.plotting import default_cut_coords, voxel_from_click

#: The kinds of map a result may hold, and their display names.
MAP_KINDS = {
    "weights": "Raw classifier weights",
    "pattern": "Activation pattern (Haufe et al. 2014)",
    "stability": "Stability across folds",
}
#: Which field of `DecodingResult` holds the image of each kind.
_IMAGE_FIELDS = {"weights": "weight_img", "pattern": "pattern_img", "stability": "stability_img"}


def result_map(result, kind: str = "weights") -> nib.Nifti1Image:
    """The whole image of one kind of map (every class), or the weights when the result lacks it."""
    img = getattr(result, _IMAGE_FIELDS.get(kind, "weight_img"), None)
    return result.weight_img if img is None else img


def available_map_kinds(result) -> list[str]:
    """The kinds of map the result holds: ``weights`` always; ``pattern``, ``stability`` when computed."""
    return ["weights"] + [kind for kind in ("pattern", "stability")
                          if getattr(result, _IMAGE_FIELDS[kind], None) is not None]


def map_names(result) -> list[str]:
    """Names of the maps in the weight image: one for two classes (``"cat vs face"``), one per class otherwise."""
    n_maps = int(np.asarray(result.weights).shape[0]) if np.ndim(result.weights) == 2 else 1
    if n_maps == 1:
        classes = [str(c) for c in result.classes]
        return [" vs ".join(classes[::-1]) if len(classes) == 2 else "weights"]
    return [f"{c} vs rest" for c in result.classes][:n_maps]


def map_image(result, kind: str = "weights", index: int = 0) -> nib.Nifti1Image:
    """The 3D map to draw: the raw weights, the pattern or the stability of one class.

    Parameters
    ----------
    result : DecodingResult
    kind : {"weights", "pattern", "stability"}
        A kind the result lacks gives the weights.
    index : int
        Which map of a 4D image (one per class); clipped to the maps there are.
    """
    img = result_map(result, kind)
    if len(img.shape) == 4:
        index = min(max(int(index), 0), img.shape[3] - 1)
        data = np.asanyarray(img.dataobj)[..., index]
        return nib.Nifti1Image(np.asarray(data, dtype=np.float32), img.affine)
    return img


def map_abs_max(img) -> float:
    """Largest absolute finite value of a map (the end of a threshold slider), 0 when there is none."""
    value = float(np.nanmax(np.abs(np.asanyarray(img.dataobj)))) if np.size(img.shape) else 0.0
    return value if np.isfinite(value) else 0.0


def default_cut(img) -> tuple[int, int, int]:
    """Where to cut a map first (voxel indices): its peak (`plotting.default_cut_coords`), else the grid's centre."""
    try:
        return tuple(int(v) for v in default_cut_coords(img))
    except Exception:  # an empty or odd map: the centre always exists
        return tuple(int(s) // 2 for s in img.shape[:3])


def clamp_cut(cut, shape) -> tuple[int, int, int]:
    """A cut position moved inside a grid of ``shape`` (each index in ``[0, size - 1]``)."""
    return tuple(min(max(int(v), 0), int(s) - 1) for v, s in zip(cut, shape[:3]))


def cut_from_selection(selection) -> tuple[int, int, int] | None:
    """The voxel (i, j, k) a click on a slice chart selected, or None (no click, or not on a voxel).

    Parameters
    ----------
    selection : dict or None
        Streamlit's chart selection (``{"points": [{"customdata": ...}, ...]}``).
    """
    if not selection:
        return None
    try:
        voxel = voxel_from_click(selection)
    except Exception:  # a click outside the grid or on another trace
        voxel = None
    if voxel is None:
        return None
    return tuple(int(v) for v in voxel)
