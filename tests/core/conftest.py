"""Fixtures shared by the core tests."""

from __future__ import annotations

import pytest

from decoding_core import masking


@pytest.fixture
def masked_voxel_reads(monkeypatch) -> list:
    """The images whose masked voxels this process reads (one entry per pass over a file)."""
    reads = []
    original = masking.extract_masked_voxels

    def counting(*args, **kwargs):
        reads.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(masking, "extract_masked_voxels", counting)
    return reads
