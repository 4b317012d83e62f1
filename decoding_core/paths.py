"""Where the project keeps files it makes (the simulated data set, run history)."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the app's data directory.
DATA_DIR_ENV = "DECODING_LAB_DATA_DIR"


def data_dir() -> Path:
    """The app's data directory, created if missing.

    ``$DECODING_LAB_DATA_DIR`` when set, else ``~/.cache/fmri-decoding-lab``.
    """
    path = Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".cache" / "fmri-decoding-lab")
    path.mkdir(parents=True, exist_ok=True)
    return path
