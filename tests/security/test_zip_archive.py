"""Hostile zips of BIDS files through `decoding_core.io.archive.extract_bids_zip`.

Each archive is made here by the test (never committed). A refused archive must raise
the app's `DecodingInputError` naming the uploaded zip, and leave no folder behind.
"""

from __future__ import annotations

import io
import re
import stat
import zipfile
from pathlib import Path

import pytest

from decoding_core import environment
from decoding_core.errors import DecodingInputError
from decoding_core.io.archive import ExtractedBids, ZipLimits, extract_bids_zip

BOLD = "sub-01_task-x_run-1_bold.nii.gz"
#: Small limits for the tests that need them (the defaults are read from the environment).
SMALL = ZipLimits(max_total_bytes=8 * 1024**2, max_files=40, max_ratio=100)


def make_zip(path: Path, members: dict, *, compression=zipfile.ZIP_DEFLATED) -> Path:
    """A zip at ``path``: name -> bytes, or name -> (bytes, unix mode) for special members."""
    with zipfile.ZipFile(path, "w", compression=compression) as archive:
        for name, content in members.items():
            data, mode = content if isinstance(content, tuple) else (content, None)
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            if mode is not None:
                info.create_system = 3  # Unix: the mode is read from external_attr
                info.external_attr = mode << 16
            archive.writestr(info, data)
    return path


def refused(source: Path, tmp_path: Path, match: str, limits: ZipLimits | None = SMALL) -> DecodingInputError:
    target = tmp_path / "extracted"
    with pytest.raises(DecodingInputError, match=match) as caught:
        extract_bids_zip(source, target, display_name="my study.zip", limits=limits)
    assert "my study.zip" in str(caught.value)
    assert not target.exists()
    assert not any(p.name.startswith(".extracted") for p in tmp_path.iterdir()), "a partial folder was left"
    return caught.value


def test_a_zip_of_the_real_bids_func_files_extracts_as_a_bids_folder(tmp_path, haxby_bids_dir):
    func = haxby_bids_dir / "sub-1" / "func"
    members = {f"func/{p.name}": p.read_bytes() for p in sorted(func.iterdir())}
    members["task-objectviewing_bold.json"] = (haxby_bids_dir / "task-objectviewing_bold.json").read_bytes()
    members["__MACOSX/func/._sub-1_task-objectviewing_run-01_bold.nii.gz"] = b"resource fork"
    members["func/.DS_Store"] = b"finder"
    source = make_zip(tmp_path / "sub-1.zip", members)

    result = extract_bids_zip(source, tmp_path / "bids", display_name="sub-1.zip", limits=SMALL)

    assert isinstance(result, ExtractedBids) and result.root == tmp_path / "bids"
    assert len([f for f in result.files if f.endswith("_bold.nii.gz")]) == 12
    for path in sorted(func.iterdir()):  # placed by BIDS name, byte for byte
        assert (result.root / "sub-1" / "func" / path.name).read_bytes() == path.read_bytes()
    assert (result.root / "task-objectviewing_bold.json").is_file()
    assert (result.root / "dataset_description.json").is_file()
    assert not list(result.root.rglob(".*")) and not (result.root / "__MACOSX").exists()
    assert result.total_bytes == sum(len(v) for k, v in members.items() if "__MACOSX" not in k and ".DS" not in k)


def test_sessions_go_to_their_own_folder(tmp_path):
    source = make_zip(tmp_path / "s.zip", {"sub-02_ses-a_task-x_run-1_bold.nii.gz": b"x" * 10,
                                            "anat/sub-02_ses-a_T1w.nii.gz": b"y"})
    root = extract_bids_zip(source, tmp_path / "out", display_name="s.zip", limits=SMALL).root
    assert (root / "sub-02" / "ses-a" / "func" / "sub-02_ses-a_task-x_run-1_bold.nii.gz").is_file()
    assert (root / "sub-02" / "ses-a" / "anat" / "sub-02_ses-a_T1w.nii.gz").is_file()


@pytest.mark.parametrize("name", ["../evil_bold.nii.gz", "func/../../sub-01_task-x_bold.nii.gz",
                                  "/etc/sub-01_task-x_bold.nii.gz", "C:/sub-01_task-x_bold.nii.gz",
                                  "..\\sub-01_task-x_bold.nii.gz"])
def test_path_traversal_is_refused(tmp_path, name):
    source = make_zip(tmp_path / "evil.zip", {BOLD: b"ok", name: b"evil"})
    refused(source, tmp_path, r"path leaves|absolute path|backslash")
    assert not (tmp_path.parent / "evil_bold.nii.gz").exists()


