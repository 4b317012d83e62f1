"""Reading the image while the command line starts (``python -m decoding_core decode``).

Importing scikit-learn and the rest of the command line takes about 2 s; one pass over a
Haxby-size .nii.gz (300 MB) about 1.2 s more, and its digest 0.2 s. `start` forks a child
process, before those imports, that makes the pass meanwhile on the other core: the
file's digest and the raw voxels of the user's mask. The command takes them (`take`) as
a `~decoding_core.masking.RawVoxelCache` holding the matrix under the key `mask_dataset`
looks up, and finds the voxels there. (Threads were tried first: with the imports holding
the GIL, the result came about 0.4 s later.)

Only the plain case is read ahead: ``decode`` of one's own ``--func`` with a ``--mask``,
without options that would make the command read something else (``--smoothing``, a
``--config`` file that may smooth, BIDS or built-in data sets), and only where there is
``os.fork``. Anything that goes wrong in the child (a missing, corrupt or hostile file,
a mask on another grid) is dropped: the command then meets it itself and says so as it
always does.
"""

from __future__ import annotations

import atexit
import json
import os
import signal

#: Options after which the command's read is not the plain one made here.
_OTHER_READS = ("--smoothing", "--config", "--bids", "--dataset")

_pending: _Read | None = None


class _Read:
    """A child process reading one image in one mask; ``cache`` waits for what it sends."""

    def __init__(self, func: str, mask: str):
        self.func = func
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: read, send, and leave without running the parent's exit handlers
            os.close(read_end)
            _send(func, mask, write_end)
            os._exit(0)
        os.close(write_end)
        self._pipe = os.fdopen(read_end, "rb")
        atexit.register(self.stop)

    def cache(self):
        """The `RawVoxelCache` the child read (None if it failed or was stopped); waits for it."""
        if self._pipe.closed:
            return None
        try:
            line, data = self._pipe.readline(), self._pipe.read()
        finally:
            self.stop()
        try:
            header = json.loads(line) if line else None
        except ValueError:  # the child was stopped half-way through its line
            return None
        return None if header is None else _cache_of(self.func, header, data)

    def stop(self) -> None:
        """End the child (the command may have stopped without taking its voxels)."""
        atexit.unregister(self.stop)
        if self._pipe.closed:
            return
        self._pipe.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)


def _send(func, mask, write_end: int) -> None:
    """In the child: a JSON line (key, digest, shape), then the matrix's bytes; nothing on failure."""
    import warnings

    warnings.simplefilter("ignore")  # the command's own read of the header says what needs saying, once
    with os.fdopen(write_end, "wb") as pipe:
        try:
            voxels = masked_voxels(func, mask)  # first: a bad file or mask ends here, before the digest's pass
            if voxels is None:
                return
            from decoding_core import masking
            from decoding_core.io import nifti

            mask_img, raw = voxels
            sha256 = nifti.file_digest(func)
            key = masking.raw_matrix_key(sha256, mask_img)
            pipe.write(json.dumps({"key": key, "sha256": sha256, "shape": raw.shape}).encode() + b"\n")
            pipe.write(memoryview(raw).cast("B"))
        except BaseException:  # noqa: BLE001 - the command meets the same problem and reports it
            return


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


def _cache_of(func, header: dict, data: bytes):
    import numpy as np

    from decoding_core import masking
    from decoding_core.io import nifti

    shape = tuple(header["shape"])
    if len(data) != 4 * shape[0] * shape[1]:  # the child was stopped half-way: the command reads itself
        return None
    raw = np.frombuffer(data, dtype=np.float32).reshape(shape)  # read-only, as the cache keeps it
    nifti.remember_file_digest(func, header["sha256"])
    cache = masking.RawVoxelCache()
    cache.put(tuple(header["key"]), raw)
    return cache


def files_to_read(argv: list[str]) -> tuple[str, str] | None:
    """``(func, mask)`` when ``argv`` is a plain ``decode`` of one's own image in one's own mask, else None."""
    if not argv or argv[0] != "decode" or any(_names_another_read(arg) for arg in argv):
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


def _names_another_read(arg: str) -> bool:
    # argparse takes an option's unambiguous start (``--smooth 6``) for the option.
    name = arg.split("=")[0]
    return len(name) > 2 and name.startswith("--") and any(option.startswith(name) for option in _OTHER_READS)


def start(argv: list[str]) -> None:
    """Start reading the image that ``argv`` (the command's arguments) will decode, if it is a plain case."""
    global _pending
    files = files_to_read(argv)
    if files is None or not hasattr(os, "fork"):
        return
    try:
        _pending = _Read(*files)
    except OSError:  # no process or pipe to spare: the command reads the image itself
        _pending = None


def take():
    """The `RawVoxelCache` read ahead by `start` (None if nothing was, or the read failed); waits for it."""
    global _pending
    read, _pending = _pending, None
    return None if read is None else read.cache()
