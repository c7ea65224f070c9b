"""Pacing: one schedule per client, 429 pauses everyone, headers adapt, outages cost little."""

from __future__ import annotations

import itertools

import anyio
import httpx
import pytest

from syncd.errors import ApiRateLimitedError, ApiUnavailableError
from syncd.genesys.retry import RetryPolicy
from syncd.genesys.throttle import PacingSettings
from tests.genesys.fakes import FakeServer, answer, contact_json, make_client

pytestmark = pytest.mark.anyio


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in itertools.pairwise(times)]


async def test_requests_are_spaced_at_the_configured_rate(server: FakeServer) -> None:
    server.default = answer(200, contact_json())
    async with make_client(server, rpm=600, headroom=1.0) as client:
        for _ in range(6):
            await client.get("c-1")
    assert gaps([s.at for s in server.seen]) == [0.1] * 5


async def test_headroom_keeps_a_little_under_the_limit(server: FakeServer) -> None:
    server.default = answer(200, contact_json())
    async with make_client(server, rpm=600) as client:
        for _ in range(3):
            await client.get("c-1")
        assert client.metrics.current_rate_per_minute == pytest.approx(594)
    assert gaps([s.at for s in server.seen]) == [round(60 / 594, 6)] * 2


async def test_concurrency_is_bounded(server: FakeServer) -> None:
    active = peak = 0

    async def slow(request: httpx.Request) -> httpx.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.002)  # real time: the only way to overlap requests
        active -= 1
        return answer(200, contact_json())

    server.default = slow
    client = make_client(server, rpm=1_000_000, max_in_flight=3)
    async with client, anyio.create_task_group() as tg:
        for _ in range(15):
            tg.start_soon(client.get, "c-1")
    assert peak == 3
    assert len(server.seen) == 15


async def test_429_pauses_the_whole_client_without_using_retries(server: FakeServer) -> None:
    server.script = [answer(429, {"message": "slow down"}, {"Retry-After": "5"})]
    server.default = answer(200, contact_json())
    policy = RetryPolicy.testing(max_attempts=1)  # a transient failure would be fatal
    async with make_client(server, retry=policy, rpm=6000, max_in_flight=4) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(client.get, "c-1")
        assert client.metrics.rate_limited == 1
        assert client.metrics.pauses == 1
    t429 = server.seen[0].at
    later = server.seen[1:]
    assert len(later) == 4  # three others + the retried one, all succeeded
    # Nothing reached the server during the pause (only requests already in flight could).
    assert all(s.at >= t429 + 5 or s.at <= t429 for s in later)
    assert sum(s.at >= t429 + 5 for s in later) >= 1


async def test_429_lowers_the_rate_then_it_recovers(server: FakeServer) -> None:
    server.script = [answer(429, {"message": "slow down"}, {"Retry-After": "1"})]
    server.default = answer(200, contact_json())
    async with make_client(server, rpm=600, headroom=1.0) as client:
        await client.get("c-1")
        assert client.metrics.current_rate_per_minute == 300  # halved
        times_before = len(server.seen)
        for _ in range(3):
            await client.get("c-1")
        assert gaps([s.at for s in server.seen[times_before - 1 :]])[-1] == pytest.approx(0.2)
        server.time.advance(10)
        await client.get("c-1")
        assert client.metrics.current_rate_per_minute == pytest.approx(330)  # +5% of 600
        server.time.advance(200)
        await client.get("c-1")
        assert client.metrics.current_rate_per_minute == pytest.approx(600)


async def test_a_burst_of_429s_lowers_the_rate_once(server: FakeServer) -> None:
    # All four are in flight before the first 429 comes back (a barrier, not a sleep: on a
    # loaded machine a sleep let the first answer overtake the last send).
    arrived = 0
    all_in_flight = anyio.Event()

    async def limited(request: httpx.Request) -> httpx.Response:
        nonlocal arrived
        arrived += 1
        if arrived == 4:
            all_in_flight.set()
        await all_in_flight.wait()
        return answer(429, {"message": "slow down"}, {"Retry-After": "1"})

    server.script = [limited] * 4
    server.default = answer(200, contact_json())
    async with make_client(server, rpm=1_000_000, headroom=1.0, max_in_flight=4) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(client.get, "c-1")
        assert client.metrics.rate_limited == 4
        assert client.metrics.current_rate_per_minute == pytest.approx(500_000)


