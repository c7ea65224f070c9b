"""Wiring the client to the emulator: in-process (ASGI, virtual time) or over a socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import SecretStr

from syncd.emulator import Emulator, EmulatorConfig, ManualClock
from syncd.genesys.client import GenesysClient
from syncd.genesys.retry import RetryPolicy
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_ROUTE,
    api_requests,
    asgi_transport,
    client_settings,
    emulator_app,
    serve_in_thread,
    state_of,
)

# What the client logs in with and speaks, whatever the emulator is configured with: its
# default credentials (a test may give the emulator another secret, to see the login fail)
# and the reference profile.
CLIENT: dict[str, Any] = {
    "client_id": CLIENT_ID,
    "client_secret": SecretStr(CLIENT_SECRET),
    "profile": "reference",
    "connect_timeout": "2s",
    "read_timeout": "5s",
}


class Hook(httpx.AsyncBaseTransport):
    """Wraps a transport to act on the emulator between requests (e.g. heal a fault)."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        after: Callable[[httpx.Request, httpx.Response], None] | None = None,
        on_error: Callable[[httpx.Request, Exception], None] | None = None,
    ) -> None:
        self.inner = inner
        self.after = after
        self.on_error = on_error

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            if self.on_error is not None:
                self.on_error(request, exc)
            raise
        if self.after is not None:
            await response.aread()
            self.after(request, response)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Rig:
    client: GenesysClient
    emulator: Emulator
    clock: ManualClock | None  # the emulator's; None over a real socket (real time)
    client_clock: ManualClock | None = None  # the client's, when not shared

    def api_log(self, method: str | None = None) -> list[dict[str, Any]]:
        calls = api_requests(self.emulator.request_log())
        return [e for e in calls if method is None or e["method"] == method]

    def token_requests(self) -> int:
        return sum(e["route"] == TOKEN_ROUTE for e in self.emulator.request_log())


@asynccontextmanager
async def in_process(
    config: EmulatorConfig | None = None,
    *,
    rpm: int = 600,
    in_flight: int = 8,
    retry: RetryPolicy | None = None,
    shared_clock: bool = True,
    wrap: Callable[[httpx.AsyncBaseTransport, Emulator], httpx.AsyncBaseTransport] | None = None,
) -> AsyncIterator[Rig]:
    """Emulator app behind asgi_transport (no socket); client and emulator share a ManualClock."""
    clock = ManualClock()
    app = emulator_app(config, clock=clock)
    em = state_of(app)
    transport: httpx.AsyncBaseTransport = asgi_transport(app)
    if wrap is not None:
        transport = wrap(transport, em)
    own = ManualClock() if not shared_clock else clock
    client = GenesysClient.from_settings(
        client_settings(app, requests_per_minute=rpm, max_in_flight=in_flight, **CLIENT),
        transport=transport,
        clock=own.monotonic,
        sleep=own.sleep,
        retry=retry,
    )
    async with client:
        yield Rig(client, em, clock, own)


@asynccontextmanager
async def over_socket(
    config: EmulatorConfig | None = None,
    *,
    rpm: int = 60_000,
    in_flight: int = 8,
    retry: RetryPolicy | None = None,
    wrap: Callable[[httpx.AsyncBaseTransport, Emulator], httpx.AsyncBaseTransport] | None = None,
) -> AsyncIterator[Rig]:
    """A real uvicorn server on 127.0.0.1 and a client with real time.

    The emulator's own limit defaults to ``rpm`` too: the client follows the server's
    ``X-Rate-Limit-Limit``, and a test over a socket must not wait for the reference 600/min.
    """
    with serve_in_thread(config or EmulatorConfig(requests_per_minute=rpm)) as server:
        transport = None
        if wrap is not None:
            transport = wrap(httpx.AsyncHTTPTransport(), server.emulator)
        client = GenesysClient.from_settings(
            client_settings(server, requests_per_minute=rpm, max_in_flight=in_flight, **CLIENT),
            transport=transport,
            retry=retry,
        )
        async with client:
            yield Rig(client, server.emulator, None)
