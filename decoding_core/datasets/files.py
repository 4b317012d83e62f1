"""A data set from the user's own files: a 4D image, a labels table, optionally a mask and an anatomy."""

from __future__ import annotations

import functools
import math
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from decoding_core.datasets._base import Dataset
from decoding_core.datasets._images import dataset_digest, float_image, mask_image, resample_onto
from decoding_core.errors import DecodingInputError, DecodingInputTypeError
from decoding_core.io import nifti
from decoding_core.io.labels import read_labels_table

#: Most voxels of an uploaded anatomical image (256^3): it is resampled in memory (float64).
MAX_ANAT_VOXELS = 256**3


def load_files(func, labels, *, label_column: str = "labels", run_column: str | None = "chunks",
               mask=None, anat=None, tr=None, title: str | None = None) -> Dataset:
    """A data set from the user's own files.

    Parameters
    ----------
    func : str or pathlib.Path
        The 4D functional image (.nii or .nii.gz); checked from its header,
        then read by streaming.
    labels : str, pathlib.Path or bytes
        The per-volume labels table (see `read_labels_table`).
    label_column : str, default="labels"
        Column with the condition of each volume.
    run_column : str or None, default="chunks"
        Column with the run of each volume; None when there are no runs.
    mask : str, pathlib.Path or bytes, optional
        A binary 3D mask on the functional grid, named ``"uploaded"``. Without
        one, a brain mask is computed from the mean image with nilearn's
        ``compute_epi_mask``, named ``"epi"``.
    anat : str, pathlib.Path or bytes, optional
        An anatomical image, resampled onto the functional grid; default the
        mean functional image.
    tr : float, optional
        Repetition time in seconds; default the header's 4th zoom (None when
        it is 0 or missing).
    title : str, optional

    Returns
    -------
    Dataset

    Raises
    ------
    DecodingInputError
        Unreadable or non-NIfTI files, a 3D functional image, a labels table
        whose length differs from the number of volumes, a missing column, a
        mask on another grid, an empty label.
    """
    func_path = _existing_func_path(func)
    info = nifti.inspect_nifti(func_path, expected_ndim=4, kind="functional image")
    shape, affine = tuple(int(v) for v in info.shape), np.asarray(info.affine, dtype=float)
    table = read_labels_table(labels, n_volumes=shape[3])
    label_column, run_column = _checked_columns(table, label_column, run_column)

    mean_img = None
    if mask is not None:
        masks = {"uploaded": _uploaded_mask(mask, shape, affine)}
    else:
        mean_img = nifti.mean_volume(func_path)
        masks = {"epi": _epi_mask(mean_img, affine)}
    if anat is not None:
        anat_img = _uploaded_background(anat, shape, affine)
    elif mean_img is not None:
        anat_img = mean_img
    else:
        # Only a drawing needs the mean image: a pass over the whole file that masking
        # and decoding (the command line) never use, so it is computed when first read.
        anat_img = lazy_mean_image(func_path, info)

    repetition_time = _check_tr(tr)
    if repetition_time is None:
        repetition_time = _tr_from_header(info)
    label_file = Path(labels).name if isinstance(labels, (str, os.PathLike)) else "uploaded table"
    return Dataset(
        name="upload",
        title=title or f"Uploaded: {func_path.name}",
        func_path=func_path,
        labels=table,
        label_column=label_column,
        run_column=run_column,
        tr=repetition_time,
        masks=masks,
        anat_img=anat_img,
        description=_description(func_path, shape, table, label_file, label_column, run_column,
                                 has_mask=mask is not None, has_anat=anat is not None),
        source=f"Uploaded files: {func_path.name}, {label_file}",
        digest=dataset_digest(nifti.file_digest(func_path), table, masks, "upload", label_column, run_column),
        shape=shape,
        affine=affine,
    )


def _existing_func_path(func) -> Path:
    if not isinstance(func, (str, os.PathLike)):
        raise DecodingInputTypeError(f"'func' must be a path to a .nii or .nii.gz file. Got {type(func).__name__}.")
    func_path = Path(func)
    if not func_path.is_file():
        raise DecodingInputError(f"The functional image {func_path} does not exist (or is not a file). Check the path.")
    return func_path


def _description(func_path: Path, shape, table: pd.DataFrame, label_file: str, label_column: str,
                 run_column: str | None, *, has_mask: bool, has_anat: bool) -> str:
    """What the data set is made of, in one paragraph: the files, the runs, the mask and the background."""
    background = "the uploaded anatomical image" if has_anat else "the mean functional image"
    mask_text = "the uploaded mask" if has_mask else "an EPI mask computed from the mean image"
    n_runs = int(table[run_column].nunique()) if run_column is not None else 0
    return (
        f"Your data: {func_path.name} ({shape[0]} x {shape[1]} x {shape[2]} voxels, {shape[3]} volumes"
        + (f", {n_runs} runs" if run_column is not None else ", no runs")
        + f") with labels from {label_file} (column {label_column!r}). Mask: {mask_text}; "
        f"background: {background}."
    )


