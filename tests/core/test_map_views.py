"""What a weight-map view shows: kinds, names, one 3D map, its range, where to cut (decoding_core.map_views)."""

from __future__ import annotations

from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from decoding_core import map_views


def _image(data):
    return nib.Nifti1Image(np.asarray(data, dtype=np.float32), np.eye(4))


def test_cut_from_selection_reads_the_voxel_of_a_click():
    selection = {"points": [{"x": 1.0, "y": 2.0, "customdata": {"0": 4, "1": 7, "2": 2}}]}
    assert map_views.cut_from_selection(selection) == (4, 7, 2)
    assert map_views.cut_from_selection({"points": []}) is None
    assert map_views.cut_from_selection(None) is None


def test_clamp_cut_stays_inside_the_grid():
    assert map_views.clamp_cut((-3, 50, 4), (10, 20, 30)) == (0, 19, 4)


def test_default_cut_is_the_peak_else_the_centre():
    data = np.zeros((5, 6, 7))
    data[1, 2, 3] = 9.0
    assert map_views.default_cut(_image(data)) == (1, 2, 3)
    odd = SimpleNamespace(shape=(4, 6, 8))  # not an image: the centre of its grid
    assert map_views.default_cut(odd) == (2, 3, 4)


def test_kinds_names_and_images_of_a_result():
    weights4d = _image(np.stack([np.full((2, 2, 2), v) for v in (1.0, -2.0, 3.0)], axis=-1))
    pattern = _image(np.ones((2, 2, 2, 3)))
    result = SimpleNamespace(weights=np.zeros((3, 8)), weight_img=weights4d, classes=("cat", "face", "house"),
                             pattern_img=pattern, stability_img=None)
    assert map_views.available_map_kinds(result) == ["weights", "pattern"]
    assert map_views.map_names(result) == ["cat vs rest", "face vs rest", "house vs rest"]
    assert map_views.result_map(result, "stability") is weights4d  # missing: the weights
    second = map_views.map_image(result, "weights", 1)
    assert second.shape == (2, 2, 2) and float(second.get_fdata().max()) == -2.0
    assert float(map_views.map_image(result, "weights", 99).get_fdata().max()) == 3.0  # clipped to the last
    assert map_views.map_abs_max(second) == pytest.approx(2.0)
    binary = SimpleNamespace(weights=np.zeros((1, 8)), classes=("cat", "face"))
    assert map_views.map_names(binary) == ["face vs cat"]
    with pytest.warns(RuntimeWarning, match="All-NaN"):  # numpy says so; the slider still gets 0
        assert map_views.map_abs_max(_image(np.full((2, 2, 2), np.nan))) == 0.0
