"""OAuth client credentials at POST /oauth/token, and bearer tokens on the API."""

from __future__ import annotations

import httpx
import pytest

from syncd.emulator import Emulator, EmulatorConfig, ManualClock
from tests.emulator.conftest import assert_error_body, fetch_token
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET

pytestmark = pytest.mark.anyio

GRANT = {"grant_type": "client_credentials"}


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig(requests_per_minute=3, token_expires_in=300)


async def test_client_credentials_grant_returns_a_bearer_token(anon: httpx.AsyncClient) -> None:
    response = await anon.post("/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), data=GRANT)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    assert response.headers["Cache-Control"] == "no-store"
    assert "ININ-Correlation-Id" in response.headers


@pytest.mark.parametrize(
    ("auth", "description"),
    [
        (None, "required"),
        ((CLIENT_ID, "wrong"), "failed"),
        (("someone-else", CLIENT_SECRET), "failed"),
    ],
)
async def test_bad_client_credentials_are_401_invalid_client(
    anon: httpx.AsyncClient, auth: tuple[str, str] | None, description: str
) -> None:
    if auth is None:
        response = await anon.post("/oauth/token", data=GRANT)
    else:
        response = await anon.post("/oauth/token", auth=auth, data=GRANT)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert description in response.json()["error_description"]
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize("header", ["Basic !!!notbase64", "Basic", "Bearer abc", "Basic Zm9v"])
async def test_malformed_basic_credentials_are_401(anon: httpx.AsyncClient, header: str) -> None:
    response = await anon.post("/oauth/token", headers={"Authorization": header}, data=GRANT)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("data", "error"),
    [({}, "invalid_request"), ({"grant_type": "password"}, "unsupported_grant_type")],
)
async def test_a_missing_or_other_grant_type_is_400(
    anon: httpx.AsyncClient, data: dict[str, str], error: str
) -> None:
    response = await anon.post("/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), data=data)
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_the_token_request_must_be_form_encoded(anon: httpx.AsyncClient) -> None:
    response = await anon.post("/oauth/token", auth=(CLIENT_ID, CLIENT_SECRET), json=GRANT)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_the_token_endpoint_is_not_rate_limited(anon: httpx.AsyncClient) -> None:
    tokens = {await fetch_token(anon) for _ in range(10)}
    assert len(tokens) == 10


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "authentication.required"),
        ("Bearer", "authentication.required"),
        ("Basic abc", "authentication.required"),
        ("Bearer not-a-token", "bad.credentials"),
    ],
)
async def test_api_calls_without_a_valid_token_are_401(
    anon: httpx.AsyncClient, header: str | None, code: str
) -> None:
    headers = {"Authorization": header} if header else {}
    response = await anon.get("/api/v2/contacts", headers=headers)
    assert_error_body(response, 401, code)
    assert response.headers["X-Rate-Limit-Limit"] == "3"


async def test_401s_do_not_use_the_rate_budget(anon: httpx.AsyncClient, emulator: Emulator) -> None:
    for _ in range(10):
        assert (await anon.get("/api/v2/contacts")).status_code == 401
    assert emulator.limiter.peek(emulator.clock.monotonic()).remaining == 3


async def test_a_token_expires_after_expires_in_seconds(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    clock.advance(299.9)
    assert (await client.get("/api/v2/contacts")).status_code == 200
    clock.advance(0.1)
    body = assert_error_body(await client.get("/api/v2/contacts"), 401, "bad.credentials")
    assert "expired" in body["message"]
    client.headers["Authorization"] = f"Bearer {await fetch_token(client)}"
    assert (await client.get("/api/v2/contacts")).status_code == 200


async def test_revoked_tokens_are_refused_and_a_new_one_works(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    assert emulator.revoke_tokens() == 1
    assert_error_body(await client.get("/api/v2/contacts"), 401, "bad.credentials")
    client.headers["Authorization"] = f"Bearer {await fetch_token(client)}"
    assert (await client.get("/api/v2/contacts")).status_code == 200
    assert emulator.stats()["faults"]["revoke"] == 1


async def test_reset_keeps_tokens_valid(client: httpx.AsyncClient, emulator: Emulator) -> None:
    emulator.reset()
    assert (await client.get("/api/v2/contacts")).status_code == 200


async def test_introspection_needs_no_token_and_no_budget(anon: httpx.AsyncClient) -> None:
    for _ in range(5):
        assert (await anon.get("/__emulator/stats")).status_code == 200
    stats = (await anon.get("/__emulator/stats")).json()
    assert stats["requests_total"] == 0
