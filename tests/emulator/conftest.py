"""Fixtures for the emulator tests: an in-process app on a manual clock, and a client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from syncd.emulator import Emulator, EmulatorConfig, ManualClock
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_ROUTE,
    asgi_transport,
    emulator_app,
    state_of,
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def config() -> EmulatorConfig:
    """Generous by default: only the rate-limit tests want a small budget."""
    return EmulatorConfig(requests_per_minute=100_000)


@pytest.fixture
def app(config: EmulatorConfig, clock: ManualClock) -> Starlette:
    return emulator_app(config, clock=clock)


@pytest.fixture
def emulator(app: Starlette) -> Emulator:
    return state_of(app)


async def fetch_token(client: httpx.AsyncClient) -> str:
    response = await client.post(
        TOKEN_ROUTE,
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


@pytest.fixture
async def anon(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """A client without a bearer token."""
    transport = asgi_transport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://emulator.test") as c:
        yield c


@pytest.fixture
async def client(anon: httpx.AsyncClient) -> httpx.AsyncClient:
    """The same client, authenticated: API calls go to ``/api/v2/...``."""
    anon.headers["Authorization"] = f"Bearer {await fetch_token(anon)}"
    return anon


def person(n: int, **extra: Any) -> dict[str, Any]:
    return {"firstName": f"First{n}", "lastName": f"Last{n}", "externalId": f"crm-{n}", **extra}


@pytest.fixture
def seed(emulator: Emulator) -> Callable[..., list[dict[str, Any]]]:
    """Seed ``count`` contacts with increasing dateCreated (one second apart)."""

    def _seed(count: int) -> list[dict[str, Any]]:
        return emulator.seed_contacts(
            [
                person(n, dateCreated=f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z")
                for n in range(count)
            ]
        )

    return _seed


def assert_error_body(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    """The Genesys error shape, with contextId equal to the correlation header."""
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"message", "code", "status", "contextId", "details", "errors"}
    assert body["status"] == status
    assert body["contextId"] == response.headers["ININ-Correlation-Id"]
    assert isinstance(body["details"], list)
    assert body["errors"] == []
    assert body["message"]
    if code is not None:
        assert body["code"] == code
    return body
