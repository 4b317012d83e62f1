"""Every environment variable is read through decoding_core.environment, and the README's table is true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from decoding_core import environment
from decoding_core.errors import DecodingInputError

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_unset_or_blank_gives_the_default(monkeypatch):
    for name, variable in environment.VARIABLES.items():
        monkeypatch.delenv(name, raising=False)
        assert environment.read(name) == variable.default
        monkeypatch.setenv(name, "  ")
        assert environment.read(name) == variable.default


@pytest.mark.parametrize(("name", "raw", "expected"), [
    (environment.MAX_IMAGE_BYTES, "1GiB", 1024**3),
    (environment.HOST_MEMORY_BYTES, "690M", 690_000_000),
    (environment.SESSIONS_MAX_BYTES, "629145600", 629_145_600),
    (environment.MAX_JOBS, "3", 3),
    (environment.SESSION_GRACE_SECONDS, "2.5", 2.5),
    (environment.SESSION_SWEEP_SECONDS, "0", 0.0),
    (environment.SHARED, "Yes", True),
    (environment.SHARED, "no", False),
    (environment.HISTORY_PATH, "~/h.sqlite3", Path("~/h.sqlite3").expanduser()),
])
def test_values_are_parsed(monkeypatch, name, raw, expected):
    monkeypatch.setenv(name, raw)
    assert environment.read(name) == expected


@pytest.mark.parametrize(("name", "raw", "message"), [
    (environment.MAX_JOBS, "0", "DECODING_LAB_MAX_JOBS must be a positive integer. Got '0'."),
    (environment.MAX_JOBS, "many", "DECODING_LAB_MAX_JOBS must be a positive integer"),
    (environment.SESSION_GRACE_SECONDS, "soon", "DECODING_LAB_SESSION_GRACE_SECONDS must be a number of seconds"),
    (environment.SESSION_SWEEP_SECONDS, "-1", "DECODING_LAB_SESSION_SWEEP_SECONDS must be a number of seconds"),
    (environment.MAX_IMAGE_BYTES, "lots", "DECODING_LAB_MAX_IMAGE_BYTES must be a positive number of bytes"),
])
def test_bad_values_name_the_variable(monkeypatch, name, raw, message):
    monkeypatch.setenv(name, raw)
    with pytest.raises(DecodingInputError, match=re.escape(message)):
        environment.read(name)


def test_an_unknown_name_is_refused():
    with pytest.raises(KeyError):
        environment.read("DECODING_LAB_NOT_A_SETTING")


def test_no_module_reads_the_environment_itself():
    """Only environment.py reads os.environ / os.getenv in the project's code."""
    sources = [p for folder in ("decoding_core", "ui", "pages") for p in (REPO_ROOT / folder).rglob("*.py")]
    sources.append(REPO_ROOT / "app.py")
    readers = [str(p.relative_to(REPO_ROOT)) for p in sources
               if p.name != "environment.py" and re.search(r"os\.environ|os\.getenv|getenv\(", p.read_text())]
    assert readers == []


def test_every_variable_the_code_names_is_in_the_table():
    names = set()
    for folder in ("decoding_core", "ui", "pages"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            names |= set(re.findall(r"DECODING_LAB_[A-Z_]+", path.read_text()))
    assert names <= set(environment.VARIABLES), sorted(names - set(environment.VARIABLES))


def test_the_readme_table_matches():
    """Each row of the README's table of variables names a variable of the table with its default."""
    readme = (REPO_ROOT / "README.md").read_text()
    rows = re.findall(r"^\| `(DECODING_LAB_[A-Z_]+)` \| `?([^|`]+?)`? \| ([^|]+) \|$", readme, flags=re.M)
    assert rows, "the README has no table of environment variables"
    for name, default_text, bounds in rows:
        variable = environment.VARIABLES[name]
        assert variable.default_text == default_text.strip(), name
        assert variable.bounds == bounds.strip(), name
    # And every variable is at least mentioned.
    for name in environment.VARIABLES:
        assert name in readme, f"{name} is not in the README"

