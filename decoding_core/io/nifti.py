"""Safe, bounded reading of NIfTI images (.nii and .nii.gz).

Every file is checked from its header before any voxel is read: the header is
parsed from the first few hundred (decompressed) bytes, and a file that is not
a single-file NIfTI-1 or NIfTI-2 image, has the wrong number of dimensions,
absurd dimensions, an unsupported voxel type, data larger than the memory
budget, or a broken ``vox_offset`` / extension list is refused with a
`DecodingInputError` before anything large is allocated or decompressed.

Voxel data are then read by this module, never by ``nib.load``:

* gzip-compressed files are inflated once, as a stream, with ISA-L
  (``isal.igzip``) when installed and zlib otherwise; never more than
  ``vox_offset + data_nbytes`` bytes are requested, and a truncated or corrupt
  stream (bad deflate data, CRC or length mismatch) raises a
  `DecodingInputError` instead of returning a partial array;
* uncompressed files are read through a memory map, one chunk of volumes at a
  time, so the pages of a large file do not accumulate in memory.

NIfTI-2 single files (``n+2``) are supported; their header is converted to a
NIfTI-1 header (dimensions are limited to 32767, which NIfTI-1 can store).
Analyze 7.5 files and ``.hdr``/``.img`` pairs are refused.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from decoding_core import environment
from decoding_core.caching import BoundedCache
from decoding_core.errors import DecodingInputError
from decoding_core.progress import ProgressCallback

try:  # ISA-L inflates about 2x faster than zlib; optional.
    from isal import igzip as _gzip_module
    from isal import isal_zlib as _isal_zlib

    _GZIP_ERRORS: tuple = (OSError, EOFError, zlib.error, _isal_zlib.error)
    DECOMPRESSOR = "isal"
except ImportError:  # pragma: no cover - isal is in requirements.txt
    _gzip_module = gzip
    _GZIP_ERRORS = (OSError, EOFError, zlib.error)
    DECOMPRESSOR = "zlib"

#: Environment variable holding the memory budget (bytes; suffixes K, M, G allowed).
BUDGET_ENV = environment.MAX_IMAGE_BYTES

#: Default budget for the stored voxel data of one image: 512 MiB.
#: A full Haxby subject (40x64x64x1452 int16, 475.8 MB) passes with 13% to
#: spare. The 4D image is streamed, so the budget does not bound memory
#: directly; it bounds decompression time (~1.2 s with ISA-L at the limit)
#: and, with the masked-matrix check in `decoding_core.masking`, keeps a
#: session within a 690 MB Streamlit Community Cloud host.
DEFAULT_BUDGET_BYTES = environment.VARIABLES[BUDGET_ENV].default

#: Largest accepted size of any one dimension (NIfTI-1 stores dims as int16).
MAX_DIM = 32767
#: Largest accepted header extension area (bytes between header and data).
MAX_EXTENSION_BYTES = 8 * 1024**2
#: Decompressed bytes accepted after the voxel data of a .nii.gz (padding some writers add);
#: a stream that goes on beyond this is refused (gzip bomb behind a valid header).
MAX_TRAILING_BYTES = 64 * 1024
#: First size of the buffer of `load_image` for gzip data; it doubles as data arrive.
GROWTH_START_BYTES = 16 * 1024**2
#: Largest single read from a (gzip) stream.
READ_STEP_BYTES = 4 * 1024**2
#: Raw bytes read per chunk of volumes when streaming.
CHUNK_BYTES = 16 * 1024**2

_NIFTI1_SIZE = 348
_NIFTI2_SIZE = 540

#: NIfTI datatype code -> numpy dtype (little-endian; byte order set from the header).
SUPPORTED_DTYPES = {
    2: np.dtype(np.uint8),
    4: np.dtype(np.int16),
    8: np.dtype(np.int32),
    16: np.dtype(np.float32),
    64: np.dtype(np.float64),
    256: np.dtype(np.int8),
    512: np.dtype(np.uint16),
    768: np.dtype(np.uint32),
    1024: np.dtype(np.int64),
    1280: np.dtype(np.uint64),
}
_UNSUPPORTED_DTYPE_NAMES = {
    0: "an unknown type (datatype 0)",
    1: "single bits (binary)",
    32: "complex64",
    128: "RGB colour (rgb24)",
    1536: "float128",
    1792: "complex128",
    2048: "complex256",
    2304: "RGBA colour (rgba32)",
}

_NDIM_WORDS = {3: "3D (x, y, z)", 4: "4D (x, y, z, time)"}


@dataclass(frozen=True, eq=False)
class NiftiInfo:
    """What the header of a checked NIfTI file says.

    Attributes
    ----------
    shape : tuple of int
        Shape with ``expected_ndim`` dimensions (trailing singleton dimensions
        beyond it dropped, e.g. a 4D image with one volume read as 3D).
    affine : ndarray of shape (4, 4)
    zooms : tuple of float
        Voxel sizes (mm) and, for 4D images, the TR as stored.
    dtype : numpy.dtype
        Stored voxel type, with the file's byte order.
    vox_offset : int
        Byte offset of the voxel data in the (decompressed) file.
    compressed : bool
        Whether the file is gzip-compressed (by content, not by name).
    data_nbytes : int
        Size of the stored voxel data in bytes.
    header : nibabel.Nifti1Header
        The header (NIfTI-2 converted to NIfTI-1), without extensions.
    slope, inter : float
        Scaling applied to stored values (1 and 0 when the file has none).
    """

    shape: tuple
    affine: np.ndarray
    zooms: tuple
    dtype: np.dtype
    vox_offset: int
    compressed: bool
    data_nbytes: int
    header: nib.Nifti1Header
    slope: float = 1.0
    inter: float = 0.0

    @property
    def n_volumes(self) -> int:
        """Number of volumes (1 for a 3D image)."""
        return int(self.shape[3]) if len(self.shape) > 3 else 1

    @property
    def volume_shape(self) -> tuple:
        return tuple(self.shape[:3])

    @property
    def voxels_per_volume(self) -> int:
        return int(np.prod(self.shape[:3]))

    @property
    def scaled(self) -> bool:
        return self.slope != 1.0 or self.inter != 0.0


def configured_budget_bytes() -> int:
    """The memory budget in force: ``$DECODING_LAB_MAX_IMAGE_BYTES`` or `DEFAULT_BUDGET_BYTES`."""
    return environment.read(BUDGET_ENV)


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"


# --------------------------------------------------------------------------------------
# Opening: path or bytes -> raw file object, compressed flag
# --------------------------------------------------------------------------------------


def _source_name(source) -> str:
    return "the uploaded data" if isinstance(source, (bytes, bytearray, memoryview)) else Path(source).name


def _open_raw(source):
    """Return (binary file object, size in bytes, display name)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return io.BytesIO(data), len(data), "the uploaded data"
    path = Path(source)
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise DecodingInputError(f"The file {path} does not exist. Check the path.") from None
    except IsADirectoryError:
        raise DecodingInputError(f"{path} is a folder, not a NIfTI file. Choose a .nii or .nii.gz file.") from None
    except OSError as err:
        raise DecodingInputError(f"The file {path} cannot be opened ({err.strerror}).") from None
    return handle, os.fstat(handle.fileno()).st_size, path.name


