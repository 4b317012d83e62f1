"""Masking: a 4D image and a mask into a samples x voxels matrix, and back.

The same result as nilearn's ``NiftiMasker(mask_img=..., standardize="zscore_sample")``
(to float32 precision), computed by streaming the image: it is decompressed
once, in chunks of volumes, keeping only the masked voxels of every mask.
"""

from __future__ import annotations

import hashlib
import dataclasses
from dataclasses import dataclass, field

import nibabel as nib
import numpy as np

from decoding_core import cleaning
from decoding_core._validation import check_in
from decoding_core.caching import BoundedCache
from decoding_core.cleaning import clean_signals  # noqa: F401  (its home was here; callers import it from masking)
from decoding_core.errors import DecodingInputError
from decoding_core.io import nifti
from decoding_core.progress import ProgressCallback

#: What `mask_dataset` does with voxels holding NaN or infinite values: stop, or leave them out.
NONFINITE_CHOICES = ("error", "drop")


@dataclass(frozen=True, eq=False)
class NonFiniteVoxels:
    """The voxels of one mask that hold NaN or infinite values in some volumes.

    Attributes
    ----------
    mask_name : str
    n_voxels : int
        Voxels of the mask with a non-finite value in at least one volume.
    n_volumes : int
        Volumes with a non-finite value in at least one voxel of the mask.
    n_mask_voxels : int
        All voxels of the mask.
    n_total_volumes : int
        All volumes of the image.
    columns : ndarray of shape (n_mask_voxels,), bool
        Which of the mask's voxels (C order, the columns of `MaskedData.X`) they are.
    """

    mask_name: str
    n_voxels: int
    n_volumes: int
    n_mask_voxels: int
    n_total_volumes: int
    columns: np.ndarray = field(repr=False)

    def describe(self) -> str:
        """``"4 of the 530 voxels of the mask 'vt' (in 3 of the 1452 volumes)"``."""
        return (f"{self.n_voxels} of the {self.n_mask_voxels} voxels of the mask '{self.mask_name}' "
                f"(in {self.n_volumes} of the {self.n_total_volumes} volumes)")


class NonFiniteVoxelsError(DecodingInputError):
    """The chosen mask holds voxels with NaN or infinite values and dropping them was not asked for.

    Attributes
    ----------
    found : NonFiniteVoxels
    """

    def __init__(self, found: NonFiniteVoxels):
        self.found = found
        super().__init__(
            f"The image holds NaN or infinite values in {found.describe()}. The decoding stops rather "
            "than count them as 0 (one NaN in a voxel would make that sample's z-score about -13 "
            "standard deviations). Drop those voxels (on the Data page: 'Drop the voxels with NaN or "
            "infinite values'; in Python: mask_dataset(..., nonfinite='drop')), choose a mask "
            "without them, or fix the image."
        )


@dataclass(frozen=True, eq=False)
class MaskedData:
    """A masked data set: one row per volume kept, one column per voxel.

    Attributes
    ----------
    X : ndarray of shape (n_samples, n_voxels), float32
    labels : ndarray of shape (n_samples,), str
    runs : ndarray of shape (n_samples,) or None
    volume_index : ndarray of shape (n_samples,), int
        Index of each sample's volume in the 4D image (time = index * TR).
    mask_img : nibabel.Nifti1Image
        The 3D mask whose nonzero voxels (C order) are the columns of ``X``: the
        data set's mask, less the voxels dropped for non-finite values (if any).
    mask_name : str
    dropped : NonFiniteVoxels or None
        The voxels of the data set's mask left out because they hold NaN or
        infinite values (``mask_dataset(..., nonfinite="drop")``); None when none were.
    notes : tuple of str
        What the cleaning did that the run's notes should say (e.g. volumes left
        out by scrubbing; `decoding_core.cleaning.Cleaned.notes`).
    """

    X: np.ndarray
    labels: np.ndarray
    runs: np.ndarray | None
    volume_index: np.ndarray
    mask_img: nib.Nifti1Image
    mask_name: str
    dropped: NonFiniteVoxels | None = None
    notes: tuple = ()

    @property
    def shape(self) -> tuple:
        return self.X.shape


