"""The built-in simulated data set: a Haxby-like block-design fMRI experiment.

Everything is computed from a seed by this module, offline, in a few seconds:

* **Anatomy.** The MNI152 (ICBM 2009a) T1, grey- and white-matter templates
  shipped with nilearn are block-averaged onto a 5 x 5 x 6 mm grid (coarse,
  so that the 4D file stays near 25 MB) and cropped to the brain. The ventral temporal mask ("vt") covers the grey
  matter of the bilateral fusiform / inferior temporal cortex; the "face"
  (lateral fusiform, FFA-like) and "house" (medial, parahippocampal,
  PPA-like) regions are parts of it.
* **Design.** As in Haxby et al. (2001): 12 runs of 121 volumes (TR 2.5 s),
  each with one 9-volume block of each of 8 categories in a shuffled order,
  separated by 5-6 volumes of rest.
* **Signal.** Each category has a fixed pattern of percent signal change over
  the VT voxels: a response common to all categories, a category-specific
  spatially smooth pattern on the informative voxels, extra response of the
  face region to faces (and somewhat to cats) and of the house region to
  houses. Block amplitudes vary from block to block. The block design is
  convolved with the SPM haemodynamic response (nilearn), so responses are
  delayed and smeared in time. Occipital grey matter responds to all stimuli
  alike (no category information).
* **Noise.** Per-run offsets, slow drifts, spatially smooth structured noise
  (a few dozen smooth spatial components with AR(1) time courses) and
  voxel-wise AR(1) noise, over an EPI-like baseline (grey matter and CSF
  brighter than white matter, with a smooth coil-sensitivity bias), stored as
  int16 around 800-1300.

The same seed gives byte-identical data on the same software stack.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from decoding_core.paths import atomic_path

#: Bumped whenever the generated data change; part of the cache file names.
GENERATOR_VERSION = 1

CATEGORIES = (
    "face", "house", "cat", "bottle", "scissors", "shoe", "chair", "scrambledpix",
)
N_RUNS = 12
VOLUMES_PER_RUN = 121
BLOCK_VOLUMES = 9
TR_SECONDS = 2.5
#: Rest volumes before, between and after the 8 blocks of a run (as in Haxby's runs).
REST_GAPS = (6, 6, 5, 5, 5, 6, 5, 5, 6)
#: Voxel size (x, y, z) in mm: integer block sizes of the 1 mm templates.
VOXEL_SIZE_MM = (5, 5, 6)
REST_LABEL = "rest"

# Centres (MNI mm) and radii of the simulated regions. VT: an ellipsoid per
# hemisphere along the fusiform / inferior temporal gyri.
_VT_CENTRES = ((-36.0, -55.0, -14.0), (36.0, -55.0, -14.0))
_VT_RADII = (13.0, 30.0, 12.0)
_FACE_CENTRES = ((-41.0, -55.0, -19.0), (41.0, -52.0, -19.0))
_HOUSE_CENTRES = ((-27.0, -45.0, -9.0), (27.0, -45.0, -9.0))
_SUBREGION_RADIUS_MM = 9.0

# Signal and noise sizes, in percent of the voxel's baseline.
_COMMON_VT_RESPONSE = 1.0
_OCCIPITAL_RESPONSE = 1.5
_SPECIFIC_PATTERN_SD = 0.6
_INFORMATIVE_FRACTION = 0.6
_FACE_REGION_RESPONSE = 1.6
_HOUSE_REGION_RESPONSE = 1.6
_CAT_FACE_SHARE = 0.4  # cats have faces: the face region responds to them too
_BLOCK_AMPLITUDE_SD = 0.2
_WHITE_NOISE_SD = 1.0
_WHITE_NOISE_AR = 0.3
_STRUCTURED_NOISE_SD = 0.6
_STRUCTURED_NOISE_AR = 0.6
_N_STRUCTURED_COMPONENTS = 40
_DRIFT_SD = 0.8
_RUN_OFFSET_SD = 0.5


@dataclass(frozen=True, eq=False)
class SimulatedAnatomy:
    """The simulated subject's grid, anatomy and regions (no seed involved).

    Attributes
    ----------
    affine : ndarray of shape (4, 4)
    shape : tuple of int
        Spatial shape (x, y, z).
    anat : ndarray, float32
        T1 background (0-255 scale), zeros outside the brain.
    brain, vt, face, house, occipital : ndarray of bool
        Region masks; face and house lie inside vt, vt inside brain.
    grey_matter : ndarray, float32
        Grey-matter probability (0-1).
    baseline : ndarray, float32
        EPI-like mean intensity of each voxel (0 outside the brain).
    """

    affine: np.ndarray
    shape: tuple
    anat: np.ndarray
    brain: np.ndarray
    vt: np.ndarray
    face: np.ndarray
    house: np.ndarray
    occipital: np.ndarray
    grey_matter: np.ndarray
    baseline: np.ndarray


@dataclass(frozen=True, eq=False)
class SimulatedSubject:
    """One generated subject.

    Attributes
    ----------
    bold : ndarray of shape (x, y, z, n_volumes), int16
    labels : pandas.DataFrame
        Columns ``labels`` and ``chunks``, one row per volume.
    anatomy : SimulatedAnatomy
    patterns : dict of str to ndarray
        Percent signal change of each category over the vt voxels (C order).
    informative : ndarray of bool
        Voxels whose response differs between categories.
    """

    bold: np.ndarray
    labels: pd.DataFrame
    anatomy: SimulatedAnatomy
    patterns: dict
    informative: np.ndarray


def _template_path(name: str) -> Path:
    from nilearn import datasets

    return Path(datasets.__file__).parent / "data" / f"mni_icbm152_{name}_tal_nlin_sym_09a_converted.nii.gz"


def _block_average(volume: np.ndarray, factors) -> np.ndarray:
    """Average non-overlapping blocks of ``factors`` voxels (the remainder is dropped)."""
    fx, fy, fz = factors
    nx, ny, nz = (n // f for n, f in zip(volume.shape, factors))
    trimmed = volume[: nx * fx, : ny * fy, : nz * fz].astype(np.float32)
    return trimmed.reshape(nx, fx, ny, fy, nz, fz).mean(axis=(1, 3, 5))


def _ellipsoid(coords_mm: np.ndarray, centre, radii) -> np.ndarray:
    scaled = (coords_mm - np.asarray(centre)) / np.asarray(radii)
    return (scaled**2).sum(axis=-1) <= 1.0


@functools.lru_cache(maxsize=1)
def simulated_anatomy() -> SimulatedAnatomy:
    """Grid, anatomy and regions of the simulated subject (deterministic, cached).

    Returns
    -------
    SimulatedAnatomy
    """
    from scipy import ndimage  # imported when used: the command line on one's own files never is

    # nilearn's own template files: trusted package data, read directly.
    images = {name: nib.load(_template_path(name)) for name in ("t1", "gm", "wm")}
    source_affine = images["t1"].affine
    t1_1mm = np.asarray(images["t1"].dataobj, dtype=np.float32)
    factor = VOXEL_SIZE_MM
    t1 = _block_average(t1_1mm, factor)
    brain_fraction = _block_average((t1_1mm > 0.2 * t1_1mm.max()).astype(np.float32), factor)
    grey = _block_average(np.asarray(images["gm"].dataobj), factor) / 255.0
    white = _block_average(np.asarray(images["wm"].dataobj), factor) / 255.0

    # Block centres: the first block spans source voxels 0..factor-1.
    affine = source_affine.copy()
    affine[:3, :3] = source_affine[:3, :3] * np.asarray(factor)
    affine[:3, 3] = source_affine[:3, 3] + source_affine[:3, :3] @ ((np.asarray(factor) - 1) / 2)

    brain = brain_fraction > 0.5
    brain = ndimage.binary_fill_holes(brain)
    # Crop to the brain with a margin of two voxels.
    nonzero = np.argwhere(brain)
    low = np.maximum(nonzero.min(axis=0) - 2, 0)
    high = np.minimum(nonzero.max(axis=0) + 3, brain.shape)
    crop = tuple(slice(lo, hi) for lo, hi in zip(low, high))
    affine[:3, 3] = affine[:3, 3] + affine[:3, :3] @ low
    brain, t1, grey, white = (a[crop] for a in (brain, t1, grey, white))
    shape = brain.shape

    ijk = np.stack(np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"), axis=-1)
    coords = ijk @ affine[:3, :3].T + affine[:3, 3]

    cortex = brain & (grey >= 0.25)
    vt = np.zeros(shape, bool)
    for centre in _VT_CENTRES:
        vt |= _ellipsoid(coords, centre, _VT_RADII)
    vt &= cortex

    def sphere(centres):
        near = np.zeros(shape, bool)
        for centre in centres:
            near |= ((coords - np.asarray(centre)) ** 2).sum(axis=-1) <= _SUBREGION_RADIUS_MM**2
        return near & vt

    face = sphere(_FACE_CENTRES)
    house = sphere(_HOUSE_CENTRES) & ~face
    occipital = cortex & (coords[..., 1] < -75.0) & ~vt

    csf = np.clip(1.0 - grey - white, 0.0, 1.0)
    # Smooth coil-sensitivity bias: brighter at the back and top of the head.
    bias = 1.0 + 0.03 * np.tanh(-coords[..., 1] / 80.0) + 0.02 * np.tanh(coords[..., 2] / 60.0)
    baseline = (830.0 + 110.0 * grey + 20.0 * white + 130.0 * csf) * bias
    baseline = np.where(brain, baseline, 0.0).astype(np.float32)
    anat = np.where(brain, t1, 0.0).astype(np.float32)
    arrays = dict(anat=anat, brain=brain, vt=vt, face=face, house=house, occipital=occipital,
                  grey_matter=grey.astype(np.float32), baseline=baseline, affine=affine)
    for array in arrays.values():
        array.setflags(write=False)  # shared by every caller through the cache
    return SimulatedAnatomy(shape=shape, **arrays)


def simulated_design(seed: int) -> pd.DataFrame:
    """The per-volume labels of the simulated experiment.

    Parameters
    ----------
    seed : int
        Seeds the order of categories in each run.

    Returns
    -------
    pandas.DataFrame
        Columns ``labels`` (a category or ``"rest"``) and ``chunks`` (run 0-11),
        ``N_RUNS * VOLUMES_PER_RUN`` rows.
    """
    rng = _child_rng(seed, "design")
    labels, chunks = [], []
    for run in range(N_RUNS):
        order = [CATEGORIES[i] for i in rng.permutation(len(CATEGORIES))]
        run_labels = [REST_LABEL] * REST_GAPS[0]
        for category, gap in zip(order, REST_GAPS[1:]):
            run_labels += [category] * BLOCK_VOLUMES + [REST_LABEL] * gap
        labels += run_labels
        chunks += [run] * len(run_labels)
    return pd.DataFrame({"labels": np.array(labels, dtype=object), "chunks": np.array(chunks, dtype=np.int64)})


def _child_rng(seed: int, purpose: str) -> np.random.Generator:
    """A generator per purpose, so that changing one part never shifts another."""
    key = int.from_bytes(hashlib.sha256(purpose.encode()).digest()[:4], "little")
    return np.random.default_rng(np.random.SeedSequence([int(seed), key]))


def _smooth_random_field(rng, shape, sigma_voxels, n_fields=1) -> np.ndarray:
    from scipy import ndimage  # imported when used: the command line on one's own files never is

    fields = rng.standard_normal((n_fields, *shape)).astype(np.float32)
    for index in range(n_fields):
        fields[index] = ndimage.gaussian_filter(fields[index], sigma_voxels, mode="constant")
    return fields


def planted_patterns(seed: int, anatomy: SimulatedAnatomy | None = None):
    """The category patterns planted in the simulated subject (cheap: no time series).

    Parameters
    ----------
    seed : int
    anatomy : SimulatedAnatomy, optional
        Default `simulated_anatomy()`.

    Returns
    -------
    patterns : dict of str to ndarray
        Percent signal change of each category at every voxel of the grid (3D).
    informative : ndarray of bool
        Voxels of vt whose response differs between categories.
    """
    anatomy = simulated_anatomy() if anatomy is None else anatomy
    rng = _child_rng(seed, "patterns")
    vt, face, house = anatomy.vt, anatomy.face, anatomy.house
    informative = vt & (rng.random(anatomy.shape) < _INFORMATIVE_FRACTION)
    informative |= face | house
    specific = _smooth_random_field(rng, anatomy.shape, 0.8, len(CATEGORIES))
    patterns = {}
    for index, category in enumerate(CATEGORIES):
        values = specific[index] * np.where(vt & informative, 1.0, 0.0)
        in_vt = values[vt & informative]
        values *= _SPECIFIC_PATTERN_SD / max(float(in_vt.std()), 1e-6)
        pattern = values + _COMMON_VT_RESPONSE * vt + _OCCIPITAL_RESPONSE * anatomy.occipital
        if category == "face":
            pattern = pattern + _FACE_REGION_RESPONSE * face
        elif category == "cat":
            pattern = pattern + _CAT_FACE_SHARE * _FACE_REGION_RESPONSE * face
        elif category == "house":
            pattern = pattern + _HOUSE_REGION_RESPONSE * house
        # Grey matter carries the BOLD response.
        patterns[category] = (pattern * np.clip(anatomy.grey_matter / 0.6, 0.3, 1.0)).astype(np.float32)
    return patterns, informative & vt


def _hrf_regressors(labels: pd.DataFrame, block_amplitudes: np.ndarray) -> np.ndarray:
    """Block design convolved with the SPM HRF: (n_volumes, n_categories)."""
    from nilearn.glm.first_level.hemodynamic_models import spm_hrf

    oversampling = 10
    hrf = spm_hrf(TR_SECONDS, oversampling=oversampling)
    conditions = labels["labels"].to_numpy(dtype=str)
    runs = labels["chunks"].to_numpy()
    regressors = np.zeros((len(conditions), len(CATEGORIES)))
    for run in np.unique(runs):
        in_run = np.flatnonzero(runs == run)
        for c, category in enumerate(CATEGORIES):
            boxcar = (conditions[in_run] == category).astype(float)
            boxcar *= block_amplitudes[run, c]
            fine = np.repeat(boxcar, oversampling)
            # Each run starts from rest: the response does not cross run boundaries.
            regressors[in_run, c] = np.convolve(fine, hrf)[: fine.size][::oversampling]
    return regressors


def _ar1(rng, n_samples, n_series, coefficient, runs) -> np.ndarray:
    """Unit-variance AR(1) series (float32), restarted at each run (runs are contiguous)."""
    from scipy import signal  # imported when used (about 0.4 s, which the command line on one's own files saves)

    out = rng.standard_normal((n_samples, n_series), dtype=np.float32)
    scale = np.float32(np.sqrt(1.0 - coefficient**2))
    boundaries = np.flatnonzero(np.diff(runs)) + 1
    for rows in np.split(np.arange(n_samples), boundaries):
        start, stop = rows[0], rows[-1] + 1
        block = out[start:stop]
        block[1:] *= scale  # the first sample keeps unit variance: a stationary start
        out[start:stop] = signal.lfilter(np.float32([1.0]), np.float32([1.0, -coefficient]), block, axis=0)
    return out


def _add_scaled(total: np.ndarray, term: np.ndarray, scale: float) -> None:
    """``total += scale * term`` without a temporary; ``term`` is overwritten."""
    term *= scale
    total += term


def simulate_subject(seed: int = 0) -> SimulatedSubject:
    """Generate the whole simulated subject in memory.

    Parameters
    ----------
    seed : int
        Any non-negative integer; the same seed gives the same data.

    Returns
    -------
    SimulatedSubject
    """
    anatomy = simulated_anatomy()
    labels = simulated_design(seed)
    patterns_full, informative = planted_patterns(seed, anatomy)
    brain = anatomy.brain
    n_brain = int(brain.sum())
    runs = labels["chunks"].to_numpy()
    n_volumes = len(labels)

    rng = _child_rng(seed, "signal")
    amplitudes = 1.0 + _BLOCK_AMPLITUDE_SD * rng.standard_normal((N_RUNS, len(CATEGORIES)))
    regressors = _hrf_regressors(labels, np.clip(amplitudes, 0.2, None)).astype(np.float32)
    pattern_matrix = np.stack([patterns_full[c][brain] for c in CATEGORIES]).astype(np.float32)
    # (n_volumes, n_brain) float32, about 70 MB: the arithmetic below works in place, so a
    # cold start of a small cloud host never holds more than two such matrices at once.
    percent = regressors @ pattern_matrix

    noise_rng = _child_rng(seed, "noise")
    _add_scaled(percent, _ar1(noise_rng, n_volumes, n_brain, _WHITE_NOISE_AR, runs), _WHITE_NOISE_SD)
    # Structured noise: smooth spatial components with AR(1) time courses.
    components = _smooth_random_field(noise_rng, anatomy.shape, 1.5, _N_STRUCTURED_COMPONENTS)
    components = components[:, brain]
    components /= components.std(axis=1, keepdims=True) * np.sqrt(_N_STRUCTURED_COMPONENTS)
    courses = _ar1(noise_rng, n_volumes, _N_STRUCTURED_COMPONENTS, _STRUCTURED_NOISE_AR, runs)
    _add_scaled(percent, courses @ components, _STRUCTURED_NOISE_SD)
    # Slow drifts (linear and two cosines per run) with smooth spatial weights.
    drift_maps = _smooth_random_field(noise_rng, anatomy.shape, 3.0, 3)[:, brain]
    drift_maps /= drift_maps.std(axis=1, keepdims=True)
    drift_courses = np.zeros((n_volumes, 3), np.float32)
    for run in range(N_RUNS):
        rows = np.flatnonzero(runs == run)
        phase = np.linspace(0.0, 1.0, rows.size)
        weights = noise_rng.standard_normal(3)
        drift_courses[rows, 0] = weights[0] * (phase - 0.5)
        drift_courses[rows, 1] = weights[1] * np.cos(np.pi * phase) / 2
        drift_courses[rows, 2] = weights[2] * np.cos(2 * np.pi * phase) / 2
    _add_scaled(percent, drift_courses @ drift_maps, _DRIFT_SD)
    run_offsets = _RUN_OFFSET_SD * noise_rng.standard_normal(N_RUNS).astype(np.float32)
    percent += run_offsets[runs][:, None]

    # values = baseline * (1 + percent / 100), rounded and clipped to int16, in place.
    values = percent
    values /= 100.0
    values += 1.0
    values *= anatomy.baseline[brain]
    np.rint(values, out=values)
    np.clip(values, 0, np.iinfo(np.int16).max, out=values)
    bold_brain = values.astype(np.int16)
    del percent, values
    bold = np.zeros((*anatomy.shape, n_volumes), np.int16)
    bold[brain] = bold_brain.T

    vt = anatomy.vt
    patterns = {c: patterns_full[c][vt].astype(np.float32) for c in CATEGORIES}
    return SimulatedSubject(bold=bold, labels=labels, anatomy=anatomy,
                            patterns=patterns, informative=informative)


def nifti_header(shape, affine, dtype, zooms) -> nib.Nifti1Header:
    """A NIfTI-1 header for data of ``shape`` on ``affine`` (mm, seconds)."""
    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(shape)
    header.set_qform(affine, code=1)
    header.set_sform(affine, code=1)
    header.set_zooms(zooms)
    header.set_xyzt_units("mm", "sec")
    header["vox_offset"] = 352
    return header


def _gzip_compressor():
    """A deterministic gzip stream compressor: ISA-L when installed, else zlib.

    Both write a gzip header with no file name and a zero time stamp.
    """
    try:
        from isal import isal_zlib

        return isal_zlib.compressobj(2, isal_zlib.DEFLATED, 16 + 15)
    except ImportError:  # pragma: no cover - isal is a pinned requirement
        import zlib

        return zlib.compressobj(1, zlib.DEFLATED, 16 + 15)


def _fortran_chunks(data: np.ndarray):
    """The bytes of ``data`` in NIfTI order (x fastest), one 3D volume at a time.

    Streaming by volume keeps writing a 4D image from ever holding a second copy of it.
    """
    if data.ndim <= 3:
        yield np.asfortranarray(data).tobytes(order="F")
        return
    volumes = data.reshape(*data.shape[:3], -1, order="F")
    for index in range(volumes.shape[3]):
        yield np.asfortranarray(volumes[..., index]).tobytes(order="F")


def write_nifti_gz_atomic(data: np.ndarray, affine: np.ndarray, path: Path,
                          zooms=None) -> None:
    """Write ``data`` as a deterministic .nii.gz, atomically.

    The gzip header carries no file name and a zero time stamp, so the same
    data give the same bytes. The file is written under a temporary name in
    the same directory and renamed into place, so that a reader never sees a
    half-written file. The data are compressed one volume at a time, so the
    only large array in memory is ``data`` itself.
    """
    if zooms is None:
        spatial = tuple(float(v) for v in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
        zooms = spatial + (1.0,) * (data.ndim - 3)
    write_nifti_gz_stream(_fortran_chunks(data), data.shape, affine, data.dtype, path, zooms)


def write_nifti_gz_stream(chunks, shape, affine: np.ndarray, dtype, path: Path, zooms) -> str:
    """Write an image given as a stream of voxel bytes as a deterministic .nii.gz, atomically.

    As `write_nifti_gz_atomic`, for images that are never whole in memory (runs
    concatenated one chunk at a time).

    Parameters
    ----------
    chunks : iterable of bytes
        The voxel data in NIfTI order (x fastest, then y, z, time), of ``dtype``.
    shape, affine, dtype, zooms
        Of the image (see `nifti_header`).
    path : pathlib.Path

    Returns
    -------
    str
        The sha256 (hex) of the file written.
    """
    path = Path(path)
    header = nifti_header(tuple(shape), affine, dtype, zooms)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        compressor = _gzip_compressor()

        def write(data: bytes) -> None:
            digest.update(data)
            stream.write(data)

        write(compressor.compress(header.binaryblock + b"\x00" * 4))
        for chunk in chunks:
            write(compressor.compress(chunk))
        write(compressor.flush())
        stream.flush()
        os.fsync(stream.fileno())
    return digest.hexdigest()


def write_text_atomic(text: str, path: Path) -> None:
    """Write a small text file atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())


