"""Retry policy: which failures may be retried, how long to wait, and when to give up.

Two questions decide a retry. *Is the failure transient?* 429, 500, 502, 503, 504,
timeouts and connection errors are; everything else is an answer about the request itself.
*Is re-sending safe?* GET, PUT, PATCH and DELETE are idempotent: sending them twice has the
effect of sending them once. A POST creates a contact, so it is re-sent only when the server
cannot have applied it:

- the request never left (connect error, connect or pool timeout): nothing was sent;
- the server answered 429 or 503: it refused the request before processing it;
- 401: authentication failed before anything was processed.

Everything else after a POST was sent (read timeout, dropped connection, 500/502/504, a 2xx
whose body cannot be read) may hide an applied create: 500 can come after the commit, and a
gateway's 502/504 says nothing about what its upstream did. Those raise OutcomeUnknownError
and the engine resolves them by looking the contact up (invariant 1: no duplicates).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, replace
from typing import Any

import httpx

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
# The wait after a 429 that says nothing usable about when to come back (Genesys' SDKs: ~3 s).
DEFAULT_RETRY_AFTER = 3.0
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "PATCH", "DELETE"})
# Answers that prove a POST was not applied, so re-sending it cannot duplicate anything.
POST_RESENDABLE_STATUSES = frozenset({429, 503})

# Raised before a single byte of the request reached the server.
NOT_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
)
# Worth another try for an idempotent request (the service may come back).
TRANSIENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)


class Verdict(enum.Enum):
    """What to do after a failed attempt."""

    RETRY = "retry"  # transient and safe to send again
    FAIL = "fail"  # permanent, or transient but not safe to send again and known not applied
    UNKNOWN = "unknown"  # a non-idempotent request may have been applied: never re-send


def classify_status(method: str, status: int) -> Verdict:
    """Verdict for an HTTP error answer (``status`` >= 400, 401 handled by the caller)."""
    if status not in TRANSIENT_STATUSES:
        return Verdict.FAIL
    if method.upper() in IDEMPOTENT_METHODS or status in POST_RESENDABLE_STATUSES:
        return Verdict.RETRY
    return Verdict.UNKNOWN


def classify_error(method: str, exc: httpx.TransportError) -> Verdict:
    """Verdict for a transport error (no HTTP answer at all)."""
    if isinstance(exc, NOT_SENT_ERRORS):
        return Verdict.RETRY
    if method.upper() in IDEMPOTENT_METHODS:
        return Verdict.RETRY if isinstance(exc, TRANSIENT_ERRORS) else Verdict.FAIL
    # A POST: only errors raised before sending are known not applied. A local protocol
    # error or unsupported scheme also fails before sending.
    if isinstance(exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol):
        return Verdict.FAIL
    return Verdict.UNKNOWN


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one request tries. Frozen: share one instance between clients freely.

    ``max_attempts`` counts sends that ended in a transient failure (429s do not count: they
    are the server pacing us; :meth:`rate_limit_ends_call` bounds them separately). The total
    wall time one request may spend once it holds an in-flight slot is ``max_elapsed``.
    ``wait=False`` is the testing switch: backoff delays become zero.
    """

    max_attempts: int = 5
    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5
    max_rate_limited: int = 20
    max_retry_after: float = 180.0
    max_elapsed: float = 300.0
    wait: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.max_rate_limited < 0:
            raise ValueError("max_attempts must be >= 1 and max_rate_limited >= 0")
        if self.base < 0 or self.cap < 0 or self.max_elapsed <= 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative and max_elapsed must be positive")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter is a fraction between 0 and 1")

    def rate_limit_ends_call(self, rate_limited: int, wait: float) -> bool:
        """Whether the ``rate_limited``-th 429 of one call, asking ``wait`` seconds, ends it.

        The same rule for the API and the login host: waiting out a short pause is cheaper
        than failing, but a long one (or an endless stream of them) is the caller's to decide.
        """
        return rate_limited > self.max_rate_limited or wait > self.max_retry_after

    def delay(self, failures: int, rng: random.Random) -> float:
        """Seconds to wait after the ``failures``-th transient failure (1-based).

        Capped exponential; the last ``jitter`` fraction of it is random so that clients
        failing together do not retry together.
        """
        if not self.wait or failures < 1:
            return 0.0
        full = min(self.cap, self.base * 2.0 ** (failures - 1))
        fixed = full * (1.0 - self.jitter)
        return fixed + rng.uniform(0.0, full - fixed)

    @classmethod
    def testing(cls, **overrides: Any) -> RetryPolicy:
        """A policy that never waits (backoff delays are zero), for tests."""
        return replace(cls(wait=False, jitter=0.0), **overrides)
