"""Shared argument checks."""

import pytest

from decoding_core._validation import parse_byte_size
from decoding_core.errors import DecodingInputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("690M", 690_000_000), ("690 MB", 690_000_000), ("512MiB", 512 * 1024**2), ("512mi", 512 * 1024**2),
     ("1.5G", 1_500_000_000), ("629145600", 629_145_600), ("4KiB", 4096)],
)
def test_byte_sizes_in_decimal_and_binary_units(text, expected):
    assert parse_byte_size(text, "LIMIT") == expected


@pytest.mark.parametrize("text", ["", "lots", "-5M", "0", "12X", "M", "nan", "1e400"])
def test_bad_byte_sizes_name_the_setting(text):
    with pytest.raises(DecodingInputError, match="LIMIT must be a positive number of bytes"):
        parse_byte_size(text, "LIMIT")