#: Default capacity of a `RawVoxelCache`.
DEFAULT_CACHE_BYTES = 256 * 1024**2
#: Columns processed at once by `clean_signals` (float64 work block).
_CLEAN_BLOCK_COLUMNS = cleaning.CLEAN_BLOCK_COLUMNS


# --------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------


def mask_bool(mask_img: nib.Nifti1Image, name: str = "mask") -> np.ndarray:
    """The 3D boolean array of a binary mask (nonzero = in), checked.

    A 4D mask with one volume counts as 3D. Raises `DecodingInputError` for a
    mask that is not 3D, not binary (more than one nonzero value) or empty.
    """
    data = np.asanyarray(mask_img.dataobj)
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DecodingInputError(
            f"The mask '{name}' must be 3D (x, y, z); it has shape {tuple(mask_img.shape)}. Use a single 0/1 volume."
        )
    values = np.unique(data)
    if len(values) > 2 or (len(values) == 2 and 0 not in values):
        shown = ", ".join(f"{v:g}" for v in values[:5]) + (", ..." if len(values) > 5 else "")
        raise DecodingInputError(
            f"The mask '{name}' is not binary: it holds the values {shown}. A mask must be 0 outside "
            "and one value inside; threshold it (e.g. image > 0.5) or pick one region of an atlas."
        )
    mask = data != 0
    if not mask.any():
        raise DecodingInputError(f"The mask '{name}' is empty (no nonzero voxel). Choose or upload another mask.")
    return mask


def check_mask_matches(mask_img: nib.Nifti1Image, shape, affine, name: str = "mask") -> None:
    """Raise `DecodingInputError` unless the mask lies on the image's voxel grid.

    Parameters
    ----------
    mask_img : nibabel.Nifti1Image
    shape : tuple of int
        Shape of the functional image (its first three values are compared).
    affine : ndarray of shape (4, 4)
        Affine of the functional image (compared with ``np.allclose``, atol 1e-3).
    name : str
        The mask's name, for the message.
    """
    mask_shape = tuple(int(s) for s in mask_img.shape)
    while len(mask_shape) > 3 and mask_shape[-1] == 1:
        mask_shape = mask_shape[:-1]
    image_shape = tuple(int(s) for s in shape[:3])
    if mask_shape != image_shape:
        raise DecodingInputError(
            f"The mask '{name}' has shape {mask_shape} but the functional image's volumes have shape "
            f"{image_shape}. Use the mask made for this image, or resample the mask onto the image "
            "(e.g. nilearn.image.resample_to_img(mask, func, interpolation='nearest'))."
        )
    if not np.allclose(np.asarray(mask_img.affine, dtype=float), np.asarray(affine, dtype=float), atol=1e-3):
        raise DecodingInputError(
            f"The mask '{name}' is not on the functional image's grid: its affine\n"
            f"{np.array2string(np.asarray(mask_img.affine), precision=3)}\ndiffers from the image's\n"
            f"{np.array2string(np.asarray(affine), precision=3)}.\nUse the mask made for this image, or "
            "resample the mask onto the image (nilearn.image.resample_to_img(mask, func, "
            "interpolation='nearest'))."
        )


def _fortran_indices(mask: np.ndarray) -> np.ndarray:
    """Flat indices, in the file's Fortran (x fastest) layout, of the mask voxels in C order.

    C order over (x, y, z) is the column order of nilearn's ``data[mask]``.
    """
    i, j, k = np.nonzero(mask)  # C order
    nx, ny, _ = mask.shape
    return (i + nx * (j + ny * k)).astype(np.intp)


# --------------------------------------------------------------------------------------
# Streaming extraction
# --------------------------------------------------------------------------------------


