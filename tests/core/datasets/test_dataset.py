"""Tests of decoding_core.datasets itself: `Dataset` and `load_dataset`."""

from __future__ import annotations

import pandas as pd
import pytest

from decoding_core.datasets import DATASET_CHOICES, load_dataset
from decoding_core.errors import DecodingInputError


def test_dataset_choices_and_load_dataset(lay_out_haxby, simulated_dataset, tmp_path, haxby_slice_dir):
    assert list(DATASET_CHOICES)[0] == "simulated"
    assert {f"haxby:{n}" for n in range(1, 7)} <= set(DATASET_CHOICES)
    ds = load_dataset("simulated")
    assert ds.digest == simulated_dataset.digest
    lay_out_haxby(tmp_path, haxby_slice_dir)
    assert load_dataset("haxby:1", data_dir=tmp_path).name == "haxby:1"
    with pytest.raises(DecodingInputError, match="Unknown data set 'mnist'.*simulated, haxby:1"):
        load_dataset("mnist")
    with pytest.raises(DecodingInputError, match="range \\[1, 6\\]"):
        load_dataset("haxby:9", data_dir=tmp_path)
    with pytest.raises(DecodingInputError, match="seed in 'simulated:x'"):
        load_dataset("simulated:x")


def test_dataset_labels_are_plain_strings_for_sklearn(simulated_dataset):
    from sklearn.model_selection import LeaveOneGroupOut

    conditions = simulated_dataset.conditions
    splits = list(LeaveOneGroupOut().split(conditions, conditions, simulated_dataset.runs))
    assert len(splits) == 12
    assert isinstance(simulated_dataset.labels, pd.DataFrame)
