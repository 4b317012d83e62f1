"""Tests of decoding_core.io.nifti: header checks, bounded reads, hostile files."""

from __future__ import annotations

import gzip
import hashlib
import tracemalloc

import nibabel as nib
import numpy as np
import pytest

from decoding_core.errors import DecodingInputError
from decoding_core.io import nifti
from decoding_core.io.nifti import (
    file_digest,
    inspect_nifti,
    iter_volume_chunks,
    load_image,
    mean_volume,
)

AFFINE = np.diag([3.5, 3.75, 3.75, 1.0])


def nifti_bytes(data, *, affine=AFFINE, header_fields=None, nifti2=False, slope=None, inter=None):
    """Bytes of a single-file NIfTI image, with raw header fields overwritten afterwards."""
    image_class = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    img = image_class(data, affine)
    img.header.set_xyzt_units("mm", "sec")
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    blob = img.to_bytes() if slope is None else _with_scaling(img, slope, inter)
    if header_fields:
        header = img.header.__class__(blob[: img.header.sizeof_hdr], check=False)
        for field, value in header_fields.items():
            header[field] = value
        blob = header.binaryblock + blob[img.header.sizeof_hdr :]
    return blob


def _with_scaling(img, slope, inter):
    # nibabel recomputes scaling when saving an array image; write the raw header ourselves.
    raw = img.to_bytes()
    header = img.header.__class__(raw[: img.header.sizeof_hdr], check=False)
    header["scl_slope"] = slope
    header["scl_inter"] = inter
    return header.binaryblock + raw[img.header.sizeof_hdr :]


def write(tmp_path, name, blob, compress=None):
    path = tmp_path / name
    if compress is None:
        compress = name.endswith(".gz")
    path.write_bytes(gzip.compress(blob, mtime=0) if compress else blob)
    return path


@pytest.fixture
def series():
    rng = np.random.default_rng(0)
    return rng.integers(-2000, 2000, size=(5, 6, 7, 11)).astype(np.int16)


# ---------------------------------------------------------------------------------------
# Reading real and synthetic files
# ---------------------------------------------------------------------------------------


def test_inspect_real_haxby_vt(haxby_vt_dir):
    info = inspect_nifti(haxby_vt_dir / "bold_vt.nii.gz", expected_ndim=4)
    reference = nib.load(haxby_vt_dir / "bold_vt.nii.gz")
    assert info.shape == reference.shape == (40, 64, 64, 864)
    assert info.dtype == np.dtype("<i2")
    assert info.compressed
    assert info.data_nbytes == 40 * 64 * 64 * 864 * 2
    np.testing.assert_allclose(info.affine, reference.affine)
    assert info.zooms[:3] == pytest.approx((3.5, 3.75, 3.75))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii"])
def test_load_and_stream_equal_nibabel_on_real_slice(haxby_slice_dir, tmp_path, suffix):
    source = haxby_slice_dir / "bold.nii.gz"
    reference = nib.load(source)
    path = source
    if suffix == ".nii":
        path = tmp_path / "bold.nii"
        path.write_bytes(gzip.decompress(source.read_bytes()))
    expected = reference.get_fdata(dtype=np.float32)
    loaded = load_image(path, expected_ndim=4)
    np.testing.assert_array_equal(loaded.get_fdata(dtype=np.float32), expected)
    np.testing.assert_allclose(loaded.affine, reference.affine)
    progress = []
    chunks = list(iter_volume_chunks(path, chunk_volumes=400, progress=lambda f, m: progress.append((f, m))))
    assert [start for start, _ in chunks] == [0, 400, 800, 1200]
    np.testing.assert_array_equal(np.concatenate([c for _, c in chunks], axis=3), expected)
    assert progress[-1] == (1.0, "Read 1452 of 1452 volumes")
    assert progress[0] == (pytest.approx(400 / 1452), "Read 400 of 1452 volumes")


def test_mean_volume_matches_numpy(haxby_slice_dir):
    path = haxby_slice_dir / "bold.nii.gz"
    mean = mean_volume(path)
    assert mean.shape == (40, 20, 1)
    expected = nib.load(path).get_fdata().mean(axis=3)
    np.testing.assert_allclose(mean.get_fdata(), expected, rtol=1e-6, atol=1e-3)
    np.testing.assert_allclose(mean.affine, nib.load(path).affine)


