"""Tests of decoding_core.datasets.haxby: Haxby 2001 subjects through nilearn, offline."""

from __future__ import annotations

import numpy as np
import pytest

from decoding_core.datasets import HAXBY_CATEGORIES, haxby, load_haxby
from decoding_core.errors import DecodingInputError


def _mask_array(image):
    return np.asanyarray(image.dataobj) != 0


def test_load_haxby_from_files_on_disk(lay_out_haxby, tmp_path, haxby_slice_dir, monkeypatch):
    lay_out_haxby(tmp_path, haxby_slice_dir)

    def no_network(*args, **kwargs):
        raise AssertionError("checked the network although every file is on disk")

    monkeypatch.setattr(haxby, "_download_hosts_reachable", no_network)
    messages = []
    ds = load_haxby(1, data_dir=tmp_path, progress=lambda f, m: messages.append((f, m)))
    assert ds.name == "haxby:1" and "Haxby" in ds.title and "Haxby" in ds.source
    assert ds.shape == (40, 20, 1, 1452) and ds.tr == 2.5 and ds.n_runs == 12
    assert ds.func_path == tmp_path / "haxby2001" / "subj1" / "bold.nii.gz"
    assert set(ds.masks) == {"vt", "face", "house", "face_little", "house_little", "brain"}
    for image in ds.masks.values():
        assert image.shape == (40, 20, 1) and np.allclose(image.affine, ds.affine)
    vt = _mask_array(ds.masks["vt"])
    assert vt.sum() == 530
    assert not (_mask_array(ds.masks["face"]) & ~vt).any()
    assert not (_mask_array(ds.masks["face_little"]) & ~_mask_array(ds.masks["face"])).any()
    assert _mask_array(ds.masks["brain"]).all()  # resampled (nearest) from a finer grid
    assert ds.anat_img.shape == (40, 20, 1) and np.allclose(ds.anat_img.affine, ds.affine)
    assert 100 <= np.asanyarray(ds.anat_img.dataobj).mean() <= 600
    assert set(ds.conditions) == set(HAXBY_CATEGORIES) | {"rest"}
    assert messages and messages[-1][0] == 1.0
    assert load_haxby(1, data_dir=tmp_path).digest == ds.digest


def test_load_haxby_subject_6_without_anat(lay_out_haxby, tmp_path, haxby_slice_dir, monkeypatch):
    lay_out_haxby(tmp_path, haxby_slice_dir, subject=6, anat=False, brain_on_other_grid=False)
    monkeypatch.setattr(haxby, "_download_hosts_reachable", lambda *a, **k: False)
    ds = load_haxby(6, data_dir=tmp_path)
    assert ds.anat_img.shape == (40, 20, 1)  # the mean functional image
    assert "mean functional image" in ds.description


def test_load_haxby_missing_file_without_network_fails_fast(lay_out_haxby, tmp_path, haxby_slice_dir, monkeypatch):
    base = lay_out_haxby(tmp_path, haxby_slice_dir)
    (base / "subj1" / "mask8_face_vt.nii.gz").unlink()
    checked = []

    def unreachable(hosts, timeout):
        checked.append((tuple(hosts), timeout))
        return False

    def fetch_must_not_run(*args, **kwargs):
        raise AssertionError("fetch_haxby called without network")

    monkeypatch.setattr(haxby, "_download_hosts_reachable", unreachable)
    monkeypatch.setattr("nilearn.datasets.fetch_haxby", fetch_must_not_run)
    with pytest.raises(DecodingInputError, match=r"(?s)missing haxby2001/subj1/mask8_face_vt.nii.gz.*no network.*simulated"):
        load_haxby(1, data_dir=tmp_path, connect_timeout=0.5)
    assert checked == [((("data.pymvpa.org", 80),), 0.5)]


def test_load_haxby_real_connectivity_check_without_network(tmp_path):
    # There is no network here: the real check must fail and the loader raise (not hang).
    with pytest.raises(DecodingInputError, match="no network connection"):
        load_haxby(3, data_dir=tmp_path, connect_timeout=2.0)


def test_load_haxby_download_error_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(haxby, "_download_hosts_reachable", lambda *a, **k: True)

    def failing_fetch(*args, **kwargs):
        raise OSError("connection reset by peer")

    monkeypatch.setattr("nilearn.datasets.fetch_haxby", failing_fetch)
    with pytest.raises(DecodingInputError, match="Could not get the Haxby data of subject 2: connection reset"):
        load_haxby(2, data_dir=tmp_path)


@pytest.mark.parametrize("subject", [0, 7, 2.0, "2", True])
def test_load_haxby_subject_checked(subject, tmp_path):
    with pytest.raises(DecodingInputError, match="'subject' must be an integer in the range"):
        load_haxby(subject, data_dir=tmp_path)


def test_haxby_missing_files_lists_what_fetch_haxby_needs(tmp_path):
    missing = haxby.haxby_missing_files(6, data_dir=tmp_path)
    assert "mask.nii.gz" in missing and "MD5SUMS" in missing
    assert "subj6/bold.nii.gz" in missing and "subj6/anat.nii.gz" not in missing
    assert "subj2/anat.nii.gz" in haxby.haxby_missing_files(2, data_dir=tmp_path)
