"""Reading HTTP answers: correlation id, server message, the wait a 429 asks for, and
error mapping.

Why one place: every status the client does not handle itself becomes exactly one
exception of ``syncd.errors``, with the server's message, the correlation id and the route,
so the ledger and the operator see the same thing.
"""

from __future__ import annotations

import math
import re
import time
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from syncd.errors import (
    ApiAuthError,
    ApiConflictError,
    ApiEnvironmentError,
    ApiError,
    ApiNotFoundError,
    ApiRateLimitedError,
    ApiUnavailableError,
    ApiValidationError,
)
from syncd.genesys.network import describe
from syncd.genesys.throttle import GateClosed
from syncd.logs import scrub

CORRELATION_HEADER = "ININ-Correlation-Id"
MAX_MESSAGE = 500
# A wait read from a 429's message text is trusted up to ten minutes: beyond what Genesys
# documents, short enough that a garbled message cannot stall the whole client for long.
MAX_MESSAGE_RETRY_AFTER = 600.0
# Genesys: "Rate limit exceeded the maximum. Retry the request in [42] seconds".
_MESSAGE_WAIT = re.compile(r"\[\s*(\d{1,9}(?:\.\d{1,6})?)\s*\]\s*seconds?\b", re.IGNORECASE)


def correlation_id(response: httpx.Response) -> str | None:
    value: str | None = response.headers.get(CORRELATION_HEADER)
    return value


def server_message(response: httpx.Response) -> str:
    """The human message in an error body (Genesys ``message``, OAuth ``error_description``).

    Scrubbed of credentials (a proxy may echo the request's headers) and kept to one line of
    printable text: it goes to the ledger, the logs and the operator's terminal.
    """
    return _one_line(scrub(_server_message(response)))


def _one_line(text: str) -> str:
    return " ".join(_UNPRINTABLE.sub(" ", text).split())


_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _server_message(response: httpx.Response) -> str:
    try:
        body: Any = response.json()
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to read
        body = None
    if isinstance(body, dict):
        for key in ("message", "error_description", "error", "code"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()[:MAX_MESSAGE]
    fallback = response.reason_phrase or f"HTTP {response.status_code}"
    if "html" in response.headers.get("content-type", ""):
        return fallback  # a load balancer's error page: its markup helps nobody
    try:
        text = response.text
    except (ValueError, LookupError):  # a charset that does not decode the body, or unknown
        text = response.content.decode("utf-8", "replace")
    return text.strip()[:MAX_MESSAGE] or fallback


def retry_after(response: httpx.Response, *, now_epoch: float | None = None) -> float | None:
    """Seconds a 429 asks us to wait: the ``Retry-After`` header, else the "[N] seconds" of
    Genesys' message (capped at ``MAX_MESSAGE_RETRY_AFTER``); None when neither says."""
    header = _retry_after_header(response, now_epoch)
    if header is not None:
        return header
    found = _MESSAGE_WAIT.search(_server_message(response))
    return min(float(found.group(1)), MAX_MESSAGE_RETRY_AFTER) if found else None


def _retry_after_header(response: httpx.Response, now_epoch: float | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if unusable."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now_epoch is None else now_epoch)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ApiValidationError,
    401: ApiAuthError,
    403: ApiAuthError,
    404: ApiNotFoundError,
    409: ApiConflictError,
    413: ApiValidationError,
    422: ApiValidationError,
    429: ApiRateLimitedError,
}


# What a 400 names when the problem is on Genesys' side, not in the contact's content: the
# record it references is gone, a division, syncd's external source. Production's codes are
# unconfirmed: these are the emulator's, plus the fields they concern (docs/externalcontacts.md).
_ENVIRONMENT_CODES = {
    "organization.not.found": ApiEnvironmentError.ORGANIZATION,
    "division.not.found": "the division",
    "external.source.not.found": "syncd's external source",
}
_ENVIRONMENT_FIELDS = {
    "externalOrganization": ApiEnvironmentError.ORGANIZATION,
    "division": "the division",
}


def environmental_cause(details: Any, code: str | None = None) -> str | None:
    """What to fix in Genesys when every problem a 400 lists (its ``details``) is about a
    referenced record rather than the content, or the error's own ``code`` names one (a bulk
    entity's: its details carry no codes); None when any is the content's."""
    if code in _ENVIRONMENT_CODES:
        return _ENVIRONMENT_CODES[code]
    if not isinstance(details, list) or not details:
        return None
    causes: set[str] = set()
    for detail in details:
        if not isinstance(detail, dict):
            return None
        code, field = detail.get("errorCode") or detail.get("code"), detail.get("fieldName")
        cause = _ENVIRONMENT_CODES.get(code) if isinstance(code, str) else None
        if cause is None and isinstance(field, str):
            cause = _ENVIRONMENT_FIELDS.get(field.split(".")[0])
        if cause is None:
            return None
        causes.add(cause)
    return ", ".join(sorted(causes))


def _details(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except (ValueError, RecursionError):
        return None
    return body.get("details") if isinstance(body, dict) else None


def error_for(
    response: httpx.Response, *, method: str, route: str, note: str | None = None
) -> ApiError:
    """The exception for an error answer the client will not retry (any status >= 300)."""
    status = response.status_code
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ApiUnavailableError if status >= 500 else ApiError
    message = f"{method} {route} -> {status}: {server_message(response)}"
    if note:
        message += f" ({note})"
    kw: dict[str, Any] = {
        "status": status,
        "correlation_id": correlation_id(response),
        "method": method,
        "route": route,
    }
    if cls is ApiRateLimitedError:
        return ApiRateLimitedError(message, retry_after=retry_after(response), **kw)
    if status == 400:
        cause = environmental_cause(_details(response))
        if cause is not None:
            return ApiEnvironmentError(message, cause=cause, **kw)
    return cls(message, **kw)


def unavailable(
    method: str,
    route: str,
    response: httpx.Response | None,
    error: BaseException | None,
    failures: int,
) -> ApiError:
    """The exception once transient failures used up the retry budget."""
    note = f"gave up after {failures} attempts"
    if response is not None:
        return error_for(response, method=method, route=route, note=note)
    cause = describe(error) if isinstance(error, httpx.TransportError) else type(error).__name__
    exc = ApiUnavailableError(f"{method} {route}: {cause} ({note})", method=method, route=route)
    exc.__cause__ = error
    return exc


def gate_error(method: str, route: str, closed: GateClosed, now: float) -> ApiError:
    """The exception when the client-wide pause outlasts this request's time budget."""
    wait = max(closed.until - now, 0.0)
    if closed.reason == "rate_limited":
        return ApiRateLimitedError(
            f"{method} {route}: rate limited; the client is paused for another {wait:.0f}s, "
            "beyond this request's time budget",
            retry_after=wait,
            status=429,
            method=method,
            route=route,
        )
    return ApiUnavailableError(
        f"{method} {route}: Genesys is failing; the client is backing off for another "
        f"{wait:.0f}s, beyond this request's time budget",
        method=method,
        route=route,
    )