def test_mask_loads_as_3d(haxby_vt_dir):
    mask = load_image(haxby_vt_dir / "mask_vt.nii.gz", expected_ndim=3, kind="mask")
    assert mask.shape == (40, 64, 64)
    assert np.count_nonzero(mask.get_fdata()) == 577


def test_file_digest_is_sha256(tmp_path):
    path = write(tmp_path, "x.bin", b"hello world" * 1000, compress=False)
    assert file_digest(path) == hashlib.sha256(b"hello world" * 1000).hexdigest()


def test_scaling_and_big_endian_applied_like_nibabel(tmp_path, series):
    blob = nifti_bytes(series, slope=0.5, inter=10.0)
    path = write(tmp_path, "scaled.nii.gz", blob)
    reference = nib.load(path).get_fdata()
    info = inspect_nifti(path, expected_ndim=4)
    assert (info.slope, info.inter) == (0.5, 10.0)
    np.testing.assert_allclose(load_image(path, expected_ndim=4).get_fdata(), reference, rtol=1e-6)
    streamed = np.concatenate([c for _, c in iter_volume_chunks(path, chunk_volumes=3)], axis=3)
    np.testing.assert_allclose(streamed, reference, rtol=1e-6)

    header = nib.Nifti1Header(endianness=">")
    header.set_data_shape(series.shape)
    header.set_data_dtype(np.float32)
    header.set_sform(AFFINE, code=1)
    header["vox_offset"] = 352
    big_path = write(tmp_path, "big_endian.nii",
                     header.binaryblock + bytes(4) + series.astype(">f4").tobytes(order="F"))
    assert inspect_nifti(big_path, expected_ndim=4).dtype == np.dtype(">f4")
    np.testing.assert_array_equal(load_image(big_path, expected_ndim=4).get_fdata(), series)


def test_slope_zero_or_nan_means_no_scaling(tmp_path, series):
    for slope in (0.0, np.nan):
        path = write(tmp_path, "s.nii", nifti_bytes(series, header_fields={"scl_slope": slope, "scl_inter": 5}))
        info = inspect_nifti(path, expected_ndim=4)
        assert (info.slope, info.inter) == (1.0, 0.0)
        np.testing.assert_array_equal(load_image(path, expected_ndim=4).get_fdata(), series)


def test_nifti2_is_supported(tmp_path, series):
    path = write(tmp_path, "two.nii.gz", nifti_bytes(series, nifti2=True))
    info = inspect_nifti(path, expected_ndim=4)
    assert info.shape == series.shape
    assert info.vox_offset == 544
    assert isinstance(info.header, nib.Nifti1Header)
    img = load_image(path, expected_ndim=4)
    np.testing.assert_array_equal(img.get_fdata(), series)
    assert img.header.get_zooms()[:3] == pytest.approx((3.5, 3.75, 3.75))


def test_bytes_source_and_extensions(tmp_path, series):
    img = nib.Nifti1Image(series, AFFINE)
    img.header.extensions.append(nib.nifti1.Nifti1Extension("comment", b"made by a test" * 5))
    blob = img.to_bytes()
    info = inspect_nifti(blob, expected_ndim=4)
    assert info.vox_offset > 352
    path = write(tmp_path, "ext.nii.gz", blob)
    np.testing.assert_array_equal(load_image(path, expected_ndim=4).get_fdata(), series)


def test_4d_with_one_volume_reads_as_3d(tmp_path):
    volume = np.arange(60, dtype=np.uint8).reshape(3, 4, 5, 1)
    path = write(tmp_path, "one.nii.gz", nifti_bytes(volume))
    assert inspect_nifti(path, expected_ndim=3, kind="mask").shape == (3, 4, 5)
    img = load_image(path, expected_ndim=3, kind="mask")
    assert img.shape == (3, 4, 5)
    np.testing.assert_array_equal(img.get_fdata(), volume[..., 0])


def test_trailing_singleton_5d_reads_as_4d(tmp_path, series):
    path = write(tmp_path, "five.nii", nifti_bytes(series[..., np.newaxis]))
    assert inspect_nifti(path, expected_ndim=4).shape == series.shape


