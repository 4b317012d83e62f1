"""Reading the image while the command line starts (``python -m decoding_core decode``).

Importing scikit-learn and the rest of the command line takes about 2 s; one pass over a
Haxby-size .nii.gz (300 MB) about 1.2 s more. `start` reads in two threads
meanwhile: the file's digest, and the raw voxels of the user's mask, into a
`~decoding_core.masking.RawVoxelCache` under the key `mask_dataset` looks up. The
command takes that cache (`take`) and finds the voxels there. Decompression and hashing
release the GIL, so the two overlap on two cores.

Only the plain case is read ahead: ``decode`` of one's own ``--func`` with a ``--mask``,
without options that would make the command read something else (``--smoothing``, a
``--config`` file that may smooth, BIDS or built-in data sets). Anything that goes wrong
in the thread (a missing, corrupt or hostile file, a mask on another grid) is dropped:
the command then meets it itself and says so as it always does.
"""

from __future__ import annotations

import hashlib
import sys
import threading

#: Options after which the command's read is not the plain one made here.
_OTHER_READS = ("--smoothing", "--config", "--bids", "--dataset")

#: How often a thread waiting for the GIL gets it (s) while the read runs. Python's 5 ms
#: made each of the read's hundreds of GIL hand-overs wait behind the imports: the read
#: took 1.0 s instead of 0.2 s for the digest alone.
_SWITCH_INTERVAL = 1e-4

#: As `decoding_core.io.nifti.file_digest` reads (few GIL hand-overs).
_HASH_BLOCK_BYTES = 16 * 1024**2

_pending: _Read | None = None


class _Read:
    """The threads reading one image in one mask; ``cache`` waits for them."""

    def __init__(self, func: str, mask: str):
        self.func, self.mask = func, mask
        self.sha256 = self.result = None
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(_SWITCH_INTERVAL)
        # Daemons: an argument error ends the command without waiting for the read.
        # The digest needs only hashlib: it starts at once, while the other thread imports numpy.
        self._hashing = threading.Thread(target=self._hash, name="decoding-prefetch-digest", daemon=True)
        self._reading = threading.Thread(target=self._read, name="decoding-prefetch-voxels", daemon=True)
        self._hashing.start()
        self._reading.start()

    def _hash(self) -> None:
        try:
            digest = hashlib.sha256()
            with open(self.func, "rb") as handle:
                for block in iter(lambda: handle.read(_HASH_BLOCK_BYTES), b""):
                    digest.update(block)
            self.sha256 = digest.hexdigest()
        except Exception:  # noqa: BLE001 - the command meets the same problem and reports it
            self.sha256 = None

    def _read(self) -> None:
        try:
            voxels = masked_voxels(self.func, self.mask)
            self._hashing.join()
            if voxels is not None and self.sha256 is not None:
                self.result = _cache_of(self.func, self.sha256, *voxels)
        except Exception:  # noqa: BLE001 - as above
            self.result = None

    def cache(self):
        self._reading.join()
        sys.setswitchinterval(self._switch_interval)
        return self.result


def masked_voxels(func, mask):
    """The data set's mask and the raw matrix of ``func`` in it, as ``load_files`` and `mask_dataset` make them.

    Parameters
    ----------
    func : str or pathlib.Path
        The 4D .nii or .nii.gz image.
    mask : str or pathlib.Path
        The 3D mask on its grid, as ``load_files(..., mask=mask)`` takes it.

    Returns
    -------
    (nibabel.Nifti1Image, ndarray of shape (n_volumes, n_voxels)) or None
        None when the matrix would be too large to keep in a `RawVoxelCache` (the
        command then reads it itself).
    """
    import nibabel as nib
    import numpy as np

    from decoding_core import masking
    from decoding_core.io import nifti

    info = nifti.inspect_nifti(func, expected_ndim=4, kind="functional image")
    user_mask = nifti.load_image(mask, expected_ndim=3, kind="mask")
    masking.check_mask_matches(user_mask, info.shape, info.affine, "mask")
    # The data set's mask, as `load_files` makes it: the user's nonzero voxels on the image's affine.
    mask_img = nib.Nifti1Image(masking.mask_bool(user_mask).astype(np.uint8), np.asarray(info.affine, float))
    if 4 * info.n_volumes * int(np.count_nonzero(mask_img.dataobj)) > masking.DEFAULT_CACHE_BYTES:
        return None
    return mask_img, masking.extract_masked_voxels(func, {"uploaded": mask_img})["uploaded"]


def _cache_of(func, sha256: str, mask_img, raw):
    from decoding_core import masking
    from decoding_core.io import nifti

    nifti.remember_file_digest(func, sha256)
    cache = masking.RawVoxelCache()
    cache.put(masking.raw_matrix_key(sha256, mask_img), raw)
    return cache


def files_to_read(argv: list[str]) -> tuple[str, str] | None:
    """``(func, mask)`` when ``argv`` is a plain ``decode`` of one's own image in one's own mask, else None."""
    if not argv or argv[0] != "decode" or any(arg.split("=")[0] in _OTHER_READS for arg in argv):
        return None
    values = {}
    for index, arg in enumerate(argv):
        name, equals, value = arg.partition("=")
        if name in ("--func", "--mask"):
            if equals:
                values[name] = value
            elif index + 1 < len(argv):
                values[name] = argv[index + 1]
    if "--func" not in values or "--mask" not in values:
        return None
    return values["--func"], values["--mask"]


def start(argv: list[str]) -> None:
    """Start reading the image that ``argv`` (the command's arguments) will decode, if it is a plain case."""
    global _pending
    files = files_to_read(argv)
    if files is not None:
        _pending = _Read(*files)


def take():
    """The `RawVoxelCache` read ahead by `start` (None if nothing was, or the read failed); waits for it."""
    global _pending
    read, _pending = _pending, None
    return None if read is None else read.cache()
