"""The OAuth token: lazy, shared, renewed before expiry, renewed once on a 401, no storms."""

from __future__ import annotations

import anyio
import httpx
import pytest

from syncd.errors import ApiAuthError, ApiProtocolError
from syncd.genesys.auth import refresh_margin
from syncd.genesys.client import TokenCache
from syncd.genesys.retry import RetryPolicy
from tests.genesys.fakes import CLIENT_SECRET, FakeServer, answer, contact_json, make_client

pytestmark = pytest.mark.anyio


async def test_token_is_fetched_lazily_and_shared(server: FakeServer) -> None:
    server.default = answer(200, contact_json())
    async with make_client(server, max_in_flight=8) as client:
        assert server.token_requests == 0  # nothing at construction
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(client.get, "c-1")
    assert server.token_requests == 1
    assert {s.token for s in server.seen} == {server.issued[0]}


async def test_token_request_is_basic_auth_form(server: FakeServer) -> None:
    # FakeServer asserts POST, Basic auth and the exact form body.
    server.default = answer(200, contact_json())
    async with make_client(server) as client:
        await client.get("c-1")
    assert client.metrics.token_fetches == 1


async def test_token_is_renewed_before_expiry(server: FakeServer) -> None:
    server.expires_in = 600
    server.default = answer(200, contact_json())
    async with make_client(server) as client:
        await client.get("c-1")
        server.time.advance(600 - refresh_margin(600) - 1)
        await client.get("c-1")
        assert server.token_requests == 1
        server.time.advance(2)  # inside the refresh margin, before expiry
        await client.get("c-1")
    assert server.token_requests == 2
    assert [s.token for s in server.seen] == [server.issued[0]] * 2 + [server.issued[1]]
    assert client.metrics.token_renewals == 0  # renewed ahead, never by a 401


def test_refresh_margin_bounds() -> None:
    assert refresh_margin(86400) == 8640  # 10% of a day
    assert refresh_margin(300) == 60  # at least a minute
    assert refresh_margin(10) == 5  # at most half a short lifetime


async def test_expired_token_401_is_invisible(server: FakeServer) -> None:
    server.default = answer(200, contact_json())
    async with make_client(server) as client:
        await client.get("c-1")
        server.revoked.add(server.issued[0])  # the server forgot it (expiry, restart)
        remote = await client.get("c-1")
    assert remote.genesys_id == "c-1"
    assert server.token_requests == 2
    assert client.metrics.token_renewals == 1
    assert [s.token for s in server.seen] == [server.issued[0]] * 2 + [server.issued[1]]


async def test_second_401_is_an_auth_error_after_exactly_one_renewal(server: FakeServer) -> None:
    server.check_tokens = False
    server.default = answer(401, {"message": "Invalid login credentials."})
    async with make_client(server) as client:
        with pytest.raises(ApiAuthError, match="after one token renewal"):
            await client.get("c-1")
    assert server.token_requests == 2  # the first token, one renewal
    assert len(server.seen) == 2  # the request, its one retry


async def test_revoked_client_no_retry_storm(server: FakeServer) -> None:
    """Many concurrent requests, every token rejected: one renewal in total, no storm."""
    server.check_tokens = False
    server.default = answer(401, {"message": "Invalid login credentials."})
    errors: list[BaseException] = []

    async def one() -> None:
        try:
            await client.get("c-1")
        except ApiAuthError as exc:
            errors.append(exc)

    async with make_client(server, max_in_flight=8) as client, anyio.create_task_group() as tg:
        for _ in range(16):
            tg.start_soon(one)
    assert len(errors) == 16
    assert server.token_requests == 2
    assert len(server.seen) <= 32  # at most one retry each


async def test_renewal_allowed_again_later(server: FakeServer) -> None:
    server.default = answer(200, contact_json())
    async with make_client(server) as client:
        await client.get("c-1")
        server.revoked.add(server.issued[0])
        await client.get("c-1")
        server.time.advance(3600 * 0.5)
        server.revoked.add(server.issued[1])
        await client.get("c-1")
    assert server.token_requests == 3