def extract_masked_voxels(func_path, masks: dict, *, smoothing_fwhm=None, affine=None,
                          progress: ProgressCallback | None = None,
                          budget_bytes: int | None = None) -> dict:
    """Read a 4D image once and keep the voxels of every mask.

    Parameters
    ----------
    func_path : str or pathlib.Path
        The 4D .nii or .nii.gz image (checked from its header first).
    masks : dict of str to nibabel.Nifti1Image
        3D binary masks on the image's grid.
    smoothing_fwhm : float or sequence of 3 floats, optional
        Gaussian smoothing (mm) applied to each volume before masking, as
        ``NiftiMasker(smoothing_fwhm=...)`` does (``nilearn.image.smooth_array``).
    affine : ndarray of shape (4, 4), optional
        Affine whose voxel sizes define the smoothing kernel; default the image's.
    progress : callable, optional
        ``progress(fraction, "Read k of n volumes")``.
    budget_bytes : int, optional
        Limit for the stored image data and for the output matrices together;
        default ``nifti.configured_budget_bytes()``.

    Returns
    -------
    dict of str to ndarray of shape (n_volumes, n_voxels), float32
        Columns in nilearn's order (mask voxels in C order). Raw values: no
        detrending or standardization (see `clean_signals`). NaN and infinite
        values are kept (nilearn would make them 0, silently): `mask_dataset`
        reports them. With smoothing, a voxel non-finite in the image is NaN in
        the output, and counts as 0 in its neighbours' smoothing, as in nilearn.
    """
    if not masks:
        raise DecodingInputError("No mask was given. Choose at least one mask.")
    info = nifti.inspect_nifti(func_path, expected_ndim=4, budget_bytes=budget_bytes)
    budget = nifti.configured_budget_bytes() if budget_bytes is None else int(budget_bytes)
    n_volumes = info.n_volumes
    indices = {}
    for name, mask_img in masks.items():
        check_mask_matches(mask_img, info.shape, info.affine, name)
        indices[name] = _fortran_indices(mask_bool(mask_img, name))
    output_nbytes = sum(4 * n_volumes * len(idx) for idx in indices.values())
    if output_nbytes > budget:
        raise DecodingInputError(
            f"The masked data would take {output_nbytes / 1e6:,.1f} MB ({n_volumes} volumes x "
            f"{sum(len(i) for i in indices.values()):,} voxels, float32), more than the "
            f"{budget / 1e6:,.1f} MB this app may use. Use a smaller mask or fewer volumes."
        )
    outputs = {name: np.empty((n_volumes, len(idx)), dtype=np.float32) for name, idx in indices.items()}
    smoothing = _smoothing_function(smoothing_fwhm, info.affine if affine is None else affine)
    is_float = info.dtype.kind == "f"

    if smoothing is None:
        with nifti._open_checked(func_path, expected_ndim=4, kind="functional image",
                                 budget_bytes=budget_bytes) as checked:
            chunk = nifti._default_chunk_volumes(info)
            for start, raw in nifti._iter_raw_chunks(checked, chunk):
                stop = start + raw.shape[0]
                for name, idx in indices.items():
                    block = outputs[name][start:stop]
                    block[...] = np.take(raw, idx, axis=1)
                    if info.scaled:
                        block *= np.float32(info.slope)
                        block += np.float32(info.inter)
                _report(progress, stop, n_volumes)
    else:
        # Smoothing needs whole volumes: float32 (x, y, z, n) chunks, about 16 MB of file data each.
        c_masks = {name: mask_bool(masks[name], name) for name in indices}
        for start, volumes in nifti.iter_volume_chunks(func_path, budget_bytes=budget_bytes):
            # Smoothing makes non-finite values 0 (nilearn's ensure_finite): note them first.
            nonfinite = ({name: ~np.isfinite(volumes[mask_index].T) for name, mask_index in c_masks.items()}
                         if is_float else {})
            volumes = smoothing(volumes)
            stop = start + volumes.shape[3]
            for name, mask_index in c_masks.items():
                # Boolean indexing of (x, y, z, n) is nilearn's own C-order selection.
                block = outputs[name][start:stop]
                block[...] = volumes[mask_index].T
                if name in nonfinite:
                    block[nonfinite[name]] = np.nan
            _report(progress, stop, n_volumes)
    return outputs


