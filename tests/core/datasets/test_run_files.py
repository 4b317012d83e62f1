"""Tests of decoding_core.datasets.files.load_run_files: one 4D file per run."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from decoding_core import masking
from decoding_core.datasets import load_files, load_run_files
from decoding_core.errors import DecodingInputError
from decoding_core.io.labels import read_labels_table

TASK = "objectviewing"


def _runs(bids_dir):
    return [bids_dir / "sub-1" / "func" / f"sub-1_task-{TASK}_run-{k:02d}_bold.nii.gz" for k in range(1, 13)]


def _per_run_tables(slice_dir, tmp_path):
    table = read_labels_table(slice_dir / "labels.txt")
    paths = []
    for run in range(12):
        path = tmp_path / f"labels-{run}.tsv"
        table.loc[table["chunks"] == run, ["labels"]].to_csv(path, sep="\t", index=False)
        paths.append(path)
    return paths


def test_run_files_equal_the_one_file_data(haxby_bids_dir, haxby_slice_dir, tmp_path):
    mask = haxby_slice_dir / "mask.nii.gz"
    runs = load_run_files(_runs(haxby_bids_dir), _per_run_tables(haxby_slice_dir, tmp_path), mask=mask,
                          cache_dir=tmp_path / "cache")
    one_file = load_files(haxby_slice_dir / "bold.nii.gz", haxby_slice_dir / "labels.txt", mask=mask)
    assert runs.n_runs == 12 and runs.tr == 2.5 and runs.run_files == tuple(_runs(haxby_bids_dir))
    np.testing.assert_array_equal(runs.conditions, one_file.conditions)
    np.testing.assert_array_equal(runs.runs, one_file.runs)
    a, b = masking.mask_dataset(runs, "uploaded"), masking.mask_dataset(one_file, "uploaded")
    np.testing.assert_array_equal(a.X, b.X)
    # One table for all volumes works too; its run column is ignored (runs come from the files).
    again = load_run_files(_runs(haxby_bids_dir), haxby_slice_dir / "labels.txt", mask=mask,
                           cache_dir=tmp_path / "cache")
    assert again.func_path == runs.func_path and again.digest == runs.digest
    assert "12 run files" in runs.description


def test_run_files_errors(haxby_bids_dir, haxby_slice_dir, tmp_path):
    files = _runs(haxby_bids_dir)[:2]
    tables = _per_run_tables(haxby_slice_dir, tmp_path)[:2]
    with pytest.raises(DecodingInputError, match="one labels table per run: 2 run files and 1 labels tables"):
        load_run_files(files, tables[:1], cache_dir=tmp_path)
    with pytest.raises(DecodingInputError, match=r"labels of the run .*run-02_bold.nii.gz: The labels table has 1 rows "
                                                 r"but the image has 121 volumes"):
        load_run_files(files, [tables[0], b"labels\nface\n"], cache_dir=tmp_path)
    image = nib.load(files[1])
    other = tmp_path / "other_grid.nii.gz"
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj)[:30], image.affine, image.header), other)
    with pytest.raises(DecodingInputError, match=r"other_grid.nii.gz is on another grid than .*run-01"):
        load_run_files([files[0], other], tables, cache_dir=tmp_path)
    slower = tmp_path / "slower.nii.gz"
    header = image.header.copy()
    header.set_zooms((*header.get_zooms()[:3], 3.0))
    nib.save(nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine, header), slower)
    with pytest.raises(DecodingInputError, match=r"slower.nii.gz has a repetition time of 3 s in its header"):
        load_run_files([files[0], slower], tables, cache_dir=tmp_path)
