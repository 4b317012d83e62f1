"""What a weight-map view shows of a result: which maps, of which class, where to cut, up to what value.

A `DecodingResult` holds the classifier's weights and, when computed, the
activation pattern (Haufe et al. 2014) and the sign stability across folds, each
with one map for two classes or one per class (one-vs-rest). The Results and
Tutorial pages, and anything else that draws them, pick what to draw with these
functions; the slices themselves are drawn by `decoding_core.plotting`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

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


def sign_sentence(result, kind: str = "weights", index: int = 0) -> str:
    """What a positive and a negative value of the drawn map mean, in words.

    For two classes scikit-learn's decision function is positive toward the second
    class in sorted order (``classes[1]``: "face" for face vs cat); with more
    classes each map is one class against the others (one-vs-rest).

    Parameters
    ----------
    result : DecodingResult
    kind : {"weights", "pattern", "stability"}
    index : int
        Which class's map, with more than two classes.

    Returns
    -------
    str
        E.g. ``"Positive weights: face; negative weights: cat."`` (plain text).
    """
    noun = {"pattern": "pattern values", "stability": "stability values"}.get(kind, "weights")
    classes = [str(c) for c in result.classes]
    names = map_names(result)
    if len(names) == 1 and len(classes) == 2:
        return f"Positive {noun}: {classes[1]}; negative {noun}: {classes[0]}."
    if len(names) == 1:
        return f"Positive {noun} point to the decision's positive class."
    index = min(max(int(index), 0), len(names) - 1)
    return (f"One map per class (one vs rest): positive {noun}: {classes[index]}; "
            f"negative {noun}: the other {len(classes) - 1} classes.")


@dataclass(frozen=True)
class ViewerBackground:
    """What the weight map is drawn over.

    Attributes
    ----------
    img : nibabel.Nifti1Image or None
        The background image (None: black).
    source : str
        Where it comes from, in words, for a caption.
    outline_img : nibabel.Nifti1Image or None
        A region to outline (the mask, when the background is empty outside it).
    """

    img: nib.Nifti1Image | None
    source: str
    outline_img: nib.Nifti1Image | None = None


#: ``sform_code`` / ``qform_code`` of an image aligned to the MNI152 template (NIfTI-1 standard).
_NIFTI_XFORM_MNI_152 = 4


def in_mni_space(img) -> bool:
    """True when the image's header says its coordinates are MNI152 (sform or qform code 4)."""
    header = getattr(img, "header", None)
    if header is None or "sform_code" not in header:
        return False
    return _NIFTI_XFORM_MNI_152 in (int(header["sform_code"]), int(header["qform_code"]))


def _mean_image_background(dataset) -> bool:
    """True when an uploaded data set's background is its mean functional image (no anatomy uploaded).

    The data set says so in its description (`decoding_core.datasets.files`); built-in
    sets always carry an anatomy (the subject's, or the MNI152 template for the simulated one).
    """
    return dataset.name == "upload" and "background: the mean functional image" in dataset.description


def _empty_outside(img, mask_img) -> bool:
    """True when ``img`` is zero everywhere outside ``mask_img`` (a masked file's mean image)."""
    data = np.asanyarray(img.dataobj)
    mask = np.asanyarray(mask_img.dataobj) != 0
    return data.shape == mask.shape and not np.any(data[~mask])


@functools.lru_cache(maxsize=1)
def _mni152_template() -> nib.Nifti1Image:
    """nilearn's MNI152 template (shipped with nilearn: no download)."""
    from nilearn.datasets import load_mni152_template

    return load_mni152_template(resolution=2)


def viewer_background(dataset, mask_img=None) -> ViewerBackground:
    """The background of the weight map: the anatomy, else MNI152 in MNI space, else the mean image.

    Parameters
    ----------
    dataset : Dataset or None
        The data set the result comes from (None: no background).
    mask_img : nibabel image, optional
        The mask the result used: outlined when the mean image is empty outside it.

    Returns
    -------
    ViewerBackground
    """
    if dataset is None or dataset.anat_img is None:
        return ViewerBackground(None, "none (the data set is not loaded)", mask_img)
    if not _mean_image_background(dataset):
        source = "the uploaded anatomy" if dataset.name == "upload" else "the data set's anatomy"
        return ViewerBackground(dataset.anat_img, source)
    if in_mni_space(dataset.anat_img):
        return ViewerBackground(_mni152_template(), "the MNI152 template (the image is in MNI space)")
    mean_img = dataset.read_background()
    if mask_img is not None and _empty_outside(mean_img, mask_img):
        return ViewerBackground(mean_img, "the mean functional image, empty outside the mask "
                                          "(its outline is drawn)", mask_img)
    return ViewerBackground(mean_img, "the mean functional image (no anatomy was uploaded)")


def zoom_region(result, dataset=None):
    """The image whose non-zero voxels the zoomed view shows: the result's mask, else its map.

    Parameters
    ----------
    result : DecodingResult
    dataset : Dataset, optional
        The data set the result comes from; its mask of ``result.config.mask_name``.
    """
    masks = getattr(dataset, "masks", None) or {}
    mask = masks.get(getattr(result.config, "mask_name", None))
    if mask is not None and tuple(mask.shape[:3]) == tuple(result.weight_img.shape[:3]):
        return mask
    return map_image(result, "weights", 0)
