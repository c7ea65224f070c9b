"""Bad answers from the API: every client call ends in an ``ApiError`` or a correct result.

An ``httpx.MockTransport`` serves malformed JSON, missing fields, wrong types, pages that lie
about ``total`` (more, fewer, negative, non-numeric), empty and repeated pages, HTML error
pages, huge and deeply nested bodies, odd statuses and headers. The client must map every
one of them to a documented :mod:`syncd.errors` exception (mostly ``ApiProtocolError``) or
return a well-formed result; nothing else may escape, and no listing may go on forever.
Virtual time: retries and ``Retry-After`` cost no wall time.
"""

from __future__ import annotations

import json
import math
from typing import Any

import anyio
import httpx
from hypothesis import given
from hypothesis import strategies as st

from syncd.errors import ApiError
from syncd.genesys.retry import RetryPolicy
from syncd.model import Contact, RemoteContact, WriteResult
from tests.fuzz._settings import fuzz
from tests.genesys.fakes import FakeServer, FakeTime, contact_json, make_client

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
CONTACT_KEYS = [
    "id",
    "firstName",
    "lastName",
    "email",
    "phoneNumbers",
    "externalOrganization",
    "externalId",
    "dateCreated",
    "dateModified",
]


@st.composite
def contact_bodies(draw: st.DrawFn, cid: str = "c-1", ext: str = "ext-1") -> Any:
    """A contact, often with fields removed or replaced by values of the wrong type."""
    body: dict[str, Any] = contact_json(cid, ext)
    for key in draw(st.lists(st.sampled_from(CONTACT_KEYS), max_size=3, unique=True)):
        action = draw(st.sampled_from(["drop", "replace", "null"]))
        if action == "drop":
            body.pop(key, None)
        elif action == "null":
            body[key] = None
        else:
            body[key] = draw(JSON_VALUES)
    if draw(st.booleans()):
        body["phoneNumbers"] = draw(
            st.sampled_from(
                [
                    [{"type": "WORK"}],
                    [{"number": 5}],
                    ["+1555"],
                    {},
                    "x",
                    [{"number": "1", "type": 2}],
                ]
            )
        )
    return body


