"""Data sets: the built-in simulated one, real Haxby 2001 subjects, the user's files.

Every loader returns one `Dataset`. The 4D functional image stays on disk
(``func_path``) and is read by streaming in `decoding_core.masking`, so that a
whole subject never sits in memory.
"""

from __future__ import annotations

import csv
import hashlib
import math
import operator
import os
import re
import socket
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from decoding_core import paths, simulation
from decoding_core.errors import DecodingInputError, DecodingInputTypeError
from decoding_core.io import nifti

#: Human-readable titles of the mask names data sets use.
MASK_TITLES = {
    "vt": "Ventral temporal cortex",
    "face": "Face-selective region",
    "house": "House-selective region",
    "face_little": "Face-selective region (small)",
    "house_little": "House-selective region (small)",
    "brain": "Whole brain",
    "uploaded": "Uploaded mask",
    "epi": "Brain mask computed from the data (EPI mask)",
}

HAXBY_CATEGORIES = (
    "face", "house", "cat", "bottle", "scissors", "shoe", "chair", "scrambledpix",
)


@dataclass(frozen=True)
class SimulatedGroundTruth:
    """What the simulated data set planted, kept so tests can check decoding finds it.

    Attributes
    ----------
    patterns : dict of str to ndarray
        For each category, its response in percent signal change over the
        voxels of the ``vt`` mask (order of ``mask.get_fdata() > 0`` in C
        order), shape (n_vt_voxels,).
    informative_img : nibabel.Nifti1Image
        3D uint8 image, 1 where a voxel carries category information.
    face_img, house_img : nibabel.Nifti1Image
        3D uint8 images of the face- and house-selective sub-regions.
    seed : int
        The seed the data were generated from.
    generator_version : int
        `decoding_core.simulation.GENERATOR_VERSION` of the generator.
    """

    patterns: dict
    informative_img: nib.Nifti1Image
    face_img: nib.Nifti1Image
    house_img: nib.Nifti1Image
    seed: int = 0
    generator_version: int = simulation.GENERATOR_VERSION

    @property
    def pattern_matrix(self) -> np.ndarray:
        """Patterns stacked in `HAXBY_CATEGORIES` order: (n_categories, n_vt_voxels)."""
        return np.stack([self.patterns[c] for c in HAXBY_CATEGORIES])


@dataclass(frozen=True, eq=False)
class Dataset:
    """One fMRI data set ready for decoding.

    Attributes
    ----------
    name : str
        Short identifier: ``"simulated"``, ``"haxby:2"``, ``"upload"``.
    title : str
        Human-readable name.
    func_path : pathlib.Path
        The 4D functional image on disk (.nii or .nii.gz); read by streaming.
    labels : pandas.DataFrame
        One row per volume, holding at least ``label_column`` and, if any,
        ``run_column``.
    label_column : str
        Column of ``labels`` with the condition of each volume.
    run_column : str or None
        Column of ``labels`` with the run (session, chunk) of each volume.
    tr : float or None
        Repetition time in seconds.
    masks : dict of str to nibabel.Nifti1Image
        Named 3D masks on the functional grid (keys as in `MASK_TITLES`).
    anat_img : nibabel.Nifti1Image or None
        Anatomical background, resampled onto the functional grid.
    description : str
        A short description, saying where the data come from.
    source : str
        Citation or origin (and for the simulated set: that it is simulated).
    digest : str
        Content digest of the data (function file, labels, masks): the cache key.
    shape : tuple of int
        Shape of the 4D image (x, y, z, t).
    affine : ndarray of shape (4, 4)
    ground_truth : SimulatedGroundTruth or None
        Only for the simulated data set.
    """

    name: str
    title: str
    func_path: Path
    labels: pd.DataFrame
    label_column: str
    run_column: str | None
    tr: float | None
    masks: dict
    anat_img: nib.Nifti1Image | None
    description: str
    source: str
    digest: str
    shape: tuple
    affine: np.ndarray
    ground_truth: SimulatedGroundTruth | None = None

    @property
    def func_img(self) -> nib.Nifti1Image:
        """The 4D image as a lazy nibabel proxy (data not read until asked)."""
        return nib.load(str(self.func_path))

    @property
    def n_volumes(self) -> int:
        return int(self.shape[3])

    @property
    def voxel_size(self) -> tuple:
        """Voxel size in millimetres, from the affine."""
        return tuple(float(v) for v in np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0)))

    @property
    def conditions(self) -> np.ndarray:
        """The label of each volume as a plain numpy str array."""
        return self.labels[self.label_column].to_numpy(dtype=str)

    @property
    def runs(self) -> np.ndarray | None:
        """The run of each volume, or None when the data set has no runs."""
        if self.run_column is None:
            return None
        return self.labels[self.run_column].to_numpy()

    @property
    def n_runs(self) -> int:
        runs = self.runs
        return 0 if runs is None else int(len(np.unique(runs)))