def test_a_zip_bomb_is_refused_while_its_header_is_read(tmp_path):
    # 64 MiB of zeros deflate to about 64 KB: a ratio near 1000.
    source = make_zip(tmp_path / "bomb.zip", {BOLD: bytes(64 * 1024**2)})
    message = str(refused(source, tmp_path, "expands more than 100 times", limits=ZipLimits.from_environment()))
    assert "zip bomb" in message


def test_a_header_that_understates_a_member_is_caught_while_streaming(tmp_path):
    """The central directory says 1,000 bytes; the stream holds 4 MiB: never more than announced is written."""
    real = 4 * 1024**2
    source = make_zip(tmp_path / "liar.zip", {BOLD: bytes(real)})
    data = bytearray(source.read_bytes())
    # Rewrite the uncompressed size in the local header (offset 22) and the central directory (offset 24).
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        start = data.find(signature)
        assert int.from_bytes(data[start + offset:start + offset + 4], "little") == real
        data[start + offset:start + offset + 4] = (1000).to_bytes(4, "little")
    source.write_bytes(bytes(data))
    refused(source, tmp_path, "could not be read", limits=ZipLimits(10**9, 10, 10**6))


def test_more_inflated_bytes_than_the_total_limit_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(environment.MAX_ZIP_BYTES, "1MB")
    source = make_zip(tmp_path / "big.zip", {BOLD: b"a" * 700_000, "sub-01_task-x_run-2_bold.nii.gz": b"b" * 700_000})
    refused(source, tmp_path, re.escape("more than 1.0 MB (DECODING_LAB_MAX_ZIP_BYTES)"), limits=None)


def test_too_many_files_are_refused(tmp_path, monkeypatch):
    monkeypatch.setenv(environment.MAX_ZIP_FILES, "5")
    members = {f"sub-01_task-x_run-{i}_bold.nii.gz": b"x" for i in range(6)}
    source = make_zip(tmp_path / "many.zip", members)
    refused(source, tmp_path, "more than 5 files", limits=None)


@pytest.mark.parametrize(("mode", "match"), [(stat.S_IFLNK | 0o777, "symbolic link"),
                                             (stat.S_IFCHR | 0o644, "special file"),
                                             (stat.S_IFIFO | 0o644, "special file")])
def test_links_and_devices_are_refused(tmp_path, mode, match):
    source = make_zip(tmp_path / "link.zip", {BOLD: b"ok", "sub-01_task-x_run-2_bold.nii.gz": (b"/etc/passwd", mode)})
    refused(source, tmp_path, match)


def test_a_nested_zip_is_refused_by_name_and_by_content(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr(BOLD, b"x")
    refused(make_zip(tmp_path / "a.zip", {BOLD: b"ok", "more.zip": inner.getvalue()}), tmp_path, "another archive")
    disguised = {BOLD: b"ok", "sub-01_task-x_run-2_bold.nii.gz": inner.getvalue()}
    refused(make_zip(tmp_path / "b.zip", disguised), tmp_path, "another archive")


def test_an_encrypted_member_is_refused(tmp_path):
    source = make_zip(tmp_path / "enc.zip", {BOLD: b"ok"})
    data = bytearray(source.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # general purpose flag, bit 0
        start = data.find(signature)
        data[start + offset] |= 0x1
    source.write_bytes(bytes(data))
    refused(source, tmp_path, "encrypted")


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04 truncated"])
def test_not_a_zip_is_refused(tmp_path, content):
    source = tmp_path / "fake.zip"
    source.write_bytes(content)
    refused(source, tmp_path, "is not a zip archive")


def test_a_zip_without_bold_files_is_refused(tmp_path):
    source = make_zip(tmp_path / "nobold.zip", {"sub-01_task-x_run-1_events.tsv": b"onset\tduration\n",
                                                 "task-x_bold.json": b"{}"})
    refused(source, tmp_path, "holds no BIDS bold files")


def test_two_members_for_one_file_are_refused(tmp_path):
    source = make_zip(tmp_path / "dup.zip", {f"a/{BOLD}": b"1", f"b/{BOLD}": b"2"})
    refused(source, tmp_path, "two files that both go to")


def test_an_existing_target_is_never_written_into(tmp_path):
    source = make_zip(tmp_path / "ok.zip", {BOLD: b"ok"})
    (tmp_path / "extracted").mkdir()
    with pytest.raises(FileExistsError):
        extract_bids_zip(source, tmp_path / "extracted", display_name="ok.zip", limits=SMALL)
