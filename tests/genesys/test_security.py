"""Tokens never travel in clear text to a real host and never reach the logs (invariant 8)."""

from __future__ import annotations

import ssl
from datetime import timedelta

import anyio
import httpx
import pytest
from pydantic import SecretStr
from structlog.testing import capture_logs

from syncd.config import GenesysSettings
from syncd.errors import ApiAuthError, ApiError, ConfigError
from syncd.genesys.client import GenesysClient, require_safe_url
from syncd.genesys.profiles.reference import ReferenceProfile
from syncd.genesys.retry import RetryPolicy
from syncd.genesys.throttle import PacingSettings
from syncd.model import Contact
from tests.genesys.fakes import CLIENT_SECRET, FakeServer, answer, contact_json, make_client


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/api/v2",
        "http://localhost:8080",
        "http://[::1]:9000/api/v2",
        "https://api.mypurecloud.com/api/v2",
    ],
)
def test_safe_urls(url: str) -> None:
    assert require_safe_url(url + "/", "api_url") == url


@pytest.mark.parametrize(
    "url",
    ["http://api.mypurecloud.com/api/v2", "http://10.0.0.5/api/v2", "ftp://127.0.0.1/x", "api"],
)
def test_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="api_url"):
        require_safe_url(url, "api_url")


@pytest.mark.parametrize("which", ["api_url", "login_url"])
def test_client_refuses_plain_http_to_a_real_host(which: str) -> None:
    urls = {"api_url": "https://api.example.com/api/v2", "login_url": "https://login.example.com"}
    urls[which] = urls[which].replace("https://", "http://")
    with pytest.raises(ConfigError, match="clear text"):
        GenesysClient(
            api_url=urls["api_url"],
            login_url=urls["login_url"],
            client_id="c",
            client_secret="s",
            profile=ReferenceProfile(),
            pacing=PacingSettings(requests_per_minute=600),
            http=httpx.AsyncClient(),
        )


def test_from_settings_refuses_plain_http_even_if_validation_was_skipped() -> None:
    settings = GenesysSettings.model_construct(
        profile="reference",
        region="us_east_1",
        api_url="http://api.example.com/api/v2",
        login_url=None,
        client_id="c",
        client_secret=SecretStr("s"),
        requests_per_minute=600,
        max_in_flight=8,
        connect_timeout=timedelta(seconds=5),
        read_timeout=timedelta(seconds=30),
    )
    with pytest.raises(ConfigError, match="clear text"):
        GenesysClient.from_settings(settings)


@pytest.mark.anyio
async def test_from_settings_timeouts_and_tls() -> None:
    settings = GenesysSettings(
        client_id="c",
        client_secret=SecretStr("s"),
        connect_timeout="3s",
        read_timeout="20s",
        max_in_flight=5,
    )
    client = GenesysClient.from_settings(settings)
    try:
        timeout = client._http.timeout
        assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (3, 20, 20, 3)
        pool = client._http._transport._pool  # type: ignore[attr-defined]
        assert pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
        assert pool._ssl_context.check_hostname
        assert client.metrics.configured_rate_per_minute == 600
        assert "api.mypurecloud.com" in repr(client)
    finally:
        await client.aclose()


@pytest.mark.anyio
async def test_from_settings_without_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="secret"):
        GenesysClient.from_settings(GenesysSettings(client_id="c"))


@pytest.mark.anyio
async def test_logs_and_errors_never_contain_the_token(server: FakeServer) -> None:
    """Exercise every logging path (token fetch, renewal, 429, 5xx, errors) and look."""
    server.script = [
        answer(200, contact_json()),
        answer(429, {"message": "slow"}, {"Retry-After": "1"}),
        answer(503),
        answer(200, contact_json()),
        answer(400, {"message": "bad"}),
    ]
    errors: list[ApiError] = []
    with capture_logs() as logs:
        async with make_client(server, retry=RetryPolicy(jitter=0)) as client:
            await client.get("c-1")
            await client.get("c-1")
            try:
                await client.create(Contact("e"))
            except ApiError as exc:
                errors.append(exc)
            server.revoked.update(server.issued)
            server.script = [answer(200, contact_json())]
            await client.get("c-1")
            server.check_tokens = False
            server.default = answer(401, {"message": "Invalid login credentials."})
            server.time.advance(60)
            try:
                await client.get("c-1")
            except ApiAuthError as exc:
                errors.append(exc)
            secrets = [*server.issued, CLIENT_SECRET]
            assert len(server.issued) == 3
            for text in (repr(client), repr(client.auth), repr(client.metrics.snapshot())):
                assert not any(s in text for s in secrets)
    dump = repr(logs) + repr([(str(e), repr(e), e.__dict__) for e in errors])
    for secret in secrets:
        assert secret not in dump
    assert "Bearer" not in dump
    assert "Authorization" not in dump.replace("authorization", "")
    requests = [e for e in logs if e["event"] == "genesys.request"]
    assert len(requests) == len(server.seen)
    for entry in requests:
        assert {"method", "route", "attempt", "latency_ms"} <= entry.keys()
        assert "status" in entry or "error" in entry
    assert {e["route"] for e in requests} == {"/contacts/{id}", "/contacts"}
    assert any(e.get("correlation_id") == "corr-429" for e in requests)
    assert [e["attempt"] for e in requests if e.get("status") == 200][:2] == [1, 3]


def test_client_can_be_built_outside_an_event_loop(server: FakeServer) -> None:
    """The engine builds its client in synchronous code and uses it in a later event loop."""
    server.default = answer(200, contact_json())
    client = make_client(server)

    async def use() -> str:
        async with client:
            return (await client.get("c-1")).genesys_id

    assert anyio.run(use) == "c-1"
