"""Tests of decoding_core.datasets.spec: the one parser of built-in data set names."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decoding_core.datasets import DATASET_CHOICES, DatasetSpec
from decoding_core.datasets.spec import MAX_SEED, check_seed, check_subject
from decoding_core.errors import DecodingInputError


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("simulated", DatasetSpec("simulated")),
        ("simulated:0", DatasetSpec("simulated")),
        ("simulated:3", DatasetSpec("simulated", seed=3)),
        ("simulated:", DatasetSpec("simulated")),
        ("haxby:1", DatasetSpec("haxby", subject=1)),
        ("haxby:6", DatasetSpec("haxby", subject=6)),
        ("  HAXBY:02 ", DatasetSpec("haxby", subject=2)),
        ("haxby", DatasetSpec("haxby", subject=2)),
        ("haxby:", DatasetSpec("haxby", subject=2)),
    ],
)
def test_parse(text, spec):
    assert DatasetSpec.parse(text) == spec


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        (DatasetSpec("simulated"), "simulated"),
        (DatasetSpec("simulated", seed=7), "simulated:7"),
        (DatasetSpec("haxby", subject=4), "haxby:4"),
    ],
)
def test_str_is_the_name_loaders_write(spec, text):
    assert str(spec) == text


@given(st.one_of(
    st.builds(DatasetSpec, st.just("simulated"), st.none(), st.integers(0, MAX_SEED)),
    st.builds(DatasetSpec, st.just("haxby"), st.integers(1, 6)),
))
def test_str_and_parse_round_trip(spec):
    assert DatasetSpec.parse(str(spec)) == spec
    assert DatasetSpec.from_name(str(spec)) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mnist", "Unknown data set 'mnist'. Choose one of: simulated, haxby:1, .*haxby:6 \\(or 'simulated:SEED'\\)"),
        ("", "Unknown data set ''"),
        ("haxbyfoo", "Unknown data set 'haxbyfoo'"),
        ("simulated:x", "seed in 'simulated:x' must be a non-negative integer"),
        ("simulated:-1", "seed in 'simulated:-1' must be a non-negative integer"),
        ("simulated:²", "seed in 'simulated:²' must be a non-negative integer"),
        (f"simulated:{MAX_SEED + 1}", "'seed' must be an integer in the range \\[0, 4294967295\\]"),
        ("haxby:two", "subject in 'haxby:two' must be an integer in the range \\[1, 6\\]"),
        ("haxby:0", "'subject' must be an integer in the range \\[1, 6\\]. Got 0"),
        ("haxby:9", "'subject' must be an integer in the range \\[1, 6\\]. Got 9"),
    ],
)
def test_parse_errors_say_what_is_accepted(text, message):
    with pytest.raises(DecodingInputError, match=message):
        DatasetSpec.parse(text)


def test_parse_wants_text():
    with pytest.raises(TypeError, match="'spec' must be a str. Got 2"):
        DatasetSpec.parse(2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "mnist"}, "'kind' must be one of 'simulated', 'haxby'. Got 'mnist'"),
        ({"kind": "haxby"}, "'subject' must be an integer in the range \\[1, 6\\]. Got None"),
        ({"kind": "haxby", "subject": 2, "seed": 1}, "The Haxby data set has no seed"),
        ({"kind": "simulated", "subject": 2}, "The simulated data set has no subject"),
        ({"kind": "simulated", "seed": -1}, "'seed' must be an integer in the range"),
        ({"kind": "simulated", "seed": True}, "'seed' must be an integer in the range"),
    ],
)
def test_constructor_checks_its_fields(kwargs, message):
    with pytest.raises(DecodingInputError, match=message):
        DatasetSpec(**kwargs)


def test_frozen_and_hashable():
    spec = DatasetSpec.parse("haxby:3")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.subject = 4
    assert {spec: 1}[DatasetSpec("haxby", subject=3)] == 1


@pytest.mark.parametrize("name", ["upload", "/home/me/bold.nii.gz", "uploaded:abc", "haxby:7", "", None,
                                  "Haxby:2", " simulated", "haxby", "haxby:02", "simulated:0"])
def test_from_name_accepts_only_names_loaders_write(name):
    assert DatasetSpec.from_name(name) is None


def test_shareable_are_the_choices():
    assert [str(DatasetSpec.parse(text)) for text in DATASET_CHOICES] == list(DATASET_CHOICES)
    assert all(DatasetSpec.parse(text).shareable for text in DATASET_CHOICES)
    assert not DatasetSpec("simulated", seed=1).shareable


def test_check_seed_and_subject_accept_numpy_integers():
    np = pytest.importorskip("numpy")
    assert check_seed(np.int64(3)) == 3 and type(check_seed(np.int64(3))) is int
    assert check_subject(np.int32(5)) == 5 and type(check_subject(np.int32(5))) is int
    for bad in (2.0, "2", True):
        with pytest.raises(TypeError, match="'subject' must be an integer"):
            check_subject(bad)
