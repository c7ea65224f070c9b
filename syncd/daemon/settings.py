"""The ``[daemon]`` and ``[metrics]`` sections, with environment overrides.

The models live in :mod:`syncd.config`; here, ``SYNCD_DAEMON_*`` and ``SYNCD_METRICS_LISTEN``
override the file: that is how tests shorten every period, and how an operator overrides one
value for a unit.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from syncd.config import DaemonSettings, MetricsSettings, Settings, parse_listen
from syncd.errors import ConfigError

__all__ = [
    "DaemonSettings",
    "MetricsSettings",
    "daemon_settings",
    "metrics_settings",
    "parse_listen",
]


DAEMON_ENV_PREFIX = "SYNCD_DAEMON_"
METRICS_LISTEN_ENV = "SYNCD_METRICS_LISTEN"


def _section(settings: Settings, name: str) -> dict[str, Any]:
    section = getattr(settings, name, None)
    if isinstance(section, BaseModel):
        return section.model_dump()
    return {}


def daemon_settings(settings: Settings) -> DaemonSettings:
    """The ``[daemon]`` section (when Settings has one) overridden by ``SYNCD_DAEMON_*``."""
    data = _section(settings, "daemon")
    for name in DaemonSettings.model_fields:
        env = os.environ.get(DAEMON_ENV_PREFIX + name.upper())
        if env is not None:
            data[name] = env
    return _validate(DaemonSettings, data, "daemon")


def metrics_settings(settings: Settings) -> MetricsSettings:
    """The ``[metrics]`` section (when Settings has one) overridden by ``SYNCD_METRICS_LISTEN``."""
    data = _section(settings, "metrics")
    env = os.environ.get(METRICS_LISTEN_ENV)
    if env is not None:
        data["listen"] = env or None
    return _validate(MetricsSettings, data, "metrics")


M = TypeVar("M", bound=BaseModel)


def _validate(model: type[M], data: dict[str, Any], section: str) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{section}.{'.'.join(str(p) for p in err['loc'])}: "
            + str(err["msg"]).removeprefix("Value error, ")
            for err in exc.errors(include_url=False)
        ]
        source = f"[{section}] and the SYNCD_{section.upper()}_* environment"
        raise ConfigError(problems, source=source) from None
