"""A data set from the user's own files: a 4D image, a labels table, optionally a mask and an anatomy."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
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
    # Messages name the mask's file (the app says the user's own name for its stored copy).
    file_name = _file_name(mask)
    if tuple(mask_info.shape) != tuple(shape[:3]):
        raise DecodingInputError(
            f"The mask '{file_name}' has shape {tuple(mask_info.shape)} but the functional image's volumes "
            f"have shape {tuple(shape[:3])}. Use the mask made for this image, or resample the mask onto "
            "the image (e.g. nilearn.image.resample_to_img(mask, func, interpolation='nearest'))."
        )
    mask_img = nifti.load_image(mask, expected_ndim=3, kind="mask", budget_bytes=mask_info.data_nbytes)
    check_mask_matches(mask_img, shape, affine, file_name)
    return mask_image(mask_bool(mask_img, file_name), affine)


def _file_name(source) -> str:
    """A file's name for messages (``"uploaded"`` for bytes, which have none)."""
    return "uploaded" if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).name


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


# -- several runs, one file each -------------------------------------------------------------

#: Bumped when the joined files written to the cache change.
_JOINED_VERSION = 1
#: Stored voxel types kept as they are when runs are joined (float32, how the app reads them, holds them exactly).
_KEPT_DTYPES = ("uint8", "int8", "uint16", "int16", "float32")


def _joined_name(run_files) -> str:
    """The joined file's name: a digest of the run files' contents, in order."""
    digest = hashlib.sha256(f"decoding-lab-joined-runs-v{_JOINED_VERSION}\0".encode())
    for path in run_files:
        digest.update(nifti.file_digest(path).encode() + b"\0")
    return f"runs-{digest.hexdigest()[:32]}.nii.gz"


def _joined_dtype(infos) -> np.dtype:
    """The runs' own voxel type when they share one that float32 holds exactly, else float32."""
    dtypes = {info.dtype.newbyteorder("=") for info in infos}
    if len(dtypes) == 1 and not any(info.scaled for info in infos):
        dtype = dtypes.pop()
        if dtype.name in _KEPT_DTYPES:
            return dtype
    return np.dtype(np.float32)


def check_same_grid(run_files, infos) -> None:
    """Raise unless every run has the first run's volume shape and affine.

    Raises
    ------
    DecodingInputError
        Naming the first run on another grid and the first run.
    """
    first, first_info = Path(run_files[0]).name, infos[0]
    for path, info in zip(run_files, infos):
        if tuple(info.shape[:3]) != tuple(first_info.shape[:3]) or not np.allclose(
                info.affine, first_info.affine, atol=1e-3):
            raise DecodingInputError(
                f"The run {Path(path).name} is on another grid than {first}: volumes {tuple(info.shape[:3])} vs "
                f"{tuple(first_info.shape[:3])}, or a different affine. Every run must be on one grid: use "
                "runs preprocessed into one space."
            )


def concatenate_runs(run_files, out_dir, progress=None) -> Path:
    """The runs streamed, one chunk of volumes at a time, into one 4D .nii.gz in ``out_dir``.

    Masking and decoding read one 4D file; joining the runs there keeps them
    unchanged. The file is named by a digest of the run files' contents, so the
    same runs give the same file, written once (atomically). Voxel values are
    unchanged: kept in the runs' own type when float32 holds it exactly, else
    float32, which is how the app reads them anyway.

    Parameters
    ----------
    run_files : sequence of str or pathlib.Path
        4D images on one grid, in run order.
    out_dir : str or pathlib.Path
    progress : callable, optional
        ``progress(fraction, message)`` after each run.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    DecodingInputError
        A file that is not a 4D NIfTI image, runs on different grids, a folder
        that cannot be written.
    """
    from decoding_core.datasets.simulation import write_nifti_gz_stream

    run_files = [Path(path) for path in run_files]
    infos = [nifti.inspect_nifti(path, expected_ndim=4, kind="functional image") for path in run_files]
    check_same_grid(run_files, infos)
    target = Path(out_dir) / _joined_name(run_files)
    if target.is_file():
        return target
    dtype, first = _joined_dtype(infos), infos[0]
    shape = (*first.shape[:3], sum(info.n_volumes for info in infos))
    zooms = (*(float(v) for v in first.zooms[:3]), float(first.zooms[3]) if len(first.zooms) > 3 else 1.0)

    def chunks():
        for index, path in enumerate(run_files):
            for _, volumes in nifti.iter_volume_chunks(path):
                yield np.asfortranarray(volumes.astype(dtype)).tobytes(order="F")
            if progress is not None:
                progress((index + 1) / len(run_files), f"Joined run {index + 1} of {len(run_files)}")

    try:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        sha256 = write_nifti_gz_stream(chunks(), shape, first.affine, dtype, target, zooms)
    except OSError as error:
        raise DecodingInputError(
            f"Cannot write the joined runs to {target.parent}: {error.strerror}. Set DECODING_LAB_DATA_DIR "
            "to a writable folder."
        ) from None
    nifti.remember_file_digest(target, sha256)
    return target


