"""Hostile input files, made by the tests themselves (never committed).

Every maker returns bytes (a few MB at most) or writes into a folder. The NIfTI
files start from a valid little 4D or 3D header and break one thing; the bombs are
built so that making them is cheap: a gzip bomb is many gzip members, each
the compressed form of the same 64 MiB of zeros (a gzip reader inflates them
all as one stream).
"""

from __future__ import annotations

import gzip
import random
import struct
import zlib
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np

GIB = 1024**3
MIB = 1024**2


def nifti_header(shape=(4, 5, 6, 10), dtype=np.int16, *, vox_offset=None, extension_flag=0,
                 zooms=None) -> bytearray:
    """A valid little-endian NIfTI-1 header block (348 bytes) plus the 4-byte extension flag."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header.set_zooms(zooms or tuple([2.0] * min(len(shape), 3) + [2.5] * max(0, len(shape) - 3)))
    header.set_sform(np.diag([2.0, 2.0, 2.0, 1.0]), code=1)
    header.set_qform(np.diag([2.0, 2.0, 2.0, 1.0]), code=1)
    header["vox_offset"] = 352 if vox_offset is None else vox_offset
    block = bytearray(header.binaryblock)
    block += bytes([extension_flag, 0, 0, 0])
    return block


def valid_nifti(shape=(4, 5, 6, 10), dtype=np.int16, seed=0) -> bytes:
    """An uncompressed, valid .nii file: a bright block (the "brain") on a dim background."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 20, size=shape).astype(np.int64)
    inner = tuple(slice(s // 4, s - s // 4) if i < 3 else slice(None) for i, s in enumerate(shape))
    data[inner] += 100 if np.dtype(dtype).itemsize == 1 else 800
    data = data.astype(dtype)
    return bytes(nifti_header(shape, dtype)) + data.tobytes(order="F")


def set_dims(block: bytearray, dims) -> bytearray:
    """Write ``dim[0..7]`` (int16) into a header block."""
    block = bytearray(block)
    full = list(dims) + [1] * (8 - len(dims))
    struct.pack_into("<8h", block, 40, *full)
    return block


def set_float(block: bytearray, offset: int, value: float) -> bytearray:
    block = bytearray(block)
    struct.pack_into("<f", block, offset, value)
    return block


#: Byte offsets of NIfTI-1 fields used by the makers.
DIM_OFFSET = 40
DATATYPE_OFFSET = 70
BITPIX_OFFSET = 72
VOX_OFFSET_OFFSET = 108
EXTENSION_FLAG_OFFSET = 348


def gz(data: bytes, level: int = 6) -> bytes:
    return gzip.compress(data, compresslevel=level, mtime=0)


@lru_cache(maxsize=1)
def _zero_member_64mib() -> bytes:
    """One gzip member holding 64 MiB of zeros (~64 kB)."""
    return gzip.compress(b"\x00" * (64 * MIB), compresslevel=9, mtime=0)


def gzip_bomb(header: bytes, inflated_bytes: int = 4 * GIB) -> bytes:
    """``header`` gzip-compressed, followed by members inflating to ``inflated_bytes`` zeros."""
    members = max(1, inflated_bytes // (64 * MIB))
    return gz(header) + _zero_member_64mib() * members


def single_member_bomb(header: bytes, inflated_bytes: int = 1 * GIB) -> bytes:
    """One gzip member: ``header`` then ``inflated_bytes`` zeros (deflate ratio ~1000:1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [compressor.compress(header)]
    block = b"\x00" * (16 * MIB)
    for _ in range(inflated_bytes // len(block)):
        parts.append(compressor.compress(block))
    parts.append(compressor.flush())
    return b"".join(parts)


#: Cases whose header is valid: only reading the voxel data can find what is wrong, so a
#: header-only check (`inspect_nifti`) accepts them and every data reader must refuse them.
DATA_STAGE_CASES = frozenset({
    "gzip_bomb_small_header", "gzip_bomb_single_member", "truncated_data_gz", "truncated_gzip",
    "corrupt_deflate", "bad_crc",
})


# -- the hostile NIfTI set -----------------------------------------------------------------------
def hostile_niftis() -> dict[str, tuple[str, bytes]]:
    """Name -> (file name, bytes) of every hostile NIfTI case (each refused as a 4D image)."""
    cases: dict[str, tuple[str, bytes]] = {}
    small = nifti_header()

    # Headers claiming huge images: 32767^3 x 32767 float64 (~9 PB); 8 GiB in a 77-byte-ish file.
    huge = set_dims(small, [4, 32767, 32767, 32767, 32767])
    cases["terabyte_header"] = ("terabytes.nii", bytes(huge))
    cases["terabyte_header_gz"] = ("terabytes.nii.gz", gz(bytes(huge)))
    eight_gib = set_dims(small, [4, 1024, 1024, 1024, 4])  # int16: 8 GiB
    cases["8gib_header_77_bytes"] = ("8gib.nii.gz", gz(bytes(eight_gib), 9))
    dim7 = set_dims(small, [7, 100, 100, 100, 100, 100, 100, 100])
    cases["seven_dims_huge"] = ("seven.nii", bytes(dim7))

    # Gzip bombs: a small valid header, then 4 GiB of zeros; and a header claiming the 4 GiB.
    cases["gzip_bomb_small_header"] = ("bomb.nii.gz", gzip_bomb(valid_nifti()))
    claims_4gib = set_dims(small, [4, 1024, 1024, 1024, 2])
    cases["gzip_bomb_claiming_4gib"] = ("bomb4g.nii.gz", gzip_bomb(bytes(claims_4gib)))
    cases["gzip_bomb_single_member"] = ("bomb1.nii.gz", single_member_bomb(bytes(small), 256 * MIB))

    # Extension bombs: the extension flag set, sizes negative / huge / not a multiple of 16.
    for label, esize in (("negative", -16), ("huge", 2**31 - 16), ("zero", 0), ("odd", 17),
                         ("past_data", 4096)):
        block = nifti_header(vox_offset=352 + 32, extension_flag=1)
        extension = struct.pack("<ii", esize, 6) + b"\x00" * 24
        data = np.zeros((4, 5, 6, 10), np.int16).tobytes()
        payload = bytes(block) + extension + data
        cases[f"extension_{label}"] = (f"ext_{label}.nii.gz", gz(payload))
    # vox_offset claiming a huge extension area (nibabel would read it all).
    block = nifti_header(vox_offset=float(2**31), extension_flag=1)
    cases["extension_area_2gib"] = ("extarea.nii.gz", gz(bytes(block) + struct.pack("<ii", 2**31 - 16, 4)))

    # Negative and zero dimensions, bad dim[0].
    cases["negative_dimension"] = ("neg.nii", bytes(set_dims(small, [4, 4, -5, 6, 10])))
    cases["zero_dimension"] = ("zero.nii", bytes(set_dims(small, [4, 4, 0, 6, 10])))
    cases["dim0_negative"] = ("dim0.nii", bytes(set_dims(small, [-3, 4, 5, 6, 10])))
    cases["dim0_too_large"] = ("dim8.nii", bytes(set_dims(small, [9, 4, 5, 6, 10])))

    # Data offset past the end of the file; NaN / negative offsets.
    valid = bytearray(valid_nifti())
    cases["offset_past_end"] = ("offset.nii", bytes(set_float(valid, VOX_OFFSET_OFFSET, 1e9)))
    cases["offset_past_end_small"] = ("offset2.nii", bytes(set_float(valid, VOX_OFFSET_OFFSET, 352 + 512)))
    cases["offset_nan"] = ("offsetnan.nii", bytes(set_float(valid, VOX_OFFSET_OFFSET, float("nan"))))
    cases["offset_negative"] = ("offsetneg.nii", bytes(set_float(valid, VOX_OFFSET_OFFSET, -352.0)))

    # Truncated data (plain and gzip) and a truncated gzip stream.
    full = valid_nifti()
    cases["truncated_data"] = ("trunc.nii", full[: len(full) // 2])
    cases["truncated_data_gz"] = ("trunc.nii.gz", gz(full[: len(full) // 2]))
    compressed = gz(valid_nifti(shape=(16, 16, 16, 20), seed=1))
    cases["truncated_gzip"] = ("truncgz.nii.gz", compressed[: len(compressed) // 2])
    cases["truncated_header"] = ("trunchdr.nii.gz", gz(full[:200]))
    corrupt = bytearray(compressed)
    corrupt[len(corrupt) // 2 : len(corrupt) // 2 + 64] = b"\xff" * 64
    cases["corrupt_deflate"] = ("corrupt.nii.gz", bytes(corrupt))
    bad_crc = bytearray(compressed)
    bad_crc[-8] ^= 0xFF
    cases["bad_crc"] = ("crc.nii.gz", bytes(bad_crc))

    # Not NIfTI at all.
    cases["random_bytes"] = ("random.nii", random.Random(7).randbytes(64 * 1024))
    cases["random_bytes_gz_name"] = ("random.nii.gz", random.Random(8).randbytes(64 * 1024))
    cases["plain_nifti_named_gz"] = ("plain.nii.gz", valid_nifti())
    cases["gzipped_random"] = ("gzrandom.nii.gz", gz(random.Random(9).randbytes(4096)))
    cases["empty"] = ("empty.nii", b"")
    cases["zip_named_nii"] = ("zip.nii", b"PK\x03\x04" + b"\x00" * 400)
    cases["csv_named_nii"] = ("table.nii", b"labels,chunks\nface,0\n" * 20)

    # Unsupported types and broken geometry.
    complex_block = bytearray(valid_nifti())
    struct.pack_into("<hh", complex_block, DATATYPE_OFFSET, 32, 64)
    cases["complex_dtype"] = ("complex.nii", bytes(complex_block))
    rgb_block = bytearray(valid_nifti())
    struct.pack_into("<hh", rgb_block, DATATYPE_OFFSET, 128, 24)
    cases["rgb_dtype"] = ("rgb.nii", bytes(rgb_block))
    unknown_block = bytearray(valid_nifti())
    struct.pack_into("<hh", unknown_block, DATATYPE_OFFSET, 12345, 16)
    cases["unknown_dtype"] = ("unknown.nii", bytes(unknown_block))
    # Wrong dimensionality for a functional image.
    cases["3d_as_functional"] = ("three.nii", valid_nifti(shape=(4, 5, 6)))
    # Old Analyze / .hdr of a pair.
    pair = bytearray(valid_nifti())
    pair[344:348] = b"ni1\x00"
    cases["hdr_img_pair"] = ("pair.nii", bytes(pair))
    analyze = bytearray(valid_nifti())
    analyze[344:348] = b"\x00\x00\x00\x00"
    cases["analyze"] = ("analyze.nii", bytes(analyze))
    return cases


def hostile_masks() -> dict[str, tuple[str, bytes]]:
    """Name -> (file name, bytes) of hostile 3D files, given as a mask or an anatomical image
    next to a valid 8x8x8 functional image."""
    cases: dict[str, tuple[str, bytes]] = {}
    # Fits the default image budget (512 MiB) yet is 3 orders of magnitude larger than the grid:
    # 800^3 uint8 = 512 MB of zeros in a ~0.5 MB gzip.
    big = nifti_header((800, 800, 800), np.uint8)
    cases["mask_bomb_within_budget"] = ("bigmask.nii.gz", gzip_bomb(bytes(big), 512 * MIB))
    cases["mask_terabytes"] = ("tbmask.nii", bytes(nifti_header((32767, 32767, 32767), np.uint8)))
    cases["mask_4d_many_volumes"] = ("mask4d.nii", valid_nifti(shape=(8, 8, 8, 30), dtype=np.uint8))
    cases["mask_other_grid"] = ("grid.nii", valid_nifti(shape=(9, 8, 8), dtype=np.uint8))
    cases["all_zero_functional"] = ("zeros.nii.gz", gz(bytes(nifti_header((8, 8, 8, 10))) + bytes(8 * 8 * 8 * 10 * 2)))
    cases["mask_random_bytes"] = ("rmask.nii.gz", random.Random(12).randbytes(4096))
    cases["mask_extension_bomb"] = ("extmask.nii.gz", gz(
        bytes(nifti_header((8, 8, 8), np.uint8, vox_offset=352 + 32, extension_flag=1))
        + struct.pack("<ii", 2**31 - 16, 6) + b"\x00" * 24 + b"\x00" * 512))
    return cases


# -- hostile labels tables -----------------------------------------------------------------------
def hostile_labels() -> dict[str, bytes]:
    """Name -> bytes of every hostile labels table (for an image of 10 volumes)."""
    cases: dict[str, bytes] = {}
    # 10 MB, one line, 5 million columns (the case that kept pd.read_csv busy for minutes).
    cases["five_million_columns"] = b",".join([b"a"] * 5_000_000)[: 10 * MIB] + b"\n"
    cases["many_columns_few_bytes"] = (b",".join(b"c%d" % i for i in range(100_000)) + b"\n"
                                       + b",".join([b"1"] * 100_000) + b"\n")
    cases["one_endless_line"] = b"labels " + b"x" * (15 * MIB)
    cases["endless_line_no_newline_over_limit"] = b"y" * (40 * MIB)
    cases["more_rows_than_volumes"] = b"labels chunks\n" + b"face 0\n" * 11
    cases["million_rows"] = b"labels chunks\n" + b"face 0\n" * 1_000_000
    cases["million_tiny_rows"] = b"l\n" + b"ab\n" * 4_000_000
    cases["newlines_only"] = b"\n" * (15 * MIB)
    cases["binary_junk"] = random.Random(11).randbytes(2 * MIB)
    cases["nul_bytes"] = b"labels,chunks\n" + b"face\x00,0\n" * 10
    cases["gzip_table"] = gzip.compress(b"labels chunks\n" + b"face 0\n" * 10)
    cases["control_characters"] = b"labels,chunks\n" + b"fa\x1bce,0\n" * 10
    cases["unbalanced_quote"] = b'labels,chunks\n"face,0\n' + b"face,0\n" * 9
    cases["ragged_rows"] = b"labels,chunks\n" + b"face,0,1\n" * 10
    cases["no_header"] = b"0 1\n" * 10
    cases["empty"] = b""
    return cases


#: Formula-looking cells: accepted as plain text, never evaluated.
FORMULA_LABELS = b"labels,chunks\n" + b"".join(
    cell + b",0\n" for cell in (b"=cmd|' /C calc'!A0", b"+1+1", b"-2+3", b"@SUM(1)", b"=HYPERLINK(\"x\")") * 2
)


def write_case(folder: Path, file_name: str, data: bytes) -> Path:
    path = Path(folder) / file_name
    path.write_bytes(data)
    return path