def _corrupt(name: str, kind: str, detail: str = "") -> DecodingInputError:
    extra = f" ({detail})" if detail else ""
    return DecodingInputError(
        f"The {kind} {name} is truncated or corrupt{extra}: the file ended early or its "
        "compressed data are damaged. Upload the complete file again (check that the download "
        "or copy finished)."
    )


def _read_exact(stream, n_bytes: int, name: str, kind: str) -> bytes:
    """Read exactly ``n_bytes`` (small reads: header, extensions)."""
    try:
        data = stream.read(n_bytes)
    except _GZIP_ERRORS as err:
        raise _corrupt(name, kind, str(err)) from None
    if len(data) != n_bytes:
        raise _corrupt(name, kind, f"needed {n_bytes} bytes, found {len(data)}")
    return data


def _readinto_exact(stream, view: memoryview, name: str, kind: str) -> None:
    """Fill ``view`` completely from ``stream`` or raise (never a partial result)."""
    filled = 0
    total = len(view)
    try:
        while filled < total:
            # Bounded steps: gzip readers allocate a temporary of the size asked for, so one
            # readinto of a claimed 500 MB would reserve 500 MB before the stream runs dry.
            n_read = stream.readinto(view[filled : filled + READ_STEP_BYTES])
            if not n_read:
                raise _corrupt(name, kind, f"the voxel data stop after {filled:,} of {total:,} bytes of this chunk")
            filled += n_read
    except _GZIP_ERRORS as err:
        raise _corrupt(name, kind, str(err)) from None


