"""Retries: capped exponential backoff for transient failures, never a blind POST re-send."""

from __future__ import annotations

import random

import httpx
import pytest

from syncd.errors import ApiUnavailableError, OutcomeUnknownError
from syncd.genesys.retry import RetryPolicy, Verdict, classify_error, classify_status
from syncd.model import Contact, Phone
from tests.genesys.fakes import FakeServer, answer, contact_json, make_client

pytestmark = pytest.mark.anyio

CONTACT = Contact(
    external_id="ext-1", first_name="Ada", last_name="Lovelace", phone_numbers=(Phone("+1555"),)
)


def test_policy_delays_are_capped_exponential() -> None:
    policy = RetryPolicy(base=0.5, cap=4.0, jitter=0.0)
    rng = random.Random(0)
    assert [policy.delay(n, rng) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_policy_jitter_stays_within_the_last_fraction() -> None:
    policy = RetryPolicy(base=1.0, cap=8.0, jitter=0.5)
    rng = random.Random(1)
    for n in range(1, 8):
        full = min(8.0, 2.0 ** (n - 1))
        for _ in range(50):
            assert full / 2 <= policy.delay(n, rng) <= full


def test_testing_switch_removes_waits() -> None:
    policy = RetryPolicy.testing(max_attempts=3)
    assert policy.max_attempts == 3
    assert not policy.wait
    assert policy.delay(5, random.Random()) == 0.0


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=2)


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_idempotent_transient_statuses_retry(method: str, status: int) -> None:
    assert classify_status(method, status) is Verdict.RETRY


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (429, Verdict.RETRY),
        (503, Verdict.RETRY),
        (500, Verdict.UNKNOWN),
        (502, Verdict.UNKNOWN),
        (504, Verdict.UNKNOWN),
        (400, Verdict.FAIL),
        (409, Verdict.FAIL),
    ],
)
def test_post_statuses(status: int, verdict: Verdict) -> None:
    assert classify_status("POST", status) is verdict


@pytest.mark.parametrize(
    ("exc", "verdict"),
    [
        (httpx.ConnectError("refused"), Verdict.RETRY),
        (httpx.ConnectTimeout("slow"), Verdict.RETRY),
        (httpx.PoolTimeout("busy"), Verdict.RETRY),
        (httpx.ReadTimeout("slow"), Verdict.UNKNOWN),
        (httpx.WriteTimeout("slow"), Verdict.UNKNOWN),
        (httpx.ReadError("reset"), Verdict.UNKNOWN),
        (httpx.RemoteProtocolError("disconnected"), Verdict.UNKNOWN),
        (httpx.LocalProtocolError("bad header"), Verdict.FAIL),
    ],
)
def test_post_transport_errors(exc: httpx.TransportError, verdict: Verdict) -> None:
    assert classify_error("POST", exc) is verdict
    expected_get = Verdict.FAIL if verdict is Verdict.FAIL else Verdict.RETRY
    assert classify_error("GET", exc) is expected_get


async def test_backoff_sequence_is_recorded_not_waited(server: FakeServer) -> None:
    server.script = [answer(503), answer(500), httpx.ReadTimeout("slow"), answer(502)]
    server.default = answer(200, contact_json())
    policy = RetryPolicy(base=0.5, cap=1.5, jitter=0.0)
    async with make_client(server, retry=policy, breaker_threshold=100) as client:
        remote = await client.get("c-1")
    assert remote.genesys_id == "c-1"
    assert server.time.sleeps == [0.5, 1.0, 1.5, 1.5]
    assert len(server.seen) == 5
    assert client.metrics.retries == 4
    assert client.metrics.responses_by_status == {503: 1, 500: 1, 502: 1, 200: 1}
    assert client.metrics.transport_errors == {"ReadTimeout": 1}


async def test_retry_stops_at_the_time_budget(server: FakeServer) -> None:
    server.default = answer(503)
    policy = RetryPolicy(base=10, cap=10, jitter=0.0, max_attempts=100, max_elapsed=35)
    async with make_client(server, retry=policy, breaker_threshold=1000) as client:
        with pytest.raises(ApiUnavailableError):
            await client.get("c-1")
    assert len(server.seen) == 4  # sends at 0, 10, 20, 30; the next would pass 35 s


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ReadTimeout("read timed out"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
        httpx.ReadError("connection reset"),
        httpx.WriteTimeout("write timed out"),
        answer(500, {"message": "oops"}),
        answer(502),
        answer(504),
    ],
    ids=lambda f: type(f).__name__ if isinstance(f, Exception) else str(f.status_code),
)
async def test_post_with_unknown_outcome_is_never_resent(
    server: FakeServer, failure: object
) -> None:
    server.script = [failure]  # type: ignore[list-item]
    server.default = answer(201, contact_json())
    async with make_client(server) as client:
        with pytest.raises(OutcomeUnknownError) as info:
            await client.create(CONTACT)
    assert len(server.api_requests("POST")) == 1
    assert info.value.method == "POST"
    assert client.metrics.outcome_unknown == 1
    assert server.time.sleeps == []


@pytest.mark.parametrize(
    "failure",
    [
        httpx.ConnectError("connection refused"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.PoolTimeout("no connection available"),
        answer(503),
        answer(429, {"message": "slow down"}, {"Retry-After": "1"}),
    ],
    ids=lambda f: type(f).__name__ if isinstance(f, Exception) else str(f.status_code),
)
async def test_post_known_not_applied_is_resent(server: FakeServer, failure: object) -> None:
    server.script = [failure]  # type: ignore[list-item]
    server.default = answer(201, contact_json())
    async with make_client(server) as client:
        result = await client.create(CONTACT)
    assert result.genesys_id == "c-1"
    assert result.status == 201
    assert len(server.api_requests("POST")) == 2


async def test_post_created_but_unreadable_is_outcome_unknown(server: FakeServer) -> None:
    server.script = [answer(201, {"firstName": "Ada"})]  # no id: which contact is it?
    async with make_client(server) as client:
        with pytest.raises(OutcomeUnknownError, match="look the contact up"):
            await client.create(CONTACT)
    assert len(server.api_requests("POST")) == 1


async def test_post_401_is_resent_after_renewal(server: FakeServer) -> None:
    server.default = answer(201, contact_json())
    async with make_client(server) as client:
        await client.get("c-1")
        server.revoked.add(server.issued[0])
        await client.create(CONTACT)
    assert len(server.api_requests("POST")) == 2


@pytest.mark.parametrize("method", ["patch", "delete", "replace"])
async def test_idempotent_writes_are_retried_after_a_lost_ack(
    server: FakeServer, method: str
) -> None:
    server.script = [httpx.RemoteProtocolError("Server disconnected")]
    server.default = answer(200, contact_json()) if method != "delete" else answer(204)
    async with make_client(server) as client:
        if method == "patch":
            result = await client.patch("c-1", {"email": "x"}, contact=CONTACT)
        elif method == "replace":
            result = await client.replace("c-1", CONTACT)
        else:
            result = await client.delete("c-1")
    assert result.status in (200, 204)
    assert len(server.seen) == 2


async def test_delete_retried_after_lost_ack_then_404_is_gone(server: FakeServer) -> None:
    server.script = [httpx.ReadTimeout("slow"), answer(404, {"message": "not found"})]
    async with make_client(server) as client:
        result = await client.delete("c-1")
    assert result.status == 404
    assert len(server.api_requests("DELETE")) == 2