def _labels_per_run(labels, run_files, infos, label_column: str) -> pd.DataFrame:
    """One table for all runs: each run's own table (one per file) or one table for every volume."""
    counts = [info.n_volumes for info in infos]
    if isinstance(labels, (list, tuple)):
        if len(labels) != len(run_files):
            raise DecodingInputError(
                f"Give one labels table per run: {len(run_files)} run files and {len(labels)} labels tables."
            )
        tables = []
        for source, path, count in zip(labels, run_files, counts):
            try:
                table = read_labels_table(source, n_volumes=count)
                if label_column not in table.columns:  # else the joined table would have empty labels
                    raise _missing_column_error("label", label_column, table)
            except DecodingInputError as error:
                raise DecodingInputError(f"The labels of the run {Path(path).name}: {error}") from None
            tables.append(table)
        table = pd.concat(tables, ignore_index=True)
    else:
        table = read_labels_table(labels, n_volumes=sum(counts))
    if label_column not in table.columns:
        raise _missing_column_error("label", label_column, table)
    # Runs come from the files, whatever run column a table holds.
    return pd.DataFrame({label_column: table[label_column].to_numpy(),
                         "run": np.repeat(np.arange(len(run_files)), counts)})


def load_run_files(func_files, labels, *, label_column: str = "labels", mask=None, anat=None, tr=None,
                   title: str | None = None, cache_dir=None, progress=None) -> Dataset:
    """A data set from several 4D files, one per run (runs come from the files, not from a column).

    Parameters
    ----------
    func_files : sequence of str or pathlib.Path
        One 4D image per run, in run order, all on one grid.
    labels : sequence of (str, pathlib.Path or bytes), or str, pathlib.Path or bytes
        One labels table per run (each with one row per volume of its run), or
        one table for all volumes (rows in run order).
    label_column : str, default="labels"
    mask, anat, tr, title
        As in `load_files`.
    cache_dir : str or pathlib.Path, optional
        Where the runs are joined into one file (`concatenate_runs`); default
        ``<data directory>/runs``. The app passes the session's own folder.
    progress : callable, optional

    Returns
    -------
    Dataset
        Runs 0, 1, ... (in the order of ``func_files``) in column ``run``;
        ``run_files`` the files given.

    Raises
    ------
    DecodingInputError
        As `load_files`; runs on different grids or with different TRs (from their
        headers), a labels table whose rows differ from its run's volumes.
    """
    if isinstance(func_files, (str, os.PathLike)) or not func_files:
        raise DecodingInputTypeError("'func_files' must be a list of 4D images, one per run.")
    run_files = [_existing_func_path(path) for path in func_files]
    infos = [nifti.inspect_nifti(path, expected_ndim=4, kind="functional image") for path in run_files]
    check_same_grid(run_files, infos)
    header_trs = [_tr_from_header(info) for info in infos]
    if tr is None and len({round(value, 6) for value in header_trs if value is not None}) > 1:
        different = next(i for i, value in enumerate(header_trs) if value != header_trs[0])
        raise DecodingInputError(
            f"The run {run_files[different].name} has a repetition time of {header_trs[different]:g} s in its "
            f"header but {run_files[0].name} has {header_trs[0]:g} s. Every run must share one TR."
        )
    table = _labels_per_run(labels, run_files, infos, label_column)
    if cache_dir is None:
        from decoding_core.paths import data_dir

        cache_dir = data_dir() / "runs"
    func_path = run_files[0] if len(run_files) == 1 else concatenate_runs(run_files, cache_dir, progress)
    dataset = load_files(func_path, table.to_csv(index=False).encode(), label_column=label_column,
                         run_column="run", mask=mask, anat=anat, tr=tr, title=title)
    names = ", ".join(path.name for path in run_files)
    return dataclasses.replace(
        dataset,
        title=title or f"Uploaded: {len(run_files)} runs ({run_files[0].name}, ...)",
        description=dataset.description.replace(f"Your data: {func_path.name}",
                                                f"Your data: {len(run_files)} run files"),
        source=f"Uploaded files: {names}",
        digest=dataset_digest(nifti.file_digest(func_path), dataset.labels, dataset.masks, "upload-runs",
                              label_column),
        run_files=tuple(run_files),
    )