def _read_growing(stream, total: int, name: str, kind: str) -> np.ndarray:
    """Read exactly ``total`` bytes into a uint8 array that grows as data arrive.

    A short stream claiming a large image (a 70-byte gzip whose header promises 500
    MB) then fails after reserving about what it really held, not what it claimed.
    Growing by doubling uses ``realloc`` (``mremap`` for large blocks: no copy).
    """
    buffer = np.empty(min(total, GROWTH_START_BYTES), dtype=np.uint8)
    filled = 0
    while filled < total:
        if filled == buffer.size:
            buffer.resize(min(total, 2 * buffer.size), refcheck=False)
        end = min(buffer.size, filled + READ_STEP_BYTES)
        with memoryview(buffer) as whole, whole[filled:end] as view:  # released before any resize
            try:
                n_read = stream.readinto(view)
            except _GZIP_ERRORS as err:
                raise _corrupt(name, kind, str(err)) from None
        if not n_read:
            raise _corrupt(name, kind, f"the voxel data stop after {filled:,} of {total:,} bytes")
        filled += n_read
    return buffer


def _check_stream_end(stream, name: str, kind: str) -> None:
    """Read a bounded tail after the data so that gzip checks its CRC and length.

    A stream that still holds more than `MAX_TRAILING_BYTES` after the voxel data is
    refused: the file holds more than its header describes (a gzip bomb hides gigabytes
    of zeros behind a small, valid header). Never more than that bound is inflated.
    """
    try:
        tail = stream.read(MAX_TRAILING_BYTES + 1)
    except _GZIP_ERRORS as err:
        raise _corrupt(name, kind, str(err)) from None
    if len(tail) > MAX_TRAILING_BYTES:
        raise DecodingInputError(
            f"The {kind} {name} holds more data than its header describes: after the "
            "voxel data the compressed stream goes on (more than "
            f"{MAX_TRAILING_BYTES // 1024} kB extra). The file is damaged or not what it claims to be; "
            "save the image again (e.g. with nibabel) and upload that."
        )


# --------------------------------------------------------------------------------------
# Header checks
# --------------------------------------------------------------------------------------


class _Checked:
    """An open, checked NIfTI file, positioned at the start of its voxel data."""

    def __init__(self, info: NiftiInfo, raw_shape: tuple, stream, raw_file, name: str, kind: str):
        self.info = info
        self.raw_shape = raw_shape
        self.stream = stream
        self.raw_file = raw_file
        self.name = name
        self.kind = kind

    def close(self) -> None:
        if self.stream is not self.raw_file:
            self.stream.close()
        self.raw_file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _sniff_not_nifti(first: bytes, name: str, kind: str, named_gz: bool) -> DecodingInputError:
    if first[:4] == b"PK\x03\x04":
        what = "a zip archive"
    elif first[:3] == b"BZh":
        what = "bzip2-compressed"
    elif first[:4] == b"\x28\xb5\x2f\xfd":
        what = "zstd-compressed"
    elif first[:6] == b"\xfd7zXZ\x00":
        what = "xz-compressed"
    elif first[:4] in (b"\x93NUM",):
        what = "a numpy .npy file"
    else:
        what = None
    if named_gz:
        detail = f"it is named .gz but is not gzip-compressed{' (it is ' + what + ')' if what else ''}"
    elif what:
        detail = f"it is {what}"
    else:
        detail = "its first bytes are not a NIfTI header"
    return DecodingInputError(
        f"The {kind} {name} is not a NIfTI image: {detail}. Upload a .nii or .nii.gz file "
        "(NIfTI-1 or NIfTI-2, single file)."
    )


def _open_checked(source, *, expected_ndim: int, kind: str, budget_bytes: int | None) -> _Checked:
    if expected_ndim not in (3, 4):
        raise DecodingInputError(f"'expected_ndim' must be 3 or 4. Got {expected_ndim!r}.")
    budget = configured_budget_bytes() if budget_bytes is None else int(budget_bytes)
    raw_file, file_size, name = _open_raw(source)
    try:
        return _check_header(raw_file, file_size, name, source, expected_ndim, kind, budget)
    except BaseException:
        raw_file.close()
        raise