# -- the labels table's columns ------------------------------------------------------------


def _checked_columns(table: pd.DataFrame, label_column, run_column) -> tuple[str, str | None]:
    """The label and run column names as str, after checking them; strips the labels in ``table``.

    Raises
    ------
    DecodingInputError
        A column the table lacks, the same column twice, an empty label or run.
    """
    label_column = str(label_column)
    if label_column not in table.columns:
        raise _missing_column_error("label", label_column, table)
    if run_column is not None:
        run_column = str(run_column)
        if run_column not in table.columns:
            raise _missing_column_error("run", run_column, table)
        if run_column == label_column:
            raise DecodingInputError(
                f"The label column and the run column are both {label_column!r}. Choose another run "
                "column, or none."
            )
    conditions = np.char.strip(table[label_column].to_numpy(dtype=str))
    empty = np.flatnonzero(conditions == "")
    if empty.size:
        rows = ", ".join(str(i + 2) for i in empty[:5])
        raise DecodingInputError(
            f"The label column {label_column!r} is empty on {empty.size} row(s) (lines {rows} of the table). "
            "Give every volume a label (e.g. 'rest' for volumes without a stimulus)."
        )
    table[label_column] = pd.array(conditions.tolist(), dtype="str")
    if run_column is not None and (table[run_column].astype(str).str.strip() == "").any():
        raise DecodingInputError(
            f"The run column {run_column!r} has empty cells. Give every volume its run, or choose no run column."
        )
    return label_column, run_column


def _missing_column_error(kind: str, column, table: pd.DataFrame) -> DecodingInputError:
    available = ", ".join(repr(str(c)) for c in table.columns)
    return DecodingInputError(
        f"The labels table has no {kind} column {column!r}. Its columns are: {available}. "
        f"Choose one of them as the {kind} column."
    )


# -- mask and background ------------------------------------------------------------------


def _uploaded_mask(mask, shape, affine) -> nib.Nifti1Image:
    """The user's mask as uint8, after checking that it lies on the functional grid."""
    from decoding_core.masking import check_mask_matches, mask_bool

    # Check the grid from the header first: a mask on another grid is refused before
    # any voxel is read (a 512 MB mask would otherwise be inflated, then refused).
    mask_info = nifti.inspect_nifti(mask, expected_ndim=3, kind="mask")
    if tuple(mask_info.shape) != tuple(shape[:3]):
        raise DecodingInputError(
            f"The mask 'uploaded' has shape {tuple(mask_info.shape)} but the functional image's volumes "
            f"have shape {tuple(shape[:3])}. Use the mask made for this image, or resample the mask onto "
            "the image (e.g. nilearn.image.resample_to_img(mask, func, interpolation='nearest'))."
        )
    mask_img = nifti.load_image(mask, expected_ndim=3, kind="mask", budget_bytes=mask_info.data_nbytes)
    check_mask_matches(mask_img, shape, affine, "uploaded")
    return mask_image(mask_bool(mask_img, "uploaded"), affine)


def _epi_mask(mean_img: nib.Nifti1Image, affine) -> nib.Nifti1Image:
    """A brain mask computed from the mean image with nilearn's ``compute_epi_mask``.

    Raises
    ------
    DecodingInputError
        When the mask is empty even without the opening: the user must give one.
    """
    from nilearn.masking import compute_epi_mask

    mean_values = np.asanyarray(mean_img.dataobj)
    epi = np.zeros(mean_values.shape, dtype=bool)
    # The default opening (2 erosions) wipes out a slab a few slices thick: then try
    # without it before giving up.
    for opening in (2, False):
        # Zeros are background (skull-stripped or masked data): keep them out of the histogram.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Computed an empty mask")
            try:
                epi = np.asanyarray(
                    compute_epi_mask(mean_img, exclude_zeros=True, opening=opening).dataobj
                ) != 0
            except ValueError:  # nilearn fails on a constant (e.g. all-zero) image
                epi = np.zeros(mean_values.shape, dtype=bool)
        epi &= mean_values != 0
        if epi.any():
            break
    if not epi.any():
        raise DecodingInputError(
            "No brain mask could be computed from the functional image (the EPI mask is empty). "
            "Upload a mask for this image."
        )
    return mask_image(epi, affine)


