"""Tests of decoding_core.plotting as a package: what it imports and what it re-exports."""

from __future__ import annotations

import subprocess
import sys

from decoding_core import plotting
from decoding_core.plotting import data, results, slices


def test_plotting_and_export_do_not_import_streamlit():
    code = "import sys, decoding_core.plotting, decoding_core.export; print('streamlit' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"


def test_the_package_re_exports_every_public_builder_of_its_modules():
    for module in (slices, data, results):
        for name in module.__all__:
            assert getattr(plotting, name) is getattr(module, name)
    assert sorted(plotting.__all__) == sorted(slices.__all__ + data.__all__ + results.__all__)
