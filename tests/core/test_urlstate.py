"""The configuration in URL query parameters: exact round trip, junk refused, uploads never named."""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qs, urlparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decoding_core.config import CV_SCHEMES, ESTIMATORS, SCORINGS, DecodingConfig
from decoding_core.errors import DecodingInputError
from decoding_core.urlstate import (
    ALL_KEYS,
    QUERY_KEYS,
    config_from_query_params,
    config_to_query_params,
    config_to_query_string,
)

condition_names = st.text(min_size=0, max_size=12)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)

configs = st.builds(
    DecodingConfig,
    conditions=st.lists(condition_names, min_size=2, max_size=6, unique=True).map(tuple),
    mask_name=st.text(min_size=1, max_size=20),
    standardize=st.one_of(st.booleans(), st.sampled_from(["series", "run", "none"])),
    detrend=st.one_of(st.booleans(), st.sampled_from(["series", "run", "none"])),
    high_pass=st.one_of(st.none(), st.floats(min_value=1e-6, max_value=10)),
    confounds=st.lists(st.sampled_from(["motion", "wm_csf", "global_signal", "scrubbing"]), unique=True).map(tuple),
    smoothing_fwhm=st.one_of(st.none(), st.floats(min_value=0.001, max_value=50)),
    estimator=st.sampled_from(list(ESTIMATORS)),
    C=st.floats(min_value=1e-12, max_value=1e6, exclude_min=False),
    cv=st.sampled_from(list(CV_SCHEMES)),
    n_folds=st.integers(min_value=2, max_value=1000),
    holdout_size=st.integers(min_value=1, max_value=100_000),
    tune_C=st.booleans(),
    screening_percentile=st.one_of(st.none(), st.floats(min_value=1e-6, max_value=99.999)),
    scoring=st.sampled_from(list(SCORINGS)),
)
dataset_specs = st.sampled_from([None, "simulated", "haxby:1", "haxby:2", "haxby:6"])


@settings(max_examples=300, deadline=None)
@given(config=configs, spec=dataset_specs)
def test_round_trip_restores_every_setting(config, spec):
    params = config_to_query_params(config, spec)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    restored, restored_spec = config_from_query_params(params)
    assert restored == config
    for field in dataclasses.fields(DecodingConfig):
        assert getattr(restored, field.name) == getattr(config, field.name), field.name
    assert restored_spec == spec


@settings(max_examples=100, deadline=None)
@given(config=configs, spec=dataset_specs)
def test_round_trip_through_a_real_url(config, spec):
    """Through the browser's URL: percent-encoding and parse_qs, as Streamlit reads it."""
    url = "http://localhost:8501/configure?" + config_to_query_string(config, spec)
    parsed = {key: values for key, values in parse_qs(urlparse(url).query, keep_blank_values=True).items()}
    restored, restored_spec = config_from_query_params(parsed)
    assert restored == config and restored_spec == spec


def test_every_setting_is_written_even_defaults():
    params = config_to_query_params(DecodingConfig())
    assert set(QUERY_KEYS.values()) <= set(params)
    assert params["cond"] == "face,cat" and params["fwhm"] == "" and params["std"] == "series"
    assert params["detrend"] == "none" and params["hp"] == "" and params["conf"] == ""
    assert set(params) <= set(ALL_KEYS)


def test_links_made_when_standardize_was_yes_or_no_still_open():
    old = config_from_query_params({"v": "1", "std": "0", "detrend": "1"})[0]
    assert (old.standardize, old.detrend) == ("none", "series")
    assert config_from_query_params({"std": "1"})[0].standardize == "series"


def test_per_run_cleaning_round_trips():
    config = DecodingConfig(standardize="run", detrend="run", high_pass=0.01, confounds=("motion", "scrubbing"))
    params = config_to_query_params(config)
    assert params["std"] == "run" and params["conf"] == "motion,scrubbing" and params["hp"] == "0.01"
    assert config_from_query_params(params)[0] == config
    with pytest.raises(DecodingInputError, match="'confounds' must be among"):
        config_from_query_params({"conf": "motion,aroma"})


def test_conditions_with_commas_and_percent_signs():
    config = DecodingConfig(conditions=("a,b", "50%", "c d", "é"))
    assert config_from_query_params(config_to_query_params(config))[0].conditions == config.conditions


@pytest.mark.parametrize("spec", ["upload", "/home/me/bold.nii.gz", "uploaded:abc", "haxby:7", ""])
def test_uploads_and_paths_are_never_put_in_the_url(spec):
    params = config_to_query_params(DecodingConfig(), spec)
    assert "data" not in params
    assert all(spec not in value for value in params.values() if spec)


def test_unknown_keys_are_ignored_and_missing_ones_keep_defaults():
    config, spec = config_from_query_params({"C": "0.5", "utm_source": "mail", "est": "ridge"})
    assert config == DecodingConfig(C=0.5, estimator="ridge") and spec is None
    assert config_from_query_params({}) == (DecodingConfig(), None)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"C": "abc"}, "parameter 'C' must be a number"),
        ({"C": "-1"}, "cannot use: 'C' must be a number in the range"),
        ({"C": "nan"}, "cannot use: 'C'"),
        ({"k": "2.5"}, "parameter 'k' must be a whole number"),
        ({"k": "1"}, "'n_folds' must be an integer in the range"),
        ({"std": "maybe"}, r"'standardize' must be one of \['series', 'run', 'none'\]"),
        ({"hp": "-1"}, "'high_pass' must be a number"),
        ({"est": "deep_net"}, "'estimator' must be one of"),
        ({"cv": "<script>"}, "'cv' must be one of"),
        ({"cond": "face"}, "at least two different conditions"),
        ({"cond": "face,%ff%fe"}, "not valid percent-encoded text"),
        ({"data": "upload"}, "links can only name 'simulated'"),
        ({"data": "../../etc/passwd"}, "links can only name"),
        ({"v": "9"}, "newer version of the app"),
        ({"C": "1" * 5000}, "at most 4000 are read"),
        ({"fwhm": "-3"}, "'smoothing_fwhm' must be a number"),
    ],
)
def test_junk_is_refused_with_a_clear_message(params, message):
    with pytest.raises(DecodingInputError, match=message):
        config_from_query_params(params)


def test_list_values_take_the_last_and_bad_types_are_refused():
    assert config_from_query_params({"C": ["1", "0.25"]})[0].C == 0.25
    with pytest.raises(DecodingInputError, match="must be text"):
        config_from_query_params({"C": 3})
    with pytest.raises(DecodingInputError, match="must be a mapping"):
        config_from_query_params("C=1")
    with pytest.raises(DecodingInputError, match="must be a DecodingConfig"):
        config_to_query_params({"C": 1})
