"""The ASGI application: token endpoint, the profile's API routes, introspection.

``create_app`` builds a fresh :class:`~syncd.emulator.state.Emulator` per app and exposes
it as ``app.state.emulator``. Mount it in-process with ``httpx.ASGITransport`` for fast
tests, or serve it with :class:`~syncd.emulator.serve.EmulatorServer` / ``syncd emulator``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.emulator import introspect
from syncd.emulator.auth import OAuthError
from syncd.emulator.clock import Clock
from syncd.emulator.config import EmulatorConfig
from syncd.emulator.pipeline import ApiEndpoint
from syncd.emulator.responses import (
    ApiProblem,
    CorrelationIdMiddleware,
    correlation_id,
    error_response,
)
from syncd.emulator.state import Emulator
from syncd.logs import get_logger

log = get_logger("syncd.emulator")

TOKEN_PATH = "/oauth/token"
_FORM = "application/x-www-form-urlencoded"


def _token_endpoint(em: Emulator) -> Route:
    """``POST /oauth/token``: latency and outages apply; error injection and rate do not."""

    async def token(request: Request) -> Response:
        cid = correlation_id(request.scope)
        with em.lock:
            delay = em.faults.delay_seconds()
        if delay > 0:
            await em.sleep(delay)
        response = await _issue(request, cid)
        em.record_request(request.method, TOKEN_PATH, request.url.path, response.status_code, cid)
        log.debug("emulator.token", status=response.status_code, correlation_id=cid)
        return response

    async def _issue(request: Request, cid: str) -> Response:
        now = em.clock.monotonic()
        with em.lock:
            if em.faults.in_outage(now):
                return error_response(ApiProblem(503), cid)
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        try:
            if content_type != _FORM:
                raise OAuthError(400, "invalid_request", f"the body must be {_FORM}")
            try:
                form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8")).items()}
            except UnicodeDecodeError:
                raise OAuthError(400, "invalid_request", "the body is not UTF-8") from None
            with em.lock:
                body = em.tokens.issue(request.headers.get("authorization"), form, now)
        except OAuthError as exc:
            if exc.status == 401:
                headers["WWW-Authenticate"] = 'Basic realm="syncd-emulator"'
            return JSONResponse(exc.body(), status_code=exc.status, headers=headers)
        return JSONResponse(body, headers=headers)

    return Route(TOKEN_PATH, token, methods=["POST"])


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (outside the API) in the Genesys error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else {}
    return error_response(ApiProblem(status, headers=headers), correlation_id(request.scope))


def create_app(config: EmulatorConfig | None = None, *, clock: Clock | None = None) -> Starlette:
    """A new emulator app (its state is ``app.state.emulator``)."""
    em = Emulator(config or EmulatorConfig(), clock=clock)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        log.info("emulator.started", profile=em.profile.name, contacts=len(em.store))
        try:
            yield
        finally:
            em.save()
            log.info("emulator.stopped")

    api_prefix = "/api/v2"
    routes: list[BaseRoute] = [
        _token_endpoint(em),
        *introspect.routes(em),
        *em.profile.routes(em),
        # Anything else under the API still passes auth and the rate limit, then 404s.
        Route(f"{api_prefix}/{{path:path}}", ApiEndpoint(em, f"{api_prefix}/*", {})),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(CorrelationIdMiddleware)],
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.state.emulator = em
    return app
