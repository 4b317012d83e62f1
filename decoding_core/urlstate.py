"""The configuration in a page's URL query parameters, and back.

Every setting is written (not only those that differ from the defaults), so
opening the URL restores exactly the same configuration even if a later version
changes a default. Keys are short; lists are comma-joined with each item
percent-encoded (a condition may contain a comma); None is the empty string.

Only the built-in data sets are named in a URL (``data=simulated`` or
``data=haxby:N``); uploaded data never are.

Example
-------
>>> from decoding_core.config import DecodingConfig
>>> params = config_to_query_params(DecodingConfig(C=0.1), "haxby:2")
>>> params["C"], params["data"]
('0.1', 'haxby:2')
>>> config_from_query_params(params)[0].C
0.1
"""

from __future__ import annotations

from urllib.parse import quote, unquote, urlencode

from decoding_core._validation import NONE_WORDS, parse_bool
from decoding_core.config import SETTINGS, DecodingConfig
from decoding_core.datasets import DatasetSpec
from decoding_core.errors import DecodingInputError

#: Version of the parameter layout (``v=``); a URL from a newer layout is refused.
URL_STATE_VERSION = 1

#: Setting -> query parameter key (from `decoding_core.config.SETTINGS`).
QUERY_KEYS = {name: setting.url_key for name, setting in SETTINGS.items()}
DATASET_KEY = "data"
VERSION_KEY = "v"
#: Every key this module reads or writes (the app may clear exactly these).
ALL_KEYS = (VERSION_KEY, DATASET_KEY, *QUERY_KEYS.values())

_MAX_VALUE_LENGTH = 4000
_MAX_CONDITIONS = 100


def shareable_dataset_spec(dataset_name: str | None) -> str | None:
    """The data set name if it may go in a URL (``simulated``, ``haxby:1``..``haxby:6``), else None."""
    if not isinstance(dataset_name, str):
        return None
    spec = DatasetSpec.from_name(dataset_name.strip().lower())
    return str(spec) if spec is not None and spec.shareable else None


def _format_float(value: float) -> str:
    # repr() is the shortest string that parses back to the same float.
    return repr(float(value))


def config_to_query_params(config: DecodingConfig, dataset_spec: str | None = None) -> dict[str, str]:
    """Every setting of ``config`` as short string query parameters.

    Parameters
    ----------
    config : DecodingConfig
    dataset_spec : str or None
        ``"simulated"`` or ``"haxby:N"``; any other value (an upload, a path) is left
        out of the URL, so uploaded data are never named in it.

    Returns
    -------
    dict of str to str
    """
    if not isinstance(config, DecodingConfig):
        raise DecodingInputError(f"'config' must be a DecodingConfig. Got {type(config).__name__}.")
    params = {VERSION_KEY: str(URL_STATE_VERSION)}
    spec = shareable_dataset_spec(dataset_spec)
    if spec is not None:
        params[DATASET_KEY] = spec
    for setting, key in QUERY_KEYS.items():
        value = getattr(config, setting)
        if SETTINGS[setting].kind in ("conditions", "choices"):
            text = ",".join(quote(c, safe="") for c in value)
        elif value is None:
            text = ""
        elif isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, float):
            text = _format_float(value)
        else:
            text = str(value)
        params[key] = text
    return params


def config_to_query_string(config: DecodingConfig, dataset_spec: str | None = None) -> str:
    """`config_to_query_params` as ``key=value&...`` (append to the app's URL after ``?``)."""
    return urlencode(config_to_query_params(config, dataset_spec))


def _single(value, key: str) -> str:
    # st.query_params.to_dict() gives the last value; parse_qs gives lists.
    if isinstance(value, (list, tuple)):
        if not value:
            return ""
        value = value[-1]
    if not isinstance(value, str):
        raise DecodingInputError(f"The link's parameter {key!r} must be text. Got {type(value).__name__}.")
    if len(value) > _MAX_VALUE_LENGTH:
        raise DecodingInputError(
            f"The link's parameter {key!r} is {len(value)} characters long; at most {_MAX_VALUE_LENGTH} are read. "
            "The link is damaged: copy it again from the app."
        )
    return value


