"""Decoding: a masked data set and a configuration into fold scores, predictions and maps.

The steps follow nilearn's decoding tutorial (Haxby 2001, face vs cat, linear
SVC) and every evaluation scheme it shows, then go further: other linear
estimators, nested tuning of C, ANOVA screening fitted inside each training
fold, several metrics, activation patterns (Haufe et al. 2014), weight
stability across folds, and warnings about designs that leak.

Where things are:

- `estimators`: `ESTIMATORS`, the one table of classifiers; the pipeline a configuration builds.
- `splits`: `CV_SCHEMES`, the one table of evaluation schemes; `make_splits`.
- `scoring`: `SCORINGS`, the one table of scores; fold scores and chance levels.
- `design`: warnings about leakage and design problems.
- `maps`: weights, activation patterns and sign stability over the voxels.
- `decode`: `decode`, `decode_selected`, `run_decoding` and `DecodingResult`.

The tables import nothing of the configuration, so `decoding_core.config` can
check its settings against them.
"""

from decoding_core.choices import Choice
from decoding_core.decoding.estimators import (
    DEFAULT_C_GRID,
    ESTIMATORS,
    Estimator,
    TunedLinearClassifier,
    build_estimator,
    classifier_C,
    coefficients,
    fit_estimator,
    label_score,
    make_classifier,
)
from decoding_core.decoding.splits import CV_SCHEMES, Scheme, make_splits
from decoding_core.decoding.scoring import SCORINGS, Scoring, chance_level, class_scores, fold_score
from decoding_core.decoding.design import design_warnings
from decoding_core.decoding.maps import activation_pattern, maps_image, sign_stability, weight_maps
from decoding_core.decoding.decode import DecodingResult, decode, decode_selected, run_decoding

__all__ = [
    "CV_SCHEMES", "Choice", "DEFAULT_C_GRID", "ESTIMATORS", "SCORINGS", "DecodingResult", "Estimator", "Scheme",
    "Scoring", "TunedLinearClassifier", "activation_pattern", "build_estimator", "chance_level",
    "class_scores", "classifier_C", "coefficients", "decode", "decode_selected", "design_warnings",
    "fit_estimator", "fold_score", "label_score", "make_classifier", "make_splits", "maps_image",
    "run_decoding", "sign_stability", "weight_maps",
]
