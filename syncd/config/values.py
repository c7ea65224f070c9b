"""Setting values TOML has no type for: durations, crontabs, listen addresses, loopback hosts.

Each parser raises ``ValueError``, which pydantic reports under the key's name. The CLI
(``--since 2h``) and the environment overrides reuse them, so a value is spelled the same
everywhere.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BeforeValidator

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> timedelta:
    """Parse ``"90s"``, ``"5m"``, ``"2h"``, ``"7d"``, ``"250ms"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("must be a duration such as '60s', '5m', '2h' or '1d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2) or "s"]
    else:
        raise ValueError(f"must be a duration such as '60s', '5m', '2h' or '1d' (got {value!r})")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"must be a positive duration (got {value!r})")
    try:
        duration = timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"is far too long a duration (got {value!r})") from None
    if not duration:  # under a microsecond rounds to zero
        raise ValueError(f"must be at least one microsecond (got {value!r})")
    return duration


def validate_cron(expr: str) -> str:
    """Check a five-field crontab expression the way the scheduler will read it."""
    from apscheduler.triggers.cron import CronTrigger

    if len(expr.split()) != 5:
        raise ValueError(
            f"must be a five-field crontab expression such as '0 3 * * *' (got {expr!r})"
        )
    try:
        trigger = CronTrigger.from_crontab(expr, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"is not a valid crontab expression ({exc}): {expr!r}") from exc
    if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
        raise ValueError(f"never fires (no such date): {expr!r}")
    return expr


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def parse_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` or ``"[::1]:9464"`` to ``(host, port)``."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT such as '127.0.0.1:9464' (got {value!r})")
    return host, int(port)


def unsafe_url_problem(url: str) -> str | None:
    """Why ``url`` may not carry tokens (None: it may): not an http(s) URL with a host, or
    plain ``http://`` to a host that is not loopback, where tokens would travel in clear."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"must be an http(s) URL (got {url!r})"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return (
            f"refusing plain http:// to {parts.hostname!r}: bearer tokens and the client "
            "secret would travel in clear text; use https:// (http:// is allowed only for a "
            "loopback host such as 127.0.0.1)"
        )
    return None


def is_loopback_host(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