def _parse_bool(text: str, key: str) -> bool:
    value = parse_bool(text)
    if value is None:
        raise DecodingInputError(f"The link's parameter {key!r} must be 1 or 0 (yes or no). Got {text!r}.")
    return value


def _parse_number(text: str, key: str, integer: bool):
    text = text.strip()
    try:
        if integer:
            return int(text)
        value = float(text)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise DecodingInputError(f"The link's parameter {key!r} must be {kind}. Got {text!r}.") from None
    return value


def _parse_conditions(text: str) -> tuple:
    items = text.split(",")
    if len(items) > _MAX_CONDITIONS:
        raise DecodingInputError(
            f"The link's parameter 'cond' lists {len(items)} conditions; at most {_MAX_CONDITIONS}."
        )
    try:
        return tuple(unquote(item, errors="strict") for item in items)
    except UnicodeDecodeError:
        raise DecodingInputError(
            "The link's parameter 'cond' is not valid percent-encoded text. Copy the link again."
        ) from None


def _parse_setting(setting, text: str, key: str):
    """One setting's value from its query parameter, by the setting's kind."""
    if setting.kind == "conditions":
        return _parse_conditions(text)
    if setting.kind == "choices":
        return tuple(item.strip() for item in text.split(",")[:_MAX_CONDITIONS] if item.strip())
    if setting.kind == "bool":
        return _parse_bool(text, key)
    if setting.kind == "choice" and text not in setting.choices and parse_bool(text) is not None:
        # Links made when standardize and detrend were yes/no (std=1, detrend=0): DecodingConfig reads them.
        return parse_bool(text)
    if setting.kind == "optional_float":
        return None if text.strip().lower() in NONE_WORDS else _parse_number(text, key, integer=False)
    if setting.kind in ("float", "int"):
        return _parse_number(text, key, integer=setting.kind == "int")
    return text


def config_from_query_params(params, *, base: DecodingConfig | None = None) -> tuple[DecodingConfig, str | None]:
    """Rebuild the configuration (and built-in data set) a URL describes.

    Parameters
    ----------
    params : mapping of str to str (or list of str)
        E.g. ``st.query_params.to_dict()``. Unknown keys are ignored; missing
        settings keep ``base``'s value.
    base : DecodingConfig or None
        Settings for keys absent from the URL (default: `DecodingConfig()`).

    Returns
    -------
    config : DecodingConfig
    dataset_spec : str or None
        ``"simulated"`` or ``"haxby:N"`` when the URL names one, else None.

    Raises
    ------
    DecodingInputError
        When a value is malformed or out of range; the message names the parameter.
    """
    if not hasattr(params, "get") or not hasattr(params, "keys"):
        raise DecodingInputError(f"Query parameters must be a mapping. Got {type(params).__name__}.")
    base = base or DecodingConfig()
    version_text = _single(params.get(VERSION_KEY, ""), VERSION_KEY).strip() or str(URL_STATE_VERSION)
    version = _parse_number(version_text, VERSION_KEY, integer=True)
    if version > URL_STATE_VERSION or version < 1:
        raise DecodingInputError(
            f"This link was made by a newer version of the app (layout {version}); this app reads "
            f"layout 1 to {URL_STATE_VERSION}. Update the app or set the options by hand."
        )
    dataset_spec = None
    if DATASET_KEY in params:
        text = _single(params[DATASET_KEY], DATASET_KEY).strip()
        if text:
            dataset_spec = shareable_dataset_spec(text)
            if dataset_spec is None:
                raise DecodingInputError(
                    f"The link names the data set {text[:60]!r}; links can only name 'simulated' or "
                    "'haxby:1' to 'haxby:6'. Load your own data on the Data page."
                )
    changes = {}
    for name, key in QUERY_KEYS.items():
        if key in params:
            changes[name] = _parse_setting(SETTINGS[name], _single(params[key], key), key)
    try:
        config = base.replace(**changes)
    except DecodingInputError as err:
        raise DecodingInputError(f"The link holds a setting this app cannot use: {err}") from None
    return config, dataset_spec