def cache_file_stem(seed: int) -> str:
    """File name stem of the cached simulated subject: generator version and seed."""
    return f"simulated-v{GENERATOR_VERSION}-seed{int(seed)}"


def sidecar_json(seed: int, func_sha256: str, shape) -> str:
    """The JSON written next to the cached image, used to verify it on reload."""
    return json.dumps({
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "func_sha256": func_sha256,
        "shape": [int(v) for v in shape],
    }, indent=1, sort_keys=True)


# -- an event-related experiment (trial betas) ------------------------------------------------


@dataclass(frozen=True, eq=False)
class SimulatedEventRelated:
    """A small simulated event-related experiment with known per-trial patterns.

    Attributes
    ----------
    run_imgs : tuple of nibabel.Nifti1Image
        One float32 4D image per run, all on one small grid.
    events : tuple of pandas.DataFrame
        Each run's events (``onset``, ``duration``, ``trial_type``), in time order.
    tr : float
    mask_img : nibabel.Nifti1Image
        Every voxel of the grid (the patterns' voxels, in C order).
    patterns : dict of str to ndarray
        Each class's response pattern over the mask's voxels (the planted truth).
    amplitudes : tuple of ndarray
        Each run's per-trial amplitudes (the trial's pattern is scaled by it).
    """

    run_imgs: tuple
    events: tuple
    tr: float
    mask_img: nib.Nifti1Image
    patterns: dict
    amplitudes: tuple