def _uploaded_background(anat, shape, affine) -> nib.Nifti1Image:
    """The user's anatomical image resampled onto the functional grid (size checked from its header)."""
    anat_info = nifti.inspect_nifti(anat, expected_ndim=3, kind="anatomical image")
    if anat_info.voxels_per_volume > MAX_ANAT_VOXELS:
        raise DecodingInputError(
            f"The anatomical image has {anat_info.voxels_per_volume:,} voxels "
            f"({' x '.join(map(str, anat_info.shape))}); at most {MAX_ANAT_VOXELS:,} (256 x 256 x 256) are "
            "accepted. Downsample it (e.g. to 1 mm), or leave it out: the mean functional image then "
            "serves as background."
        )
    anat_source = nifti.load_image(anat, expected_ndim=3, kind="anatomical image",
                                   budget_bytes=anat_info.data_nbytes)
    resampled = resample_onto(anat_source, shape, affine, "continuous")
    return float_image(np.asanyarray(resampled.dataobj), affine)


class _VoxelsOnFirstRead:
    """A nibabel array proxy whose voxels are computed on first read, then kept.

    nibabel reads an image's voxels through ``np.asanyarray(image.dataobj)``
    (``get_fdata``, ``nib.save``, nilearn), while its shape, affine and header
    are known at once: an image built on this proxy costs nothing until a
    voxel is read, and then exactly what ``compute`` costs, once.
    """

    #: nibabel's mark of a proxy: the image reports it is not in memory yet.
    is_proxy = True

    def __init__(self, compute: Callable[[], np.ndarray], shape: tuple, dtype):
        self._compute = compute
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self._values = None
        # Two threads drawing at once (two reruns of a page) must not both read the file.
        self._lock = threading.Lock()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_computed(self) -> bool:
        """Whether the voxels have been computed (read) already."""
        return self._values is not None

    def _read(self) -> np.ndarray:
        with self._lock:
            if self._values is None:
                values = np.asarray(self._compute(), dtype=self.dtype)
                if values.shape != self.shape:
                    raise DecodingInputError(
                        f"The image changed on disk: its voxels have shape {values.shape}, not {self.shape}. "
                        "Load the files again."
                    )
                values.flags.writeable = False  # shared by every reader
                self._values = values
        return self._values

    def __array__(self, dtype=None, copy=None):
        values = self._read()
        if dtype is not None and np.dtype(dtype) != values.dtype:
            return values.astype(dtype)
        return values.copy() if copy else values

    def __getitem__(self, index):
        return self._read()[index]

    def __getstate__(self):  # pickle and deepcopy: the lock is not copied, the voxels are if read
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()


def lazy_mean_image(func_path: Path, info) -> nib.Nifti1Image:
    """The mean functional image, as `nifti.mean_volume` makes it, read only when its voxels are.

    Parameters
    ----------
    func_path : pathlib.Path
        The 4D image.
    info : decoding_core.io.nifti.NiftiInfo
        Its header, checked by `nifti.inspect_nifti`.

    Returns
    -------
    nibabel.Nifti1Image
        Shape, affine and header as `nifti.mean_volume`'s result (float32, on the
        functional grid); the first read of its voxels streams the file once.
    """
    shape = tuple(int(n) for n in info.shape[:3])
    header = info.header.copy()
    header.set_data_shape(shape)
    header.set_data_dtype(np.float32)
    header.set_slope_inter(None, None)
    voxels = _VoxelsOnFirstRead(functools.partial(_mean_voxels, Path(func_path)), shape, np.float32)
    return nifti._make_image(voxels, info, header, func_path.name, "functional image")


def _mean_voxels(func_path: Path) -> np.ndarray:
    return np.asanyarray(nifti.mean_volume(func_path).dataobj)


# -- repetition time ---------------------------------------------------------------------


def _tr_from_header(info) -> float | None:
    """TR in seconds from the 4th zoom (units from xyzt_units); None when absent or 0."""
    if len(info.zooms) < 4:
        return None
    value = float(info.zooms[3])
    if not math.isfinite(value) or value <= 0:
        return None
    unit = info.header.get_xyzt_units()[1]
    seconds = value * {"msec": 1e-3, "usec": 1e-6}.get(unit, 1.0)
    # Over a minute is no fMRI TR: most likely milliseconds without units; better unknown than wrong.
    return seconds if seconds <= 60 else None


def _check_tr(tr) -> float | None:
    """``tr`` as float seconds; None when not given or 0 (then it is read from the header)."""
    if tr is None:
        return None
    if isinstance(tr, bool) or not isinstance(tr, (int, float, np.integer, np.floating)):
        raise DecodingInputTypeError(f"'tr' must be a number of seconds or None. Got {tr!r}.")
    tr = float(tr)
    if tr == 0:
        return None
    if not math.isfinite(tr) or tr < 0 or tr > 60:
        raise DecodingInputError(
            f"The repetition time (TR) must be a positive number of seconds (at most 60). Got {tr!r}. "
            "Leave it empty to read it from the image header."
        )
    return tr
