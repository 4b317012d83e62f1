"""Tests of decoding_core.io.labels: reading labels tables within bounds."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from decoding_core.errors import DecodingInputError
from decoding_core.io import labels
from decoding_core.io.labels import read_labels_table


@pytest.mark.parametrize(
    "text",
    [
        "labels,chunks\nface,0\ncat,0\nrest,1\n",
        "labels\tchunks\nface\t0\ncat\t0\nrest\t1\n",
        "labels chunks\nface 0\ncat   0\nrest\t1\n",
        "labels;chunks\nface;0\ncat;0\nrest;1\n",
        "\ufefflabels,chunks\r\nface,0\r\ncat,0\r\nrest,1\r\n\r\n",
        'labels,chunks\n"face",0\n  cat ,0\nrest,1',
    ],
    ids=["csv", "tsv", "space", "semicolon", "bom-crlf", "quotes-spaces"],
)
def test_read_labels_table_formats(text, tmp_path):
    for source in (text.encode("utf-8"), tmp_path / "labels.txt"):
        if not isinstance(source, bytes):
            source.write_text(text, encoding="utf-8", newline="")
        table = read_labels_table(source, n_volumes=3)
        assert list(table.columns) == ["labels", "chunks"]
        assert table["labels"].to_numpy(dtype=str).tolist() == ["face", "cat", "rest"]
        assert table["chunks"].dtype == np.int64 and table["chunks"].tolist() == [0, 0, 1]


def test_read_labels_table_real_haxby_file(haxby_slice_dir):
    table = read_labels_table(haxby_slice_dir / "labels.txt", n_volumes=1452)
    assert len(table) == 1452 and sorted(table["chunks"].unique()) == list(range(12))
    assert (table["labels"] == "rest").sum() == 1452 - 12 * 72


def test_read_labels_table_keeps_formulas_as_text():
    text = 'labels,chunks,note\n=1+1,0,@SUM(A1)\n+cmd,0,-2+3\n"=HYPERLINK(""x"")",1,ok\n'
    table = read_labels_table(text.encode(), n_volumes=3)
    assert table["labels"].to_numpy(dtype=str).tolist() == ["=1+1", "+cmd", '=HYPERLINK("x")']
    assert table["note"].to_numpy(dtype=str).tolist() == ["@SUM(A1)", "-2+3", "ok"]


def test_read_labels_table_quoted_separator_and_float_column():
    table = read_labels_table(b'labels,onset\n"face, front",0.5\nrest,1e1\n')
    assert table["labels"].tolist() == ["face, front", "rest"]
    assert table["onset"].dtype == np.float64 and table["onset"].tolist() == [0.5, 10.0]


@pytest.mark.parametrize(
    ("content", "n_volumes", "message"),
    [
        (b"face 0\ncat 0\nrest 1\n", 3, "no header row"),
        (b"labels chunks\nface 0\n", 3, "has 1 rows but the image has 3 volumes"),
        (b"labels chunks\nface 0\ncat 0\nrest 1\nrest 1\n", 3, "has 4 rows but the image has 3 volumes"),
        (b"labels chunks\nface 0\ncat\n", 2, "Line 3 .* has 1 values but the header names 2 columns"),
        (b"labels chunks\nface 0\n\ncat 0\n", 3, "Line 3 .* is empty"),
        (b"", None, "is empty"),
        (b"  \n\n", None, "is empty"),
        (b"labels,labels\nface,face\n", 1, "duplicate column names"),
        (b"labels,,chunks\nface,x,0\n", 1, "empty column name"),
        (b"labels\x00chunks\nface\x000\n", None, "binary, not a text table"),
        (b"labels chunks\nfa\x07ce 0\n", None, "control characters"),
        (gzip.compress(b"labels chunks\nface 0\n"), None, "compressed file"),
        (b'labels,chunks\n"face,0\n', None, "could not be read as a table"),
        (",".join(f"c{i}" for i in range(65)).encode() + b"\n" + b",".join([b"1"] * 65) + b"\n", 1,
         "65 columns; at most 64"),
        (b"labels chunks\n" + b"x" * 9000 + b" 0\n", 1, "Line 2 .* characters long"),
    ],
    ids=["no-header", "too-few", "too-many", "ragged", "blank-line", "empty", "blank-only",
         "duplicate", "empty-name", "nul", "control", "gzip", "bad-quote", "wide", "long-line"],
)
def test_read_labels_table_errors(content, n_volumes, message):
    with pytest.raises(DecodingInputError, match=message):
        read_labels_table(content, n_volumes=n_volumes)


def test_read_labels_table_size_bounds(tmp_path, monkeypatch):
    monkeypatch.setattr(labels, "MAX_LABELS_BYTES", 100)
    big = tmp_path / "big.csv"
    big.write_text("labels\n" + "face\n" * 50)
    with pytest.raises(DecodingInputError, match="at most 0 MB|MB; at most"):
        read_labels_table(big)
    with pytest.raises(DecodingInputError, match="MB; at most"):
        read_labels_table(big.read_bytes())
    with pytest.raises(DecodingInputError, match="does not exist"):
        read_labels_table(tmp_path / "nothing.csv")
    with pytest.raises(TypeError, match="'labels' must be a path or bytes"):
        read_labels_table(12)


def test_read_labels_table_counts_rows_before_parsing(monkeypatch):
    # With n_volumes given, a table with too many lines is refused before any row is split.
    def no_split(*args, **kwargs):
        raise AssertionError("parsed a table that was already too long")

    monkeypatch.setattr(labels, "_split_rows", no_split)
    with pytest.raises(DecodingInputError, match="has 1000 rows but the image has 10 volumes"):
        read_labels_table(b"labels\n" + b"face\n" * 1000, n_volumes=10)


def test_read_labels_table_never_fails_with_anything_but_our_error():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    pieces = st.sampled_from([b"labels", b"chunks", b",", b"\t", b" ", b";", b"\n", b"\r\n", b'"', b"=1+1",
                              b"face", b"0", b"1.5", b"\x00", b"\xff", b"\xef\xbb\xbf", b"-", b"@"])

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.binary(max_size=300), st.lists(pieces, max_size=60).map(b"".join)),
           st.one_of(st.none(), st.integers(0, 5)))
    def check(content, n_volumes):
        try:
            table = read_labels_table(content, n_volumes=n_volumes)
        except DecodingInputError:
            return
        assert isinstance(table, pd.DataFrame) and len(table.columns) >= 1
        if n_volumes is not None:
            assert len(table) == n_volumes

    check()


# -- condition names that differ only by case or surrounding whitespace ----------------------------


def test_label_variants_groups_case_and_space_spellings_most_frequent_first():
    names = ["face", "cat", "Face", "face", "cat ", "house", " FACE", "rest", "Rest", "Rest"]
    assert labels.label_variants(names) == [("face", "Face", " FACE"), ("cat", "cat "), ("Rest", "rest")]
    assert labels.label_variants(["face", "cat", "house"]) == []
    assert labels.label_variants(np.array(["a", "b"])) == []


def test_label_variant_mapping_names_the_most_frequent_spelling_without_spaces():
    assert labels.label_variant_mapping(["face", "Face", "face", "cat ", "cat ", "Cat"]) == {
        "Face": "face", "cat ": "cat", "Cat": "cat"}
    # A tie goes to the spelling seen first.
    assert labels.label_variant_mapping(["Face", "face"]) == {"face": "Face"}


def test_reading_a_table_keeps_case_variants_apart():
    table = read_labels_table(b"labels,chunks\nFace,0\nface,0\ncat,1\n")
    assert table["labels"].tolist() == ["Face", "face", "cat"]
    assert labels.label_variants(table["labels"]) == [("Face", "face")]


def _dataset(conditions):
    from decoding_core.datasets import Dataset

    table = pd.DataFrame({"labels": pd.array(conditions, dtype="str"), "chunks": np.arange(len(conditions)) // 2})
    return Dataset(name="upload", title="Your uploaded data set", func_path=None, labels=table, label_column="labels",
                   run_column="chunks", tr=2.0, masks={}, anat_img=None, description="Your files.", source="",
                   digest="0" * 64, shape=(2, 2, 2, len(conditions)), affine=np.eye(4))


def test_merge_label_variants_renames_and_gives_a_new_digest():
    dataset = _dataset(["face", "Face", "cat", "face", "cat ", "house"])
    merged = labels.merge_label_variants(dataset)
    assert merged.conditions.tolist() == ["face", "face", "cat", "face", "cat", "house"]
    assert merged.labels["chunks"].tolist() == dataset.labels["chunks"].tolist()
    assert dataset.conditions.tolist() == ["face", "Face", "cat", "face", "cat ", "house"]  # not changed
    assert merged.digest != dataset.digest and len(merged.digest) == 64
    assert merged.title == "Your uploaded data set (condition names merged)"
    assert "Condition names merged: 'Face' -> 'face'; 'cat ' -> 'cat'." in merged.description
    assert labels.merge_label_variants(merged) is merged
    assert labels.merge_label_variants(_dataset(["face", "cat"])).digest == "0" * 64
