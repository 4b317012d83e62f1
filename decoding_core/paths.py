"""Where the project keeps files it makes (the simulated data set, run history)."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from decoding_core import environment

#: Environment variable naming the app's data directory.
DATA_DIR_ENV = environment.DATA_DIR


def data_dir() -> Path:
    """The app's data directory, created if missing.

    ``$DECODING_LAB_DATA_DIR`` when set, else ``~/.cache/fmri-decoding-lab``.
    """
    path = environment.read(DATA_DIR_ENV) or Path.home() / ".cache" / "fmri-decoding-lab"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(target):
    """A temporary path beside ``target``, renamed onto it when the block succeeds.

    Write the file at the yielded path. A reader never sees a half-written
    ``target``, and the rename gives ``target`` a new inode, so a file hard-linked
    elsewhere is never rewritten under its other name. On any error the temporary
    file is removed and ``target`` is left as it was.

    Parameters
    ----------
    target : str or pathlib.Path

    Yields
    ------
    pathlib.Path
        Where to write, in the same folder (the rename must not cross file systems).
    """
    target = Path(target)
    temporary = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
