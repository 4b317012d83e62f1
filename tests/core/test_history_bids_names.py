"""Run names of BIDS data sets say the selection, not the folder's whole path (decoding_core.history)."""

from __future__ import annotations

from decoding_core.config import DecodingConfig
from decoding_core.datasets.bids import BidsSelection
from decoding_core.history import default_run_name, short_dataset_name


def test_a_bids_run_name_is_short_and_tells_the_selection():
    name = str(BidsSelection(root="/data/long/path/to/my-study", subject="1", task="objectviewing", hrf_lag=5.0,
                             drop_edge_volumes=1))
    assert short_dataset_name(name) == "BIDS sub-1 task-objectviewing lag 5s edge 1"
    run_name = default_run_name(DecodingConfig(standardize="run"), name)
    assert run_name.startswith("BIDS sub-1 task-objectviewing lag 5s edge 1, face/cat")
    assert "/data/long" not in run_name and run_name.endswith("z per run")


def test_other_names_are_unchanged():
    assert short_dataset_name("haxby:2") == "haxby:2"
    assert short_dataset_name("upload") == "upload"
    lss = str(BidsSelection(root="/d", subject="01", task="faces", session="a", space="MNI", design="lss"))
    assert short_dataset_name(lss) == "BIDS sub-01 task-faces ses-a space-MNI LSS"
