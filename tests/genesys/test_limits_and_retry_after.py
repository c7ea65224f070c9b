"""Genesys' documented limits, checked before sending, and the wait a 429 asks for: from the
``Retry-After`` header, else from the "[N] seconds" of its message, for the API and the login
host alike."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from syncd.errors import ApiRateLimitedError, ApiUnavailableError, ApiValidationError
from syncd.genesys.client import GenesysClient
from syncd.genesys.profiles.externalcontacts import ExternalContactsProfile
from syncd.genesys.responses import MAX_MESSAGE_RETRY_AFTER, retry_after
from syncd.genesys.retry import DEFAULT_RETRY_AFTER, RetryPolicy
from syncd.model import Contact
from tests.genesys.fakes import API, LOGIN, FakeServer, answer, contact_json, make_client
from tests.genesys.test_externalcontacts import ec_settings

pytestmark = pytest.mark.anyio

SOURCES = {"entities": [{"id": "src", "name": "syncd", "active": True}]}


def rate_limited(seconds: str | None = None, *, header: str | None = None) -> httpx.Response:
    """A 429 as Genesys sends it; ``seconds`` goes in the message, ``header`` in Retry-After."""
    message = "Rate limit exceeded the maximum."
    if seconds is not None:
        message += f" Retry the request in [{seconds}] seconds"
    body = {"message": message, "code": "too.many.requests.retry.after", "status": 429}
    return answer(429, body, {"Retry-After": header} if header is not None else None)


def ec_client(server: FakeServer, retry: RetryPolicy | None = None) -> GenesysClient:
    return GenesysClient.from_settings(
        ec_settings(API, LOGIN),
        transport=server.transport(),
        clock=server.time,
        sleep=server.time.sleep,
        retry=retry or RetryPolicy(jitter=0.0),
    )


# -- reading the wait ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (rate_limited("42"), 42.0),
        (rate_limited(" 1.5 "), 1.5),
        (rate_limited("9", header="2"), 2.0),  # the header wins
        (rate_limited("9", header="soon"), 9.0),  # an unusable header: the message
        (rate_limited("86400"), MAX_MESSAGE_RETRY_AFTER),  # capped
        (rate_limited(), None),
        (rate_limited("many"), None),
        (answer(429, {"message": "wait [5] minutes"}), None),  # only seconds are understood
        (httpx.Response(429, text="Retry the request in [4] seconds"), 4.0),  # not JSON
        (answer(429), None),
    ],
)
def test_the_wait_comes_from_the_header_else_the_message(
    response: httpx.Response, expected: float | None
) -> None:
    assert retry_after(response) == expected


async def test_an_api_429_without_retry_after_waits_as_long_as_its_message_says(
    server: FakeServer,
) -> None:
    server.script = [rate_limited("5")]
    server.default = answer(200, contact_json())
    async with make_client(server) as client:
        await client.get("c-1")
    first, second = server.api_requests()
    assert second.at - first.at == pytest.approx(5.0)  # not the 3 s fallback


async def test_an_api_429_saying_nothing_keeps_the_fallback(server: FakeServer) -> None:
    server.script = [rate_limited()]
    server.default = answer(200, contact_json())
    async with make_client(server) as client:
        await client.get("c-1")
    first, second = server.api_requests()
    assert second.at - first.at == pytest.approx(DEFAULT_RETRY_AFTER)


async def test_a_message_asking_too_long_fails_the_call_with_the_capped_wait(
    server: FakeServer,
) -> None:
    server.default = rate_limited("86400")
    async with make_client(server) as client:
        with pytest.raises(ApiRateLimitedError) as info:
            await client.get("c-1")
    assert info.value.retry_after == MAX_MESSAGE_RETRY_AFTER
    assert len(server.api_requests()) == 1  # beyond max_retry_after: no second try
    assert client.throttle.paused_until == pytest.approx(server.time.now + 600)


# -- the login host -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limited", "wait"),
    [
        (rate_limited(header="7"), 7.0),
        (rate_limited("4"), 4.0),
        (rate_limited(), DEFAULT_RETRY_AFTER),
    ],
)
async def test_a_login_429_is_waited_out_as_it_asks(
    server: FakeServer, limited: httpx.Response, wait: float
) -> None:
    server.token_script = [limited, None]
    server.default = answer(200, contact_json())
    started = server.time.now
    async with make_client(server) as client:
        await client.get("c-1")
    assert server.token_requests == 2
    assert server.time.sleeps[0] == wait  # not the 0.5 s backoff of a failure
    assert server.api_requests()[0].at - started == pytest.approx(wait)


async def test_login_429s_do_not_use_up_the_attempts(server: FakeServer) -> None:
    server.token_script = [rate_limited(header="1")] * 3 + [None]
    server.default = answer(200, contact_json())
    async with make_client(server, retry=RetryPolicy(max_attempts=1, jitter=0.0)) as client:
        await client.get("c-1")
    assert server.token_requests == 4
    assert server.time.sleeps[:3] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize(
    ("policy", "script"),
    [
        (RetryPolicy(jitter=0.0), [rate_limited(header="900")]),  # beyond max_retry_after
        (RetryPolicy(jitter=0.0, max_rate_limited=2), [rate_limited(header="1")] * 3),
        (RetryPolicy(jitter=0.0, max_elapsed=10), [rate_limited(header="6")] * 2),
    ],
    ids=["long-wait", "too-many", "past-max-elapsed"],
)
async def test_a_login_429_beyond_the_policy_is_the_login_being_unavailable(
    server: FakeServer, policy: RetryPolicy, script: list[Any]
) -> None:
    server.token_script = list(script)
    async with make_client(server, retry=policy) as client:
        with pytest.raises(ApiUnavailableError, match="rate-limited the token request") as info:
            await client.get("c-1")
    assert info.value.status == 429
    assert info.value.route == "/oauth/token"
    assert server.token_requests == len(script)
    assert server.seen == []


# -- limits enforced before sending -------------------------------------------------------------


async def test_a_lookup_of_an_external_id_over_255_characters_is_never_sent(
    server: FakeServer,
) -> None:
    too_long = "crm-" + "x" * 252
    server.script = [answer(200, SOURCES), answer(404, {"message": "none", "code": "not.found"})]
    async with ec_client(server) as client:
        with pytest.raises(ApiValidationError, match=r"crm-xxx.*256 characters.*255") as info:
            await client.find_by_external_id(too_long)
        assert info.value.method == "POST"
        assert [s.path for s in server.seen] == ["/api/v2/externalcontacts/externalsources"]
        assert await client.find_by_external_id("x" * 255) == []  # the limit itself is fine
    lookup = server.seen[-1]
    assert lookup.path == "/api/v2/externalcontacts/identifierlookup/contacts"
    assert lookup.body["type"] == "ExternalId"
    assert lookup.body["value"] == "x" * 255
    assert lookup.body["externalSource"]["id"]


@pytest.mark.parametrize(
    ("contact", "problem"),
    [
        (Contact("x" * 256, first_name="A"), "externalIds value is 256 characters"),
        (Contact("e", first_name="A" * 1001), "firstName is 1001 characters"),
        (Contact("e", last_name="A" * 1001), "lastName is 1001 characters"),
        (Contact("e", email="a@" + "b" * 255), "workEmail is 257 characters"),
    ],
)
def test_values_longer_than_genesys_stores_are_refused_unsent(
    contact: Contact, problem: str
) -> None:
    profile = ExternalContactsProfile()
    profile.bind_source("src")
    assert problem in (profile.representation_problem(contact) or "")
    with pytest.raises(ApiValidationError, match=problem):
        profile.create_request(contact)


def test_values_at_the_limits_are_sent() -> None:
    profile = ExternalContactsProfile()
    profile.bind_source("src")
    contact = Contact("x" * 255, "A" * 1000, "B" * 1000, "a@" + "b" * 254)
    assert profile.representation_problem(contact) is None
    assert profile.create_request(contact).json["externalIds"][0]["value"] == "x" * 255


def test_the_profile_refuses_a_source_name_genesys_would_refuse() -> None:
    ExternalContactsProfile(source_name="s" * 200)
    with pytest.raises(ValueError, match=r"genesys\.external_source: 1 to 200 characters"):
        ExternalContactsProfile(source_name="s" * 201)
