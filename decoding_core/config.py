"""The decoding configuration and the one registry of its settings.

A `DecodingConfig` together with the data set's content digest is the cache
key of a run; it round-trips through JSON and URL query parameters.

`SETTINGS` describes each setting once: its title, help, kind, range, choices,
command-line flag, URL key and the values a sweep tries. The Configure page's
widgets, the command line (`decoding_core.cli`), links (`decoding_core.urlstate`),
sweeps (`decoding_core.sweeps`) and Compare (`decoding_core.compare`) read it.
The choices of the estimator, scheme and score are the tables of
`decoding_core.decoding`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass

from decoding_core._validation import check_in, check_range
from decoding_core.cleaning import CONFOUND_STRATEGIES, SCOPES, confound_strategies, scope_of
from decoding_core.decoding.estimators import ESTIMATORS
from decoding_core.decoding.scoring import SCORINGS
from decoding_core.decoding.splits import CV_SCHEMES
from decoding_core.errors import DecodingInputError

DEFAULT_CONDITIONS = ("face", "cat")


@dataclass(frozen=True)
class Setting:
    """One setting of `DecodingConfig`, described once.

    Attributes
    ----------
    name : str
        The `DecodingConfig` field.
    title : str
        Short name (Compare's rows, sweep axes, messages).
    label : str
        The Configure page's widget label.
    help : str
        One sentence for the widget's help and the command line's ``--help``.
    kind : {"conditions", "text", "choice", "choices", "bool", "int", "float", "optional_float"}
        How values are typed, parsed and shown (``"choices"``: a tuple of keys of ``choices``, maybe empty).
    url_key : str
        Query parameter of a shared link.
    cli_flag : str
        Command-line option (for a boolean that defaults to True, the flag that turns it off).
    choices : mapping or None
        For ``kind="choice"`` and ``"choices"``: the table of allowed values (name -> object with ``title``).
    cli_off_flag : str or None
        An older command-line flag kept working, that sets the choice ``"none"`` (``--no-standardize``).
    cli_bare_value : str or None
        The value of ``cli_flag`` given without one (``--detrend`` alone, as when it was a yes/no flag).
    low, high : float or None
        Allowed range of a number; ``low_inclusive`` says whether ``low`` itself is allowed.
    sweep_values : tuple or None
        Values a sweep tries by default; None when the setting cannot be swept.
    log_scale : bool
        Sweep and plot the setting on a log axis.
    """

    name: str
    title: str
    label: str
    help: str
    kind: str
    url_key: str
    cli_flag: str
    choices: Mapping | None = None
    cli_off_flag: str | None = None
    cli_bare_value: str | None = None
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    sweep_values: tuple | None = None
    log_scale: bool = False

    def check(self, value) -> None:
        """Raise `DecodingInputError` unless ``value`` is allowed (numbers: in range; choices: known)."""
        if self.kind == "choice":
            check_in(value, self.choices, self.name)
        elif self.kind == "choices":
            for item in value:
                check_in(item, self.choices, self.name)
        elif self.kind in ("int", "float") or (self.kind == "optional_float" and value is not None):
            check_range(value, self.name, low=self.low, high=self.high, low_inclusive=self.low_inclusive,
                        integer=self.kind == "int")


#: Every setting of `DecodingConfig`, in the order the app and exports show them.
SETTINGS = {
    setting.name: setting
    for setting in (
        Setting("conditions", "Conditions", "Conditions",
                "At least two. Two gives a binary problem as in the tutorial; more gives a multi-class one.",
                "conditions", "cond", "--conditions"),
        Setting("mask_name", "Mask", "Mask (which voxels)", "Which of the data set's masks selects the voxels.",
                "text", "mask", "--mask-name", sweep_values=("vt", "face", "house")),
        Setting("standardize", "Standardize", "Z-score each voxel's time series",
                "Z-score each voxel (ddof=1) over the whole series (the tutorial's NiftiMasker("
                "standardize='zscore_sample')), within each run over all of its volumes, or not; "
                "fitted before conditions are chosen, without labels.",
                "choice", "std", "--standardize", choices=SCOPES, cli_off_flag="--no-standardize",
                sweep_values=tuple(SCOPES)),
        Setting("detrend", "Detrend", "Remove a linear trend per voxel",
                "Remove a linear trend from each voxel's time series, over the whole series or within "
                "each run, before standardizing.",
                "choice", "detrend", "--detrend", choices=SCOPES, cli_bare_value="series",
                sweep_values=tuple(SCOPES)),
        Setting("high_pass", "High-pass (Hz)", "High-pass filter cutoff (Hz)",
                "Remove slow drifts below this frequency in Hz within each run (nilearn's Butterworth "
                "filter, with the data set's TR); none for none.",
                "optional_float", "hp", "--high-pass", low=0, high=10, low_inclusive=False,
                sweep_values=(None, 0.008, 0.01, 0.02)),
        Setting("confounds", "Confounds", "fMRIPrep confounds to regress out",
                "fMRIPrep confounds regressed out of each run (nilearn's load_confounds strategies); "
                "needs an fMRIPrep data set. Scrubbing drops high-motion volumes.",
                "choices", "conf", "--confounds", choices=CONFOUND_STRATEGIES),
        Setting("smoothing_fwhm", "Smoothing FWHM (mm)", "Smoothing FWHM (mm)",
                "FWHM in mm of a Gaussian spatial smoothing of each volume before masking; none for none.",
                "optional_float", "fwhm", "--smoothing", low=0, high=50, sweep_values=(None, 4.0, 6.0, 8.0)),
        Setting("estimator", "Estimator", "Classifier", "The linear classifier.",
                "choice", "est", "--estimator", choices=ESTIMATORS, sweep_values=tuple(ESTIMATORS)),
        Setting("C", "C", "Regularisation C (smaller = stronger regularisation)",
                "Inverse regularisation strength (ridge: alpha = 1 / (2 C)).",
                "float", "C", "--C", low=0, high=1e6, low_inclusive=False,
                sweep_values=(0.001, 0.01, 0.1, 1.0, 10.0, 100.0), log_scale=True),
        Setting("tune_C", "Tune C (inner CV)", "Choose C by nested cross-validation within each training fold",
                "C is chosen by an inner cross-validation on each training fold only.",
                "bool", "tuneC", "--tune-C", sweep_values=(False, True)),
        Setting("screening_percentile", "ANOVA screening (%)", "ANOVA screening: keep this % of voxels (100 = all)",
                "Keep this percentage of voxels, ranked by ANOVA F-score on the training fold only, so no test "
                "data leak into the choice.",
                "optional_float", "screen", "--screening", low=0, high=100, low_inclusive=False,
                sweep_values=(None, 50.0, 20.0, 10.0, 5.0)),
        Setting("cv", "Evaluation scheme", "Evaluation scheme", "How the samples are split into training and test.",
                "choice", "cv", "--cv", choices=CV_SCHEMES, sweep_values=tuple(CV_SCHEMES)),
        Setting("n_folds", "K (k-fold)", "K (number of folds)", "K of the K-fold scheme.",
                "int", "k", "--folds", low=2, high=1000, sweep_values=(2, 3, 5, 10)),
        Setting("holdout_size", "Held-out samples", "N (number of last samples held out)",
                "Number of last samples held out by the hold-out scheme.",
                "int", "holdout", "--holdout", low=1, high=100_000, sweep_values=(10, 20, 30, 50)),
        Setting("scoring", "Scoring", "Score", "The score of each test fold.",
                "choice", "score", "--scoring", choices=SCORINGS, sweep_values=tuple(SCORINGS)),
    )
}


def format_value(value) -> str:
    """A setting's value as text: ``none``, ``yes``/``no``, ``0.01``, ``svc``, ``face, cat``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value) if value else "none"
    return str(value)


@dataclass(frozen=True)
class DecodingConfig:
    """Everything that defines a decoding run on a given data set.

    Parameters
    ----------
    conditions : tuple of str, default=("face", "cat")
        Labels of the volumes to keep and decode; at least two.
    mask_name : str, default="vt"
        Name of one of the data set's masks.
    standardize : {"series", "run", "none"}, default="series"
        Z-score each voxel's time series (ddof=1) over the whole series
        (``NiftiMasker(standardize="zscore_sample")``), within each run, or not
        (`decoding_core.cleaning.SCOPES`). True and False, as older
        configurations say, mean "series" and "none".
    detrend : {"series", "run", "none"}, default="none"
        Remove a linear trend from each voxel's time series before
        standardizing, over the series or within each run (True: "series").
    high_pass : float or None, default=None
        High-pass cutoff in Hz (nilearn's Butterworth filter within each run);
        needs the data set's TR.
    confounds : tuple of str, default=()
        fMRIPrep confound strategies regressed out of each run
        (`decoding_core.cleaning.CONFOUND_STRATEGIES`).
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
    standardize: str = "series"
    detrend: str = "none"
    high_pass: float | None = None
    confounds: tuple[str, ...] = ()
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
        if not isinstance(self.tune_C, bool):
            raise DecodingInputError(f"'tune_C' must be True or False. Got {self.tune_C!r}.")
        # Older configurations, links and history records say True/False.
        object.__setattr__(self, "standardize", scope_of(self.standardize, "standardize"))
        object.__setattr__(self, "detrend", scope_of(self.detrend, "detrend"))
        object.__setattr__(self, "confounds", confound_strategies(self.confounds))
        for setting in SETTINGS.values():
            setting.check(getattr(self, setting.name))
        if self.smoothing_fwhm is not None:
            object.__setattr__(self, "smoothing_fwhm", float(self.smoothing_fwhm) or None)
        object.__setattr__(self, "C", float(self.C))
        if self.high_pass is not None:
            object.__setattr__(self, "high_pass", float(self.high_pass))
        if self.screening_percentile is not None:
            value = float(self.screening_percentile)
            object.__setattr__(self, "screening_percentile", None if value >= 100 else value)

    # -- serialisation -----------------------------------------------------
    def to_dict(self) -> dict:
        """Plain JSON-compatible dict of every setting."""
        data = dataclasses.asdict(self)
        data["conditions"] = list(self.conditions)
        data["confounds"] = list(self.confounds)
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

    def cleaning_options(self) -> dict:
        """The cleaning settings as `decoding_core.masking.mask_dataset` takes them."""
        return {"standardize": self.standardize, "detrend": self.detrend, "high_pass": self.high_pass,
                "confounds": self.confounds}