def test_budget_from_environment(monkeypatch, tmp_path, series):
    path = write(tmp_path, "b.nii.gz", nifti_bytes(series))
    monkeypatch.setenv(nifti.BUDGET_ENV, "1K")
    with pytest.raises(DecodingInputError, match=r"more than the 0\.0 MB this app may load.*DECODING_LAB_MAX_IMAGE_BYTES"):
        inspect_nifti(path, expected_ndim=4)
    monkeypatch.setenv(nifti.BUDGET_ENV, "10M")
    assert inspect_nifti(path, expected_ndim=4).shape == series.shape
    monkeypatch.setenv(nifti.BUDGET_ENV, "lots")
    with pytest.raises(DecodingInputError, match="DECODING_LAB_MAX_IMAGE_BYTES must be a positive number"):
        inspect_nifti(path, expected_ndim=4)


def test_default_budget_admits_a_full_haxby_subject():
    haxby_bytes = 40 * 64 * 64 * 1452 * 2
    assert haxby_bytes <= nifti.DEFAULT_BUDGET_BYTES < 690e6


# ---------------------------------------------------------------------------------------
# Hostile and broken files
# ---------------------------------------------------------------------------------------


def _assert_refused_small(path, match, expected_ndim=4, limit=8 * 1024**2, reader=load_image):
    """The file is refused with the message, and far less than its claimed size is allocated."""
    tracemalloc.start()
    try:
        with pytest.raises(DecodingInputError, match=match):
            reader(path, expected_ndim=expected_ndim)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < limit


def test_truncated_gzip(tmp_path, series):
    blob = gzip.compress(nifti_bytes(series), mtime=0)
    path = write(tmp_path, "cut.nii.gz", blob[: len(blob) * 2 // 3], compress=False)
    _assert_refused_small(path, "truncated or corrupt")
    with pytest.raises(DecodingInputError, match="truncated or corrupt"):
        list(iter_volume_chunks(path, chunk_volumes=2))
    with pytest.raises(DecodingInputError, match="truncated or corrupt"):
        mean_volume(path)


def test_gzip_missing_only_its_trailer_is_refused(tmp_path, series):
    blob = gzip.compress(nifti_bytes(series), mtime=0)
    path = write(tmp_path, "cut.nii.gz", blob[:-6], compress=False)
    with pytest.raises(DecodingInputError, match="truncated or corrupt"):
        load_image(path, expected_ndim=4)


def test_corrupt_gzip_flipped_bytes(tmp_path):
    rng = np.random.default_rng(1)
    data = rng.integers(0, 30000, size=(8, 8, 8, 40)).astype(np.int16)
    blob = bytearray(gzip.compress(nifti_bytes(data), mtime=0))
    middle = len(blob) // 2
    blob[middle : middle + 4] = bytes(b ^ 0xFF for b in blob[middle : middle + 4])
    path = write(tmp_path, "flipped.nii.gz", bytes(blob), compress=False)
    _assert_refused_small(path, "truncated or corrupt")
    with pytest.raises(DecodingInputError, match="truncated or corrupt"):
        list(iter_volume_chunks(path))


def test_truncated_uncompressed_file(tmp_path, series):
    blob = nifti_bytes(series)
    path = write(tmp_path, "cut.nii", blob[:-100])
    _assert_refused_small(path, r"truncated or corrupt.*promises")


def test_not_gzip_although_named_gz(tmp_path):
    path = write(tmp_path, "fake.nii.gz", b"just some text, not a NIfTI image\n" * 20, compress=False)
    _assert_refused_small(path, "named .gz but is not gzip-compressed")


def test_zip_named_gz_is_named(tmp_path):
    path = write(tmp_path, "fake.nii.gz", b"PK\x03\x04" + bytes(400), compress=False)
    with pytest.raises(DecodingInputError, match=r"not gzip-compressed \(it is a zip archive\)"):
        inspect_nifti(path, expected_ndim=4)


def test_gzip_of_garbage(tmp_path):
    garbage = np.random.default_rng(2).bytes(5000)
    path = write(tmp_path, "garbage.nii.gz", garbage)
    _assert_refused_small(path, "not a NIfTI image: its first bytes are not a NIfTI header")


def test_random_bytes(tmp_path):
    path = write(tmp_path, "random.nii", np.random.default_rng(3).bytes(5000))
    _assert_refused_small(path, "not a NIfTI image")
    with pytest.raises(DecodingInputError, match="not a NIfTI image"):
        inspect_nifti(np.random.default_rng(4).bytes(1000), expected_ndim=3, kind="mask")


def test_empty_and_tiny_files(tmp_path):
    with pytest.raises(DecodingInputError, match="is empty"):
        inspect_nifti(write(tmp_path, "empty.nii", b""), expected_ndim=4)
    with pytest.raises(DecodingInputError, match="too short"):
        inspect_nifti(write(tmp_path, "tiny.nii", b"\x5c\x01"), expected_ndim=4)
    with pytest.raises(DecodingInputError, match="truncated or corrupt"):
        inspect_nifti(write(tmp_path, "header_only.nii.gz", nifti_bytes(np.zeros((2, 2, 2, 2)))[:200]),
                      expected_ndim=4)


def test_missing_file(tmp_path):
    with pytest.raises(DecodingInputError, match="does not exist"):
        inspect_nifti(tmp_path / "nope.nii.gz", expected_ndim=4)


def test_3d_where_4d_needed(tmp_path):
    path = write(tmp_path, "anat.nii.gz", nifti_bytes(np.zeros((4, 5, 6), np.int16)))
    with pytest.raises(DecodingInputError, match=r"The functional image must be 4D \(x, y, z, time\); this file .* is 3D"):
        inspect_nifti(path, expected_ndim=4)


def test_4d_where_3d_needed(tmp_path, series):
    path = write(tmp_path, "series.nii.gz", nifti_bytes(series))
    with pytest.raises(DecodingInputError, match=r"The mask must be 3D \(x, y, z\); .* is 4D"):
        inspect_nifti(path, expected_ndim=3, kind="mask")


def test_2d_where_3d_needed(tmp_path):
    path = write(tmp_path, "flat.nii", nifti_bytes(np.zeros((4, 5), np.uint8)))
    with pytest.raises(DecodingInputError, match="must be 3D"):
        inspect_nifti(path, expected_ndim=3, kind="mask")


def test_huge_claimed_dims_not_allocated(tmp_path):
    dims = [4, 30000, 30000, 30000, 30000, 1, 1, 1]
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.float32), header_fields={"dim": dims})
    for name in ("huge.nii.gz", "huge.nii"):
        path = write(tmp_path, name, blob)
        _assert_refused_small(path, r"holds .* MB of voxel data \(30000 x 30000 x 30000 x 30000 float32\), more than")
        _assert_refused_small(path, "more than", reader=inspect_nifti)


