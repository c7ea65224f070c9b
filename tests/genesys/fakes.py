"""Test doubles for the client: virtual time and a scripted ``httpx.MockTransport`` server.

``FakeTime.sleep`` records the delay and moves the clock forward instead of waiting, so
backoff and pacing are asserted exactly and tests never sleep for real. ``FakeServer`` plays
the login service and the API: it issues tokens, checks them, and answers API requests
from a script (one entry per request, then a default), recording everything it saw.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from syncd.genesys.client import GenesysClient, TokenCache
from syncd.genesys.profiles.reference import ReferenceProfile
from syncd.genesys.retry import RetryPolicy
from syncd.genesys.throttle import PacingSettings

API = "https://api.test.example/api/v2"
LOGIN = "https://login.test.example"
CLIENT_ID = "client-id-1"
CLIENT_SECRET = "s3cret-value-never-logged"


class FakeTime:
    """A monotonic clock that only moves when someone sleeps (or a test advances it)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(seconds, 0.0)
        await anyio.lowlevel.checkpoint()

    def advance(self, seconds: float) -> None:
        self.now += seconds


Answer = httpx.Response | Exception | Callable[[httpx.Request], Any]


def answer(status: int, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
    """A JSON answer (``body`` None means no body)."""
    hdrs = {"ININ-Correlation-Id": f"corr-{status}", **(headers or {})}
    if body is None:
        return httpx.Response(status, headers=hdrs)
    return httpx.Response(status, json=body, headers=hdrs)


def contact_json(cid: str = "c-1", external_id: str = "ext-1", **extra: Any) -> dict[str, Any]:
    body = {
        "id": cid,
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "ada@example.com",
        "phoneNumbers": [{"number": "+15551234567", "type": "MOBILE"}],
        "externalOrganization": {"id": "org-1", "name": "Analytical"},
        "externalId": external_id,
        "dateCreated": "2026-03-14T10:30:00Z",
        "dateModified": "2026-03-14T10:30:00.000Z",
    }
    body.update(extra)
    return body


@dataclass
class Seen:
    """One API request the fake server received."""

    method: str
    path: str
    params: dict[str, str]
    token: str | None
    body: Any
    at: float


@dataclass
class FakeServer:
    """Scripted login service + API behind a MockTransport."""

    time: FakeTime
    script: list[Answer] = field(default_factory=list)
    default: Answer | None = None
    token_script: list[httpx.Response | Exception | None] = field(default_factory=list)
    expires_in: int = 3600
    seen: list[Seen] = field(default_factory=list)
    token_requests: int = 0
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    check_tokens: bool = True

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return self._token(request)
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        body = json.loads(request.content) if request.content else None
        self.seen.append(
            Seen(
                request.method,
                request.url.path,
                dict(request.url.params),
                token,
                body,
                self.time.now,
            )
        )
        if self.check_tokens and (token not in self.issued or token in self.revoked):
            return answer(401, {"message": "Invalid login credentials.", "code": "bad.credentials"})
        item = self.script.pop(0) if self.script else self.default
        if item is None:
            raise AssertionError(f"unscripted request {request.method} {request.url}")
        return await _play(item, request)

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests += 1
        assert request.method == "POST"
        assert request.headers["authorization"].startswith("Basic ")
        assert request.content == b"grant_type=client_credentials"
        item = self.token_script.pop(0) if self.token_script else None
        if isinstance(item, Exception):
            raise item
        if isinstance(item, httpx.Response):
            return item
        token = f"tok-{len(self.issued) + 1}-abcdefgh"
        self.issued.append(token)
        return httpx.Response(
            200, json={"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}
        )

    def api_requests(self, method: str | None = None) -> list[Seen]:
        return [s for s in self.seen if method is None or s.method == method]


async def _play(item: Answer, request: httpx.Request) -> httpx.Response:
    if isinstance(item, Exception):
        if isinstance(item, httpx.RequestError):
            item.request = request
        raise item
    if isinstance(item, httpx.Response):
        return item
    result = item(request)
    if isinstance(result, Awaitable):
        result = await result
    assert isinstance(result, httpx.Response)
    return result


def make_client(
    server: FakeServer,
    *,
    retry: RetryPolicy | None = None,
    rpm: float = 6000,
    max_in_flight: int = 4,
    token_cache: TokenCache | None = None,
    **pacing: Any,
) -> GenesysClient:
    """A client on the fake server, in the server's virtual time, with jitter-free backoff."""
    import random

    http = httpx.AsyncClient(transport=server.transport())
    return GenesysClient(
        api_url=API,
        login_url=LOGIN,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        profile=ReferenceProfile(),
        pacing=PacingSettings(requests_per_minute=rpm, max_in_flight=max_in_flight, **pacing),
        http=http,
        retry=retry or RetryPolicy(jitter=0.0),
        clock=server.time,
        sleep=server.time.sleep,
        rng=random.Random(0),
        token_cache=token_cache,
    )
