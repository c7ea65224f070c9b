"""Every HTTP answer the client does not handle itself maps to one exception of the tree."""

from __future__ import annotations

import httpx
import pytest

from syncd.errors import (
    ApiAuthError,
    ApiConflictError,
    ApiError,
    ApiNotFoundError,
    ApiProtocolError,
    ApiRateLimitedError,
    ApiUnavailableError,
    ApiValidationError,
    OutcomeUnknownError,
)
from syncd.genesys.retry import RetryPolicy
from syncd.model import Contact
from tests.genesys.fakes import FakeServer, answer, contact_json, make_client

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, ApiValidationError),
        (403, ApiAuthError),
        (404, ApiNotFoundError),
        (409, ApiConflictError),
        (413, ApiValidationError),
        (405, ApiError),
    ],
)
async def test_permanent_statuses_map_without_retry(
    server: FakeServer, status: int, expected: type[ApiError]
) -> None:
    server.script = [answer(status, {"message": f"server says {status}"})]
    async with make_client(server) as client:
        with pytest.raises(expected) as info:
            await client.get("c-1")
    err = info.value
    assert type(err) is expected
    assert f"server says {status}" in str(err)
    assert err.status == status
    assert err.correlation_id == f"corr-{status}"
    assert (err.method, err.route) == ("GET", "/contacts/{id}")
    assert len(server.api_requests()) == 1  # permanent: never retried


async def test_validation_error_carries_the_server_message(server: FakeServer) -> None:
    message = "firstName: must not be blank"
    server.script = [answer(400, {"message": message, "code": "bad.request", "status": 400})]
    async with make_client(server) as client:
        with pytest.raises(ApiValidationError, match="firstName: must not be blank"):
            await client.create(Contact(external_id="e1", last_name="X"))
    assert len(server.api_requests("POST")) == 1


async def test_gateway_html_page_is_not_quoted(server: FakeServer) -> None:
    page = httpx.Response(
        502, text="<html><body>502 Bad Gateway</body></html>", headers={"content-type": "text/html"}
    )
    server.default = page
    async with make_client(server, retry=RetryPolicy.testing(max_attempts=2)) as client:
        with pytest.raises(ApiUnavailableError) as info:
            await client.get("c-1")
    assert "<html>" not in str(info.value)
    assert "Bad Gateway" in str(info.value)


async def test_rate_limited_beyond_budget(server: FakeServer) -> None:
    server.default = answer(429, {"message": "slow down"}, {"Retry-After": "2"})
    policy = RetryPolicy.testing(max_rate_limited=3)
    async with make_client(server, retry=policy) as client:
        with pytest.raises(ApiRateLimitedError) as info:
            await client.get("c-1")
    assert info.value.retry_after == 2.0
    assert len(server.api_requests()) == 4  # first try + 3 absorbed 429s


async def test_retry_after_too_long_gives_up_at_once(server: FakeServer) -> None:
    server.default = answer(429, {"message": "come back later"}, {"Retry-After": "900"})
    async with make_client(server) as client:
        with pytest.raises(ApiRateLimitedError):
            await client.get("c-1")
        assert client.throttle.paused_until >= server.time.now + 899  # still honoured
    assert len(server.api_requests()) == 1


async def test_unavailable_after_the_retry_budget(server: FakeServer) -> None:
    server.default = answer(500, {"message": "boom"})
    async with make_client(server, retry=RetryPolicy.testing(max_attempts=3)) as client:
        with pytest.raises(ApiUnavailableError, match="gave up after 3 attempts") as info:
            await client.get("c-1")
    assert info.value.status == 500
    assert len(server.api_requests()) == 3


async def test_timeouts_beyond_budget_are_unavailable_with_cause(server: FakeServer) -> None:
    server.default = httpx.ReadTimeout("read timed out")
    async with make_client(server, retry=RetryPolicy.testing(max_attempts=2)) as client:
        with pytest.raises(ApiUnavailableError) as info:
            await client.get("c-1")
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert len(server.api_requests()) == 2


async def test_delete_404_is_already_gone(server: FakeServer) -> None:
    server.script = [answer(404, {"message": "gone"})]
    async with make_client(server) as client:
        result = await client.delete("c-9")
    assert (result.genesys_id, result.status, result.remote) == ("c-9", 404, None)
    assert result.correlation_id == "corr-404"


async def test_get_404_is_not_found(server: FakeServer) -> None:
    server.script = [answer(404, {"message": "The requested resource was not found."})]
    async with make_client(server) as client:
        with pytest.raises(ApiNotFoundError):
            await client.get("c-9")


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b"[1, 2, 3]",
        b'{"firstName": "no id"}',
        b'{"id": 7}',
        b'{"id": "c-1", "phoneNumbers": "+1555"}',
        b'{"id": "c-1", "phoneNumbers": [{"type": "WORK"}]}',
        b'{"id": "c-1", "externalOrganization": "Acme"}',
        b'{"id": "c-1", "dateCreated": "yesterday"}',
        b'{"id": "c-1", "email": ["a@b.c"]}',
        b"\xff\xfe\x00garbage",
    ],
)
async def test_malformed_contact_is_a_protocol_error(server: FakeServer, body: bytes) -> None:
    server.script = [httpx.Response(200, content=body, headers={"ININ-Correlation-Id": "x"})]
    async with make_client(server) as client:
        with pytest.raises(ApiProtocolError) as info:
            await client.get("c-1")
    assert info.value.route == "/contacts/{id}"
    assert info.value.correlation_id == "x"


@pytest.mark.parametrize(
    "body",
    [
        {"pageNumber": 1, "total": 3},
        {"entities": {"id": "c-1"}, "total": 1},
        {"entities": [contact_json()], "total": "many"},
        {"entities": [contact_json()], "total": -1},
        {"entities": [None], "total": 1},
    ],
)
async def test_malformed_page_is_a_protocol_error(server: FakeServer, body: object) -> None:
    server.script = [answer(200, body)]
    async with make_client(server) as client:
        with pytest.raises(ApiProtocolError):
            await client.list_page()


@pytest.mark.parametrize("body", [{"total": 0}, {"results": "none"}, [], {"results": [{}]}])
async def test_malformed_search_is_a_protocol_error(server: FakeServer, body: object) -> None:
    server.script = [answer(200, body)]
    async with make_client(server) as client:
        with pytest.raises(ApiProtocolError):
            await client.find_by_external_id("ext-1")


async def test_patch_with_unreadable_echo_is_a_protocol_error(server: FakeServer) -> None:
    server.script = [httpx.Response(200, content=b"<html>")]
    async with make_client(server) as client:
        with pytest.raises(ApiProtocolError):
            await client.patch("c-1", {"email": None}, contact=Contact("e", email="a@b.c"))


async def test_patch_without_body_is_fine(server: FakeServer) -> None:
    server.script = [answer(204)]
    async with make_client(server) as client:
        result = await client.patch("c-1", {"email": None}, contact=Contact("e", email="a@b.c"))
    assert (result.status, result.remote) == (204, None)


async def test_undecodable_body_is_a_protocol_error(server: FakeServer) -> None:
    garbled = {"Content-Encoding": "gzip", "ININ-Correlation-Id": "g"}
    server.default = lambda _request: httpx.Response(
        200, headers=garbled, stream=httpx.ByteStream(b"not gzip at all")
    )
    async with make_client(server) as client:
        with pytest.raises(ApiProtocolError, match="undecodable"):
            await client.get("c-1")
        with pytest.raises(OutcomeUnknownError):
            await client.create(Contact("e1", "A", "B"))
    assert len(server.api_requests("POST")) == 1
