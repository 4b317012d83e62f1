"""Every environment variable the project reads, and the one function that reads them.

`VARIABLES` is the table: each ``DECODING_LAB_*`` variable with its default, how its
text is parsed, what it bounds or sets, and which module uses it. Modules call
`read` (never ``os.environ``), so a variable is parsed one way everywhere and its
error message names it. The README's table of variables is checked against this one
by a test.

Values are read when asked for, not at import: a server started with other
settings, or a test that sets a variable, sees the new value.

Examples
--------
>>> read(SESSION_GRACE_SECONDS)  # doctest: +SKIP
120.0
>>> VARIABLES[MAX_JOBS].bounds
'heavy jobs running at once'
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from decoding_core._validation import TRUE_WORDS, parse_byte_size
from decoding_core.errors import DecodingInputError

DATA_DIR = "DECODING_LAB_DATA_DIR"
HISTORY_PATH = "DECODING_LAB_HISTORY_PATH"
SHARED = "DECODING_LAB_SHARED"
MAX_IMAGE_BYTES = "DECODING_LAB_MAX_IMAGE_BYTES"
HOST_MEMORY_BYTES = "DECODING_LAB_HOST_MEMORY_BYTES"
MAX_JOBS = "DECODING_LAB_MAX_JOBS"
SESSIONS_MAX_BYTES = "DECODING_LAB_SESSIONS_MAX_BYTES"
SESSION_GRACE_SECONDS = "DECODING_LAB_SESSION_GRACE_SECONDS"
SESSION_SWEEP_SECONDS = "DECODING_LAB_SESSION_SWEEP_SECONDS"
SERVER_FOLDERS = "DECODING_LAB_SERVER_FOLDERS"
MAX_ZIP_BYTES = "DECODING_LAB_MAX_ZIP_BYTES"
MAX_ZIP_FILES = "DECODING_LAB_MAX_ZIP_FILES"
MAX_ZIP_RATIO = "DECODING_LAB_MAX_ZIP_RATIO"
SCHEDULER = "DECODING_LAB_SCHEDULER"

def parse_path(raw: str, name: str) -> Path:
    """A path, with ``~`` expanded."""
    return Path(raw).expanduser()


def parse_flag(raw: str, name: str) -> bool:
    """True for a yes word (`decoding_core._validation.TRUE_WORDS`), else False."""
    return raw.strip().lower() in TRUE_WORDS


def parse_positive_int(raw: str, name: str) -> int:
    """A whole number of at least 1."""
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise DecodingInputError(f"{name} must be a positive integer. Got {raw!r}.")
    return value


def parse_seconds(raw: str, name: str) -> float:
    """A number of seconds, at least 0."""
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise DecodingInputError(f"{name} must be a number of seconds >= 0. Got {raw!r}.")
    return value


_SCHEDULER_ADDRESS = re.compile(r"(tcp|tls)://(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(?P<port>[0-9]{1,5})")


def scheduler_address(address) -> str:
    """``address`` as a Dask scheduler address ``tcp://HOST:PORT`` (or ``tls://``), checked.

    Written here, not in `decoding_core.cluster` (which calls it), so that reading the
    variables imports nothing heavy.

    Raises
    ------
    DecodingInputError
        Not of that form, or a port outside 1..65535.
    """
    text = address.strip() if isinstance(address, str) else address
    match = _SCHEDULER_ADDRESS.fullmatch(text) if isinstance(text, str) else None
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise DecodingInputError(
            f"A Dask scheduler address looks like tcp://HOST:PORT (e.g. tcp://127.0.0.1:8786, "
            f"as printed by `dask scheduler`). Got {address!r}."
        )
    return text


def parse_scheduler(raw: str, name: str) -> str:
    """A Dask scheduler address, ``tcp://HOST:PORT`` (`scheduler_address`)."""
    try:
        return scheduler_address(raw)
    except DecodingInputError as err:
        raise DecodingInputError(f"{name}: {err}") from None


