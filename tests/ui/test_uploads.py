"""Upload storage helpers that need no running app (ui.uploads, ui.session)."""

from __future__ import annotations

import pytest

from ui.session import upload_root
from ui.uploads import default_column, with_upload_names


def test_upload_root_refuses_a_token_that_could_escape_the_folder():
    with pytest.raises(ValueError):
        upload_root("../other")
    assert upload_root("abc123").name == "abc123"


def test_upload_errors_name_the_users_files_not_the_stored_copies():
    names = {"4D image": "bold.nii.gz", "labels": "my labels.csv"}
    message = "This file ('func.nii.gz') is 3D; func.nii is not NIfTI; labels.txt has 3 rows; mask.nii stays"
    assert with_upload_names(message, names) == (
        "This file ('bold.nii.gz') is 3D; 'bold.nii.gz' is not NIfTI; 'my labels.csv' has 3 rows; mask.nii stays"
    )


def test_default_column_is_case_insensitive():
    assert default_column(["Labels", "chunks"], "labels") == 0
    assert default_column(["x", "Chunks"], "chunks") == 1
    assert default_column(["x", "y"], "chunks") == 0