def _check_header(raw_file, file_size, name, source, expected_ndim, kind, budget) -> _Checked:
    """Every check of `inspect_nifti`, from the header only; the stream is left at the voxel data."""
    stream, compressed = _open_stream(raw_file, file_size, source, name, kind)
    header, header_size, endian, extension_flag = _read_header(stream, compressed, name, kind)
    _check_magic(header, name, kind)
    raw_shape = _check_dims(header, name, kind)
    shape = _shape_for(raw_shape, expected_ndim, name, kind)
    dtype = _check_dtype(header, name, kind, endian)
    data_nbytes = _check_budget(raw_shape, dtype, budget, name, kind)

    vox_offset = _check_vox_offset(header, header_size, name, kind)
    if not compressed and vox_offset + data_nbytes > file_size:
        raise _corrupt(
            name, kind,
            f"the header promises {data_nbytes:,} bytes of voxel data after byte {vox_offset:,}, "
            f"but the file has {file_size:,} bytes",
        )
    _skip_extensions(stream, extension_flag, header_size + 4, vox_offset, endian, name, kind)

    affine, zooms = _check_geometry(header, name, kind)
    slope, inter = _check_scaling(header, name, kind)
    info = NiftiInfo(
        shape=tuple(int(s) for s in shape),
        affine=affine,
        zooms=zooms,
        dtype=dtype,
        vox_offset=vox_offset,
        compressed=compressed,
        data_nbytes=int(data_nbytes),
        header=_clean_nifti1_header(header, shape, dtype),
        slope=slope,
        inter=inter,
    )
    return _Checked(info, raw_shape, stream, raw_file, name, kind)


def _open_stream(raw_file, file_size, source, name, kind):
    """``(stream, compressed)``: the raw file, or a gzip stream over it when it starts with the gzip magic."""
    magic = raw_file.read(2)
    raw_file.seek(0)
    named_gz = not isinstance(source, (bytes, bytearray, memoryview)) and str(source).lower().endswith(".gz")
    compressed = magic == b"\x1f\x8b"
    if file_size == 0:
        raise DecodingInputError(f"The {kind} {name} is empty (0 bytes). Upload the complete file.")
    if named_gz and not compressed:
        raise _sniff_not_nifti(raw_file.read(8), name, kind, named_gz=True)
    return (_gzip_module.GzipFile(fileobj=raw_file, mode="rb") if compressed else raw_file), compressed


def _read_header(stream, compressed, name, kind):
    """``(header, header_size, endian, extension_flag)`` read from the start of ``stream``.

    The header size (348 or 540, in either byte order) tells NIfTI-1 from
    NIfTI-2; anything else is not a NIfTI image.
    """
    try:
        first = stream.read(4)
    except _GZIP_ERRORS as err:
        raise _corrupt(name, kind, f"gzip: {err}") from None
    if len(first) < 4:
        raise DecodingInputError(f"The {kind} {name} is too short to be a NIfTI image ({len(first)} bytes).")
    sizes = {int.from_bytes(first, "little"): "<", int.from_bytes(first, "big"): ">"}
    if _NIFTI1_SIZE in sizes:
        header_class, header_size, endian = nib.Nifti1Header, _NIFTI1_SIZE, sizes[_NIFTI1_SIZE]
    elif _NIFTI2_SIZE in sizes:
        header_class, header_size, endian = nib.Nifti2Header, _NIFTI2_SIZE, sizes[_NIFTI2_SIZE]
    else:
        raise _sniff_not_nifti(first + (stream.read(4) if not compressed else b""), name, kind, named_gz=False)

    block = first + _read_exact(stream, header_size - 4, name, kind)
    extension_flag = _read_exact(stream, 4, name, kind)
    try:
        header = header_class(block, endianness=endian, check=False)
    except Exception as err:  # nibabel refuses a malformed block
        raise DecodingInputError(f"The {kind} {name} has an unreadable NIfTI header ({err}).") from None
    return header, header_size, endian, extension_flag


