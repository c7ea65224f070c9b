"""Response shapes shared by every route: Genesys error bodies and the correlation id.

Every response carries an ``ININ-Correlation-Id`` header; an error body repeats it as
``contextId``, as the real service does, so a client can log one id per failed call.
502 and 504 come from the "load balancer" in front of the API, as in production: an HTML
page, not JSON. Clients must classify errors by status, not by parsing the body.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CORRELATION_HEADER = "ININ-Correlation-Id"
_SCOPE_KEY = "syncd.emulator.correlation_id"

_DEFAULT_CODES = {
    400: (
        "bad.request",
        "The request could not be understood by the server due to malformed syntax.",
    ),
    401: ("bad.credentials", "Invalid login credentials."),
    404: ("not.found", "The requested resource was not found."),
    405: ("method.not.allowed", "The requested method is not supported for this resource."),
    413: ("request.entity.too.large", "The request is over the size limit."),
    429: ("too.many.requests.retry.after", "Rate limit exceeded the maximum."),
    500: ("internal.server.error", "The server encountered an unexpected condition."),
    503: ("service.unavailable", "Service Unavailable: the server is temporarily unable to serve."),
}
_GATEWAY_PAGES = {502: "502 Bad Gateway", 504: "504 Gateway Time-out"}


class ApiProblem(Exception):
    """An API error to answer with a Genesys-style body (raised by handlers)."""

    def __init__(
        self,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_code, default_message = _DEFAULT_CODES.get(status, ("error", "Error."))
        self.status = status
        self.code = code or default_code
        self.message = message or default_message
        self.details = details or []
        self.headers = headers or {}
        super().__init__(self.message)


# The correlation id of the API request being served: the write log names the request that
# applied each write, so a write whose answer was dropped can be told from one answered.
SERVING_REQUEST: ContextVar[str | None] = ContextVar("syncd_emulator_request", default=None)


def correlation_id(scope: Scope) -> str:
    """The id of the current request (set by :class:`CorrelationIdMiddleware`)."""
    cid = scope.get(_SCOPE_KEY)
    if not isinstance(cid, str):
        cid = str(uuid.uuid4())
        scope[_SCOPE_KEY] = cid
    return cid


def error_body(problem: ApiProblem, cid: str) -> dict[str, Any]:
    return {
        "message": problem.message,
        "code": problem.code,
        "status": problem.status,
        "contextId": cid,
        "details": problem.details,
        "errors": [],
    }


def error_response(
    problem: ApiProblem, cid: str, headers: dict[str, str] | None = None
) -> Response:
    all_headers = {**problem.headers, **(headers or {})}
    if problem.status in _GATEWAY_PAGES:
        title = _GATEWAY_PAGES[problem.status]
        page = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n</body>\r\n</html>\r\n"
        )
        return HTMLResponse(page, status_code=problem.status, headers=all_headers)
    return JSONResponse(error_body(problem, cid), status_code=problem.status, headers=all_headers)


class CorrelationIdMiddleware:
    """Give each HTTP request an id and stamp it on the response headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cid = correlation_id(scope)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if CORRELATION_HEADER not in headers:
                    headers.append(CORRELATION_HEADER, cid)
            await send(message)

        await self.app(scope, receive, send_with_id)
