"""Where the Genesys client secret comes from, and the warning when its file is not private.

First match wins: ``$SYNCD_GENESYS_CLIENT_SECRET``, the file named by
``genesys.client_secret_file`` (``${CREDENTIALS_DIRECTORY}`` is expanded, so systemd's
``LoadCredential=`` works), or ``genesys.client_secret`` in the configuration file.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from syncd.config.sections import GenesysSettings
from syncd.errors import ConfigError
from syncd.logs import keep_verbatim

SECRET_ENV = "SYNCD_GENESYS_CLIENT_SECRET"
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _unset_variables(path: str) -> list[str]:
    """The ``$VAR`` / ``${VAR}`` names in ``path`` that the environment does not set."""
    names = [braced or bare for braced, bare in _VARIABLE.findall(path)]
    return [name for name in dict.fromkeys(names) if not os.environ.get(name)]


def _read_secret_file(path: Path, source: str | None) -> str:
    unset = _unset_variables(str(path))
    if unset:
        hint = (
            f"; systemd sets {CREDENTIALS_ENV} for a service with LoadCredential= (run the "
            f"command under the unit, or export {CREDENTIALS_ENV} to the folder holding the "
            f"credential, or set the {SECRET_ENV} environment variable)"
            if CREDENTIALS_ENV in unset
            else ""
        )
        raise ConfigError(
            f"genesys.client_secret_file: {str(path)!a} refers to the environment variable "
            f"{', '.join(unset)}, which is not set{hint}",
            source=source,
        )
    expanded = Path(os.path.expandvars(str(path)))
    keep_verbatim(str(expanded))
    keep_verbatim(str(path))
    try:
        text = expanded.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path, or not UTF-8
        why = exc.strerror if isinstance(exc, OSError) else "not a readable UTF-8 text file"
        raise ConfigError(
            f"genesys.client_secret_file: cannot read {str(expanded)!a}: {why}", source=source
        ) from None
    secret = text.strip()
    if not secret:
        raise ConfigError(f"genesys.client_secret_file: {expanded} is empty", source=source)
    return secret


def world_readable_warning(path: Path) -> str | None:
    """A warning when a file that holds a secret can be read by other users."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return (
            f"{path} holds a secret but is readable by other users (mode "
            f"{stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )
    return None


def resolve_secret(genesys: GenesysSettings, *, source: str | None) -> tuple[str, str]:
    """The client secret and its origin: ``"env"``, ``"file"`` or ``"config"``; none is an error."""
    env_secret = os.environ.get(SECRET_ENV)
    if env_secret:
        secret, origin = env_secret.strip(), "env"
    elif genesys.client_secret_file is not None:
        secret, origin = _read_secret_file(genesys.client_secret_file, source), "file"
    elif genesys.client_secret is not None:
        secret, origin = genesys.client_secret.get_secret_value().strip(), "config"
    else:
        secret, origin = "", ""
    if not secret:
        raise ConfigError(
            "genesys.client_secret: no client secret; set genesys.client_secret, "
            f"genesys.client_secret_file, or the {SECRET_ENV} environment variable",
            source=source,
        )
    return secret, origin