def _check_magic(header, name, kind) -> None:
    """Refuse .hdr/.img pairs and Analyze files: only single-file NIfTI (``n+1``, ``n+2``) is read."""
    raw_magic = bytes(header["magic"])  # numpy drops trailing NUL bytes
    # "n+1\0" (NIfTI-1) or "n+2\0\r\n\032\n" (NIfTI-2): a 4th byte other than NUL is not NIfTI.
    magic_field = raw_magic[:3] if len(raw_magic) == 3 or raw_magic[3:4] == b"\x00" else raw_magic
    if magic_field in (b"ni1", b"ni2"):
        raise DecodingInputError(
            f"The {kind} {name} is the header of a .hdr/.img pair. Convert it to a single .nii or "
            ".nii.gz file (e.g. with nibabel or fslchfiletype NIFTI_GZ) and upload that."
        )
    if magic_field not in (b"n+1", b"n+2"):
        raise DecodingInputError(
            f"The {kind} {name} is not a NIfTI image (no NIfTI magic string; it may be an old "
            "Analyze 7.5 file). Convert it to NIfTI (.nii or .nii.gz) and upload that."
        )


def _check_budget(raw_shape, dtype, budget, name, kind) -> int:
    """The size of the voxel data in bytes, refused when over ``budget``."""
    data_nbytes = math.prod(raw_shape) * dtype.itemsize
    if data_nbytes > budget:
        raise DecodingInputError(
            f"The {kind} {name} holds {_megabytes(data_nbytes)} of voxel data ({' x '.join(map(str, raw_shape))} "
            f"{dtype.name}), more than the {_megabytes(budget)} this app may load. Use a smaller image "
            f"(fewer volumes, or crop it) or, if you run the app yourself with enough memory, raise "
            f"{BUDGET_ENV}."
        )
    return data_nbytes


def _clean_nifti1_header(header, shape, dtype) -> nib.Nifti1Header:
    """A NIfTI-1 copy of ``header`` with the checked shape and native byte order."""
    # Nifti2Header is a subclass of Nifti1Header: compare the exact type.
    clean_header = header.copy() if type(header) is nib.Nifti1Header else nib.Nifti1Header.from_header(header)
    clean_header.set_data_shape(shape)
    clean_header.set_data_dtype(dtype.newbyteorder("="))
    return clean_header


def _check_dims(header, name, kind) -> tuple:
    dim = [int(d) for d in header["dim"]]
    ndim = dim[0]
    if not 1 <= ndim <= 7:
        raise DecodingInputError(
            f"The {kind} {name} has an invalid header: dim[0] (the number of dimensions) is {ndim}, "
            "not 1 to 7. The file is damaged or not a NIfTI image."
        )
    raw_shape = tuple(dim[1 : ndim + 1])
    bad = [d for d in raw_shape if d < 1 or d > MAX_DIM]
    if bad:
        raise DecodingInputError(
            f"The {kind} {name} has an invalid header: its dimensions {raw_shape} must each be between "
            f"1 and {MAX_DIM}. The file is damaged or was written incorrectly."
        )
    return raw_shape


def _shape_for(raw_shape: tuple, expected_ndim: int, name: str, kind: str) -> tuple:
    shape = list(raw_shape)
    while len(shape) > expected_ndim and shape[-1] == 1:
        shape.pop()
    if len(shape) == expected_ndim:
        return tuple(shape)
    actual = f"{len(raw_shape)}D {tuple(raw_shape)}"
    if expected_ndim == 4 and len(shape) == 3:
        advice = (
            "a single volume. Upload the 4D series with one volume per time point "
            "(a 3D file is a mask or an anatomical image)."
        )
    elif expected_ndim == 3 and len(shape) >= 4:
        advice = "several volumes. Upload a single 3D volume (for a mask: one 0/1 volume)."
    else:
        advice = f"which does not have the {expected_ndim} dimensions needed."
    raise DecodingInputError(
        f"The {kind} must be {_NDIM_WORDS[expected_ndim]}; this file ({name}) is {actual}: {advice}"
    )


def _check_dtype(header, name, kind, endian) -> np.dtype:
    code = int(header["datatype"])
    if code not in SUPPORTED_DTYPES:
        what = _UNSUPPORTED_DTYPE_NAMES.get(code, f"datatype code {code}")
        raise DecodingInputError(
            f"The {kind} {name} stores its voxels as {what}, which this app cannot read. "
            "Supported: (u)int8, (u)int16, (u)int32, (u)int64, float32, float64. Convert it, "
            "e.g. with fslmaths in out -odt float or nibabel's set_data_dtype('float32')."
        )
    return SUPPORTED_DTYPES[code].newbyteorder(endian)