@dataclass(frozen=True)
class Variable:
    """One environment variable the project reads.

    Attributes
    ----------
    name : str
        ``DECODING_LAB_...``.
    default : object
        The value when the variable is unset or empty; None when the module that reads
        it computes the default (``default_text`` says how).
    default_text : str
        The default as the README's table writes it.
    parse : callable
        ``parse(raw, name) -> value``; raises `DecodingInputError` naming the variable.
    bounds : str
        What it bounds or sets, in the README's words.
    read_by : str
        The module that reads it.
    """

    name: str
    default: object
    default_text: str
    parse: Callable[[str, str], object]
    bounds: str
    read_by: str


VARIABLES: dict[str, Variable] = {variable.name: variable for variable in (
    Variable(DATA_DIR, None, "~/.cache/fmri-decoding-lab", parse_path,
             "where the simulated data set, uploads and the local history are kept", "decoding_core.paths"),
    Variable(HISTORY_PATH, None, "<data dir>/history.sqlite3", parse_path,
             "the SQLite file of the local run history", "decoding_core.history"),
    Variable(SHARED, False, "off", parse_flag,
             "shared deployment: each browser session keeps its history in memory", "decoding_core.history"),
    Variable(MAX_IMAGE_BYTES, 512 * 1024**2, "512MiB", parse_byte_size,
             "voxel data of one image (a Haxby subject, 476 MB, fits)", "decoding_core.io.nifti"),
    Variable(HOST_MEMORY_BYTES, 690 * 1000**2, "690M", parse_byte_size,
             "memory the job slots are sized from", "ui.server.jobs"),
    Variable(MAX_JOBS, None, "from the memory", parse_positive_int,
             "heavy jobs running at once", "ui.server.jobs"),
    Variable(SESSIONS_MAX_BYTES, 160 * 1024**2, "160MiB", parse_byte_size,
             "everything all sessions' own stores hold together", "ui.server.sessions"),
    Variable(SESSION_GRACE_SECONDS, 120.0, "120", parse_seconds,
             "how long a closed session's data are kept", "ui.server.sessions"),
    Variable(SESSION_SWEEP_SECONDS, 10.0, "10", parse_seconds,
             "how often closed sessions are looked for", "ui.server.sessions"),
    # None: allowed unless DECODING_LAB_SHARED is on (a folder of the server is the host's, not a visitor's).
    Variable(SERVER_FOLDERS, None, "on unless shared", parse_flag,
             "the Data page may open a BIDS folder on the server", "ui.bids"),
    Variable(MAX_ZIP_BYTES, 1024**3, "1GiB", parse_byte_size,
             "files extracted from one uploaded .zip, in all", "decoding_core.io.archive"),
    Variable(MAX_ZIP_FILES, 1000, "1000", parse_positive_int,
             "files in one uploaded .zip", "decoding_core.io.archive"),
    Variable(MAX_ZIP_RATIO, 100, "100", parse_positive_int,
             "how many times one file of a .zip may expand (zip bomb)", "decoding_core.io.archive"),
    Variable(SCHEDULER, None, "none: run here", parse_scheduler,
             "the Dask scheduler (tcp://HOST:PORT) the app sends group runs to", "ui.group"),
)}


def read(name: str):
    """The value of the environment variable ``name`` (one of `VARIABLES`), parsed.

    Parameters
    ----------
    name : str
        A key of `VARIABLES`.

    Returns
    -------
    object
        ``VARIABLES[name].default`` when the variable is unset or blank, else its parsed value.

    Raises
    ------
    DecodingInputError
        When the value cannot be parsed (the message names the variable and the value).
    KeyError
        For a name that is not in `VARIABLES` (add it to the table first).
    """
    variable = VARIABLES[name]
    raw = os.environ.get(name, "").strip()
    if not raw:
        return variable.default
    return variable.parse(raw, name)