def test_dims_over_the_per_axis_limit(tmp_path):
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.int16), header_fields={"dim": [4, 2, 2, 2, 100_000, 1, 1, 1]},
                       nifti2=True)
    with pytest.raises(DecodingInputError, match="must each be between 1 and 32767"):
        inspect_nifti(write(tmp_path, "long.nii", blob), expected_ndim=4)


@pytest.mark.parametrize("dims", [[4, 2, -2, 2, 2, 1, 1, 1], [4, 2, 0, 2, 2, 1, 1, 1]])
def test_negative_or_zero_dims(tmp_path, dims):
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.int16), header_fields={"dim": dims})
    _assert_refused_small(write(tmp_path, "neg.nii.gz", blob), "must each be between 1 and")


@pytest.mark.parametrize("ndim", [0, 8, -3])
def test_bad_dim0(tmp_path, ndim):
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.int16), header_fields={"dim": [ndim, 2, 2, 2, 2, 1, 1, 1]})
    with pytest.raises(DecodingInputError, match=r"dim\[0\] .* not 1 to 7"):
        inspect_nifti(write(tmp_path, "d0.nii", blob), expected_ndim=4)


@pytest.mark.parametrize("offset", [-352.0, 100.0, 352.5, 1e12, np.inf])
def test_bad_vox_offset(tmp_path, offset):
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.int16), header_fields={"vox_offset": offset})
    _assert_refused_small(write(tmp_path, "off.nii.gz", blob), "vox_offset .* outside")


def test_vox_offset_past_end_of_uncompressed_file(tmp_path):
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.int16), header_fields={"vox_offset": 4096.0})
    with pytest.raises(DecodingInputError, match="truncated or corrupt.*promises"):
        inspect_nifti(write(tmp_path, "off.nii", blob), expected_ndim=4)


