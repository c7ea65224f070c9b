"""OAuth client-credentials token: fetched lazily, shared, renewed before expiry and on a 401.

Why a lock: when many requests find the token missing or stale at once they must share one
token request, not each fetch their own; and when that request fails (the login service is
down, after its retries), the requests that waited for it get the same failure at once
instead of each starting a new round of retries. Why the ``min_forced_interval`` rule: if a token
fresh from a 401-triggered renewal is rejected again, the credentials (or their grants) are
wrong, and fetching more tokens cannot help; the caller gets ApiAuthError without another
token request, so a revoked client produces no retry storm.

The login host paces token requests with 429s like the API paces calls: the fetch waits as
long as the answer asks (``Retry-After``, else the message's "[N] seconds", else
``DEFAULT_RETRY_AFTER``) under the policy's rule for API 429s, and when that rule gives up it
fails as ApiUnavailableError on the token route, like any other unavailable login: a still
valid token stays in use, and the engine stops the run (no token, no call).

The token never appears in logs, errors or reprs; it is also registered with the log
redactor as a second line of defence.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import anyio
import httpx
from pydantic import SecretStr

from syncd.errors import ApiAuthError, ApiProtocolError, ApiUnavailableError
from syncd.genesys.api import TOKEN_ROUTE
from syncd.genesys.metrics import ClientMetrics
from syncd.genesys.network import describe
from syncd.genesys.responses import correlation_id, retry_after, server_message
from syncd.genesys.retry import DEFAULT_RETRY_AFTER, TRANSIENT_STATUSES, RetryPolicy
from syncd.genesys.throttle import Clock, Sleep
from syncd.logs import get_logger, register_secret

log = get_logger("syncd.genesys")

DEFAULT_LIFETIME = 3600.0  # when the server omits expires_in


@dataclass(slots=True)
class _Token:
    value: str = field(repr=False)
    fetched_at: float
    expires_at: float
    refresh_at: float
    forced: bool  # obtained by a 401-triggered renewal


class TokenCache:
    """Where a token outlives its client: the daemon builds a client (and an event loop) per
    run, but one token, valid for a day in production, should serve every run until it is
    due for renewal, instead of one login per run. Tokens are measured on the monotonic
    clock, so a cache is shared only by clients on the same clock (the default)."""

    __slots__ = ("token",)

    def __init__(self) -> None:
        self.token: _Token | None = None

    def __repr__(self) -> str:
        return f"TokenCache(held={self.token is not None})"


def refresh_margin(lifetime: float) -> float:
    """How long before expiry to renew: 10% of the lifetime, at least 60 s, at most half."""
    return min(max(60.0, 0.1 * lifetime), 0.5 * lifetime)


def _again(failure: ApiUnavailableError | ApiAuthError) -> ApiUnavailableError | ApiAuthError:
    """A fresh exception saying the same as ``failure`` (for each request that waited)."""
    return type(failure)(
        failure.message,
        status=failure.status,
        correlation_id=failure.correlation_id,
        method=failure.method,
        route=failure.route,
    )


class TokenSource:
    """Hands out a valid bearer token; at most one token request in flight at a time."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        token_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        clock: Clock,
        sleep: Sleep,
        retry: RetryPolicy,
        metrics: ClientMetrics,
        min_forced_interval: float = 30.0,
        cache: TokenCache | None = None,
    ) -> None:
        self._http = http
        self._url = token_url
        self._client_id = client_id
        self._secret = client_secret
        self._clock = clock
        self._sleep = sleep
        self._retry = retry
        self._metrics = metrics
        self._min_forced_interval = min_forced_interval
        self._lock = anyio.Lock()
        self._cache = cache or TokenCache()
        if self._cache.token is not None:
            # The "fresh from a renewal" rule is one client's (one run's): a token an earlier
            # run renewed, even one it then saw refused, earns this run its own one renewal
            # on a 401 instead of an ApiAuthError before any request (a failed run per run).
            self._cache.token.forced = False
        # Fetches that failed for good (login unavailable), and the last such failure.
        self._failures = 0
        self._failure: ApiUnavailableError | None = None
        # The login service refused these credentials: this client asks no more (the
        # requests in flight would each ask again); the next client (run) tries once.
        self._refused: ApiAuthError | None = None
        self._last_forced = -math.inf
        self._rng = random.Random()
        register_secret(client_secret.get_secret_value())

    @property
    def _token(self) -> _Token | None:
        return self._cache.token

    @_token.setter
    def _token(self, token: _Token | None) -> None:
        self._cache.token = token

    def __repr__(self) -> str:
        return f"TokenSource(url={self._url!r}, client_id={self._client_id!r})"

    async def get(self) -> str:
        """A token that is not due for renewal; fetches one when needed."""
        token = self._token
        if token is not None and self._clock() < token.refresh_at:
            return token.value
        failures = self._failures
        async with self._lock:
            token = self._token
            now = self._clock()
            if token is not None and now < token.refresh_at:
                return token.value  # another request renewed it while we waited
            valid = token is not None and now < token.expires_at
            if self._refused is not None:
                raise _again(self._refused)
            if self._failures != failures and self._failure is not None:
                # The fetch this request waited for failed for good a moment ago: another
                # round of retries now would only multiply the requests to a login service
                # that is down (one failing fetch per waiting request).
                if token is not None and valid:
                    return token.value
                raise _again(self._failure)
            try:
                return (await self._fetch(forced=False)).value
            except ApiAuthError as exc:
                self._refused = exc
                raise
            except ApiUnavailableError as exc:
                self._failures += 1
                self._failure = exc
                if token is not None and valid:
                    log.warning("genesys.token.refresh_deferred", reason="login unavailable")
                    return token.value  # still valid: try again on the next call
                raise

    async def renew(self, rejected: str) -> str:
        """The server answered 401 to ``rejected``: return a different token, once.

        Raises ApiAuthError without a token request when ``rejected`` itself came from a
        renewal less than ``min_forced_interval`` seconds ago.
        """
        async with self._lock:
            token = self._token
            if token is not None and token.value != rejected:
                return token.value  # a concurrent request already renewed it
            now = self._clock()
            if (
                token is not None
                and token.forced
                and now - token.fetched_at < (self._min_forced_interval)
            ):
                raise ApiAuthError(
                    "Genesys rejected a freshly issued token (401 right after renewal): check "
                    "the OAuth client's roles, or whether it was revoked",
                    status=401,
                )
            self._token = None
            self._metrics.token_renewals += 1
            self._last_forced = now
            log.info("genesys.token.renewing", reason="401")
            return (await self._fetch(forced=True)).value

    async def _fetch(self, *, forced: bool) -> _Token:
        failures = rate_limited = 0
        deadline = self._clock() + self._retry.max_elapsed
        while True:
            started = self._clock()
            try:
                response = await self._http.post(
                    self._url,
                    data={"grant_type": "client_credentials"},
                    auth=(self._client_id, self._secret.get_secret_value()),
                    headers={"Accept": "application/json"},
                )
            except httpx.TransportError as exc:
                log.warning("genesys.token.error", error=describe(exc))
                failures += 1
                if failures >= self._retry.max_attempts:
                    raise ApiUnavailableError(
                        f"cannot reach the Genesys login service: {describe(exc)}",
                        method="POST",
                        route=TOKEN_ROUTE,
                    ) from exc
                await self._sleep(self._retry.delay(failures, self._rng))
                continue
            status = response.status_code
            log.info(
                "genesys.token.response",
                status=status,
                latency_ms=round((self._clock() - started) * 1000, 1),
                correlation_id=correlation_id(response),
            )
            if status == 429:  # not a failure: the login host pacing us
                rate_limited += 1
                await self._wait_out_rate_limit(response, rate_limited, deadline)
                continue
            if status in TRANSIENT_STATUSES:
                failures += 1
                if failures >= self._retry.max_attempts:
                    raise ApiUnavailableError(
                        f"the Genesys login service answered {status}",
                        status=status,
                        method="POST",
                        route=TOKEN_ROUTE,
                        correlation_id=correlation_id(response),
                    )
                await self._sleep(self._retry.delay(failures, self._rng))
                continue
            if status >= 400:
                raise ApiAuthError(
                    f"the Genesys login service refused client {self._client_id!r} "
                    f"({status}: {server_message(response)}): check client_id and client_secret",
                    status=status,
                    method="POST",
                    route=TOKEN_ROUTE,
                    correlation_id=correlation_id(response),
                )
            token = self._parse(response, started, forced)
            self._token = token
            self._metrics.token_fetches += 1
            log.info(
                "genesys.token.fetched",
                expires_in_s=round(token.expires_at - token.fetched_at),
                forced=forced,
            )
            return token

    async def _wait_out_rate_limit(
        self, response: httpx.Response, rate_limited: int, deadline: float
    ) -> None:
        """Sleep as long as a login 429 asks; ApiUnavailableError when the policy gives up."""
        asked = retry_after(response)
        wait = DEFAULT_RETRY_AFTER if asked is None else asked
        if self._retry.rate_limit_ends_call(rate_limited, wait) or self._clock() + wait > deadline:
            raise ApiUnavailableError(
                f"the Genesys login service rate-limited the token request {rate_limited} "
                f"time(s) and asks to wait {wait:.0f}s more, beyond the retry policy: "
                "try again later, or check whether other clients share this OAuth client",
                status=429,
                method="POST",
                route=TOKEN_ROUTE,
                correlation_id=correlation_id(response),
            )
        log.warning("genesys.token.rate_limited", wait_s=round(wait, 3), count=rate_limited)
        await self._sleep(wait)

    def _parse(self, response: httpx.Response, started: float, forced: bool) -> _Token:
        try:
            body = response.json()
        except ValueError as exc:
            raise ApiProtocolError(
                "the login service answered a body that is not JSON", status=response.status_code
            ) from exc
        value = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(value, str) or not value:
            raise ApiProtocolError(
                "the login service answered without an access_token", status=response.status_code
            )
        kind = body.get("token_type", "bearer")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise ApiProtocolError(f"unsupported token_type {kind!r} (expected bearer)")
        lifetime_raw = body.get("expires_in", DEFAULT_LIFETIME)
        if isinstance(lifetime_raw, bool) or not isinstance(lifetime_raw, int | float):
            raise ApiProtocolError(f"expires_in is not a number ({type(lifetime_raw).__name__})")
        lifetime = max(float(lifetime_raw), 1.0)
        register_secret(value)
        # Measured from when we asked, so clock skew and latency only make us renew early.
        return _Token(
            value=value,
            fetched_at=started,
            expires_at=started + lifetime,
            refresh_at=started + lifetime - refresh_margin(lifetime),
            forced=forced,
        )
