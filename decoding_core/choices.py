"""What every entry of the choice tables (estimators, schemes, scores) has in common."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Choice:
    """One value a choice setting offers.

    Attributes
    ----------
    name : str
        Key used by the configuration, the command line, links and exports.
    title : str
        Name shown to the user.
    help : str
        One or two sentences on what it is and when to use it.
    """

    name: str
    title: str
    help: str