def test_vox_offset_past_end_of_compressed_file(tmp_path):
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.int16), header_fields={"vox_offset": 4096.0})
    with pytest.raises(DecodingInputError, match="truncated or corrupt"):
        inspect_nifti(write(tmp_path, "off.nii.gz", blob), expected_ndim=4)


@pytest.mark.parametrize("esize", [-16, 0, 20, 1 << 30])
def test_bad_extension_size(tmp_path, esize):
    blob = bytearray(nifti_bytes(np.zeros((2, 2, 2, 2), np.int16), header_fields={"vox_offset": 352 + 64}))
    header, data = bytes(blob[:348]), bytes(blob[352:])
    extension = np.array([esize, 6], dtype="<i4").tobytes() + bytes(56)
    hostile = header + b"\x01\x00\x00\x00" + extension + data[:-64]
    path = write(tmp_path, "ext.nii.gz", hostile)
    _assert_refused_small(path, "invalid header extension")


@pytest.mark.parametrize("code, what", [(32, "complex64"), (128, "RGB"), (1536, "float128"), (1, "binary"),
                                        (2304, "RGBA"), (999, "datatype code 999")])
def test_unsupported_dtype(tmp_path, code, what):
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.float32), header_fields={"datatype": code})
    with pytest.raises(DecodingInputError, match=f"stores its voxels as .*{what}.*cannot read"):
        inspect_nifti(write(tmp_path, "t.nii.gz", blob), expected_ndim=4)


def test_analyze_and_pair_headers_refused(tmp_path):
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.int16), header_fields={"magic": b"ni1"})
    with pytest.raises(DecodingInputError, match=r"\.hdr/\.img pair"):
        inspect_nifti(write(tmp_path, "pair.nii", blob), expected_ndim=4)
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.int16), header_fields={"magic": b"xyz"})
    with pytest.raises(DecodingInputError, match="no NIfTI magic"):
        inspect_nifti(write(tmp_path, "analyze.nii", blob), expected_ndim=4)


def test_zero_voxel_size_refused(tmp_path):
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.int16),
                       header_fields={"pixdim": [1, 0, 0, 0, 1, 1, 1, 1], "qform_code": 0, "sform_code": 0})
    with pytest.raises(DecodingInputError, match="invalid affine"):
        inspect_nifti(write(tmp_path, "flat.nii", blob), expected_ndim=4)


def test_infinite_scaling_refused(tmp_path):
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.int16), header_fields={"scl_slope": np.inf})
    with pytest.raises(DecodingInputError, match="infinite intensity scaling"):
        inspect_nifti(write(tmp_path, "inf.nii", blob), expected_ndim=4)


def test_gzip_bomb_is_not_inflated_past_the_header(tmp_path):
    # A header claiming a tiny image, followed by 64 MB of zeros: reading stops after the data
    # and a bounded tail, and the file is refused (it holds more than its header describes).
    blob = nifti_bytes(np.zeros((2, 2, 2, 2), np.int16))
    compressor = gzip.compress(blob + bytes(64 * 1024**2), compresslevel=1, mtime=0)
    path = write(tmp_path, "bomb.nii.gz", compressor, compress=False)
    tracemalloc.start()
    try:
        with pytest.raises(DecodingInputError, match="holds more data than its header describes"):
            load_image(path, expected_ndim=4)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024**2
    # A few bytes of padding after the data are still accepted.
    padded = write(tmp_path, "padded.nii.gz", gzip.compress(blob + bytes(100), mtime=0), compress=False)
    assert load_image(padded, expected_ndim=4).shape == (2, 2, 2, 2)


def test_file_digest_is_hashed_once_and_follows_changes(tmp_path, monkeypatch):
    import hashlib

    path = tmp_path / "data.bin"
    path.write_bytes(b"first")
    calls = []
    real_sha256 = hashlib.sha256
    monkeypatch.setattr(nifti.hashlib, "sha256", lambda *a: calls.append(a) or real_sha256(*a))
    assert nifti.file_digest(path) == real_sha256(b"first").hexdigest()
    assert nifti.file_digest(path) == real_sha256(b"first").hexdigest()
    assert len(calls) == 1  # the second call is remembered
    path.write_bytes(b"second, longer")  # new size and mtime: hashed again
    assert nifti.file_digest(path) == real_sha256(b"second, longer").hexdigest()
    assert len(calls) == 2