def _check_vox_offset(header, header_size, name, kind) -> int:
    value = float(header["vox_offset"])
    minimum = header_size + 4
    if value == 0:  # unset: data right after the header, as nibabel reads it
        return minimum
    if not math.isfinite(value) or value != int(value) or value < minimum or value > minimum + MAX_EXTENSION_BYTES:
        raise DecodingInputError(
            f"The {kind} {name} has an invalid header: vox_offset (where the voxel data start) is "
            f"{value:g}, outside [{minimum}, {minimum + MAX_EXTENSION_BYTES}]. The file is damaged "
            "or was written incorrectly."
        )
    return int(value)


def _skip_extensions(stream, flag: bytes, start: int, vox_offset: int, endian: str, name, kind) -> None:
    """Walk the extension list (bounded by vox_offset) and leave ``stream`` at the data."""
    position = start
    if flag[0:1] != b"\x00":
        while vox_offset - position >= 8:
            esize, ecode = np.frombuffer(_read_exact(stream, 8, name, kind), dtype=f"{endian}i4")
            esize = int(esize)
            if esize < 16 or esize % 16 or position + esize > vox_offset:
                raise DecodingInputError(
                    f"The {kind} {name} has an invalid header extension (code {int(ecode)}, size "
                    f"{esize}): each extension must be a positive multiple of 16 bytes that ends "
                    "before the voxel data. The file is damaged."
                )
            _discard(stream, esize - 8, name, kind)
            position += esize
    _discard(stream, vox_offset - position, name, kind)


def _discard(stream, n_bytes: int, name, kind) -> None:
    while n_bytes > 0:
        step = min(n_bytes, 1024**2)
        _read_exact(stream, step, name, kind)
        n_bytes -= step


def _check_geometry(header, name, kind):
    try:
        affine = np.asarray(header.get_best_affine(), dtype=np.float64)
        zooms = tuple(float(z) for z in header.get_zooms())
    except Exception as err:
        raise DecodingInputError(f"The {kind} {name} has an unreadable orientation in its header ({err}).") from None
    if not np.all(np.isfinite(affine)) or abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        raise DecodingInputError(
            f"The {kind} {name} has an invalid affine (voxel-to-world transform) in its header: "
            f"{np.array2string(affine[:3], precision=3)}. Its voxel sizes must be positive and finite; "
            "fix the header (e.g. with nibabel) and upload it again."
        )
    return affine, zooms


def _check_scaling(header, name, kind):
    slope = float(header["scl_slope"])
    inter = float(header["scl_inter"])
    if slope == 0 or math.isnan(slope):  # NIfTI: no scaling, as nibabel reads it
        return 1.0, 0.0
    if math.isnan(inter):
        inter = 0.0
    if not (math.isfinite(slope) and math.isfinite(inter)):
        raise DecodingInputError(
            f"The {kind} {name} has infinite intensity scaling in its header (scl_slope={slope}, "
            f"scl_inter={inter}). Fix the header and upload it again."
        )
    return slope, inter


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def _make_image(data: np.ndarray, info: NiftiInfo, header, name: str, kind: str) -> nib.Nifti1Image:
    """An in-memory image; a header nibabel cannot use (e.g. an invalid quaternion) is refused."""
    try:
        return nib.Nifti1Image(data, info.affine, header=header)
    except (nib.spatialimages.HeaderDataError, ValueError) as err:
        raise DecodingInputError(
            f"The {kind} {name} has an inconsistent header ({err}). Fix the header (e.g. save the image "
            "again with nibabel) and upload it again."
        ) from None


def inspect_nifti(source, *, expected_ndim: int, kind: str = "functional image",
                  budget_bytes: int | None = None) -> NiftiInfo:
    """Check a NIfTI file from its header alone and describe it.

    Parameters
    ----------
    source : str, pathlib.Path or bytes
        A .nii or .nii.gz file, or its content.
    expected_ndim : {3, 4}
        4 for a functional series, 3 for a mask or an anatomical image. A
        4D file with one volume counts as 3D; a 3D file where 4D is wanted is
        refused.
    kind : str
        What the file is, for messages ("functional image", "mask", ...).
    budget_bytes : int, optional
        Largest accepted size of the stored voxel data; default
        `configured_budget_bytes()`.

    Returns
    -------
    NiftiInfo

    Raises
    ------
    DecodingInputError
        Not a NIfTI file, corrupt or truncated gzip, wrong number of
        dimensions, absurd dimensions, unsupported datatype, data over the
        budget, bad ``vox_offset`` or extensions.
    """
    with _open_checked(source, expected_ndim=expected_ndim, kind=kind, budget_bytes=budget_bytes) as checked:
        return checked.info


