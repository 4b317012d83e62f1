"""Fixtures of the app-side tests: the real VT data reduced to face vs cat."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from decoding_core.config import DecodingConfig
from decoding_core.masking import MaskedData, clean_signals, extract_masked_voxels, select_conditions

FACE_CAT = DecodingConfig(conditions=("face", "cat"), mask_name="vt")


@pytest.fixture(scope="module")
def face_cat(haxby_vt_dir) -> MaskedData:
    mask_img = nib.load(haxby_vt_dir / "mask_vt.nii.gz")
    raw = extract_masked_voxels(haxby_vt_dir / "bold_vt.nii.gz", {"vt": mask_img})["vt"]
    table = pd.read_csv(haxby_vt_dir / "labels.txt", sep=r"\s+")
    masked = MaskedData(X=clean_signals(raw, standardize=True), labels=table["labels"].to_numpy(dtype=str),
                        runs=table["chunks"].to_numpy(), volume_index=np.arange(len(table)), mask_img=mask_img,
                        mask_name="vt")
    return select_conditions(masked, FACE_CAT.conditions)
