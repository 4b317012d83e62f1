"""The decoding configuration: one frozen, hashable, serialisable dataclass.

A `DecodingConfig` together with the data set's content digest is the cache
key of a run; it round-trips through JSON and URL query parameters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from decoding_core._validation import check_in, check_range
from decoding_core.decoding.estimators import ESTIMATORS
from decoding_core.decoding.scoring import SCORINGS
from decoding_core.decoding.splits import CV_SCHEMES
from decoding_core.errors import DecodingInputError

DEFAULT_CONDITIONS = ("face", "cat")


@dataclass(frozen=True)
class DecodingConfig:
    """Everything that defines a decoding run on a given data set.

    Parameters
    ----------
    conditions : tuple of str, default=("face", "cat")
        Labels of the volumes to keep and decode; at least two.
    mask_name : str, default="vt"
        Name of one of the data set's masks.
    standardize : bool, default=True
        Z-score each voxel's time series (``standardize="zscore_sample"``
        in nilearn's ``NiftiMasker``).
    detrend : bool, default=False
        Remove a linear trend from each voxel's time series before standardizing.
    smoothing_fwhm : float or None, default=None
        Full width at half maximum, in millimetres, of a Gaussian spatial
        smoothing applied to each volume before masking; None for none.
    estimator : str, default="svc"
        Key of `ESTIMATORS`.
    C : float, default=1.0
        Inverse regularisation strength (for the ridge classifier,
        ``alpha = 1 / (2 C)``).
    cv : str, default="leave-one-run-out"
        Key of `CV_SCHEMES`.
    n_folds : int, default=5
        K of the K-fold scheme.
    holdout_size : int, default=30
        Number of last samples held out by the hold-out scheme.
    tune_C : bool, default=False
        Choose C by an inner cross-validation on each training fold.
    screening_percentile : float or None, default=None
        Keep this percentage of voxels by ANOVA F-score, fitted on each
        training fold; None keeps all voxels.
    scoring : str, default="accuracy"
        Key of `SCORINGS`.
    """

    conditions: tuple[str, ...] = DEFAULT_CONDITIONS
    mask_name: str = "vt"
    standardize: bool = True
    detrend: bool = False
    smoothing_fwhm: float | None = None
    estimator: str = "svc"
    C: float = 1.0
    cv: str = "leave-one-run-out"
    n_folds: int = 5
    holdout_size: int = 30
    tune_C: bool = False
    screening_percentile: float | None = None
    scoring: str = "accuracy"

    def __post_init__(self):
        conditions = self.conditions
        if isinstance(conditions, str):
            conditions = (conditions,)
        conditions = tuple(str(c) for c in conditions)
        object.__setattr__(self, "conditions", conditions)
        if len(set(conditions)) < 2:
            raise DecodingInputError(
                "Select at least two different conditions to decode. "
                f"Got {list(conditions)!r}."
            )
        if len(set(conditions)) != len(conditions):
            raise DecodingInputError(
                f"Each condition may be selected only once. Got {list(conditions)!r}."
            )
        if not isinstance(self.mask_name, str) or not self.mask_name:
            raise DecodingInputError(f"'mask_name' must be a non-empty string. Got {self.mask_name!r}.")
        for flag in ("standardize", "detrend", "tune_C"):
            if not isinstance(getattr(self, flag), bool):
                raise DecodingInputError(f"'{flag}' must be True or False. Got {getattr(self, flag)!r}.")
        if self.smoothing_fwhm is not None:
            check_range(self.smoothing_fwhm, "smoothing_fwhm", low=0, high=50)
            object.__setattr__(self, "smoothing_fwhm", float(self.smoothing_fwhm) or None)
        check_in(self.estimator, ESTIMATORS, "estimator")
        check_range(self.C, "C", low=0, low_inclusive=False, high=1e6)
        object.__setattr__(self, "C", float(self.C))
        check_in(self.cv, CV_SCHEMES, "cv")
        check_range(self.n_folds, "n_folds", low=2, high=1000, integer=True)
        check_range(self.holdout_size, "holdout_size", low=1, high=100_000, integer=True)
        if self.screening_percentile is not None:
            check_range(self.screening_percentile, "screening_percentile", low=0, low_inclusive=False, high=100)
            value = float(self.screening_percentile)
            object.__setattr__(self, "screening_percentile", None if value >= 100 else value)
        check_in(self.scoring, SCORINGS, "scoring")

    # -- serialisation -----------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON-compatible dict of every setting."""
        data = dataclasses.asdict(self)
        data["conditions"] = list(self.conditions)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "DecodingConfig":
        """Build a configuration from `to_dict` output; unknown keys are refused."""
        if not isinstance(data, dict):
            raise DecodingInputError(f"A configuration must be a JSON object. Got {type(data).__name__}.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DecodingInputError(
                f"Unknown configuration setting(s) {unknown}. Known settings are: {sorted(known)}."
            )
        values = dict(data)
        if "conditions" in values and isinstance(values["conditions"], list):
            values["conditions"] = tuple(values["conditions"])
        return cls(**values)

    def to_json(self, **kwargs) -> str:
        """The configuration as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str | bytes) -> "DecodingConfig":
        """Parse a configuration written by `to_json`."""
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as err:
            raise DecodingInputError(f"The configuration is not valid JSON: {err}.") from None
        return cls.from_dict(data)

    def digest(self) -> str:
        """A short, stable content digest of the configuration (cache key)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def replace(self, **changes) -> "DecodingConfig":
        """A copy with some settings changed (validated again)."""
        return dataclasses.replace(self, **changes)