def _report(progress, done, total):
    if progress is not None:
        progress(done / total, f"Read {done} of {total} volumes")


def _smoothing_function(smoothing_fwhm, affine):
    if smoothing_fwhm is None:
        return None
    fwhm = np.atleast_1d(np.asarray(smoothing_fwhm, dtype=float))
    if fwhm.size not in (1, 3) or not np.all(np.isfinite(fwhm)) or np.any(fwhm < 0):
        raise DecodingInputError(
            f"'smoothing_fwhm' must be None, a number >= 0 or three numbers >= 0 (mm). Got {smoothing_fwhm!r}."
        )
    if np.all(fwhm == 0):
        return None
    from nilearn.image.image import smooth_array  # nilearn only when smoothing is asked for

    fwhm_arg = float(fwhm[0]) if fwhm.size == 1 else fwhm
    affine = np.asarray(affine, dtype=float)

    def smooth(volumes):
        return smooth_array(volumes, affine, fwhm=fwhm_arg, ensure_finite=True, copy=False)

    return smooth


# --------------------------------------------------------------------------------------
# Cache of raw masked matrices
# --------------------------------------------------------------------------------------


class RawVoxelCache(BoundedCache):
    """A thread-safe LRU cache of raw masked matrices, bounded in bytes.

    Keys are content digests (of the image file, of the mask, and of the
    smoothing), so that the same data read again are not re-read, and two
    different uploads never share an entry. Stored arrays are made read-only.
    Whoever calls `mask_dataset` owns the cache (the app keeps one for the
    whole process; the command line one per sweep).

    Parameters
    ----------
    max_bytes : int
        Capacity; a matrix larger than this is returned but not kept.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES):
        super().__init__(max_bytes=max_bytes, sizeof=lambda array: array.nbytes)

    def put(self, key, array: np.ndarray) -> bool:
        """Store ``array`` (made read-only); return whether it was kept."""
        if array.nbytes > self.max_bytes:
            return False
        array.setflags(write=False)
        return super().put(key, array, nbytes=array.nbytes)


def _mask_digest(mask_img) -> str:
    mask = np.ascontiguousarray(np.asanyarray(mask_img.dataobj) != 0)
    digest = hashlib.sha256(str(mask.shape).encode())
    digest.update(np.packbits(mask).tobytes())
    digest.update(np.asarray(mask_img.affine, dtype=np.float64).round(6).tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------------------


def mask_dataset(dataset, mask_name, *, standardize="series", detrend="none", high_pass=None, confounds=(),
                 smoothing_fwhm=None, progress: ProgressCallback | None = None,
                 cache: RawVoxelCache | None = None, nonfinite: str = "error") -> MaskedData:
    """Mask a `Dataset` with one of its masks, keeping all volumes (less those scrubbing drops).

    Over the series, equals ``NiftiMasker(mask_img=dataset.masks[mask_name],
    standardize="zscore_sample" or None, detrend=detrend,
    smoothing_fwhm=smoothing_fwhm).fit_transform(dataset.func_path)`` to float32
    precision, for an image without NaN or infinite values in the mask; per run,
    that masker without cleaning, then ``nilearn.signal.clean(..., runs=runs)``
    (`decoding_core.cleaning.clean_runs`). Cleaning uses the whole time series of
    each run (or of the data set), before any condition is selected
    (`select_conditions`), and never the labels.

    The image is streamed once for the requested mask and, at no extra cost,
    for the data set's other small masks; the raw matrices are cached by content
    digest, so switching masks or cleaning options does not read the file again.

    Parameters
    ----------
    dataset : decoding_core.datasets.Dataset
    mask_name : str
        A key of ``dataset.masks``.
    standardize : {"series", "run", "none"} or bool
        z-score each voxel (ddof=1) over the series, within each run, or not
        (True means "series", False "none"; `decoding_core.cleaning.SCOPES`).
    detrend : {"series", "run", "none"} or bool
        Remove a linear trend from each voxel, over the series or within each run.
    high_pass : float, optional
        High-pass cutoff in Hz (nilearn's Butterworth filter within each run, the data set's TR).
    confounds : sequence of str
        fMRIPrep confound strategies (`decoding_core.cleaning.CONFOUND_STRATEGIES`) read
        from ``dataset.run_files``; scrubbing drops volumes, with their labels and runs.
    smoothing_fwhm : float, optional
        Gaussian smoothing in mm before masking.
    progress : callable, optional
        ``progress(fraction, message)``.
    cache : RawVoxelCache, optional
        Where raw matrices are kept between calls. None keeps nothing: only the
        requested mask is read, and its matrix is cleaned in place.
    nonfinite : {"error", "drop"}, default="error"
        What to do with voxels of the mask that hold NaN or infinite values in
        some volume (nilearn would silently count them as 0): ``"error"`` raises
        `NonFiniteVoxelsError`, saying how many; ``"drop"`` leaves them out, so
        the result equals ``NiftiMasker`` with the mask less those voxels
        (``MaskedData.mask_img``), and ``MaskedData.dropped`` says which.

    Returns
    -------
    MaskedData
    """
    check_in(nonfinite, NONFINITE_CHOICES, "nonfinite")
    if mask_name not in dataset.masks:
        raise DecodingInputError(
            f"This data set has no mask named {mask_name!r}. Choose one of {sorted(dataset.masks)}."
        )
    labels = np.asarray(dataset.conditions, dtype=str)
    if len(labels) != dataset.n_volumes:
        raise DecodingInputError(
            f"The labels table has {len(labels)} rows but the image has {dataset.n_volumes} volumes. "
            "Upload a labels file with one row per volume."
        )
    raw, cached = _raw_matrix(dataset, mask_name, smoothing_fwhm, progress,
                              RawVoxelCache(0) if cache is None else cache)
    mask_img, dropped = dataset.masks[mask_name], find_nonfinite(raw, mask_name)
    if dropped is not None:
        if nonfinite == "error":
            raise NonFiniteVoxelsError(dropped)
        if dropped.n_voxels == dropped.n_mask_voxels:
            raise DecodingInputError(
                f"Every voxel of the mask '{mask_name}' holds NaN or infinite values in some volume: "
                "nothing is left to decode. Choose another mask, or fix the image."
            )
        raw, cached = raw[:, ~dropped.columns], False  # a new matrix: it may be cleaned in place
        mask_img = mask_without(mask_img, dropped.columns)
    runs = None if dataset.runs is None else np.asarray(dataset.runs)
    # A matrix the cache does not hold (e.g. a whole-brain mask) is cleaned in place: one copy in memory.
    cleaned = clean_dataset_matrix(raw, dataset, standardize=standardize, detrend=detrend, high_pass=high_pass,
                                   confounds=confounds, copy=cached)
    kept = cleaned.kept
    return MaskedData(
        X=cleaned.X, labels=labels[kept], runs=None if runs is None else runs[kept],
        volume_index=kept, mask_img=mask_img, mask_name=mask_name, dropped=dropped, notes=cleaned.notes,
    )


def clean_dataset_matrix(raw, dataset, *, standardize="series", detrend="none", high_pass=None, confounds=(),
                         copy=True) -> cleaning.Cleaned:
    """Clean a raw masked matrix of ``dataset`` with its runs, TR and run files (`cleaning.clean_runs`)."""
    runs = None if dataset.runs is None else np.asarray(dataset.runs)
    strategies = cleaning.confound_strategies(confounds)
    confound_matrices = sample_masks = None
    if strategies:
        lengths = [len(rows) for rows in cleaning.run_rows(runs, raw.shape[0])]
        confound_matrices, sample_masks = cleaning.load_run_confounds(
            tuple(dataset.run_files), strategies, lengths)
    return cleaning.clean_runs(raw, runs, standardize=standardize, detrend=detrend, high_pass=high_pass,
                               t_r=dataset.tr, confounds=confound_matrices, sample_masks=sample_masks, copy=copy)


def raw_matrix_key(func_digest: str, mask_img, smoothing_fwhm=None) -> tuple:
    """The `RawVoxelCache` key of one image's raw matrix in one mask (as `mask_dataset` looks it up).

    Parameters
    ----------
    func_digest : str
        ``nifti.file_digest`` of the 4D image.
    mask_img : nibabel.Nifti1Image
        The mask (its nonzero voxels and its affine count).
    smoothing_fwhm : float or sequence of 3 floats, optional
        The smoothing applied before masking.
    """
    smoothing_key = None if smoothing_fwhm is None else tuple(np.atleast_1d(np.asarray(smoothing_fwhm, float)).tolist())
    return (func_digest, _mask_digest(mask_img), smoothing_key)


def _raw_matrix(dataset, mask_name, smoothing_fwhm, progress, cache: RawVoxelCache) -> tuple[np.ndarray, bool]:
    """The raw (uncleaned) matrix of one mask, and whether ``cache`` holds it (then it is read-only)."""
    func_digest = nifti.file_digest(dataset.func_path)

    def key_for(name):
        return raw_matrix_key(func_digest, dataset.masks[name], smoothing_fwhm)

    raw = cache.get(key_for(mask_name))
    if raw is not None:
        return raw, True
    # Read the other small masks in the same pass: switching to them is then free.
    n_volumes = dataset.n_volumes
    to_read = {mask_name: dataset.masks[mask_name]}
    for name, img in dataset.masks.items():
        if name == mask_name:
            continue
        try:
            n_voxels = int(np.count_nonzero(np.asanyarray(img.dataobj)))
        except Exception:
            continue
        if 4 * n_volumes * n_voxels <= cache.max_bytes // 8 and key_for(name) not in cache:
            to_read[name] = img
    to_read = {n: m for n, m in to_read.items() if n == mask_name or _is_usable_mask(m, dataset)}
    extracted = extract_masked_voxels(dataset.func_path, to_read, smoothing_fwhm=smoothing_fwhm,
                                      progress=progress)
    kept = {name: cache.put(key_for(name), matrix) for name, matrix in extracted.items()}
    return extracted[mask_name], kept[mask_name]


# --------------------------------------------------------------------------------------
# NaN and infinite values
# --------------------------------------------------------------------------------------


def find_nonfinite(raw: np.ndarray, mask_name: str = "mask") -> NonFiniteVoxels | None:
    """The columns of a raw masked matrix that hold NaN or infinite values; None when there are none.

    Parameters
    ----------
    raw : ndarray of shape (n_volumes, n_voxels)
        As `extract_masked_voxels` returns it (non-finite values kept).
    mask_name : str
        The mask's name, for messages.
    """
    # A float64 sum per row is NaN or inf exactly when the row holds one (float32 values cannot overflow it).
    if np.isfinite(raw.sum(axis=1, dtype=np.float64)).all():
        return None
    columns = np.zeros(raw.shape[1], dtype=bool)
    rows = np.zeros(raw.shape[0], dtype=bool)
    for start in range(0, raw.shape[1], _CLEAN_BLOCK_COLUMNS):
        bad = ~np.isfinite(raw[:, start : start + _CLEAN_BLOCK_COLUMNS])
        columns[start : start + bad.shape[1]] = bad.any(axis=0)
        rows |= bad.any(axis=1)
    return NonFiniteVoxels(mask_name=mask_name, n_voxels=int(columns.sum()), n_volumes=int(rows.sum()),
                           n_mask_voxels=raw.shape[1], n_total_volumes=raw.shape[0], columns=columns)


def mask_without(mask_img: nib.Nifti1Image, columns: np.ndarray) -> nib.Nifti1Image:
    """The mask less some of its voxels: ``columns`` (bool, the mask's voxels in C order) are left out."""
    mask = mask_bool(mask_img)
    inside = mask[mask]
    columns = np.asarray(columns, dtype=bool)
    if columns.shape != inside.shape:
        raise DecodingInputError(
            f"'columns' must say for each of the mask's {inside.size} voxels whether to leave it out; "
            f"got {columns.shape[0] if columns.ndim else 0} values."
        )
    mask[mask] = ~columns
    return nib.Nifti1Image(mask.astype(np.uint8), np.asarray(mask_img.affine))


@dataclass(frozen=True, eq=False)
class NonFiniteScan:
    """Where an image holds NaN or infinite values, for every mask of a data set.

    Attributes
    ----------
    voxels : ndarray of shape (x, y, z), bool
        Voxels holding a non-finite value in at least one volume.
    by_mask : dict of str to NonFiniteVoxels
        The masks that hold some of them (masks without any are absent).
    """

    voxels: np.ndarray
    by_mask: dict

    @property
    def n_voxels(self) -> int:
        return int(self.voxels.sum())


def may_hold_nonfinite(dataset) -> bool:
    """Whether the data set's image can hold NaN or infinite values: stored as floats (a header read).

    Integers cannot, and the header's scaling is checked finite when the file is opened.
    """
    return nifti.inspect_nifti(dataset.func_path, expected_ndim=4).dtype.kind == "f"


def scan_nonfinite(dataset, progress: ProgressCallback | None = None) -> NonFiniteScan:
    """Find the voxels holding NaN or infinite values, in one pass over the image (none for integer images).

    Only images stored as floating-point numbers can hold such values (the
    header's scaling is checked finite when the file is opened), so other
    images are not read at all.
    """
    info = nifti.inspect_nifti(dataset.func_path, expected_ndim=4)
    if info.dtype.kind != "f":  # as may_hold_nonfinite, without reading the header again
        return NonFiniteScan(voxels=np.zeros(info.shape[:3], dtype=bool), by_mask={})
    voxels = np.zeros(int(np.prod(info.shape[:3])), dtype=bool)  # file (Fortran) order
    masks = {name: _fortran_indices(mask_bool(img, name)) for name, img in dataset.masks.items()
             if _is_usable_mask(img, dataset)}
    bad_volumes = {name: np.zeros(info.n_volumes, dtype=bool) for name in masks}
    with nifti._open_checked(dataset.func_path, expected_ndim=4, kind="functional image",
                             budget_bytes=None) as checked:
        for start, raw in nifti._iter_raw_chunks(checked, nifti._default_chunk_volumes(info)):
            stop = start + raw.shape[0]
            _report(progress, stop, info.n_volumes)
            if np.isfinite(raw.sum(axis=1, dtype=np.float64)).all():
                continue
            bad = ~np.isfinite(raw)
            voxels |= bad.any(axis=0)
            for name, indices in masks.items():
                bad_volumes[name][start:stop] = bad[:, indices].any(axis=1)
    by_mask = {}
    for name, indices in masks.items():
        columns = voxels[indices]
        if columns.any():
            by_mask[name] = NonFiniteVoxels(
                mask_name=name, n_voxels=int(columns.sum()), n_volumes=int(bad_volumes[name].sum()),
                n_mask_voxels=len(indices), n_total_volumes=info.n_volumes, columns=columns)
    return NonFiniteScan(voxels=voxels.reshape(info.shape[:3], order="F"), by_mask=by_mask)


def drop_nonfinite_voxels(dataset, scan: NonFiniteScan):
    """The data set with the voxels of ``scan`` left out of every mask (a new content digest).

    Every later step then sees only finite values: masking, decoding, the maps
    (which hold 0 in the dropped voxels), the recorded runs and their exports
    (whose mask is the reduced one). A mask left empty is removed.

    Returns
    -------
    Dataset
        ``dataset`` itself when ``scan`` found nothing.
    """
    if not scan.by_mask:
        return dataset
    masks = {}
    for name, img in dataset.masks.items():
        found = scan.by_mask.get(name)
        if found is None:
            masks[name] = img
        elif found.n_voxels < found.n_mask_voxels:
            masks[name] = mask_without(img, found.columns)
    if not masks:
        raise DecodingInputError(
            "Every voxel of every mask holds NaN or infinite values in some volume: nothing is left to "
            "decode. Fix the image (or upload a mask of the voxels to use)."
        )
    digest = hashlib.sha256(f"{dataset.digest}\0dropped non-finite voxels\0".encode())
    digest.update(np.packbits(scan.voxels).tobytes())
    dropped = ", ".join(f"{found.n_voxels} in '{name}'" for name, found in scan.by_mask.items())
    return dataclasses.replace(
        dataset, masks=masks, digest=digest.hexdigest(),
        title=f"{dataset.title} (voxels with NaN or infinite values dropped)",
        description=" ".join(filter(None, [dataset.description,
                                           f"Voxels with NaN or infinite values left out of the masks: {dropped}."])),
    )

def _is_usable_mask(mask_img, dataset) -> bool:
    """Whether an extra mask can be read alongside (a broken one must not fail the wanted one)."""
    try:
        check_mask_matches(mask_img, dataset.shape, dataset.affine)
        mask_bool(mask_img)
    except DecodingInputError:
        return False
    return True


def select_conditions(masked: MaskedData, conditions) -> MaskedData:
    """Keep the samples whose label is one of ``conditions`` (order of the data kept).

    Raises `DecodingInputError` when a condition is absent from the data or
    fewer than two distinct conditions are asked for.
    """
    if isinstance(conditions, str):
        conditions = [conditions]
    wanted = list(dict.fromkeys(str(c) for c in conditions))
    present = set(np.unique(masked.labels).tolist())
    missing = [c for c in wanted if c not in present]
    if missing:
        raise DecodingInputError(
            f"The condition(s) {missing} do not occur in this data set. Choose among {sorted(present)}."
        )
    if len(wanted) < 2:
        raise DecodingInputError(
            f"Decoding needs at least two conditions; got {wanted}. Choose two or more conditions."
        )
    keep = np.isin(masked.labels, wanted)
    return MaskedData(
        X=masked.X[keep],
        labels=masked.labels[keep],
        runs=None if masked.runs is None else masked.runs[keep],
        volume_index=masked.volume_index[keep],
        mask_img=masked.mask_img,
        mask_name=masked.mask_name,
        dropped=masked.dropped,
        notes=masked.notes,
    )


def unmask(values, mask_img: nib.Nifti1Image) -> nib.Nifti1Image:
    """Put a vector (n_voxels,) or matrix (n_maps, n_voxels) back into a 3D/4D image.

    Voxels outside the mask are 0; columns follow the mask's C order (as in
    `MaskedData` and nilearn). Returns a float32 image with the mask's affine.
    """
    mask = mask_bool(mask_img)
    values = np.asarray(values, dtype=np.float32)
    n_voxels = int(mask.sum())
    if values.ndim not in (1, 2) or values.shape[-1] != n_voxels:
        raise DecodingInputError(
            f"The values have shape {values.shape} but the mask has {n_voxels} voxels. Give "
            f"({n_voxels},) or (n_maps, {n_voxels}) values."
        )
    if values.ndim == 1:
        data = np.zeros(mask.shape, dtype=np.float32)
        data[mask] = values
    else:
        data = np.zeros(mask.shape + (values.shape[0],), dtype=np.float32)
        data[mask] = values.T
    header = nib.Nifti1Header()
    header.set_xyzt_units("mm", "sec")
    return nib.Nifti1Image(data, np.asarray(mask_img.affine), header=header)