async def test_login_refuses_credentials(server: FakeServer) -> None:
    server.token_script = [
        httpx.Response(
            401,
            json={"error": "invalid_client", "error_description": "client authentication failed"},
        )
    ]
    async with make_client(server) as client:
        with pytest.raises(ApiAuthError) as info:
            await client.get("c-1")
    message = str(info.value)
    assert "client-id-1" in message
    assert "client authentication failed" in message
    assert CLIENT_SECRET not in message
    assert server.token_requests == 1
    assert server.seen == []


async def test_login_transient_failure_is_retried(server: FakeServer) -> None:
    server.token_script = [answer(503), httpx.ConnectError("refused"), None]
    server.default = answer(200, contact_json())
    async with make_client(server) as client:
        await client.get("c-1")
    assert server.token_requests == 3
    assert server.time.sleeps == [0.5, 1.0]


@pytest.mark.parametrize(
    "body",
    [
        {"token_type": "bearer", "expires_in": 60},
        {"access_token": "", "expires_in": 60},
        {"access_token": "t-123456", "token_type": "mac"},
        {"access_token": "t-123456", "expires_in": "soon"},
        ["access_token"],
    ],
)
async def test_malformed_token_answer(server: FakeServer, body: object) -> None:
    server.token_script = [httpx.Response(200, json=body)]
    async with make_client(server) as client:
        with pytest.raises(ApiProtocolError):
            await client.get("c-1")


async def test_refresh_failure_keeps_a_still_valid_token(server: FakeServer) -> None:
    server.expires_in = 600
    server.default = answer(200, contact_json())
    policy = RetryPolicy.testing(max_attempts=1)
    async with make_client(server, retry=policy) as client:
        await client.get("c-1")
        server.time.advance(600 - refresh_margin(600) + 1)  # due for refresh, not expired
        server.token_script = [answer(503)]
        await client.get("c-1")
    assert [s.token for s in server.seen] == [server.issued[0]] * 2


async def test_requests_waiting_for_a_failed_login_fail_with_it(server: FakeServer) -> None:
    """Chaos suite (a total outage that a fresh run meets at its first request): each of the
    requests queued behind a failing token fetch started its own round of retries, so a
    login service that is down got max_attempts token requests per waiting request."""
    from syncd.errors import ApiUnavailableError

    server.token_script = [answer(503)] * 30
    server.default = answer(200, contact_json())
    policy = RetryPolicy.testing(max_attempts=3)
    async with make_client(server, retry=policy, max_in_flight=8) as client:
        errors: list[ApiUnavailableError] = []

        async def one() -> None:
            try:
                await client.get("c-1")
            except ApiUnavailableError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(one)
        assert server.token_requests == 3  # one fetch, its three attempts
        assert len(errors) == 8
        assert all(e.route == "/oauth/token" for e in errors)
        server.token_script = []
        await client.get("c-1")  # a later call asks again, and the login works again
    assert server.token_requests == 4


async def test_a_token_cache_serves_the_next_client_without_a_login(server: FakeServer) -> None:
    """The daemon builds a client per run: the token outlives it (one login, not one a run)."""
    server.default = answer(200, contact_json())
    cache = TokenCache()
    for _ in range(3):
        async with make_client(server, token_cache=cache) as client:
            await client.get("c-1")
    assert server.token_requests == 1
    assert {s.token for s in server.seen} == {server.issued[0]}


async def test_a_refused_token_costs_the_next_client_one_renewal_not_a_failure(
    server: FakeServer,
) -> None:
    """A run that gave up on a token after its one renewal must not make every later run fail
    before its first request: the next client renews once and goes on."""
    server.check_tokens = False
    server.default = answer(401, {"message": "Invalid login credentials."})
    cache = TokenCache()
    async with make_client(server, token_cache=cache) as client:
        with pytest.raises(ApiAuthError):
            await client.get("c-1")
    assert server.token_requests == 2
    server.default = answer(200, contact_json())
    server.script.append(answer(401, {"message": "Invalid login credentials."}))
    async with make_client(server, token_cache=cache) as client:
        await client.get("c-1")  # 401 on the cached token, one renewal, then 200
    assert server.token_requests == 3