#: Data sets `load_dataset` knows, spec -> title.
DATASET_CHOICES = {
    "simulated": "Simulated Haxby-like data (built in, works offline)",
    **{f"haxby:{n}": f"Haxby et al. (2001), subject {n} (download ~300 MB)" for n in range(1, 7)},
}

#: Largest labels table accepted, in bytes (a few times Haxby's 12 kB at 1000s of volumes).
MAX_LABELS_BYTES = 16 * 1024**2
#: Most columns accepted in a labels table.
MAX_LABEL_COLUMNS = 64
#: Longest line accepted in a labels table, in characters.
MAX_LABEL_LINE_CHARS = 8192
#: Most data rows accepted when the number of volumes is not known.
MAX_LABEL_ROWS = 200_000
#: Most voxels of an uploaded anatomical image (256^3): it is resampled in memory (float64).
MAX_ANAT_VOXELS = 256**3
#: Most cells (rows x columns) parsed: bounds the Python objects a table becomes (~30 MB).
MAX_LABEL_CELLS = 500_000
#: Blank lines tolerated beyond the expected rows (editors add some at the end).
_BLANK_LINE_ALLOWANCE = 64

_HAXBY_SUBJECT_FILES = (
    "bold.nii.gz", "labels.txt", "mask4_vt.nii.gz", "mask8b_face_vt.nii.gz",
    "mask8b_house_vt.nii.gz", "mask8_face_vt.nii.gz", "mask8_house_vt.nii.gz", "anat.nii.gz",
)
#: Our mask names -> the Haxby file each comes from (``brain`` is the data set's own mask).
HAXBY_MASK_FILES = {
    "vt": "mask4_vt.nii.gz",
    "face": "mask8b_face_vt.nii.gz",
    "house": "mask8b_house_vt.nii.gz",
    "face_little": "mask8_face_vt.nii.gz",
    "house_little": "mask8_house_vt.nii.gz",
}
#: Hosts nilearn's `fetch_haxby` downloads from: subject archives and MD5SUMS, whole-brain mask.
_HAXBY_DATA_HOST = ("data.pymvpa.org", 80)
_HAXBY_MASK_HOST = ("www.nitrc.org", 443)
HAXBY_SOURCE = (
    "Haxby, J. V. et al. (2001). Distributed and overlapping representations of faces and "
    "objects in ventral temporal cortex. Science 293:2425-2430. Data distributed by PyMVPA "
    "(CC BY-SA 3.0), fetched with nilearn.datasets.fetch_haxby."
)

