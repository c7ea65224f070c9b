"""The organization's budget: a sliding 60 s window, exact, with honest headers.

X-Rate-Limit-Remaining: requests still admitted in the current window.
X-Rate-Limit-Reset: whole seconds (rounded up) until the oldest counted request leaves the
window, i.e. until Remaining next increases (0 when nothing is counted).
Retry-After (429 only): the same wait, at least 1.
"""

from __future__ import annotations

import asyncio
import math

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.emulator import Emulator, EmulatorConfig, ManualClock
from syncd.emulator.ratelimit import SlidingWindowLimiter
from tests.emulator.conftest import assert_error_body

pytestmark = pytest.mark.anyio

LIMIT = 10
API = "/api/v2/contacts"


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig(requests_per_minute=LIMIT)


def rate(response: httpx.Response) -> tuple[int, int, int]:
    h = response.headers
    return (
        int(h["X-Rate-Limit-Limit"]),
        int(h["X-Rate-Limit-Remaining"]),
        int(h["X-Rate-Limit-Reset"]),
    )


async def test_n_plus_one_requests_in_the_window_give_exactly_one_429(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    responses = [await client.get(API) for _ in range(LIMIT + 1)]
    assert [r.status_code for r in responses] == [200] * LIMIT + [429]
    assert [rate(r)[1] for r in responses] == [*range(LIMIT - 1, -1, -1), 0]
    limited = responses[-1]
    body = assert_error_body(limited, 429, "too.many.requests.retry.after")
    assert limited.headers["Retry-After"] == "60"
    assert "[60]" in body["message"]
    assert emulator.stats()["rate_limited"] == 1


async def test_concurrent_requests_are_counted_exactly(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    responses = await asyncio.gather(*(client.get(API) for _ in range(LIMIT + 1)))
    assert sorted(r.status_code for r in responses) == [200] * LIMIT + [429]


async def test_reset_counts_down_to_the_expiry_of_the_oldest_request(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    assert rate(await client.get(API)) == (LIMIT, LIMIT - 1, 60)
    clock.advance(10.5)
    assert rate(await client.get(API)) == (LIMIT, LIMIT - 2, 50)  # ceil(49.5)
    clock.advance(49.5)  # the first request leaves the window now
    assert rate(await client.get(API)) == (LIMIT, LIMIT - 2, 11)


async def test_the_budget_slides_back_as_requests_age(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    for _ in range(5):
        await client.get(API)
    clock.advance(30)
    for _ in range(5):
        await client.get(API)
    clock.advance(15)  # t=45: ten in the window, the oldest five leave at t=60
    limited = await client.get(API)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "15"
    clock.advance(14.9)  # t=59.9: still full, and Retry-After never says 0
    limited = await client.get(API)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    clock.advance(0.1)  # t=60: five slots free again
    statuses = [(await client.get(API)).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]


async def test_429s_do_not_use_the_budget(client: httpx.AsyncClient, clock: ManualClock) -> None:
    for _ in range(LIMIT):
        await client.get(API)
    for _ in range(50):
        assert (await client.get(API)).status_code == 429
    clock.advance(60)
    statuses = [(await client.get(API)).status_code for _ in range(LIMIT + 1)]
    assert statuses == [200] * LIMIT + [429]


async def test_errors_that_reached_the_api_use_the_budget(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    await client.get(f"{API}/missing")  # 404
    await client.post(API, json={})  # 400
    await client.get("/api/v2/elsewhere")  # 404, unknown route
    emulator.set_faults(error_rate=1)
    await client.get(API)  # injected 5xx
    remaining = rate(await client.get(API))[1]
    assert remaining == LIMIT - 5


async def test_outage_responses_do_not_use_the_budget(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.set_faults(outage=True)
    for _ in range(20):
        response = await client.get(API)
        assert response.status_code == 503
        assert rate(response)[1] == LIMIT
    emulator.set_faults(outage=False)
    assert rate(await client.get(API))[1] == LIMIT - 1


async def test_reset_empties_the_window(client: httpx.AsyncClient, emulator: Emulator) -> None:
    for _ in range(LIMIT):
        await client.get(API)
    emulator.reset()
    assert (await client.get(API)).status_code == 200


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 5),
    gaps=st.lists(st.floats(0, 40, allow_nan=False), min_size=1, max_size=40),
)
def test_the_limiter_matches_a_brute_force_model(limit: int, gaps: list[float]) -> None:
    """Admitted iff fewer than ``limit`` admitted requests in (t-60, t]; headers agree."""
    limiter = SlidingWindowLimiter(limit)
    admitted: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        in_window = [t for t in admitted if t > now - 60]
        decision = limiter.acquire(now)
        assert decision.admitted == (len(in_window) < limit)
        if decision.admitted:
            admitted.append(now)
            in_window.append(now)
        else:
            assert decision.retry_after == max(1, math.ceil(in_window[0] + 60 - now))
        assert decision.remaining == limit - len(in_window)
        assert decision.reset == math.ceil(in_window[0] + 60 - now)
