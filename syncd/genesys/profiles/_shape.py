"""Shape checks for JSON bodies: a surprise from the server is ApiProtocolError, never a
KeyError or TypeError escaping from deep inside a mapping function."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from syncd.errors import ApiProtocolError


def obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiProtocolError(f"{where}: expected a JSON object, got {_kind(value)}")
    return value


def array(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ApiProtocolError(f"{where}: expected a JSON array, got {_kind(value)}")
    return value


def opt_str(body: dict[str, Any], key: str, where: str) -> str | None:
    value = body.get(key)
    if value is None or isinstance(value, str):
        return value
    raise ApiProtocolError(f"{where}.{key}: expected a string, got {_kind(value)}")


def req_str(body: dict[str, Any], key: str, where: str) -> str:
    value = opt_str(body, key, where)
    if not value:
        raise ApiProtocolError(f"{where}.{key}: missing or empty")
    return value


def opt_int(body: dict[str, Any], key: str, where: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiProtocolError(f"{where}.{key}: expected a non-negative integer, got {value!r}")
    return value


def opt_time(body: dict[str, Any], key: str, where: str) -> datetime | None:
    text = opt_str(body, key, where)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiProtocolError(f"{where}.{key}: not an ISO-8601 timestamp: {text!r}") from None


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
