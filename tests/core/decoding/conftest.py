"""Fixtures shared by the decoding tests: block-designed masked data, the simulated VT voxels."""

from __future__ import annotations

import pytest

from decoding_core.masking import mask_dataset

from tests.core.decoding._helpers import make_masked


@pytest.fixture(scope="module")
def masked():
    return make_masked()


@pytest.fixture(scope="module")
def simulated_vt(simulated_dataset):
    return mask_dataset(simulated_dataset, "vt")
