"""The Data page's checks of an upload: condition names spelled two ways, voxels holding NaN or inf.

Each is reported (with the names, with the counts), and changed only when the user ticks
the Data page's box; the decoding then equals scikit-learn on the data as changed.
"""

from __future__ import annotations

import gzip
import warnings

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.maskers import NiftiMasker
from sklearn.model_selection import LeaveOneGroupOut, cross_val_score
from sklearn.svm import SVC

from tests.app._helpers import (
    assert_no_traceback,
    error_texts,
    go_to,
    run_from_configure,
    start_app,
    upload_files,
)
from ui import state


def upload(at, func: bytes, labels: bytes, mask: bytes):
    """Upload the image, labels table and mask, and check they loaded without an error."""
    upload_files(at, ("bold.nii.gz", func, "application/gzip"), ("labels.txt", labels, "text/plain"),
                 ("mask.nii.gz", mask, "application/gzip"))
    assert not at.error, error_texts(at)
    return at


def sklearn_face_vs_cat(func, mask_img, labels: np.ndarray, runs: np.ndarray) -> np.ndarray:
    """Fold scores of the tutorial's pipeline: NiftiMasker z-scores, linear SVC, leave one run out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        X = NiftiMasker(mask_img=mask_img, standardize="zscore_sample").fit_transform(func)
    keep = np.isin(labels, ["face", "cat"])
    return cross_val_score(SVC(kernel="linear"), X[keep], labels[keep], cv=LeaveOneGroupOut(), groups=runs[keep])


def warning_texts(at) -> list[str]:
    return [element.value for element in at.warning]


@pytest.mark.slow
def test_case_variants_are_reported_and_merged_only_when_asked(haxby_slice_dir):
    table = pd.read_csv(haxby_slice_dir / "labels.txt", sep=" ")
    # A third of the face blocks spelled 'Face': the classifier would see two classes.
    spelled = table["labels"].where(~((table["labels"] == "face") & (table["chunks"] < 4)), "Face")
    labels_bytes = pd.DataFrame({"labels": spelled, "chunks": table["chunks"]}).to_csv(sep=" ", index=False).encode()
    at = start_app()
    upload(at, (haxby_slice_dir / "bold.nii.gz").read_bytes(), labels_bytes,
           (haxby_slice_dir / "mask.nii.gz").read_bytes())
    assert any("'face' / 'Face'" in text for text in warning_texts(at)), warning_texts(at)
    assert not at.checkbox(key=state.W_MERGE_VARIANTS).value
    loaded = at.session_state[state.DATASET]

    # Not merged: face vs cat has only the 72 volumes spelled 'face', and Configure warns.
    go_to(at, "configure.py")
    assert any("'face' / 'Face'" in text for text in warning_texts(at)), warning_texts(at)
    unmerged = run_from_configure(at)
    assert unmerged.n_samples == 72 + 108 and unmerged.classes == ("cat", "face")

    go_to(at, "data.py")
    at.checkbox(key=state.W_MERGE_VARIANTS).check()
    at.run()
    assert_no_traceback(at)
    merged_dataset = at.session_state[state.DATASET]
    assert merged_dataset.digest != loaded.digest
    assert "Face" not in set(merged_dataset.conditions) and merged_dataset.title.endswith("(condition names merged)")
    assert at.checkbox(key=state.W_MERGE_VARIANTS).value

    go_to(at, "configure.py")
    assert not any("'Face'" in text for text in warning_texts(at)), warning_texts(at)
    merged = run_from_configure(at)  # the same configuration: never the unmerged run's cached result
    assert merged.n_samples == 216 and merged.classes == ("cat", "face")
    expected = sklearn_face_vs_cat(str(haxby_slice_dir / "bold.nii.gz"), str(haxby_slice_dir / "mask.nii.gz"),
                                   table["labels"].to_numpy(dtype=str), table["chunks"].to_numpy())
    np.testing.assert_allclose(merged.fold_scores, expected, atol=1e-12)

    # Unticked: the data set as loaded comes back.
    go_to(at, "data.py")
    at.checkbox(key=state.W_MERGE_VARIANTS).uncheck()
    at.run()
    assert at.session_state[state.DATASET].digest == loaded.digest


def image_with_nonfinite(haxby_slice_dir):
    """The slice data as float32 .nii.gz bytes, NaN or inf in 3 mask voxels (4 volumes); the mask less them."""
    img = nib.load(haxby_slice_dir / "bold.nii.gz")
    mask_img = nib.load(haxby_slice_dir / "mask.nii.gz")
    data = img.get_fdata(dtype=np.float32)
    mask = np.asarray(mask_img.dataobj) != 0
    voxels = np.argwhere(mask)[[5, 7, 300]]
    for voxel, volume, value in ((0, 100, np.nan), (1, 3, np.inf), (1, 100, -np.inf), (2, 700, np.nan),
                                 (2, 701, np.nan)):
        data[tuple(voxels[voxel]) + (volume,)] = value
    kept = mask.copy()
    kept[tuple(voxels.T)] = False
    image = nib.Nifti1Image(data, img.affine)
    return gzip.compress(image.to_bytes()), image, nib.Nifti1Image(kept.astype(np.uint8), mask_img.affine), kept, mask


@pytest.mark.slow
def test_nan_voxels_are_counted_and_dropped_only_when_asked(haxby_slice_dir):
    func_bytes, image, kept_mask_img, kept, mask = image_with_nonfinite(haxby_slice_dir)
    at = start_app()
    upload(at, func_bytes, (haxby_slice_dir / "labels.txt").read_bytes(),
           (haxby_slice_dir / "mask.nii.gz").read_bytes())
    counts = "3 of the 530 voxels of the mask 'uploaded' (in 4 of the 1452 volumes)"
    assert any(counts in text for text in warning_texts(at)), warning_texts(at)
    loaded = at.session_state[state.DATASET]

    # Not dropped: Configure names the count and does not run.
    go_to(at, "configure.py")
    assert any(counts in text for text in error_texts(at)), error_texts(at)
    assert at.button(key=state.W_RUN).disabled

    go_to(at, "data.py")
    at.checkbox(key=state.W_DROP_NONFINITE).check()
    at.run()
    assert_no_traceback(at)
    assert at.session_state[state.DATASET].digest != loaded.digest
    go_to(at, "configure.py")
    assert not at.error, error_texts(at)
    result = run_from_configure(at)
    assert result.n_voxels == 527
    table = pd.read_csv(haxby_slice_dir / "labels.txt", sep=" ")
    expected = sklearn_face_vs_cat(image, kept_mask_img, table["labels"].to_numpy(dtype=str),
                                   table["chunks"].to_numpy())
    np.testing.assert_allclose(result.fold_scores, expected, atol=1e-12)
    weights = result.weight_img.get_fdata()
    assert np.all(weights[mask & ~kept] == 0) and np.count_nonzero(weights[kept]) > 500
