"""Reading per-volume labels tables (CSV, TSV or whitespace separated), within bounds.

A labels table comes from the user (an upload, a path) or from a download, so
it is checked before it is parsed: its size, that it is text (not binary or
compressed), the number and length of its lines, and the number of columns
and cells. Cells are never evaluated.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from decoding_core.errors import DecodingInputError, DecodingInputTypeError

#: Largest labels table accepted, in bytes (a few times Haxby's 12 kB at 1000s of volumes).
MAX_LABELS_BYTES = 16 * 1024**2
#: Most columns accepted in a labels table.
MAX_LABEL_COLUMNS = 64
#: Longest line accepted in a labels table, in characters.
MAX_LABEL_LINE_CHARS = 8192
#: Most data rows accepted when the number of volumes is not known.
MAX_LABEL_ROWS = 200_000
#: Most cells (rows x columns) parsed: bounds the Python objects a table becomes (~30 MB).
MAX_LABEL_CELLS = 500_000
#: Blank lines tolerated beyond the expected rows (editors add some at the end).
_BLANK_LINE_ALLOWANCE = 64


_NUMBER_PATTERNS = (
    ("int", re.compile(r"[+-]?\d{1,18}")),
    ("float", re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?")),
)
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _length_error(n_rows: int, n_volumes: int, more: bool = False) -> DecodingInputError:
    rows = f"more than {n_rows}" if more else f"{n_rows}"
    return DecodingInputError(
        f"The labels table has {rows} rows but the image has {n_volumes} volumes. It needs exactly one "
        "row per volume, in time order, below one header row: check that the table and the image "
        "belong together (and that no volumes were removed from one of them)."
    )


def _read_label_bytes(source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if len(data) > MAX_LABELS_BYTES:
            raise DecodingInputError(
                f"The labels table is {len(data) / 1024**2:.1f} MB; at most {MAX_LABELS_BYTES // 1024**2} MB "
                "is accepted. It should hold one short row per volume."
            )
        return data, "the labels table"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise DecodingInputError(f"The labels table {path} does not exist (or is not a file). Check the path.")
        size = path.stat().st_size
        if size > MAX_LABELS_BYTES:
            raise DecodingInputError(
                f"The labels table {path.name} is {size / 1024**2:.1f} MB; at most "
                f"{MAX_LABELS_BYTES // 1024**2} MB is accepted. It should hold one short row per volume."
            )
        with open(path, "rb") as handle:
            data = handle.read(MAX_LABELS_BYTES + 1)
        if len(data) > MAX_LABELS_BYTES:  # grew while reading
            raise DecodingInputError(f"The labels table {path.name} is larger than {MAX_LABELS_BYTES // 1024**2} MB.")
        return data, f"the labels table {path.name}"
    raise DecodingInputTypeError(f"'labels' must be a path or bytes. Got {type(source).__name__}.")


def _decode_text(data: bytes, name: str) -> str:
    if data[:2] == b"\x1f\x8b" or data[:4] == b"PK\x03\x04":
        raise DecodingInputError(
            f"{name.capitalize()} is a compressed file (gzip or zip). Unpack it and give the plain "
            "CSV, TSV or text file."
        )
    if b"\x00" in data:
        raise DecodingInputError(
            f"{name.capitalize()} is binary, not a text table. Give a CSV, TSV or space-separated "
            "text file with a header row (e.g. 'labels chunks') and one row per volume."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("cp1252", errors="replace")
    if _CONTROL_CHARACTERS.search(text):
        raise DecodingInputError(
            f"{name.capitalize()} contains control characters: it is not a plain text table. Give a "
            "CSV, TSV or space-separated text file with a header row and one row per volume."
        )
    return text


def _check_raw_lines(data: bytes, name: str, n_volumes: int | None) -> None:
    """Bound the number and the length of lines on the raw bytes, before any text is made.

    Splitting 16 MB of three-byte lines makes millions of string objects (hundreds of
    MB); counting line breaks and scanning for the longest line allocates nothing.
    """
    newline = b"\n" if b"\n" in data else b"\r"
    n_breaks = data.count(newline)
    max_rows = MAX_LABEL_ROWS if n_volumes is None else int(n_volumes)
    if n_breaks > max_rows + 1 + _BLANK_LINE_ALLOWANCE:
        if n_volumes is not None:
            n_lines = n_breaks if data.endswith(newline) else n_breaks + 1
            raise _length_error(n_lines - 1, int(n_volumes))
        raise DecodingInputError(
            f"{name.capitalize()} has {n_breaks:,} lines; at most {MAX_LABEL_ROWS:,} rows are accepted."
        )
    # UTF-8 needs at most 4 bytes per character: longer lines cannot pass the character check.
    max_line_bytes = 4 * MAX_LABEL_LINE_CHARS
    start, number = 0, 1
    while start <= len(data):
        end = data.find(newline, start)
        end = len(data) if end < 0 else end
        if end - start > max_line_bytes:
            raise DecodingInputError(
                f"Line {number} of {name} is {end - start:,} characters long; at most {MAX_LABEL_LINE_CHARS} "
                "are accepted. A labels table has a few short columns per volume."
            )
        start, number = end + 1, number + 1


def _sniff_separator(header_line: str) -> str | None:
    """Tab, comma or semicolon when the header holds one (in that order), else None (whitespace)."""
    for separator in ("\t", ",", ";"):
        if separator in header_line:
            return separator
    return None


def _split_rows(lines: list[str], separator: str | None, name: str) -> list[list[str]]:
    if separator is None:
        return [line.split() for line in lines]
    try:
        return [[cell.strip() for cell in row] for row in csv.reader(lines, delimiter=separator, strict=True)]
    except csv.Error as error:
        raise DecodingInputError(
            f"{name.capitalize()} could not be read as a table: {error}. Check its quotes and separators."
        ) from None


def _numeric_column(values: list[str]):
    """Values as int64 or float64 when every cell is a plain number, else None."""
    for kind, pattern in _NUMBER_PATTERNS:
        if values and all(pattern.fullmatch(value) for value in values):
            return np.array(values, dtype=np.int64 if kind == "int" else np.float64)
    return None


def read_labels_table(source, *, n_volumes: int | None = None) -> pd.DataFrame:
    """Read a per-volume labels table: CSV, TSV or whitespace separated, with a header row.

    The text is checked before it is parsed: its size, that it is text (not
    binary or compressed), the number of lines (at most ``n_volumes + 1``),
    the length of each line and the number of columns. The separator is
    sniffed from the header line (tab, then comma, then semicolon, else runs
    of whitespace). Cells are plain strings, never evaluated: text that looks
    like a spreadsheet formula (``=1+1``) stays text. Columns in which every
    cell is a plain number become integers or floats; whitespace around cells
    is stripped.

    Parameters
    ----------
    source : str, pathlib.Path or bytes
        The file or its content.
    n_volumes : int, optional
        Number of volumes of the image; when given, the table must have
        exactly one row per volume.

    Returns
    -------
    pandas.DataFrame
        One row per volume, columns named by the header.

    Raises
    ------
    DecodingInputError
        Not a text table, no header row, ragged rows, too large, duplicate or
        empty column names, or a row count different from ``n_volumes``.

    Examples
    --------
    >>> read_labels_table(b"labels,chunks\\nface,0\\nrest,0\\n")["labels"].tolist()
    ['face', 'rest']
    """
    data, name = _read_label_bytes(source)
    _check_raw_lines(data, name, n_volumes)
    lines = _table_lines(_decode_text(data, name), name, n_volumes)
    separator = _sniff_separator(lines[0])
    header = _split_rows(lines[:1], separator, name)[0]
    _check_header(header, name, n_rows=len(lines) - 1)
    body = _split_rows(lines, separator, name)[1:]
    _check_body(body, header, name, n_volumes)
    return _typed_table(header, body)


def _table_lines(text: str, name: str, n_volumes: int | None) -> list[str]:
    """The lines of the table, blank lines around it dropped; every line checked for length and content."""
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    while lines and not lines[0].strip():
        lines.pop(0)
    if not lines:
        raise DecodingInputError(
            f"{name.capitalize()} is empty. Give a table with a header row (e.g. 'labels chunks') and one row per volume."
        )
    n_rows = len(lines) - 1
    if n_volumes is not None and n_rows > n_volumes:
        raise _length_error(n_rows, n_volumes)
    if n_rows > MAX_LABEL_ROWS:
        raise DecodingInputError(f"{name.capitalize()} has {n_rows} rows; at most {MAX_LABEL_ROWS} are accepted.")
    for number, line in enumerate(lines, start=1):
        if len(line) > MAX_LABEL_LINE_CHARS:
            raise DecodingInputError(
                f"Line {number} of {name} is {len(line)} characters long; at most {MAX_LABEL_LINE_CHARS} "
                "are accepted. A labels table has a few short columns per volume."
            )
        if not line.strip():
            raise DecodingInputError(
                f"Line {number} of {name} is empty. Every line below the header must describe one volume; "
                "remove the empty line (or fill it in)."
            )
    return lines


def _check_header(header: list[str], name: str, n_rows: int) -> None:
    """Refuse too many, empty, duplicate or numeric column names, and too many cells in all."""
    if len(header) > MAX_LABEL_COLUMNS:
        raise DecodingInputError(
            f"{name.capitalize()} has {len(header)} columns; at most {MAX_LABEL_COLUMNS} are accepted. "
            "Keep the label and run columns (and a few others)."
        )
    if any(not column for column in header):
        raise DecodingInputError(f"{name.capitalize()} has an empty column name in its header row: name every column.")
    if len(set(header)) != len(header):
        duplicates = sorted({c for c in header if header.count(c) > 1})
        raise DecodingInputError(
            f"{name.capitalize()} has duplicate column names ({', '.join(duplicates)}). Give each column its own name."
        )
    if any(pattern.fullmatch(column) for column in header for _, pattern in _NUMBER_PATTERNS):
        raise DecodingInputError(
            f"{name.capitalize()} seems to have no header row: its first line is "
            f"{' | '.join(header[:6])!r}. Add a first line naming the columns (e.g. 'labels chunks')."
        )
    # Checked before the rows are split: the cells become Python objects.
    if n_rows * len(header) > MAX_LABEL_CELLS:
        raise DecodingInputError(
            f"{name.capitalize()} has {n_rows:,} rows of {len(header)} columns; at most "
            f"{MAX_LABEL_CELLS:,} cells are accepted. Keep the label and run columns."
        )


def _check_body(body: list[list[str]], header: list[str], name: str, n_volumes: int | None) -> None:
    """Refuse ragged rows, and a row count other than ``n_volumes`` when it is given."""
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DecodingInputError(
                f"Line {number} of {name} has {len(row)} values but the header names {len(header)} columns "
                f"({', '.join(header[:8])}). Every row needs one value per column."
            )
    if n_volumes is not None and len(body) != n_volumes:
        raise _length_error(len(body), n_volumes)


def _typed_table(header: list[str], body: list[list[str]]) -> pd.DataFrame:
    """The table with all-number columns as int64 or float64 and the others as strings."""
    columns = {}
    for index, column in enumerate(header):
        values = [row[index] for row in body]
        numeric = _numeric_column(values)
        columns[column] = numeric if numeric is not None else pd.array(values, dtype="str")
    return pd.DataFrame(columns)


# -- condition names that differ only by case or surrounding whitespace ----------------------------


def _variant_key(name: str) -> str:
    return name.strip().casefold()


def label_variants(labels) -> list[tuple[str, ...]]:
    """Groups of condition names that differ only by case or surrounding whitespace.

    Such names ("Face" and "face", "cat " and "cat") are distinct classes to a
    classifier; they are usually one condition spelled two ways.

    Parameters
    ----------
    labels : sequence of str
        The labels column, one value per volume.

    Returns
    -------
    list of tuple of str
        One tuple per group of two or more spellings, its most frequent spelling
        first (ties: the first to appear), then the others by frequency; groups
        in the order their first member appears.

    Examples
    --------
    >>> label_variants(["face", "cat", "Face", "face", "cat "])
    [('face', 'Face'), ('cat', 'cat ')]
    """
    counts = Counter(str(label) for label in labels)
    order = {name: position for position, name in enumerate(counts)}  # Counter keeps first appearance
    groups: dict[str, list[str]] = {}
    for name in counts:
        groups.setdefault(_variant_key(name), []).append(name)
    return [tuple(sorted(names, key=lambda name: (-counts[name], order[name])))
            for names in groups.values() if len(names) > 1]


def label_variant_mapping(labels) -> dict[str, str]:
    """How `merge_label_variants` renames: each spelling of a group -> its canonical name.

    The canonical name of a group is its most frequent spelling (ties: the
    first to appear), without surrounding whitespace. Names in no group are
    absent; so is a canonical spelling that is kept as it is.

    Examples
    --------
    >>> label_variant_mapping(["face", "Face", "face", "cat", "cat "])
    {'Face': 'face', 'cat ': 'cat'}
    """
    mapping = {}
    for group in label_variants(labels):
        canonical = group[0].strip()
        mapping.update({name: canonical for name in group if name != canonical})
    return mapping


def merge_label_variants(dataset):
    """The data set with the spellings of each condition merged into its canonical name.

    Only asked for by the user (the app's Data page, a script): two spellings
    may be meant as two conditions. The merged data set has its own content
    digest, so nothing computed on the unmerged one is reused for it, and its
    title and description say what was merged.

    Parameters
    ----------
    dataset : decoding_core.datasets.Dataset

    Returns
    -------
    Dataset
        ``dataset`` itself when no condition has two spellings (see `label_variant_mapping`).
    """
    mapping = label_variant_mapping(dataset.conditions)
    if not mapping:
        return dataset
    table = dataset.labels.copy()
    merged = [mapping.get(name, name) for name in dataset.conditions]
    table[dataset.label_column] = pd.array(merged, dtype="str")
    digest = hashlib.sha256(f"{dataset.digest}\0merged label variants\0".encode())
    digest.update(json.dumps(sorted(mapping.items())).encode())
    renamed = "; ".join(f"{', '.join(repr(n) for n in names)} -> {canonical!r}"
                        for canonical, names in _names_by_canonical(mapping).items())
    return dataclasses.replace(
        dataset, labels=table, digest=digest.hexdigest(),
        label_renames={**dataset.label_renames, **mapping},
        title=f"{dataset.title} (condition names merged)",
        description=" ".join(filter(None, [dataset.description, f"Condition names merged: {renamed}."])),
    )


def _names_by_canonical(mapping: dict) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, canonical in mapping.items():
        grouped.setdefault(canonical, []).append(name)
    return grouped