_NUMBER_PATTERNS = (
    ("int", re.compile(r"[+-]?\d{1,18}")),
    ("float", re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?")),
)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")



# --------------------------------------------------------------------------------------
# Shared helpers
# --------------------------------------------------------------------------------------


def _dataset_digest(func_sha256: str, labels: pd.DataFrame, masks: dict, *extra) -> str:
    """sha256 over the functional file's digest, the labels table and the masks."""
    digest = hashlib.sha256(b"decoding-lab-dataset-v1\0")
    digest.update(func_sha256.encode())
    digest.update(labels.to_csv(index=False, lineterminator="\n").encode())
    for name in sorted(masks):
        image = masks[name]
        data = np.ascontiguousarray(np.asanyarray(image.dataobj) != 0)
        digest.update(f"\0{name}\0{data.shape}\0".encode())
        digest.update(np.packbits(data).tobytes())
        digest.update(np.asarray(image.affine, dtype=np.float64).round(6).tobytes())
    for item in extra:
        digest.update(f"\0{item!r}".encode())
    return digest.hexdigest()


def _mask_image(mask: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """A small in-memory uint8 mask image."""
    image = nib.Nifti1Image(np.array(mask, dtype=np.uint8), np.array(affine, dtype=float))
    image.header.set_xyzt_units("mm")
    return image


def _float_image(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    image = nib.Nifti1Image(np.array(data, dtype=np.float32), np.array(affine, dtype=float))
    image.header.set_xyzt_units("mm")
    return image


def _on_grid(image: nib.Nifti1Image, shape, affine) -> bool:
    return tuple(image.shape[:3]) == tuple(shape[:3]) and np.allclose(image.affine, affine, atol=1e-3)


def _resample_onto(image: nib.Nifti1Image, shape, affine, interpolation: str) -> nib.Nifti1Image:
    """``image`` resampled onto the functional grid (returned as is when already there)."""
    if _on_grid(image, shape, affine):
        return image
    from nilearn.image import resample_img

    return resample_img(image, target_affine=np.asarray(affine), target_shape=tuple(shape[:3]),
                        interpolation=interpolation, force_resample=True, copy_header=True)


def _binary_mask_on_grid(image: nib.Nifti1Image, shape, affine, name: str) -> nib.Nifti1Image:
    """A Haxby-style mask (any nonzero value is in) as uint8 on the functional grid."""
    data = np.asanyarray(image.dataobj)
    binary = _mask_image(np.nan_to_num(data) != 0, image.affine)
    binary = _resample_onto(binary, shape, affine, "nearest")
    mask = np.asanyarray(binary.dataobj) != 0
    if not mask.any():
        raise DecodingInputError(
            f"The mask '{name}' is empty on the functional image's grid. The file may be damaged or "
            "belong to another data set: delete it so that it is downloaded again."
        )
    return _mask_image(mask, affine)


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


# --------------------------------------------------------------------------------------
# The simulated data set
# --------------------------------------------------------------------------------------


def _check_seed(seed) -> int:
    try:
        if isinstance(seed, bool):
            raise TypeError
        value = operator.index(seed)
    except TypeError:
        raise DecodingInputTypeError(f"'seed' must be an integer in the range [0, 4294967295]. Got {seed!r}.") from None
    if not 0 <= value <= 2**32 - 1:
        raise DecodingInputError(f"'seed' must be an integer in the range [0, 4294967295]. Got {seed!r}.")
    return int(value)


def _verified_cache(func_path: Path, meta_path: Path, seed: int, shape) -> str | None:
    """The cached image's sha256 when the cache is complete and intact, else None."""
    import json

    if not (func_path.is_file() and meta_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        expected = (simulation.GENERATOR_VERSION, seed, list(shape))
        if (meta.get("generator_version"), meta.get("seed"), meta.get("shape")) != expected:
            return None
        digest = nifti.file_digest(func_path)
        return digest if digest == meta.get("func_sha256") else None
    except (OSError, ValueError):
        return None


def _check_writable(directory: Path) -> None:
    """Raise `DecodingInputError` unless a file can be created in ``directory``."""
    import tempfile

    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-probe-", dir=directory)
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise _cache_error(error) from error


def _cache_error(error: OSError) -> DecodingInputError:
    return DecodingInputError(
        f"The simulated data set could not be stored: {error}. Set the environment variable "
        f"{paths.DATA_DIR_ENV} to a writable folder with about 30 MB free (or pass cache_dir=...)."
    )


def simulated_description(seed: int) -> str:
    """The description of the simulated data set (says that it is simulated, and how)."""
    vx, vy, vz = simulation.VOXEL_SIZE_MM
    return (
        f"SIMULATED data, not a recording: generated by this app (generator version "
        f"{simulation.GENERATOR_VERSION}, seed {seed}) to imitate the design of Haxby et al. (2001). "
        f"{simulation.N_RUNS} runs of {simulation.VOLUMES_PER_RUN} volumes (TR {simulation.TR_SECONDS} s); "
        f"in each run one {simulation.BLOCK_VOLUMES}-volume block of each of 8 categories "
        f"({', '.join(simulation.CATEGORIES)}) in a shuffled order, between rest blocks. "
        "Block responses are convolved with the SPM haemodynamic response; each category has a "
        "planted multi-voxel pattern in ventral temporal cortex (vt), with face- and house-selective "
        "parts; slow drifts, AR(1) noise and spatially smooth noise are added to an EPI-like baseline "
        f"(int16, about 800-1000). Anatomy: the MNI152 2009a template shipped with nilearn, on a "
        f"{vx} x {vy} x {vz} mm grid. The planted patterns are kept as ground truth."
    )


def load_simulated(seed: int = 0, *, cache_dir=None) -> Dataset:
    """The built-in simulated Haxby-like data set (offline; generated once, then cached).

    Parameters
    ----------
    seed : int, default=0
        The same seed gives byte-identical data.
    cache_dir : str or pathlib.Path, optional
        Where the 4D image is kept; default ``paths.data_dir() / "simulated"``.
        File names carry the generator version and the seed; files are written
        atomically and checked against their recorded sha256 on reload (a
        damaged file is generated again).

    Returns
    -------
    Dataset
        Masks ``vt``, ``face``, ``house`` and ``brain``; ``ground_truth`` holds
        the planted patterns.

    Examples
    --------
    >>> dataset = load_simulated(seed=0)  # doctest: +SKIP
    >>> dataset.shape[3], dataset.n_runs  # doctest: +SKIP
    (1452, 12)
    """
    seed = _check_seed(seed)
    try:
        directory = Path(cache_dir) if cache_dir is not None else paths.data_dir() / "simulated"
    except OSError as error:
        raise _cache_error(error) from error
    stem = simulation.cache_file_stem(seed)
    func_path = directory / f"{stem}.nii.gz"
    meta_path = directory / f"{stem}.json"
    anatomy = simulation.simulated_anatomy()
    n_volumes = simulation.N_RUNS * simulation.VOLUMES_PER_RUN
    shape = (*anatomy.shape, n_volumes)

    func_sha256 = _verified_cache(func_path, meta_path, seed, shape)
    if func_sha256 is None:
        _check_writable(directory)  # before seconds of work, not after
        subject = simulation.simulate_subject(seed)
        zooms = tuple(float(v) for v in simulation.VOXEL_SIZE_MM) + (simulation.TR_SECONDS,)
        try:
            simulation.write_nifti_gz_atomic(subject.bold, anatomy.affine, func_path, zooms=zooms)
            del subject
            func_sha256 = nifti.file_digest(func_path)
            simulation.write_text_atomic(simulation.sidecar_json(seed, func_sha256, shape), meta_path)
        except OSError as error:
            raise _cache_error(error) from error
    # The cheap parts (design, masks, patterns) are recomputed from the seed.
    labels = simulation.simulated_design(seed)
    patterns, informative = simulation.planted_patterns(seed, anatomy)
    vt = anatomy.vt
    affine = anatomy.affine
    masks = {
        "vt": _mask_image(vt, affine),
        "face": _mask_image(anatomy.face, affine),
        "house": _mask_image(anatomy.house, affine),
        "brain": _mask_image(anatomy.brain, affine),
    }
    truth = SimulatedGroundTruth(
        patterns={c: patterns[c][vt].astype(np.float32) for c in HAXBY_CATEGORIES},
        informative_img=_mask_image(informative, affine),
        face_img=_mask_image(anatomy.face, affine),
        house_img=_mask_image(anatomy.house, affine),
        seed=seed,
    )
    return Dataset(
        name="simulated" if seed == 0 else f"simulated:{seed}",
        title=f"Simulated Haxby-like data (seed {seed})",
        func_path=func_path,
        labels=labels,
        label_column="labels",
        run_column="chunks",
        tr=simulation.TR_SECONDS,
        masks=masks,
        anat_img=_float_image(anatomy.anat, affine),
        description=simulated_description(seed),
        source=(
            f"SIMULATED by fMRI Decoding Lab (decoding_core.simulation, generator version "
            f"{simulation.GENERATOR_VERSION}, seed {seed}); anatomy from the MNI152 ICBM 2009a "
            "template shipped with nilearn. Design after Haxby et al. (2001), Science 293:2425-2430."
        ),
        digest=_dataset_digest(func_sha256, labels, masks, "simulated", simulation.GENERATOR_VERSION, seed),
        shape=shape,
        affine=affine.copy(),
        ground_truth=truth,
    )


# --------------------------------------------------------------------------------------
# Real Haxby data through nilearn
# --------------------------------------------------------------------------------------


def _host_reachable(host_port, timeout: float) -> bool:
    """Whether a TCP connection to ``host_port`` opens within ``timeout`` seconds.

    Name resolution is not covered by socket timeouts, so the attempt runs in a
    daemon thread that is abandoned when it takes too long.
    """
    outcome = {}

    def attempt():
        try:
            with socket.create_connection(host_port, timeout=timeout):
                outcome["ok"] = True
        except OSError:
            outcome["ok"] = False

    worker = threading.Thread(target=attempt, name="haxby-connectivity-check", daemon=True)
    worker.start()
    worker.join(timeout + 1.0)
    return bool(outcome.get("ok", False))


def _download_hosts_reachable(hosts, timeout: float) -> bool:
    """Whether every host needed for the missing files can be reached (patched in tests)."""
    return all(_host_reachable(host, timeout) for host in hosts)


def haxby_directory(data_dir=None) -> Path:
    """Where `fetch_haxby` looks for (or puts) the ``haxby2001`` folder.

    Mirrors nilearn: the first of ``data_dir``, ``$NILEARN_SHARED_DATA``,
    ``$NILEARN_DATA`` and ``~/nilearn_data`` that already holds a non-empty
    ``haxby2001`` folder, else the first of them.
    """
    from nilearn.datasets import get_data_dirs

    candidates = [Path(d) / "haxby2001" for d in get_data_dirs(data_dir=None if data_dir is None else str(data_dir))]
    for candidate in candidates:
        if candidate.is_dir() and any(candidate.iterdir()):
            return candidate
    return candidates[0]


def haxby_missing_files(subject: int, data_dir=None) -> list[str]:
    """Files ``fetch_haxby`` needs for ``subject`` that are not on disk (relative paths)."""
    root = haxby_directory(data_dir)
    needed = ["mask.nii.gz", "MD5SUMS"] + [
        f"subj{subject}/{name}" for name in _HAXBY_SUBJECT_FILES
        if not (subject == 6 and name == "anat.nii.gz")
    ]
    return [name for name in needed if not (root / name).is_file()]


def _check_subject(subject) -> int:
    if isinstance(subject, bool) or not isinstance(subject, (int, np.integer)):
        raise DecodingInputTypeError(f"'subject' must be an integer in the range [1, 6]. Got {subject!r}.")
    if not 1 <= int(subject) <= 6:
        raise DecodingInputError(
            f"'subject' must be an integer in the range [1, 6]. Got {subject!r}. "
            "The Haxby 2001 data set has subjects 1 to 6."
        )
    return int(subject)


def load_haxby(subject: int = 2, *, data_dir=None, connect_timeout: float = 5.0,
               progress=None) -> Dataset:
    """One subject of the real Haxby et al. (2001) data set, through nilearn.

    Files already on disk in nilearn's layout (``<data_dir>/haxby2001/...``)
    are used without any network access. When files are missing, the download
    server is tried first with a short connection attempt, so that without a
    network the call fails within seconds instead of hanging.

    Parameters
    ----------
    subject : int, default=2
        1 to 6. Subject 6 has no anatomical image (the mean functional image
        serves as background); run 8 of subject 5 has no task labels.
    data_dir : str or pathlib.Path, optional
        nilearn's data directory; default nilearn's (``$NILEARN_DATA`` or
        ``~/nilearn_data``).
    connect_timeout : float, default=5.0
        Seconds to wait for the download server before giving up.
    progress : callable, optional
        ``progress(fraction, message)``.

    Returns
    -------
    Dataset
        Masks ``vt`` (mask4_vt), ``face`` (mask8b_face_vt), ``house``
        (mask8b_house_vt), ``face_little`` (mask8_face_vt), ``house_little``
        (mask8_house_vt) and ``brain`` (the data set's whole-brain mask).

    Raises
    ------
    DecodingInputError
        No network while files are missing; download failure; damaged files.
    """
    subject = _check_subject(subject)
    root = haxby_directory(data_dir)
    missing = haxby_missing_files(subject, data_dir)
    if missing:
        hosts = []
        if any(name != "mask.nii.gz" for name in missing):
            hosts.append(_HAXBY_DATA_HOST)
        if "mask.nii.gz" in missing:
            hosts.append(_HAXBY_MASK_HOST)
        if progress is not None:
            progress(0.0, "Checking the connection to the Haxby download server")
        shown = ", ".join(f"haxby2001/{name}" for name in missing[:4]) + (", ..." if len(missing) > 4 else "")
        if not _download_hosts_reachable(hosts, connect_timeout):
            raise DecodingInputError(
                f"The Haxby data of subject {subject} are not on this computer (missing {shown} under "
                f"{root.parent}) and the download server cannot be reached: there is no network "
                "connection. Connect to the internet and try again, put the files there in nilearn's "
                "layout, or use the built-in simulated data set ('simulated', load_simulated()), "
                "which works offline."
            )
        if progress is not None:
            progress(0.05, f"Downloading Haxby subject {subject} (about 300 MB)")
    from nilearn.datasets import fetch_haxby

    try:
        bunch = fetch_haxby(data_dir=None if data_dir is None else str(data_dir), subjects=[subject], verbose=0)
    except Exception as error:  # nilearn raises many kinds (requests, OSError, ValueError)
        raise DecodingInputError(
            f"Could not get the Haxby data of subject {subject}: {error}. Check the network connection "
            f"and the free space under {root.parent}, or use the built-in simulated data set ('simulated')."
        ) from error
    if progress is not None:
        progress(0.6, "Checking the files")

    func_path = Path(bunch.func[0])
    info = nifti.inspect_nifti(func_path, expected_ndim=4, kind="Haxby functional image")
    shape, affine = tuple(int(v) for v in info.shape), np.asarray(info.affine, dtype=float)
    labels = read_labels_table(Path(bunch.session_target[0]), n_volumes=shape[3])
    for column in ("labels", "chunks"):
        if column not in labels.columns:
            raise DecodingInputError(
                f"The Haxby labels file {bunch.session_target[0]} has no '{column}' column (columns: "
                f"{', '.join(map(str, labels.columns))}). It may be damaged: delete it so that it is downloaded again."
            )
    labels["labels"] = labels["labels"].to_numpy(dtype=str)

    masks = {}
    mask_paths = {
        "vt": bunch.mask_vt[0], "face": bunch.mask_face[0], "house": bunch.mask_house[0],
        "face_little": bunch.mask_face_little[0], "house_little": bunch.mask_house_little[0],
        "brain": bunch.mask,
    }
    for name, path in mask_paths.items():
        image = nifti.load_image(path, expected_ndim=3, kind=f"Haxby mask '{name}'")
        masks[name] = _binary_mask_on_grid(image, shape, affine, name)
    if progress is not None:
        progress(0.75, "Preparing the anatomical image")
    anat_path = bunch.anat[0] if bunch.anat else None
    if anat_path is not None:
        anat = nifti.load_image(anat_path, expected_ndim=3, kind="Haxby anatomical image")
        anat_img = _float_image(np.asanyarray(_resample_onto(anat, shape, affine, "continuous").dataobj), affine)
        background = "the subject's anatomical image, resampled onto the functional grid"
    else:
        anat_img = nifti.mean_volume(func_path)
        background = "the mean functional image (subject 6 has no anatomical image)"
    digest = _dataset_digest(nifti.file_digest(func_path), labels, masks, "haxby", subject)
    if progress is not None:
        progress(1.0, "Done")
    note = " Run 8 has no task labels (all rest)." if subject == 5 else ""
    return Dataset(
        name=f"haxby:{subject}",
        title=f"Haxby et al. (2001), subject {subject}",
        func_path=func_path,
        labels=labels,
        label_column="labels",
        run_column="chunks",
        tr=float(getattr(bunch, "t_r", None) or 2.5),
        masks=masks,
        anat_img=anat_img,
        description=(
            f"Real fMRI data of Haxby et al. (2001), subject {subject}: {shape[3]} volumes in "
            f"{labels['chunks'].nunique()} runs, TR 2.5 s, while viewing 8 categories (faces, houses, "
            "cats, bottles, scissors, shoes, chairs, scrambled pictures) in blocks between rest. "
            f"Background: {background}.{note}"
        ),
        source=HAXBY_SOURCE,
        digest=digest,
        shape=shape,
        affine=affine,
    )


# --------------------------------------------------------------------------------------
# Labels tables
# --------------------------------------------------------------------------------------


def _length_error(n_rows: int, n_volumes: int, more: bool = False) -> DecodingInputError:
    rows = f"more than {n_rows}" if more else f"{n_rows}"
    return DecodingInputError(
        f"The labels table has {rows} rows but the image has {n_volumes} volumes. It needs exactly one "
        "row per volume, in time order, below one header row: check that the table and the image "
        "belong together (and that no volumes were removed from one of them)."
    )


def _read_label_bytes(source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > MAX_LABELS_BYTES:
            raise DecodingInputError(
                f"The labels table is {len(data) / 1024**2:.1f} MB; at most {MAX_LABELS_BYTES // 1024**2} MB "
                "is accepted. It should hold one short row per volume."
            )
        return data, "the labels table"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise DecodingInputError(f"The labels table {path} does not exist (or is not a file). Check the path.")
        size = path.stat().st_size
        if size > MAX_LABELS_BYTES:
            raise DecodingInputError(
                f"The labels table {path.name} is {size / 1024**2:.1f} MB; at most "
                f"{MAX_LABELS_BYTES // 1024**2} MB is accepted. It should hold one short row per volume."
            )
        with open(path, "rb") as handle:
            data = handle.read(MAX_LABELS_BYTES + 1)
        if len(data) > MAX_LABELS_BYTES:  # grew while reading
            raise DecodingInputError(f"The labels table {path.name} is larger than {MAX_LABELS_BYTES // 1024**2} MB.")
        return data, f"the labels table {path.name}"
    raise DecodingInputTypeError(f"'labels' must be a path or bytes. Got {type(source).__name__}.")


def _decode_text(data: bytes, name: str) -> str:
    if data[:2] == b"\x1f\x8b" or data[:4] == b"PK\x03\x04":
        raise DecodingInputError(
            f"{name.capitalize()} is a compressed file (gzip or zip). Unpack it and give the plain "
            "CSV, TSV or text file."
        )
    if b"\x00" in data:
        raise DecodingInputError(
            f"{name.capitalize()} is binary, not a text table. Give a CSV, TSV or space-separated "
            "text file with a header row (e.g. 'labels chunks') and one row per volume."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    if _CONTROL_CHARACTERS.search(text):
        raise DecodingInputError(
            f"{name.capitalize()} contains control characters: it is not a plain text table. Give a "
            "CSV, TSV or space-separated text file with a header row and one row per volume."
        )
    return text


def _check_raw_lines(data: bytes, name: str, n_volumes: int | None) -> None:
    """Bound the number and the length of lines on the raw bytes, before any text is made.

    Splitting 16 MB of three-byte lines makes millions of string objects (hundreds of
    MB); counting line breaks and scanning for the longest line allocates nothing.
    """
    newline = b"\n" if b"\n" in data else b"\r"
    n_breaks = data.count(newline)
    max_rows = MAX_LABEL_ROWS if n_volumes is None else int(n_volumes)
    if n_breaks > max_rows + 1 + _BLANK_LINE_ALLOWANCE:
        if n_volumes is not None:
            n_lines = n_breaks if data.endswith(newline) else n_breaks + 1
            raise _length_error(n_lines - 1, int(n_volumes))
        raise DecodingInputError(
            f"{name.capitalize()} has {n_breaks:,} lines; at most {MAX_LABEL_ROWS:,} rows are accepted."
        )
    # UTF-8 needs at most 4 bytes per character: longer lines cannot pass the character check.
    max_line_bytes = 4 * MAX_LABEL_LINE_CHARS
    start, number = 0, 1
    while start <= len(data):
        end = data.find(newline, start)
        end = len(data) if end < 0 else end
        if end - start > max_line_bytes:
            raise DecodingInputError(
                f"Line {number} of {name} is {end - start:,} characters long; at most {MAX_LABEL_LINE_CHARS} "
                "are accepted. A labels table has a few short columns per volume."
            )
        start, number = end + 1, number + 1


def _sniff_separator(header_line: str) -> str | None:
    """Tab, comma or semicolon when the header holds one (in that order), else None (whitespace)."""
    for separator in ("\t", ",", ";"):
        if separator in header_line:
            return separator
    return None


def _split_rows(lines: list[str], separator: str | None, name: str) -> list[list[str]]:
    if separator is None:
        return [line.split() for line in lines]
    try:
        return [[cell.strip() for cell in row] for row in csv.reader(lines, delimiter=separator, strict=True)]
    except csv.Error as error:
        raise DecodingInputError(
            f"{name.capitalize()} could not be read as a table: {error}. Check its quotes and separators."
        ) from None


def _numeric_column(values: list[str]):
    """Values as int64 or float64 when every cell is a plain number, else None."""
    for kind, pattern in _NUMBER_PATTERNS:
        if values and all(pattern.fullmatch(value) for value in values):
            return np.array(values, dtype=np.int64 if kind == "int" else np.float64)
    return None


def read_labels_table(source, *, n_volumes: int | None = None) -> pd.DataFrame:
    """Read a per-volume labels table: CSV, TSV or whitespace separated, with a header row.

    The text is checked before it is parsed: its size, that it is text (not
    binary or compressed), the number of lines (at most ``n_volumes + 1``),
    the length of each line and the number of columns. The separator is
    sniffed from the header line (tab, then comma, then semicolon, else runs
    of whitespace). Cells are plain strings, never evaluated: text that looks
    like a spreadsheet formula (``=1+1``) stays text. Columns in which every
    cell is a plain number become integers or floats; whitespace around cells
    is stripped.

    Parameters
    ----------
    source : str, pathlib.Path or bytes
        The file or its content.
    n_volumes : int, optional
        Number of volumes of the image; when given, the table must have
        exactly one row per volume.

    Returns
    -------
    pandas.DataFrame
        One row per volume, columns named by the header.

    Raises
    ------
    DecodingInputError
        Not a text table, no header row, ragged rows, too large, duplicate or
        empty column names, or a row count different from ``n_volumes``.

    Examples
    --------
    >>> read_labels_table(b"labels,chunks\\nface,0\\nrest,0\\n")["labels"].tolist()
    ['face', 'rest']
    """
    data, name = _read_label_bytes(source)
    _check_raw_lines(data, name, n_volumes)
    text = _decode_text(data, name)
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise DecodingInputError(
            f"{name.capitalize()} is empty. Give a table with a header row (e.g. 'labels chunks') and one row per volume."
        )
    n_rows = len(lines) - 1
    if n_volumes is not None and n_rows > n_volumes:
        raise _length_error(n_rows, n_volumes)
    if n_rows > MAX_LABEL_ROWS:
        raise DecodingInputError(f"{name.capitalize()} has {n_rows} rows; at most {MAX_LABEL_ROWS} are accepted.")
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LABEL_LINE_CHARS:
            raise DecodingInputError(
                f"Line {number} of {name} is {len(line)} characters long; at most {MAX_LABEL_LINE_CHARS} "
                "are accepted. A labels table has a few short columns per volume."
            )
        if not line.strip():
            raise DecodingInputError(
                f"Line {number} of {name} is empty. Every line below the header must describe one volume; "
                "remove the empty line (or fill it in)."
            )

    separator = _sniff_separator(lines[0])
    header = _split_rows(lines[:1], separator, name)[0]
    if len(header) > MAX_LABEL_COLUMNS:
        raise DecodingInputError(
            f"{name.capitalize()} has {len(header)} columns; at most {MAX_LABEL_COLUMNS} are accepted. "
            "Keep the label and run columns (and a few others)."
        )
    if any(not column for column in header):
        raise DecodingInputError(f"{name.capitalize()} has an empty column name in its header row: name every column.")
    if len(set(header)) != len(header):
        duplicates = sorted({c for c in header if header.count(c) > 1})
        raise DecodingInputError(
            f"{name.capitalize()} has duplicate column names ({', '.join(duplicates)}). Give each column its own name."
        )
    if any(pattern.fullmatch(column) for column in header for _, pattern in _NUMBER_PATTERNS):
        raise DecodingInputError(
            f"{name.capitalize()} seems to have no header row: its first line is "
            f"{' | '.join(header[:6])!r}. Add a first line naming the columns (e.g. 'labels chunks')."
        )
    if n_rows * len(header) > MAX_LABEL_CELLS:
        raise DecodingInputError(
            f"{name.capitalize()} has {n_rows:,} rows of {len(header)} columns; at most "
            f"{MAX_LABEL_CELLS:,} cells are accepted. Keep the label and run columns."
        )
    rows = _split_rows(lines, separator, name)
    body = rows[1:]
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DecodingInputError(
                f"Line {number} of {name} has {len(row)} values but the header names {len(header)} columns "
                f"({', '.join(header[:8])}). Every row needs one value per column."
            )
    if n_volumes is not None and len(body) != n_volumes:
        raise _length_error(len(body), n_volumes)

    columns = {}
    for index, column in enumerate(header):
        values = [row[index] for row in body]
        numeric = _numeric_column(values)
        columns[column] = numeric if numeric is not None else pd.array(values, dtype="str")
    return pd.DataFrame(columns)


# --------------------------------------------------------------------------------------
# The user's own files
# --------------------------------------------------------------------------------------


def _missing_column_error(kind: str, column, table: pd.DataFrame) -> DecodingInputError:
    available = ", ".join(repr(str(c)) for c in table.columns)
    return DecodingInputError(
        f"The labels table has no {kind} column {column!r}. Its columns are: {available}. "
        f"Choose one of them as the {kind} column."
    )


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
    if not isinstance(func, (str, os.PathLike)):
        raise DecodingInputTypeError(f"'func' must be a path to a .nii or .nii.gz file. Got {type(func).__name__}.")
    func_path = Path(func)
    if not func_path.is_file():
        raise DecodingInputError(f"The functional image {func_path} does not exist (or is not a file). Check the path.")
    info = nifti.inspect_nifti(func_path, expected_ndim=4, kind="functional image")
    shape, affine = tuple(int(v) for v in info.shape), np.asarray(info.affine, dtype=float)
    table = read_labels_table(labels, n_volumes=shape[3])

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

    mean_img = None
    if mask is not None:
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
        masks = {"uploaded": _mask_image(mask_bool(mask_img, "uploaded"), affine)}
    else:
        from nilearn.masking import compute_epi_mask

        mean_img = nifti.mean_volume(func_path)
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
        masks = {"epi": _mask_image(epi, affine)}

    if anat is not None:
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
        resampled = _resample_onto(anat_source, shape, affine, "continuous")
        anat_img = _float_image(np.asanyarray(resampled.dataobj), affine)
    else:
        anat_img = mean_img if mean_img is not None else nifti.mean_volume(func_path)

    repetition_time = _check_tr(tr)
    if repetition_time is None:
        repetition_time = _tr_from_header(info)
    label_file = Path(labels).name if isinstance(labels, (str, os.PathLike)) else "uploaded table"
    background = "the uploaded anatomical image" if anat is not None else "the mean functional image"
    mask_text = "the uploaded mask" if mask is not None else "an EPI mask computed from the mean image"
    n_runs = int(table[run_column].nunique()) if run_column is not None else 0
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
        description=(
            f"Your data: {func_path.name} ({shape[0]} x {shape[1]} x {shape[2]} voxels, {shape[3]} volumes"
            + (f", {n_runs} runs" if run_column is not None else ", no runs")
            + f") with labels from {label_file} (column {label_column!r}). Mask: {mask_text}; "
            f"background: {background}."
        ),
        source=f"Uploaded files: {func_path.name}, {label_file}",
        digest=_dataset_digest(nifti.file_digest(func_path), table, masks, "upload", label_column, run_column),
        shape=shape,
        affine=affine,
    )


# --------------------------------------------------------------------------------------
# By name
# --------------------------------------------------------------------------------------


def load_dataset(spec: str, **kwargs) -> Dataset:
    """Load a data set by name: ``"simulated"`` (or ``"simulated:SEED"``) or ``"haxby:N"``.

    Parameters
    ----------
    spec : str
        A key of `DATASET_CHOICES`, or ``"simulated:SEED"``.
    **kwargs
        Passed to `load_simulated` or `load_haxby`.

    Returns
    -------
    Dataset
    """
    if not isinstance(spec, str):
        raise DecodingInputTypeError(f"'spec' must be a str. Got {spec!r}.")
    text = spec.strip().lower()
    name, _, argument = text.partition(":")
    if name == "simulated":
        if argument:
            if not argument.isdigit():
                raise DecodingInputError(f"The seed in {spec!r} must be a non-negative integer, as in 'simulated:3'.")
            kwargs["seed"] = int(argument)
        return load_simulated(**kwargs)
    if name == "haxby" and argument.isdigit():
        return load_haxby(int(argument), **kwargs)
    raise DecodingInputError(
        f"Unknown data set {spec!r}. Choose one of: {', '.join(DATASET_CHOICES)} (or 'simulated:SEED')."
    )
