"""fMRI Decoding Lab's core: data sets, masking, decoding, figures and exports.

Pure Python; it never imports streamlit, so it runs from a notebook, a
script, the command line or a test.
"""

__version__ = "0.1.0"

from decoding_core.config import CV_SCHEMES, ESTIMATORS, SCORINGS, DecodingConfig
from decoding_core.errors import DecodingInputError

__all__ = ["__version__", "CV_SCHEMES", "ESTIMATORS", "SCORINGS", "DecodingConfig", "DecodingInputError"]