async def test_server_limit_header_caps_the_rate(server: FakeServer) -> None:
    headers = {
        "X-Rate-Limit-Limit": "300",
        "X-Rate-Limit-Remaining": "250",
        "X-Rate-Limit-Reset": "40",
    }
    server.default = answer(200, contact_json(), headers)
    async with make_client(server, rpm=600, headroom=1.0) as client:
        for _ in range(4):
            await client.get("c-1")
        assert client.metrics.current_rate_per_minute == pytest.approx(300)
        assert client.metrics.configured_rate_per_minute == 600
    assert gaps([s.at for s in server.seen])[1:] == [0.2, 0.2]


async def test_exhausted_remaining_pauses_until_reset(server: FakeServer) -> None:
    spent = {"X-Rate-Limit-Limit": "600", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "3"}
    server.script = [answer(200, contact_json(), spent)]
    server.default = answer(200, contact_json())
    async with make_client(server, rpm=600) as client:
        await client.get("c-1")
        await client.get("c-1")
        assert client.metrics.rate_limited == 0
    assert gaps([s.at for s in server.seen]) == [3.0]


async def test_headers_can_be_ignored(server: FakeServer) -> None:
    spent = {"X-Rate-Limit-Limit": "60", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "30"}
    server.default = answer(200, contact_json(), spent)
    async with make_client(server, rpm=600, headroom=1.0, use_rate_limit_headers=False) as c:
        await c.get("c-1")
        await c.get("c-1")
    assert gaps([s.at for s in server.seen]) == [0.1]


def test_pacing_settings_validate() -> None:
    with pytest.raises(ValueError, match="requests_per_minute"):
        PacingSettings(requests_per_minute=0)
    with pytest.raises(ValueError, match="headroom"):
        PacingSettings(requests_per_minute=10, headroom=1.5)


@pytest.mark.parametrize("workers", [1, 4])
async def test_outage_costs_a_bounded_number_of_requests(server: FakeServer, workers: int) -> None:
    """Two minutes of 503s: the breaker lets a probe through now and then, not a flood."""
    outage_start = server.time.now + 5
    outage_end = outage_start + 120

    def service(request: httpx.Request) -> httpx.Response:
        if outage_start <= server.time.now < outage_end:
            return answer(503, {"message": "Service Unavailable"})
        return answer(200, contact_json())

    server.default = service
    failures = 0
    successes_after = 0

    async def worker() -> None:
        nonlocal failures, successes_after
        while server.time.now < outage_end + 30:
            try:
                await client.get("c-1")
            except ApiUnavailableError:
                failures += 1
            else:
                successes_after += server.time.now >= outage_end

    async with make_client(server, rpm=600, max_in_flight=4) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(worker)
        assert not client.throttle.breaker_open
        assert client.metrics.breaker_opens >= 1
    during = [s for s in server.seen if outage_start <= s.at < outage_end]
    assert failures <= 2  # calls mostly wait for the service instead of failing fast
    assert 3 <= len(during) <= 12 + workers  # ~3 to trip the breaker, then ~7 probes
    assert successes_after > 0  # recovered by itself


async def test_a_pause_beyond_the_time_budget_fails_fast(server: FakeServer) -> None:
    server.default = answer(429, {"message": "slow down"}, {"Retry-After": "60"})
    async with make_client(server, retry=RetryPolicy(jitter=0, max_elapsed=10)) as client:
        with pytest.raises(ApiRateLimitedError, match="time budget") as info:
            await client.get("c-1")
    assert info.value.retry_after == pytest.approx(60)
    assert len(server.seen) == 1
    assert server.time.sleeps == []  # did not sit out a pause it could not use


async def test_a_breaker_pause_beyond_the_time_budget_fails_fast(server: FakeServer) -> None:
    server.default = answer(503)
    policy = RetryPolicy(jitter=0, max_elapsed=5)
    async with make_client(server, retry=policy, breaker_threshold=1, breaker_base=10) as client:
        with pytest.raises(ApiUnavailableError, match="backing off"):
            await client.get("c-1")
        assert client.throttle.breaker_open
    assert len(server.seen) == 1