def simulate_event_related(seed: int = 0, *, classes=("face", "house"), n_runs: int = 3,
                           trials_per_class: int = 8, tr: float = 2.0, shape=(6, 6, 4),
                           pattern_sd: float = 1.0, noise_sd: float = 1.0) -> SimulatedEventRelated:
    """A few runs of jittered 1 s trials of 2+ classes, each class with its own voxel pattern.

    Each trial's response is its class's pattern (a common response plus a
    class-specific normal pattern of ``pattern_sd``), scaled by a per-trial
    amplitude (1 +- 0.2), convolved with the Glover HRF (nilearn's
    ``compute_regressor``), over a baseline of 100 with a slow linear drift per
    run and white noise of ``noise_sd``. Trials start every 4 to 8 s (jittered,
    classes in a shuffled order) after 6 s of rest; every run has the same length.

    Parameters
    ----------
    seed : int
        The same seed gives the same data.
    classes : sequence of str
    n_runs, trials_per_class : int
    tr : float
    shape : tuple of 3 int
        The grid; 3 mm voxels.
    pattern_sd, noise_sd : float

    Returns
    -------
    SimulatedEventRelated
    """
    from nilearn.glm.first_level.hemodynamic_models import compute_regressor

    rng = _child_rng(seed, "event-related")
    n_voxels = int(np.prod(shape))
    common = 0.5 * np.ones(n_voxels)
    patterns = {name: common + pattern_sd * rng.standard_normal(n_voxels) for name in classes}
    run_onsets, run_types = [], []
    for _ in range(n_runs):
        order = rng.permutation(np.repeat(np.arange(len(classes)), trials_per_class))
        run_onsets.append(6.0 + np.cumsum(np.r_[0.0, rng.uniform(4.0, 8.0, order.size - 1)]))
        run_types.append([classes[k] for k in order])
    n_volumes = int(np.ceil((max(onsets[-1] for onsets in run_onsets) + 20.0) / tr))
    frame_times = np.arange(n_volumes) * tr
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    run_imgs, events, amplitudes = [], [], []
    for onsets, types in zip(run_onsets, run_types):
        trial_amplitudes = 1.0 + 0.2 * rng.standard_normal(len(onsets))
        signal_ = np.zeros((n_volumes, n_voxels))
        for onset, trial_type, amplitude in zip(onsets, types, trial_amplitudes):
            regressor, _ = compute_regressor(np.array([[onset], [1.0], [1.0]]), "glover", frame_times)
            signal_ += amplitude * regressor[:, :1] * patterns[trial_type][None, :]
        drift = np.linspace(-1.0, 1.0, n_volumes)[:, None] * rng.standard_normal(n_voxels)[None, :]
        data = 100.0 + signal_ + drift + noise_sd * rng.standard_normal((n_volumes, n_voxels))
        volumes = data.T.reshape(*shape, n_volumes).astype(np.float32)
        image = nib.Nifti1Image(volumes, affine)
        image.header.set_zooms((3.0, 3.0, 3.0, tr))
        image.header.set_xyzt_units("mm", "sec")
        run_imgs.append(image)
        events.append(pd.DataFrame({"onset": onsets, "duration": 1.0, "trial_type": types}))
        amplitudes.append(trial_amplitudes)
    mask_img = nib.Nifti1Image(np.ones(shape, dtype=np.uint8), affine)
    return SimulatedEventRelated(run_imgs=tuple(run_imgs), events=tuple(events), tr=float(tr), mask_img=mask_img,
                                 patterns=patterns, amplitudes=tuple(amplitudes))