def _iter_raw_chunks(checked: _Checked, chunk_volumes: int) -> Iterator[tuple[int, np.ndarray]]:
    """Yield (start, raw array (n, voxels_per_volume) in stored dtype) per chunk.

    The array is a view of a reused buffer (or of a short-lived memory map):
    consume it before asking for the next chunk.
    """
    info = checked.info
    n_volumes = info.n_volumes
    per_volume = info.voxels_per_volume
    volume_nbytes = per_volume * info.dtype.itemsize
    if info.compressed:
        # np.empty, not bytearray: bytearray zero-fills (touches) every page up front, so a tiny
        # gzip claiming a large image would take that memory before its data run out.
        buffer = np.empty(min(chunk_volumes, n_volumes) * volume_nbytes, dtype=np.uint8)
        for start in range(0, n_volumes, chunk_volumes):
            count = min(chunk_volumes, n_volumes - start)
            view = memoryview(buffer)[: count * volume_nbytes]
            _readinto_exact(checked.stream, view, checked.name, checked.kind)
            yield start, np.frombuffer(view, dtype=info.dtype).reshape(count, per_volume)
        _check_stream_end(checked.stream, checked.name, checked.kind)
        return
    for start in range(0, n_volumes, chunk_volumes):
        count = min(chunk_volumes, n_volumes - start)
        # One map per chunk: unmapped pages leave the resident set.
        mapped = np.memmap(
            checked.raw_file, dtype=info.dtype, mode="r",
            offset=info.vox_offset + start * volume_nbytes, shape=(count, per_volume),
        )
        try:
            yield start, mapped
        finally:
            del mapped


