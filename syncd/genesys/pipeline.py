"""The request pipeline: how one :class:`RequestSpec` becomes one 2xx answer or one exception.

One call = one loop of attempts. Each attempt takes a turn from the shared
:class:`~syncd.genesys.throttle.Throttle`, sends with a bearer token from
:class:`~syncd.genesys.auth.TokenSource`, and then decides (see ``retry``): done, renew the
token once on a 401, wait out a 429 (not counted as a failure), back off and retry a
transient failure, or raise the mapped exception (``raise X from exc``). A POST that may
have been applied is never re-sent: it raises OutcomeUnknownError.

Kept apart from :class:`~syncd.genesys.client.GenesysClient` so the contact operations read
as "build a request, call, parse" while every rule about sending lives here, once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from syncd.errors import ApiError, ApiProtocolError, OutcomeUnknownError
from syncd.genesys.auth import TokenSource
from syncd.genesys.metrics import ClientMetrics
from syncd.genesys.profiles import RequestSpec
from syncd.genesys.responses import correlation_id, error_for, gate_error, retry_after, unavailable
from syncd.genesys.retry import (
    IDEMPOTENT_METHODS,
    RetryPolicy,
    Verdict,
    classify_error,
    classify_status,
)
from syncd.genesys.throttle import Clock, GateClosed, RequestBudget, Sleep, Slot, Throttle
from syncd.logs import get_logger

log = get_logger("syncd.genesys")

T = TypeVar("T")


class RequestPipeline:
    """Sends requests of one client: pacing, token, retries, error mapping, logs, metrics."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        api_url: str,
        throttle: Throttle,
        auth: TokenSource,
        retry: RetryPolicy,
        clock: Clock,
        sleep: Sleep,
        rng: random.Random,
        metrics: ClientMetrics,
    ) -> None:
        self._http = http
        self._api_url = api_url
        self._throttle = throttle
        self._auth = auth
        self._retry = retry
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._metrics = metrics

    async def call(self, spec: RequestSpec) -> httpx.Response:
        """Send ``spec`` until it succeeds or a rule says stop; returns a 2xx response."""
        policy = self._retry
        budget = RequestBudget(max_elapsed=policy.max_elapsed)
        attempt = failures = rate_limited = 0
        renewed = False
        while True:
            token = await self._auth.get()
            attempt += 1
            if attempt > 1:
                self._metrics.retries += 1
            slot, outcome = await self._send(spec, token, attempt, budget)
            if isinstance(outcome, httpx.Response):
                response: httpx.Response | None = outcome
                error: httpx.TransportError | None = None
                status = outcome.status_code
                if 200 <= status < 300:
                    return outcome
                if status < 200:  # an interim answer is never final: the server misbehaves
                    if _retry_method(spec) not in IDEMPOTENT_METHODS:
                        raise self._unknown(spec, outcome, None)
                    raise ApiProtocolError(
                        f"{spec.method} {spec.route}: the server answered {status} as final",
                        status=status,
                        method=spec.method,
                        route=spec.route,
                    )
                if status == 401 and not renewed:
                    renewed = True
                    try:
                        await self._auth.renew(token)
                    except ApiError as exc:
                        exc.method, exc.route = spec.method, spec.route
                        raise
                    continue
                if status == 429:
                    rate_limited += 1
                    wait = self._throttle.on_rate_limited(slot, retry_after(outcome))
                    if policy.rate_limit_ends_call(rate_limited, wait):
                        raise error_for(outcome, method=spec.method, route=spec.route)
                    continue
                verdict = classify_status(_retry_method(spec), status)
                if verdict is Verdict.FAIL:
                    note = "after one token renewal" if status == 401 else None
                    raise error_for(outcome, method=spec.method, route=spec.route, note=note)
            else:
                response, error = None, outcome
                verdict = classify_error(_retry_method(spec), outcome)
                if verdict is Verdict.FAIL:
                    raise unavailable(spec.method, spec.route, None, outcome, failures + 1)
            if verdict is Verdict.UNKNOWN:
                raise self._unknown(spec, response, error)
            failures += 1
            delay = policy.delay(failures, self._rng)
            if failures >= policy.max_attempts or self._past_deadline(budget, delay):
                raise unavailable(spec.method, spec.route, response, error, failures)
            log.info(
                "genesys.request.retry",
                method=spec.method,
                route=spec.route,
                attempt=attempt,
                delay_s=round(delay, 3),
            )
            if delay > 0:
                await self._sleep(delay)

    async def _send(
        self, spec: RequestSpec, token: str, attempt: int, budget: RequestBudget
    ) -> tuple[Slot, httpx.Response | httpx.TransportError]:
        """One attempt inside a throttle slot; transport errors are returned, not raised."""
        try:
            async with self._throttle.slot(budget) as slot:
                started = self._clock()
                self._metrics.requests += 1
                try:
                    response = await self._http.request(
                        spec.method,
                        self._api_url + spec.path,
                        params=spec.params or None,
                        json=spec.json,
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    )
                except httpx.TransportError as exc:
                    self._metrics.count_error(exc)
                    self._throttle.on_failure(slot)
                    self._log(spec, attempt, started, error=exc)
                    return slot, exc
                except httpx.DecodingError as exc:  # an answer came, its body is undecodable
                    self._metrics.count_error(exc)
                    self._log(spec, attempt, started, error=exc)
                    if _retry_method(spec) not in IDEMPOTENT_METHODS:
                        raise self._unknown(spec, None, exc) from exc
                    raise ApiProtocolError(
                        f"{spec.method} {spec.route}: undecodable answer ({exc})",
                        method=spec.method,
                        route=spec.route,
                    ) from exc
                self._observe(spec, slot, response, attempt, started)
                return slot, response
        except GateClosed as closed:
            raise gate_error(spec.method, spec.route, closed, self._clock()) from None

    def _observe(
        self,
        spec: RequestSpec,
        slot: Slot,
        response: httpx.Response,
        attempt: int,
        started: float,
    ) -> None:
        status = response.status_code
        self._metrics.count_status(status)
        if status == 429:
            self._metrics.rate_limited += 1
        if status in (500, 502, 503, 504):
            self._throttle.on_failure(slot)
        self._throttle.on_response(slot, status, response.headers)
        self._log(spec, attempt, started, response=response)

    def _log(
        self,
        spec: RequestSpec,
        attempt: int,
        started: float,
        *,
        response: httpx.Response | None = None,
        error: BaseException | None = None,
    ) -> None:
        fields: dict[str, Any] = {
            "method": spec.method,
            "route": spec.route,
            "attempt": attempt,
            "latency_ms": round((self._clock() - started) * 1000, 1),
        }
        if response is not None:
            fields["status"] = response.status_code
            fields["correlation_id"] = correlation_id(response)
            ok = response.status_code < 400 or (
                response.status_code == 404 and spec.method == "DELETE"
            )
            (log.debug if ok else log.info)("genesys.request", **fields)
        else:
            fields["error"] = type(error).__name__
            log.info("genesys.request", **fields)

    def _past_deadline(self, budget: RequestBudget, delay: float) -> bool:
        return budget.deadline is not None and self._clock() + delay > budget.deadline

    def _unknown(
        self,
        spec: RequestSpec,
        response: httpx.Response | None,
        error: BaseException | None,
    ) -> OutcomeUnknownError:
        self._metrics.outcome_unknown += 1
        what = f"{response.status_code}" if response is not None else type(error).__name__
        log.warning(
            "genesys.request.outcome_unknown", method=spec.method, route=spec.route, cause=what
        )
        exc = OutcomeUnknownError(
            f"{spec.method} {spec.route}: outcome unknown after {what}; the server may have "
            "applied it, so it is not re-sent: look the contact up first",
            status=response.status_code if response is not None else None,
            correlation_id=correlation_id(response) if response is not None else None,
            method=spec.method,
            route=spec.route,
        )
        exc.__cause__ = error
        return exc