def write_event_related_bids(simulated: SimulatedEventRelated, root, *, subject: str = "01",
                             task: str = "simulated") -> Path:
    """Write a `SimulatedEventRelated` as a raw BIDS data set (bold, events, sidecar); returns ``root``."""
    root = Path(root)
    func = root / f"sub-{subject}" / "func"
    func.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps(
        {"Name": "fMRI Decoding Lab simulated event-related data (SIMULATED)", "BIDSVersion": "1.9.0"}))
    (root / f"task-{task}_bold.json").write_text(json.dumps({"RepetitionTime": simulated.tr, "TaskName": task}))
    for run, (image, events) in enumerate(zip(simulated.run_imgs, simulated.events), start=1):
        stem = f"sub-{subject}_task-{task}_run-{run:02d}"
        nib.save(image, func / f"{stem}_bold.nii.gz")
        events.to_csv(func / f"{stem}_events.tsv", sep="\t", index=False)
    return root


__all__ = [
    "CATEGORIES", "GENERATOR_VERSION", "N_RUNS", "TR_SECONDS", "VOLUMES_PER_RUN",
    "SimulatedAnatomy", "SimulatedEventRelated", "SimulatedSubject", "planted_patterns",
    "simulate_event_related", "simulate_subject", "simulated_anatomy", "write_event_related_bids",
    "simulated_design", "write_nifti_gz_atomic", "write_nifti_gz_stream", "write_text_atomic",
]

