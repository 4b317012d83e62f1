"""Real Haxby et al. (2001) subjects, through nilearn's `fetch_haxby`.

Files already on disk in nilearn's layout are used without any network
access; when some are missing, the download hosts are tried first with a
short connection attempt, so that without a network the loader fails within
seconds instead of hanging.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from decoding_core.datasets._base import Dataset
from decoding_core.datasets._images import dataset_digest, float_image, mask_image, resample_onto
from decoding_core.datasets.spec import HAXBY, DatasetSpec, check_subject
from decoding_core.errors import DecodingInputError
from decoding_core.io import nifti
from decoding_core.io.labels import read_labels_table

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
    subject = check_subject(subject)
    root = haxby_directory(data_dir)
    missing = haxby_missing_files(subject, data_dir)
    if missing:
        _check_download_possible(subject, missing, root, connect_timeout, progress)
    bunch = _fetch(subject, data_dir, root)
    _report(progress, 0.6, "Checking the files")
    func_path = Path(bunch.func[0])
    info = nifti.inspect_nifti(func_path, expected_ndim=4, kind="Haxby functional image")
    shape, affine = tuple(int(v) for v in info.shape), np.asarray(info.affine, dtype=float)
    labels = _haxby_labels(bunch.session_target[0], n_volumes=shape[3])
    masks = _haxby_masks(bunch, shape, affine)
    _report(progress, 0.75, "Preparing the anatomical image")
    anat_img, background = _haxby_background(bunch, func_path, shape, affine)
    digest = dataset_digest(nifti.file_digest(func_path), labels, masks, "haxby", subject)
    _report(progress, 1.0, "Done")
    note = " Run 8 has no task labels (all rest)." if subject == 5 else ""
    return Dataset(
        name=str(DatasetSpec(HAXBY, subject=subject)),
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


def _report(progress, fraction: float, message: str) -> None:
    if progress is not None:
        progress(fraction, message)


# -- download ---------------------------------------------------------------------------


def _check_download_possible(subject: int, missing: list[str], root: Path, connect_timeout: float,
                             progress) -> None:
    """Raise a clear error, within seconds, when the hosts of the ``missing`` files cannot be reached."""
    hosts = []
    if any(name != "mask.nii.gz" for name in missing):
        hosts.append(_HAXBY_DATA_HOST)
    if "mask.nii.gz" in missing:
        hosts.append(_HAXBY_MASK_HOST)
    _report(progress, 0.0, "Checking the connection to the Haxby download server")
    shown = ", ".join(f"haxby2001/{name}" for name in missing[:4]) + (", ..." if len(missing) > 4 else "")
    if not _download_hosts_reachable(hosts, connect_timeout):
        raise DecodingInputError(
            f"The Haxby data of subject {subject} are not on this computer (missing {shown} under "
            f"{root.parent}) and the download server cannot be reached: there is no network "
            "connection. Connect to the internet and try again, put the files there in nilearn's "
            "layout, or use the built-in simulated data set ('simulated', load_simulated()), "
            "which works offline."
        )
    _report(progress, 0.05, f"Downloading Haxby subject {subject} (about 300 MB)")


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


def _fetch(subject: int, data_dir, root: Path):
    """nilearn's `fetch_haxby` bunch for ``subject`` (downloads what is missing)."""
    from nilearn.datasets import fetch_haxby

    try:
        return fetch_haxby(data_dir=None if data_dir is None else str(data_dir), subjects=[subject], verbose=0)
    except Exception as error:  # nilearn raises many kinds (requests, OSError, ValueError)
        raise DecodingInputError(
            f"Could not get the Haxby data of subject {subject}: {error}. Check the network connection "
            f"and the free space under {root.parent}, or use the built-in simulated data set ('simulated')."
        ) from error


# -- the files of a subject -------------------------------------------------------------


def _haxby_labels(path, n_volumes: int) -> pd.DataFrame:
    """The subject's labels table, checked for its ``labels`` and ``chunks`` columns."""
    labels = read_labels_table(Path(path), n_volumes=n_volumes)
    for column in ("labels", "chunks"):
        if column not in labels.columns:
            raise DecodingInputError(
                f"The Haxby labels file {path} has no '{column}' column (columns: "
                f"{', '.join(map(str, labels.columns))}). It may be damaged: delete it so that it is downloaded again."
            )
    labels["labels"] = labels["labels"].to_numpy(dtype=str)
    return labels


def _haxby_masks(bunch, shape, affine) -> dict:
    """The subject's five region masks and the data set's whole-brain mask, on the functional grid."""
    mask_paths = {
        "vt": bunch.mask_vt[0], "face": bunch.mask_face[0], "house": bunch.mask_house[0],
        "face_little": bunch.mask_face_little[0], "house_little": bunch.mask_house_little[0],
        "brain": bunch.mask,
    }
    masks = {}
    for name, path in mask_paths.items():
        image = nifti.load_image(path, expected_ndim=3, kind=f"Haxby mask '{name}'")
        masks[name] = _binary_mask_on_grid(image, shape, affine, name)
    return masks


def _binary_mask_on_grid(image: nib.Nifti1Image, shape, affine, name: str) -> nib.Nifti1Image:
    """A Haxby-style mask (any nonzero value is in) as uint8 on the functional grid."""
    data = np.asanyarray(image.dataobj)
    binary = mask_image(np.nan_to_num(data) != 0, image.affine)
    binary = resample_onto(binary, shape, affine, "nearest")
    mask = np.asanyarray(binary.dataobj) != 0
    if not mask.any():
        raise DecodingInputError(
            f"The mask '{name}' is empty on the functional image's grid. The file may be damaged or "
            "belong to another data set: delete it so that it is downloaded again."
        )
    return mask_image(mask, affine)


def _haxby_background(bunch, func_path: Path, shape, affine) -> tuple[nib.Nifti1Image, str]:
    """The background image and what it is: the anatomical image, or the mean functional one (subject 6)."""
    anat_path = bunch.anat[0] if bunch.anat else None
    if anat_path is None:
        return nifti.mean_volume(func_path), "the mean functional image (subject 6 has no anatomical image)"
    anat = nifti.load_image(anat_path, expected_ndim=3, kind="Haxby anatomical image")
    anat_img = float_image(np.asanyarray(resample_onto(anat, shape, affine, "continuous").dataobj), affine)
    return anat_img, "the subject's anatomical image, resampled onto the functional grid"