def parse_answer(spec: RequestSpec, response: httpx.Response, parse: Callable[[Any], T]) -> T:
    """``parse`` the JSON body; a shape surprise is ApiProtocolError naming the request."""
    try:
        return parse(json_body(response))
    except ApiProtocolError as exc:
        exc.method, exc.route = spec.method, spec.route
        exc.status = response.status_code
        exc.correlation_id = correlation_id(response)
        raise


def parse_created(
    spec: RequestSpec, response: httpx.Response, parse: Callable[[Any], T], what: str
) -> T:
    """``parse`` the answer of a create; a 2xx whose body cannot be read leaves the outcome
    unknown (created, but which id it got cannot be told): OutcomeUnknownError, so that the
    caller looks the ``what`` up before creating it again."""
    try:
        return parse(json_body(response))
    except ApiProtocolError as exc:
        raise OutcomeUnknownError(
            f"POST {spec.route} -> {response.status_code} but the answer is unreadable "
            f"({exc.message}); look the {what} up before creating it again",
            status=response.status_code,
            correlation_id=correlation_id(response),
            method=spec.method,
            route=spec.route,
        ) from exc


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    # JSONDecodeError and UnicodeDecodeError are ValueErrors; RecursionError: nested too deep
    except (ValueError, RecursionError) as exc:
        raise ApiProtocolError(
            f"the answer is not JSON (content-type {response.headers.get('content-type')!r})",
            status=response.status_code,
        ) from exc


def _retry_method(spec: RequestSpec) -> str:
    """The method whose retry rules apply: an idempotent POST (bulk update, remove, read)
    may be re-sent after an unclear failure, exactly like a PUT."""
    return "PUT" if spec.idempotent and spec.method == "POST" else spec.method