def _default_chunk_volumes(info: NiftiInfo) -> int:
    volume_nbytes = info.voxels_per_volume * info.dtype.itemsize
    return max(1, CHUNK_BYTES // max(1, volume_nbytes))


def _scaled_float32(raw: np.ndarray, info: NiftiInfo) -> np.ndarray:
    out = raw.astype(np.float32)
    if info.scaled:
        out *= np.float32(info.slope)
        out += np.float32(info.inter)
    return out


def iter_volume_chunks(path, *, chunk_volumes: int | None = None,
                       progress: ProgressCallback | None = None,
                       kind: str = "functional image",
                       budget_bytes: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
    """Stream a 4D image as chunks of volumes.

    Parameters
    ----------
    path : str or pathlib.Path
        A 4D .nii or .nii.gz file (checked with `inspect_nifti` first).
    chunk_volumes : int, optional
        Volumes per chunk; default about 16 MB of stored data.
    progress : callable, optional
        ``progress(fraction, "Read k of n volumes")`` after each chunk.

    Yields
    ------
    start : int
        Index of the chunk's first volume.
    volumes : ndarray of shape (x, y, z, n), float32
        Scaled with scl_slope/scl_inter.

    Raises
    ------
    DecodingInputError
        As `inspect_nifti`, and when the data are truncated or corrupt; this
        may happen after earlier chunks were yielded, so consumers must not
        keep partial results.
    """
    with _open_checked(path, expected_ndim=4, kind=kind, budget_bytes=budget_bytes) as checked:
        info = checked.info
        x, y, z, n_volumes = info.shape
        chunk = _default_chunk_volumes(info) if chunk_volumes is None else max(1, int(chunk_volumes))
        for start, raw in _iter_raw_chunks(checked, chunk):
            count = raw.shape[0]
            volumes = _scaled_float32(raw, info).reshape(count, z, y, x).transpose(3, 2, 1, 0)
            done = start + count
            if progress is not None:
                progress(done / n_volumes, f"Read {done} of {n_volumes} volumes")
            yield start, volumes


def load_image(path, *, expected_ndim: int, kind: str = "image",
               budget_bytes: int | None = None) -> nib.Nifti1Image:
    """Check a NIfTI file, then read all its data into an in-memory image.

    Meant for masks and anatomical images (and small 4D files). Stored values
    are kept as they are, or converted to float32 when the header scales them.

    Parameters
    ----------
    path : str, pathlib.Path or bytes
    expected_ndim : {3, 4}
    kind : str
        What the file is, for messages.
    budget_bytes : int, optional

    Returns
    -------
    nibabel.Nifti1Image
        With ``expected_ndim`` dimensions and the file's affine and zooms.
    """
    with _open_checked(path, expected_ndim=expected_ndim, kind=kind, budget_bytes=budget_bytes) as checked:
        info = checked.info
        if info.compressed:
            buffer = _read_growing(checked.stream, info.data_nbytes, checked.name, checked.kind)
            _check_stream_end(checked.stream, checked.name, checked.kind)
            flat = buffer.view(info.dtype)
        else:
            checked.raw_file.seek(info.vox_offset)
            if isinstance(checked.raw_file, io.BytesIO):  # bytes given: no file descriptor to read from
                flat = np.frombuffer(checked.raw_file.read(info.data_nbytes), dtype=info.dtype)
            else:
                flat = np.fromfile(checked.raw_file, dtype=info.dtype, count=math.prod(checked.raw_shape))
            if flat.size != math.prod(checked.raw_shape):
                raise _corrupt(checked.name, checked.kind)
        data = flat.reshape(info.shape, order="F")
        if info.scaled:
            data = data.astype(np.float32) * np.float32(info.slope) + np.float32(info.inter)
        else:
            data = data.astype(info.dtype.newbyteorder("="), copy=False)
        header = info.header.copy()
        header.set_slope_inter(None, None)
        return _make_image(data, info, header, checked.name, checked.kind)


def mean_volume(path, progress: ProgressCallback | None = None, *,
                kind: str = "functional image", budget_bytes: int | None = None) -> nib.Nifti1Image:
    """The mean over time of a 4D image, streamed (one pass, bounded memory).

    Non-finite values count as zero, as nilearn's maskers treat them.

    Returns
    -------
    nibabel.Nifti1Image
        3D float32 image on the same grid.
    """
    total = None
    info = inspect_nifti(path, expected_ndim=4, kind=kind, budget_bytes=budget_bytes)
    for _, volumes in iter_volume_chunks(path, progress=progress, kind=kind, budget_bytes=budget_bytes):
        if info.dtype.kind == "f":
            volumes[~np.isfinite(volumes)] = 0
        part = volumes.sum(axis=3, dtype=np.float64)
        total = part if total is None else total + part
    mean = (total / info.n_volumes).astype(np.float32)
    header = info.header.copy()
    header.set_data_shape(info.shape[:3])
    header.set_data_dtype(np.float32)
    header.set_slope_inter(None, None)
    return _make_image(mean, info, header, Path(path).name, kind)


#: How many file digests are remembered (the most recently used; a digest takes ~200 bytes).
DIGEST_MEMO_ENTRIES = 1024
#: Digests already computed, by (real path, size, mtime, inode): a 300 MB file is hashed once
#: per process, whichever module (data set loading, masking) asks first.
_DIGEST_MEMO = BoundedCache(max_entries=DIGEST_MEMO_ENTRIES)


def _digest_memo_key(path) -> tuple:
    stat = os.stat(path)
    return (os.path.realpath(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)


def file_digest(path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 16 MiB blocks; remembered while the file is unchanged."""
    known = _DIGEST_MEMO.get(_digest_memo_key(path))
    if known is not None:
        return known
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        # Large blocks: hashing releases the GIL for each one, and a thread that takes it back
        # hundreds of times waits each time behind the process's other threads (a 283 MB file:
        # 0.2 s alone, about 1 s beside imports in another thread with 1 MiB blocks).
        for block in iter(lambda: handle.read(16 * 1024**2), b""):
            digest.update(block)
    remember_file_digest(path, digest.hexdigest())
    return digest.hexdigest()


def remember_file_digest(path, sha256_hex: str) -> None:
    """Record a digest computed elsewhere (e.g. while the file was written), so it is not recomputed."""
    _DIGEST_MEMO.put(_digest_memo_key(path), sha256_hex)