def _raw(status: int, content: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.Response(status, content=content, headers=headers)


DEEP = b"[" * 50_000 + b"]" * 50_000
HTML = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


@st.composite
def bodies(draw: st.DrawFn, good: Any) -> bytes:
    kind = draw(
        st.sampled_from(
            ["good", "json", "bytes", "html", "deep", "huge", "nan", "truncated", "empty", "utf16"]
        )
    )
    if kind == "good":
        return json.dumps(good).encode()
    if kind == "json":
        return json.dumps(draw(JSON_VALUES)).encode()
    if kind == "bytes":
        return draw(st.binary(max_size=64))
    if kind == "html":
        return HTML
    if kind == "deep":
        return DEEP
    if kind == "huge":
        return json.dumps({"message": "x" * 3_000_000, "entities": []}).encode()
    if kind == "nan":
        return b'{"id": NaN, "total": Infinity, "entities": [], "results": []}'
    if kind == "truncated":
        text = json.dumps(good).encode()
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if kind == "utf16":
        return json.dumps(good).encode("utf-16")
    return b""


STATUSES = st.sampled_from(
    [200, 200, 200, 201, 204, 100, 299, 302, 400, 401, 403, 404, 409, 413, 418, 429, 500, 503, 599]
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "content-type": st.sampled_from(
            [
                "application/json",
                "text/html",
                "text/plain; charset=utf-16",
                "application/json; charset=latin-1",
                "text/plain; charset=nope",
            ]
        ),
        "Retry-After": st.sampled_from(
            ["1", "-5", "nan", "1e309", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", "99999999"]
        ),
        "X-Rate-Limit-Remaining": st.sampled_from(["0", "-1", "abc", "1e999", "5"]),
        "X-Rate-Limit-Reset": st.sampled_from(["0", "-1", "nan", "1e400", "30"]),
        "ININ-Correlation-Id": st.text(
            st.characters(min_codepoint=32, max_codepoint=126), max_size=40
        ),
    },
)


@st.composite
def answers(draw: st.DrawFn, good: Any) -> httpx.Response:
    return _raw(draw(STATUSES), draw(bodies(good)), draw(HEADERS))


def _client(server: FakeServer) -> Any:
    return make_client(server, retry=RetryPolicy(jitter=0.0, max_attempts=3))


def _check_remote(rc: RemoteContact) -> None:
    assert isinstance(rc, RemoteContact)
    assert isinstance(rc.genesys_id, str)
    assert rc.genesys_id
    assert isinstance(rc.contact.external_id, str)
    for phone in rc.contact.phone_numbers:
        assert isinstance(phone.number, str)
        assert isinstance(phone.type, str)


async def _call(op: str, server: FakeServer) -> object:
    async with _client(server) as client:
        contact = Contact("ext-1", "Ada", "Lovelace")
        if op == "get":
            result: Any = await client.get("c-1")
            _check_remote(result)
        elif op == "find":
            result = await client.find_by_external_id("ext-1")
            assert isinstance(result, list)
            for rc in result:
                _check_remote(rc)
                assert rc.contact.external_id == "ext-1"
        elif op == "create":
            result = await client.create(contact)
            assert isinstance(result, WriteResult)
            assert result.genesys_id
        elif op == "patch":
            result = await client.patch("c-1", {"first_name": 1}, contact=contact)
            assert isinstance(result, WriteResult)
        elif op == "delete":
            result = await client.delete("c-1")
            assert isinstance(result, WriteResult)
            assert 200 <= result.status < 300 or result.status == 404
        else:
            result = await client.list_page(None)
            for rc in result.contacts:
                _check_remote(rc)
        return result


@fuzz(150)
@given(
    op=st.sampled_from(["get", "find", "create", "patch", "delete", "list"]),
    data=st.data(),
)
def test_every_call_ends_in_an_api_error_or_a_result(op: str, data: st.DataObject) -> None:
    good: Any = {
        "find": {"results": [contact_json()], "total": 1},
        "list": {"entities": [contact_json()], "pageNumber": 1, "pageSize": 100, "total": 1},
    }.get(op, contact_json())
    if data.draw(st.booleans(), label="mutated contact"):
        body = data.draw(contact_bodies(), label="contact")
        good = {"find": {"results": [body]}, "list": {"entities": [body], "total": 1}}.get(op, body)
    script = data.draw(st.lists(answers(good), min_size=1, max_size=4), label="answers")
    server = FakeServer(FakeTime())
    server.script = list(script)
    server.default = _raw(200, json.dumps(good).encode(), {})
    try:
        anyio.run(_call, op, server)
    except ApiError as exc:
        message = str(exc)
    else:
        return
    assert message, "an empty error message"
    assert len(message) < 2000, "an error message quotes a huge body"


# ----------------------------------------------------------------------------- listings

MAX_REQUESTS = 1200  # an honest listing here needs at most ~450


class TooManyPages(AssertionError):
    pass


@st.composite
def lying_listings(draw: st.DrawFn) -> tuple[Any, int]:
    """A server holding ``real`` contacts whose pages may lie in many ways."""
    real = draw(st.integers(0, 350))
    total_lie = draw(
        st.sampled_from(
            ["true", "missing", "zero", "more", "far_more", "fewer", "negative", "text", "float"]
        )
    )
    size_lie = draw(st.sampled_from(["true", "missing", "smaller", "bigger", "zero"]))
    ignores_page = draw(st.booleans())
    cycle = draw(st.sampled_from([0, 0, 2, 3]))  # serve pages modulo this (a cycling server)
    pad_forever = draw(st.booleans())  # pages past the end are full of new contacts

    def handler(request: httpx.Request) -> httpx.Response:
        size = int(request.url.params["pageSize"])
        number = int(request.url.params["pageNumber"])
        served = 1 if ignores_page else (((number - 1) % cycle) + 1 if cycle else number)
        start = (served - 1) * size
        ids = list(range(start, min(real, start + size)))
        if pad_forever and not ids and number < 400:
            ids = list(range(10_000 + start, 10_000 + start + size))
        body: dict[str, Any] = {
            "entities": [contact_json(f"c-{i}", f"e-{i}") for i in ids],
            "pageNumber": number,
        }
        total: Any = {
            "true": real,
            "zero": 0,
            "more": real + 3 * size,
            "far_more": 10**12,
            "fewer": max(real - 2 * size, 0),
            "negative": -1,
            "text": str(real),
            "float": real + 0.5,
        }.get(total_lie)
        if total_lie != "missing":
            body["total"] = total
        page_size = {"true": size, "smaller": max(size // 2, 1), "bigger": size * 10, "zero": 0}
        if size_lie in page_size:
            body["pageSize"] = page_size[size_lie]
        return httpx.Response(200, json=body)

    return handler, real


@fuzz(120)
@given(listing=lying_listings(), page_size=st.sampled_from([1, 7, 100]))
def test_a_listing_always_ends(listing: tuple[Any, int], page_size: int) -> None:
    """Whatever the pages say, iter_all ends (a result or ApiProtocolError) in bounded calls,
    and an honest server's contacts are all listed, each once."""
    handler, _real = listing
    server = FakeServer(FakeTime())

    def counted(request: httpx.Request) -> httpx.Response:
        if len(server.seen) > MAX_REQUESTS:
            raise TooManyPages(f"more than {MAX_REQUESTS} page requests: an endless listing")
        response: httpx.Response = handler(request)
        return response

    server.default = counted

    async def list_all() -> list[str]:
        async with _client(server) as client:
            return [rc.genesys_id async for rc in client.iter_all(page_size=page_size)]

    try:
        ids = anyio.run(list_all)
    except ApiError:
        return
    assert len(server.seen) <= MAX_REQUESTS
    assert all(isinstance(i, str) for i in ids)


@fuzz(40)
@given(real=st.integers(0, 450), page_size=st.sampled_from([1, 10, 100]))
def test_an_honest_listing_is_complete(real: int, page_size: int) -> None:
    server = FakeServer(FakeTime())

    def handler(request: httpx.Request) -> httpx.Response:
        size = int(request.url.params["pageSize"])
        number = int(request.url.params["pageNumber"])
        ids = range((number - 1) * size, min(real, number * size))
        body = {
            "entities": [contact_json(f"c-{i}", f"e-{i}") for i in ids],
            "pageNumber": number,
            "pageSize": size,
            "total": real,
        }
        return httpx.Response(200, json=body)

    server.default = handler

    async def list_all() -> list[str]:
        async with _client(server) as client:
            return [rc.genesys_id async for rc in client.iter_all(page_size=page_size)]

    ids = anyio.run(list_all)
    assert ids == [f"c-{i}" for i in range(real)]
    assert len(server.seen) <= math.ceil(real / page_size) + 1
