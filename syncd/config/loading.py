"""From a file to validated :class:`Settings`, and back to plain data for ``config check``.

Where the file comes from: ``--config PATH``, else ``$SYNCD_CONFIG``, else
``/etc/syncd/config.toml``.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from syncd.config.problems import control_character_problems, format_validation_error
from syncd.config.secret_source import resolve_secret
from syncd.config.sections import Settings
from syncd.errors import ConfigError
from syncd.logs import REDACTED, keep_verbatim

DEFAULT_CONFIG_PATH = Path("/etc/syncd/config.toml")
CONFIG_ENV = "SYNCD_CONFIG"


def resolve_config_path(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH


def parse_settings(
    data: dict[str, Any], *, source: str | None = None, require_secret: bool = True
) -> Settings:
    """Validate a parsed TOML document into :class:`Settings` (secrets resolved).

    With ``require_secret=False`` (commands that never call Genesys) a client secret that
    cannot be found leaves ``genesys.client_secret`` unset instead of failing;
    :func:`with_secret` later demands it, with the same message.
    """
    controls = control_character_problems(data)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(controls + format_validation_error(exc), source=source) from None
    if controls:
        raise ConfigError(controls, source=source)
    try:
        return with_secret(settings, source=source)
    except ConfigError:
        if require_secret:
            raise
    unresolved = settings.genesys.model_copy(update={"client_secret": None})
    return settings.model_copy(update={"genesys": unresolved})


def with_secret(settings: Settings, *, source: str | None = None) -> Settings:
    """``settings`` with the client secret resolved, or a :class:`ConfigError` saying why
    there is none (see :func:`syncd.config.secret_source.resolve_secret`)."""
    secret, origin = resolve_secret(settings.genesys, source=source)
    resolved = settings.genesys.model_copy(update={"client_secret": SecretStr(secret)})
    resolved._secret_source = origin
    return settings.model_copy(update={"genesys": resolved})


def load_settings(
    path: str | os.PathLike[str] | None = None, *, require_secret: bool = True
) -> Settings:
    """Read and validate the configuration file (see the module docstring for the lookup);
    ``require_secret`` as in :func:`parse_settings`."""
    resolved = resolve_config_path(path)
    keep_verbatim(str(resolved))
    try:
        raw = resolved.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"configuration file not found: {resolved} (pass --config PATH or set {CONFIG_ENV}; "
            "config.example.toml documents every key)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {resolved}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{resolved} is not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{resolved} is not valid TOML: {exc}") from None
    return parse_settings(data, source=str(resolved), require_secret=require_secret)


def redacted_view(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, with every secret replaced."""
    data = settings.model_dump(mode="json")
    for name, section in data.items():
        for key in section:
            current = getattr(getattr(settings, name), key)
            if isinstance(current, timedelta):  # "30s", as written in the file, not "PT30S"
                section[key] = f"{current.total_seconds():g}s"
    g = data["genesys"]
    if g.get("client_secret") is not None:
        g["client_secret"] = REDACTED
    g["requests_per_minute"] = settings.genesys.effective_requests_per_minute
    g["api_url"] = settings.genesys.effective_api_url
    g["login_url"] = settings.genesys.effective_login_url
    from sqlalchemy.engine import make_url

    data["database"]["url"] = make_url(settings.database.url).render_as_string(hide_password=True)
    return data
