"""The one atomic-write helper used for the simulated data set and for uploads."""

from __future__ import annotations

import os

import pytest

from decoding_core.paths import atomic_path


def test_atomic_path_replaces_the_target_with_a_new_inode(tmp_path):
    target = tmp_path / "func.nii"
    target.write_bytes(b"old")
    other_name = tmp_path / "linked.nii"
    os.link(target, other_name)
    with atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary != target
        temporary.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # nothing visible before the block ends
    assert target.read_bytes() == b"new"
    # The hard link elsewhere keeps the old bytes: the file was replaced, not rewritten.
    assert other_name.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["func.nii", "linked.nii"]


def test_a_failed_write_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "labels.txt"
    target.write_text("kept")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["labels.txt"]
