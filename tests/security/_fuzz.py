"""A seeded mutation fuzzer for the NIfTI reader and the labels parser.

Run as a module from the repository root (the security test runs it in a memory-limited subprocess)::

    python -m tests.security._fuzz --seed 0 --nifti 10000 --labels 3000 --headroom-mb 256

Each case is a mutated valid file (header fields set to extreme values, random bytes
flipped, truncated, extended, gzip-compressed or not) or random bytes. Allowed
outcomes are a successful read or `DecodingInputError`; anything else (another
exception, MemoryError under the address-space limit) is a finding, reported with
the seed that reproduces it (``--replay SEED``). Prints one JSON summary.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import resource
import struct
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

from decoding_core import datasets
from decoding_core.errors import DecodingInputError
from decoding_core.io import nifti
from tests.security import hostile
from tests.security._child import _status as _vm_status

#: (offset, struct format) of the NIfTI-1 fields the mutator targets.
FIELDS = {
    "sizeof_hdr": (0, "<i"), "dim0": (40, "<h"), "dim1": (42, "<h"), "dim2": (44, "<h"), "dim3": (46, "<h"),
    "dim4": (48, "<h"), "dim5": (50, "<h"), "intent": (68, "<h"), "datatype": (70, "<h"), "bitpix": (72, "<h"),
    "pixdim0": (76, "<f"), "pixdim1": (80, "<f"), "pixdim2": (84, "<f"), "pixdim3": (88, "<f"), "pixdim4": (92, "<f"),
    "vox_offset": (108, "<f"), "scl_slope": (112, "<f"), "scl_inter": (116, "<f"), "qform_code": (252, "<h"),
    "sform_code": (254, "<h"), "quatern_b": (256, "<f"), "qoffset_x": (268, "<f"), "srow_x0": (280, "<f"),
    "srow_y1": (300, "<f"), "srow_z2": (320, "<f"), "ext_flag": (348, "<b"),
}
INT_EXTREMES = [-(2**15), -1, 0, 1, 2, 3, 4, 5, 7, 8, 16, 64, 128, 255, 256, 1000, 4096, 32767]
FLOAT_EXTREMES = [float("nan"), float("inf"), -float("inf"), 0.0, -0.0, -1.0, 1e-30, 1e30, 3.4e38, 352.0,
                  351.0, 353.0, 368.0, 1e9, 2.0**31, -352.0]
DTYPES = [np.uint8, np.int16, np.int32, np.float32, np.float64, np.int8, np.uint16]


def _base_nifti(rng: random.Random) -> bytearray:
    ndim = rng.choice([3, 4, 4, 4])
    shape = tuple(rng.randint(1, 6) for _ in range(3)) + ((rng.randint(1, 8),) if ndim == 4 else ())
    dtype = rng.choice(DTYPES)
    data = np.arange(int(np.prod(shape)), dtype=np.int64).astype(dtype)
    if rng.random() < 0.3:  # with one valid extension
        block = hostile.nifti_header(shape, dtype, vox_offset=352 + 32, extension_flag=1)
        block += struct.pack("<ii", 32, 6) + b"\x00" * 24
    else:
        block = hostile.nifti_header(shape, dtype)
    return bytearray(bytes(block) + data.tobytes(order="F"))


def _set_field(blob: bytearray, rng: random.Random) -> None:
    name = rng.choice(list(FIELDS))
    offset, fmt = FIELDS[name]
    if offset + struct.calcsize(fmt) > len(blob):
        return
    if fmt == "<f":
        value = rng.choice(FLOAT_EXTREMES) if rng.random() < 0.7 else rng.uniform(-1e6, 1e6)
    elif fmt == "<b":
        value = rng.choice([0, 1, -1, 127])
    else:
        low, high = (-(2**15), 2**15 - 1) if fmt == "<h" else (-(2**31), 2**31 - 1)
        value = rng.choice(INT_EXTREMES) if rng.random() < 0.7 else rng.randint(low, high)
        value = max(low, min(high, value))
    struct.pack_into(fmt, blob, offset, value)


def _mutate_extension(blob: bytearray, rng: random.Random) -> None:
    if len(blob) < 360:
        return
    blob[348] = 1
    struct.pack_into("<ii", blob, 352, rng.choice([-16, 0, 8, 15, 16, 17, 32, 4096, 2**31 - 16, -(2**31)]),
                     rng.randint(-5, 40))


def nifti_case(seed: int) -> tuple[bytes, str]:
    """The bytes of case ``seed`` and what it is (for the report)."""
    rng = random.Random(seed)
    kind = rng.random()
    if kind < 0.08:
        blob = rng.randbytes(rng.randint(0, 2048))
        return (hostile.gz(blob) if rng.random() < 0.5 else blob), "random"
    blob = _base_nifti(rng)
    operations = []
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        if op < 0.45:
            _set_field(blob, rng)
            operations.append("field")
        elif op < 0.65:
            for _ in range(rng.randint(1, 8) if blob else 0):
                position = rng.randrange(min(len(blob), 400))
                blob[position] = rng.randrange(256)
            operations.append("flip")
        elif op < 0.75:
            _mutate_extension(blob, rng)
            operations.append("extension")
        elif op < 0.87:
            del blob[rng.randrange(len(blob) + 1):]
            operations.append("truncate")
        else:
            blob += rng.randbytes(rng.randint(1, 512))
            operations.append("append")
    data = bytes(blob)
    if rng.random() < 0.5:
        data = hostile.gz(data, level=1)
        if rng.random() < 0.15:  # damage the compressed stream too
            damaged = bytearray(data)
            if rng.random() < 0.5:
                del damaged[rng.randrange(10, len(damaged) + 1):]
            else:
                damaged[rng.randrange(10, len(damaged))] ^= 1 << rng.randrange(8)
            data = bytes(damaged)
    return data, "+".join(operations)


def labels_case(seed: int) -> bytes:
    rng = random.Random(10**9 + seed)
    rows = [f"{rng.choice(['face', 'cat', 'rest', '=1+1', 'a b'])} {rng.randint(0, 3)}" for _ in range(10)]
    text = bytearray(("labels chunks\n" + "\n".join(rows) + "\n").encode())
    for _ in range(rng.randint(1, 6)):
        op = rng.random()
        if op < 0.3:
            if text:
                text[rng.randrange(len(text))] = rng.randrange(256)
        elif op < 0.5:
            text[rng.randrange(len(text) + 1):rng.randrange(len(text) + 1)] = rng.choice(
                [b",", b"\t", b";", b'"', b"\n", b"\r", b"\r\n", b"\x00", b"\xef\xbb\xbf", b" " * 5, b"\n" * 50])
        elif op < 0.6:
            text += rng.choice([b"x", b",", b"\n"]) * rng.choice([10, 9000, 40000, 300000])
        elif op < 0.7:
            del text[rng.randrange(len(text) + 1):]
        elif op < 0.8:
            text = bytearray(text.replace(b" ", rng.choice([b",", b"\t", b";", b'","'])))
        else:
            text = bytearray(rng.randbytes(rng.randint(0, 300))) + text
    return bytes(text)




def run(seed: int, n_nifti: int, n_labels: int, headroom_mb: int) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="fuzz-"))
    path_plain, path_gz = folder / "case.nii", folder / "case.nii.gz"
    # Warm up (imports, first allocations) before the limit and the baseline.
    warm = hostile.valid_nifti()
    nifti.load_image(warm, expected_ndim=4)
    datasets.read_labels_table(b"labels chunks\nface 0\n", n_volumes=1)
    limit = _vm_status()["VmSize"] + headroom_mb * 1024**2
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass
    baseline = _vm_status()["VmRSS"]
    counts = {"ok": 0, "input_error": 0}
    findings = []
    started = time.perf_counter()

    def attempt(case_id: str, call) -> None:
        try:
            call()
            counts["ok"] += 1
        except DecodingInputError:
            counts["input_error"] += 1
        except BaseException as err:  # a finding
            if isinstance(err, KeyboardInterrupt):
                raise
            findings.append({"case": case_id, "error": f"{type(err).__name__}: {err}"[:300],
                             "trace": traceback.format_exc(limit=4)[-800:]})

    for offset in range(n_nifti):
        case_seed = seed * 1_000_000 + offset
        data, _ = nifti_case(case_seed)
        ndim = 4 if case_seed % 3 else 3
        attempt(f"nifti:{case_seed}:inspect", lambda: nifti.inspect_nifti(data, expected_ndim=ndim))
        attempt(f"nifti:{case_seed}:load", lambda: nifti.load_image(data, expected_ndim=ndim))
        if case_seed % 4 == 0:  # the streaming reader, from a file named as gzip or not
            target = path_gz if data[:2] == b"\x1f\x8b" else path_plain
            target.write_bytes(data)

            def stream(target=target):
                for _ in nifti.iter_volume_chunks(target, chunk_volumes=3):
                    pass
            attempt(f"nifti:{case_seed}:stream", stream)
    for offset in range(n_labels):
        case_seed = seed * 1_000_000 + offset
        text = labels_case(case_seed)
        attempt(f"labels:{case_seed}", lambda: datasets.read_labels_table(text, n_volumes=10))
        attempt(f"labels:{case_seed}:free", lambda: datasets.read_labels_table(text))
    seconds = time.perf_counter() - started
    status = _vm_status()
    return {
        "seed": seed, "nifti_cases": n_nifti, "label_cases": n_labels,
        "calls": counts["ok"] + counts["input_error"] + len(findings),
        "ok": counts["ok"], "input_error": counts["input_error"], "findings": findings[:20],
        "n_findings": len(findings), "seconds": round(seconds, 2),
        "peak_growth_mb": round(max(0, status["VmHWM"] - baseline) / 1e6, 1),
        "decompressor": nifti.DECOMPRESSOR,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--nifti", type=int, default=10_000)
    parser.add_argument("--labels", type=int, default=3_000)
    parser.add_argument("--headroom-mb", type=int, default=256)
    parser.add_argument("--replay", type=int, help="print what case SEED is and run it once")
    args = parser.parse_args()
    if args.replay is not None:
        data, what = nifti_case(args.replay)
        print(what, len(data), data[:64])
        nifti.load_image(data, expected_ndim=4 if args.replay % 3 else 3)
        return 0
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    # nibabel logs every odd header field it meets; the outcome is what counts here.
    logging.getLogger("nibabel").setLevel(logging.ERROR)
    warnings.simplefilter("ignore", RuntimeWarning)
    print(json.dumps(run(args.seed, args.nifti, args.labels, args.headroom_mb)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
