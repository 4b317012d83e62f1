"""The names of the built-in data sets, parsed in one place.

A built-in data set is named by a short text: ``"simulated"`` (seed 0),
``"simulated:SEED"`` or ``"haxby:N"`` (subject N of Haxby et al. 2001). The
command line's ``--dataset``, links (``data=haxby:2``), the run history and
the exported ``reproduce.py`` all read that text through `DatasetSpec`, and
the loaders name what they load with ``str(DatasetSpec(...))``, so the text
and its meaning are written once.

A data set loaded from a BIDS folder is not built in: its name,
``bids:<root>?sub=...&task=...&lag=...``, is written and read by
`decoding_core.datasets.bids.BidsSelection` (the history and ``reproduce.py`` read
it back); links never carry it, since it is a path on the machine that loaded it.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from decoding_core.errors import DecodingInputError, DecodingInputTypeError

#: The kinds of built-in data set.
SIMULATED = "simulated"
HAXBY = "haxby"

#: Subjects of the Haxby et al. (2001) data set.
HAXBY_SUBJECTS = (1, 2, 3, 4, 5, 6)
#: The subject ``"haxby"`` without a number means (the default of `load_haxby`).
DEFAULT_HAXBY_SUBJECT = 2
#: Largest seed of the simulated data set (numpy seeds are 32-bit here).
MAX_SEED = 2**32 - 1

_NUMBER = re.compile(r"[0-9]+")


def check_seed(seed) -> int:
    """``seed`` as an int, or an error naming the accepted range.

    Raises
    ------
    DecodingInputTypeError
        Not an integer (a bool, a float or a string is not accepted).
    DecodingInputError
        Outside ``[0, MAX_SEED]``.
    """
    try:
        if isinstance(seed, bool):
            raise TypeError
        value = operator.index(seed)
    except TypeError:
        raise DecodingInputTypeError(f"'seed' must be an integer in the range [0, {MAX_SEED}]. Got {seed!r}.") from None
    if not 0 <= value <= MAX_SEED:
        raise DecodingInputError(f"'seed' must be an integer in the range [0, {MAX_SEED}]. Got {seed!r}.")
    return int(value)


def check_subject(subject) -> int:
    """``subject`` as an int from 1 to 6, or an error saying which subjects exist.

    Raises
    ------
    DecodingInputTypeError
        Not an integer (a bool, a float or a string is not accepted).
    DecodingInputError
        Not one of `HAXBY_SUBJECTS`.
    """
    low, high = HAXBY_SUBJECTS[0], HAXBY_SUBJECTS[-1]
    if isinstance(subject, bool) or not hasattr(subject, "__index__"):
        raise DecodingInputTypeError(f"'subject' must be an integer in the range [{low}, {high}]. Got {subject!r}.")
    if operator.index(subject) not in HAXBY_SUBJECTS:
        raise DecodingInputError(
            f"'subject' must be an integer in the range [{low}, {high}]. Got {subject!r}. "
            f"The Haxby 2001 data set has subjects {low} to {high}."
        )
    return operator.index(subject)


@dataclass(frozen=True)
class DatasetSpec:
    """A built-in data set, as named by ``"simulated"``, ``"simulated:SEED"`` or ``"haxby:N"``.

    Parameters
    ----------
    kind : {"simulated", "haxby"}
        Which data set.
    subject : int or None, default=None
        The Haxby subject, 1 to 6; required for ``"haxby"``, None otherwise.
    seed : int, default=0
        The seed of the simulated data set; 0 for ``"haxby"``.

    See Also
    --------
    load_dataset : Load the data set a spec names.

    Examples
    --------
    >>> DatasetSpec.parse(" Haxby:2 ")
    DatasetSpec(kind='haxby', subject=2, seed=0)
    >>> str(DatasetSpec.parse("simulated:3"))
    'simulated:3'
    >>> DatasetSpec.from_name("upload") is None
    True
    """

    kind: str
    subject: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in (SIMULATED, HAXBY):
            raise DecodingInputError(f"'kind' must be one of {SIMULATED!r}, {HAXBY!r}. Got {self.kind!r}.")
        object.__setattr__(self, "seed", check_seed(self.seed))
        if self.kind == HAXBY:
            object.__setattr__(self, "subject", check_subject(self.subject))
            if self.seed != 0:
                raise DecodingInputError(f"The Haxby data set has no seed. Got seed={self.seed!r}.")
        elif self.subject is not None:
            raise DecodingInputError(f"The simulated data set has no subject. Got subject={self.subject!r}.")

    @classmethod
    def parse(cls, text) -> DatasetSpec:
        """The spec a text names; case and surrounding spaces do not matter.

        ``"haxby"`` alone is subject `DEFAULT_HAXBY_SUBJECT`, ``"simulated"``
        alone seed 0.

        Parameters
        ----------
        text : str
            ``"simulated"``, ``"simulated:SEED"`` or ``"haxby:N"``.

        Returns
        -------
        DatasetSpec

        Raises
        ------
        DecodingInputError
            An unknown data set, or a seed or subject that is not a
            non-negative integer in range. The message lists the choices.
        """
        if not isinstance(text, str):
            raise DecodingInputTypeError(f"'spec' must be a str. Got {text!r}.")
        name, _, argument = text.strip().lower().partition(":")
        if argument and not _NUMBER.fullmatch(argument):
            if name == SIMULATED:
                raise DecodingInputError(f"The seed in {text!r} must be a non-negative integer, as in 'simulated:3'.")
            if name == HAXBY:
                raise DecodingInputError(
                    f"The subject in {text!r} must be an integer in the range [1, 6], as in 'haxby:2': "
                    "the Haxby 2001 data set has subjects 1 to 6."
                )
        if name == SIMULATED:
            return cls(SIMULATED, seed=int(argument) if argument else 0)
        if name == HAXBY:
            return cls(HAXBY, subject=int(argument) if argument else DEFAULT_HAXBY_SUBJECT)
        raise DecodingInputError(
            f"Unknown data set {text!r}. Choose one of: {', '.join(DATASET_CHOICES)} (or 'simulated:SEED')."
        )

    @classmethod
    def from_name(cls, name) -> DatasetSpec | None:
        """The spec of a data set's recorded name (`Dataset.name`), or None when none fits.

        Unlike `parse`, nothing is forgiven: the name must be exactly what a
        loader writes (``"haxby:2"``, not ``"Haxby:02"``). Uploads
        (``"upload"``), paths and anything else give None.
        """
        if not isinstance(name, str):
            return None
        try:
            spec = cls.parse(name)
        except DecodingInputError:
            return None
        return spec if str(spec) == name else None

    @property
    def shareable(self) -> bool:
        """Whether links and the app may name it: one of `DATASET_CHOICES`.

        A seeded simulated data set is not (the app offers seed 0 only).
        """
        return str(self) in DATASET_CHOICES

    def __str__(self) -> str:
        if self.kind == HAXBY:
            return f"{HAXBY}:{self.subject}"
        return SIMULATED if self.seed == 0 else f"{SIMULATED}:{self.seed}"


#: The data sets the app offers (and links may name), spec text -> title.
DATASET_CHOICES = {
    str(DatasetSpec(SIMULATED)): "Simulated Haxby-like data (built in, works offline)",
    **{str(DatasetSpec(HAXBY, subject=n)): f"Haxby et al. (2001), subject {n} (download ~300 MB)"
       for n in HAXBY_SUBJECTS},
}
