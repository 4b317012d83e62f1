"""The pins are written twice (requirements.txt for Community Cloud, pyproject.toml for pip): they agree."""

from __future__ import annotations

import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def _pins(requirements_file: str) -> list[str]:
    """The requirement lines of a requirements file, without comments, includes or the project itself."""
    lines = (REPO_ROOT / requirements_file).read_text().splitlines()
    pins = [line.split("#", 1)[0].strip() for line in lines]
    return sorted(pin for pin in pins if pin and not pin.startswith("-"))


def _project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def test_pyproject_dependencies_are_the_pins_of_requirements_txt():
    assert sorted(_project()["dependencies"]) == _pins("requirements.txt")


def test_the_test_extra_is_what_requirements_dev_txt_adds():
    assert sorted(_project()["optional-dependencies"]["test"]) == _pins("requirements-dev.txt")


def test_every_pin_is_exact():
    for pin in _pins("requirements.txt") + _pins("requirements-dev.txt"):
        assert "==" in pin, pin
