"""The repository's .streamlit/config.toml, as Streamlit reads it (issue 15: a toolbar for viewers)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from streamlit import config as streamlit_config

CONFIG_PATH = Path(__file__).resolve().parents[2] / ".streamlit" / "config.toml"


def test_visitors_get_the_viewers_toolbar_not_the_developers():
    settings = tomllib.loads(CONFIG_PATH.read_text())
    assert settings["client"]["toolbarMode"] == "viewer"
    # The option exists under this name in the installed Streamlit, with this value allowed.
    option = streamlit_config._config_options_template["client.toolbarMode"]
    assert '"viewer"' in option.description
