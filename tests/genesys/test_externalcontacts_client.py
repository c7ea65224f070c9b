"""The client with the externalcontacts profile: pacing by Retry-After only, the default
budget, and region hosts in the requests it actually sends."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from syncd.config import GenesysSettings
from syncd.emulator import EmulatorConfig
from syncd.genesys.client import GenesysClient
from syncd.genesys.retry import RetryPolicy
from syncd.model import Contact
from syncd.regions import REGION_API_HOSTS
from tests.genesys.fakes import API, LOGIN, FakeServer, FakeTime, answer
from tests.genesys.test_externalcontacts import ec_rig, ec_settings

pytestmark = pytest.mark.anyio

SOURCES = {"entities": [{"id": "src", "name": "syncd", "active": True}]}
EMPTY_SCAN = {"entities": [], "selfUri": "/api/v2/externalcontacts/scan/contacts"}


def client_for(server: FakeServer, **overrides: Any) -> GenesysClient:
    return GenesysClient.from_settings(
        ec_settings(API, LOGIN, **overrides),
        transport=server.transport(),
        clock=server.time,
        sleep=server.time.sleep,
        retry=RetryPolicy(jitter=0.0),
    )


async def test_a_429_with_only_retry_after_pauses_the_client_for_that_long(
    server: FakeServer, fake_time: FakeTime
) -> None:
    limited = answer(
        429,
        {
            "message": "Rate limit exceeded the maximum. Retry the request in [7] seconds",
            "code": "too.many.requests.retry.after",
            "status": 429,
        },
        headers={"Retry-After": "7"},
    )
    server.script = [answer(200, SOURCES), limited, answer(200, EMPTY_SCAN)]
    async with client_for(server, requests_per_minute=6000) as client:
        page = await client.list_page()
    assert page.contacts == []
    scans = server.api_requests("GET")[1:]
    assert len(scans) == 2
    assert scans[1].at - scans[0].at >= 7.0
    assert client.metrics.rate_limited == 1


async def test_answers_without_rate_headers_never_pause_the_client(
    server: FakeServer, fake_time: FakeTime
) -> None:
    server.script = [answer(200, SOURCES)]
    server.default = answer(200, EMPTY_SCAN)  # no X-Rate-Limit-* at all
    async with client_for(server, requests_per_minute=600) as client:
        assert client.throttle.settings.use_rate_limit_headers is False
        for _ in range(20):
            await client.list_page()
    sends = [s.at for s in server.api_requests()]
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert max(gaps) == pytest.approx(60 / (600 * 0.99), rel=1e-6)  # the schedule, nothing more
    assert client.throttle.paused_until < fake_time.now


async def test_the_budget_defaults_to_300_per_minute_for_externalcontacts() -> None:
    async def rate(**settings: Any) -> tuple[float, bool]:
        values: dict[str, Any] = {"client_id": "x", "client_secret": SecretStr("s"), **settings}
        async with GenesysClient.from_settings(GenesysSettings(**values)) as client:
            pacing = client.throttle.settings
            return pacing.requests_per_minute, pacing.use_rate_limit_headers

    assert await rate(profile="externalcontacts") == (300, False)
    assert await rate(profile="externalcontacts", requests_per_minute=900) == (900, False)
    assert await rate(profile="reference") == (600, True)
    assert await rate() == (600, True)


@pytest.mark.parametrize("profile", ["reference", "externalcontacts"])
async def test_each_region_sets_both_hosts_in_the_actual_requests(profile: str) -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.host}{request.url.path}")
        if request.url.path == "/oauth/token":
            return httpx.Response(
                200, json={"access_token": "t", "token_type": "bearer", "expires_in": 3600}
            )
        if request.url.path.endswith("/externalsources"):
            return httpx.Response(200, json=SOURCES)
        body = {"id": "c-1", "firstName": "A"}
        return httpx.Response(200, json=body)

    for region, api_host in REGION_API_HOSTS.items():
        seen.clear()
        settings = GenesysSettings(
            client_id="x",
            client_secret=SecretStr("s"),
            region=region,
            profile=profile,
            requests_per_minute=60_000,  # real time: do not wait between the two requests
        )
        transport = httpx.MockTransport(handler)
        async with GenesysClient.from_settings(settings, transport=transport) as client:
            await client.get("c-1")
        login_host = "login." + api_host.removeprefix("api.")
        path = "/api/v2/contacts/c-1"
        if profile == "externalcontacts":
            path = "/api/v2/externalcontacts/contacts/c-1"
        assert seen[0] == f"POST {login_host}/oauth/token", region
        assert seen[-1] == f"GET {api_host}{path}", region
        assert all(host.split(" ")[1].startswith((api_host, login_host)) for host in seen)
    assert REGION_API_HOSTS["eu_central_1"] == "api.mypurecloud.de"


async def test_correlation_ids_come_from_the_inin_header() -> None:
    async with ec_rig(
        EmulatorConfig(profile="externalcontacts", requests_per_minute=60_000)
    ) as rig:
        result = await rig.client.create(Contact("crm-9", "A", "B"))
        assert result.correlation_id
        assert result.status == 200
