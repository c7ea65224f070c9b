"""The path every API request takes, in the order the real service applies it.

    latency (+ jitter) -> outage (503) -> bearer token (401) -> rate limit (429)
    -> method (404/405) -> injected 5xx -> handler (2xx/400/404) -> lost acknowledgement

Outage and 401 responses do not use the rate budget (they never reached the API); 429s do
not either (see :mod:`syncd.emulator.ratelimit`); everything after the rate limit does,
including injected errors, 404s and 400s. Every response carries the rate-limit headers,
unless the profile says the API has none (``rate_limit_headers = False``: production's
External Contacts API signals its limit with 429 + ``Retry-After`` only).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from syncd.emulator.responses import (
    SERVING_REQUEST,
    ApiProblem,
    correlation_id,
    error_response,
)
from syncd.logs import get_logger

if TYPE_CHECKING:
    from syncd.emulator.state import Emulator

log = get_logger("syncd.emulator")

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY_BYTES = 1024 * 1024
# Set by the server's HTTP protocol (serve.py): ``{"abort": callable}`` drops the connection.
ABORT_EXTENSION = "syncd.emulator.abort"
_DROP_GRACE_SECONDS = 5.0


class LostAcknowledgement(httpx.RemoteProtocolError):
    """Raised in-process when a write was applied and its response dropped on purpose.

    It is an ``httpx.RemoteProtocolError`` so a client mounted on the ASGI transport sees
    the same kind of failure as over a real socket.
    """

    def __init__(self) -> None:
        super().__init__("Server disconnected without sending a response.")


@dataclass(slots=True)
class ApiCall:
    """What a handler gets: the request, the emulator and the path parameters."""

    request: Request
    emulator: Emulator
    correlation_id: str

    @property
    def params(self) -> Mapping[str, Any]:
        return self.request.path_params

    async def json_body(self) -> Any:
        """The request body as JSON; 400 when absent or malformed, 413 when too big."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in self.request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                raise ApiProblem(413, f"The request body is over {MAX_BODY_BYTES} bytes.")
            chunks.append(chunk)
        raw = b"".join(chunks)
        if not raw.strip():
            raise ApiProblem(400, "A request body is required.")
        try:
            return json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiProblem(400, f"The request body is not valid JSON: {exc}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


Handler = Callable[[ApiCall], Awaitable[Response]]


class ApiEndpoint:
    """One route template of the API: runs the pipeline, then the handler for the method."""

    def __init__(
        self,
        emulator: Emulator,
        template: str,
        handlers: Mapping[str, Handler],
        *,
        writes: Collection[str] = WRITE_METHODS,
    ) -> None:
        self.emulator = emulator
        self.template = template
        self.handlers = dict(handlers)
        self.writes = frozenset(writes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        em = self.emulator
        request = Request(scope, receive)
        cid = correlation_id(scope)
        with em.lock:
            delay = em.faults.delay_seconds()
        if delay > 0:
            await em.sleep(delay)
        serving = SERVING_REQUEST.set(cid)
        try:
            response, dropped = await self._respond(request, cid)
        finally:
            SERVING_REQUEST.reset(serving)
        status = 0 if dropped else response.status_code
        em.record_request(request.method, self.template, request.url.path, status, cid)
        log.debug(
            "emulator.request",
            method=request.method,
            route=self.template,
            status=status,
            correlation_id=cid,
        )
        if dropped:
            await _drop_connection(scope, receive)
            return
        await response(scope, receive, send)

    async def _respond(self, request: Request, cid: str) -> tuple[Response, bool]:
        em = self.emulator
        method = request.method
        headers_on = getattr(em.profile, "rate_limit_headers", True)
        with em.lock:
            now = em.clock.monotonic()
            idle = em.limiter.peek(now).headers() if headers_on else {}
            if em.faults.in_outage(now):
                return error_response(ApiProblem(503), cid, idle), False
            unauthenticated = em.tokens.check(request.headers.get("authorization"), now)
            if unauthenticated is not None:
                refusal = ApiProblem(401, unauthenticated.message, code=unauthenticated.code)
                return error_response(refusal, cid, idle), False
            decision = em.limiter.acquire(now)
            rate_headers = decision.headers() if headers_on else {}
            if not decision.admitted:
                wait = decision.retry_after
                message = f"Rate limit exceeded the maximum. Retry the request in [{wait}] seconds"
                limited = ApiProblem(429, message, headers={"Retry-After": str(wait)})
                return error_response(limited, cid, rate_headers), False
            handler = self.handlers.get(method)
            if handler is None:
                return error_response(self._no_handler(), cid, rate_headers), False
            is_write = method in self.writes
            injected = em.faults.injected_error(is_write=is_write)
            if injected is not None:
                return error_response(ApiProblem(injected), cid, rate_headers), False
        try:
            response = await handler(ApiCall(request, em, cid))
        except ApiProblem as problem:
            return error_response(problem, cid, rate_headers), False
        response.headers.update(rate_headers)
        dropped = False
        if is_write and response.status_code < 300:
            with em.lock:
                dropped = em.faults.lose_ack()
        return response, dropped

    def _no_handler(self) -> ApiProblem:
        if not self.handlers:
            return ApiProblem(404, "The requested resource was not found.")
        allowed = ", ".join(sorted(self.handlers))
        return ApiProblem(405, headers={"Allow": allowed})


async def _drop_connection(scope: Scope, receive: Receive) -> None:
    """Close the connection without a response (the write has already been applied)."""
    extensions = scope.get("extensions") or {}
    abort = (extensions.get(ABORT_EXTENSION) or {}).get("abort")
    if abort is None:
        raise LostAcknowledgement()
    abort()
    # Wait for the server to notice the disconnect, so it does not answer in our place.
    try:
        async with asyncio.timeout(_DROP_GRACE_SECONDS):
            while (await receive())["type"] != "http.disconnect":
                pass
    except TimeoutError:
        log.warning("emulator.drop.timeout")
