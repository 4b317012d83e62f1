"""fMRI Decoding Lab's core: data sets, masking, decoding, figures and exports.

Pure Python; it never imports streamlit, so it runs from a notebook, a
script, the command line or a test.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "CV_SCHEMES", "ESTIMATORS", "SCORINGS", "DecodingConfig", "DecodingInputError"]

#: Names re-exported here, and the module each comes from. They are imported when first
#: used (PEP 562), not with the package: ``python -m decoding_core`` starts reading the
#: image before scikit-learn is imported (`decoding_core.__main__`).
_EXPORTS = {"CV_SCHEMES": "config", "ESTIMATORS": "config", "SCORINGS": "config",
            "DecodingConfig": "config", "DecodingInputError": "errors"}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f"decoding_core.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'decoding_core' has no attribute {name!r}")
