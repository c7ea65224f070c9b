"""Validation of contact bodies in the reference profile: every bad field named in one 400.

Each test documents one behaviour a client can rely on (or must survive).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.emulator.conftest import assert_error_body, person
from tests.emulator.test_contacts import API, list_page

pytestmark = pytest.mark.anyio


# -- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "error_code"),
    [
        ({"lastName": "B"}, "firstName", "missing.property"),
        ({"firstName": "A"}, "lastName", "missing.property"),
        ({"firstName": None, "lastName": "B"}, "firstName", "missing.property"),
        ({"firstName": "  ", "lastName": "B"}, "firstName", "invalid.value"),
        ({"firstName": 5, "lastName": "B"}, "firstName", "invalid.value"),
        ({**person(1), "nickname": "x"}, "nickname", "invalid.property"),
        ({**person(1), "email": "not-an-email"}, "email", "invalid.value"),
        ({**person(1), "email": 7}, "email", "invalid.value"),
        ({**person(1), "phoneNumbers": "555"}, "phoneNumbers", "invalid.value"),
        ({**person(1), "phoneNumbers": [{"number": "abc"}]}, "phoneNumbers", "invalid.value"),
        (
            {**person(1), "phoneNumbers": [{"number": "1", "type": "FAX"}]},
            "phoneNumbers",
            "invalid.value",
        ),
        (
            {**person(1), "phoneNumbers": [{"number": "1", "ext": "2"}]},
            "phoneNumbers",
            "invalid.value",
        ),
        ({**person(1), "externalOrganization": []}, "externalOrganization", "invalid.value"),
        (
            {**person(1), "externalOrganization": {"url": "x"}},
            "externalOrganization",
            "invalid.value",
        ),
        ({**person(1), "externalId": 12}, "externalId", "invalid.value"),
        ({**person(1), "id": 12}, "id", "invalid.value"),
    ],
)
async def test_invalid_bodies_are_400_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, error_code: str
) -> None:
    response = await client.post(API, json=body)
    problem = assert_error_body(response, 400, "bad.request")
    assert {"fieldName": field, "errorCode": error_code} in [
        {k: d[k] for k in ("fieldName", "errorCode")} for d in problem["details"]
    ]
    assert field in problem["message"]
    assert (await list_page(client))["total"] == 0


async def test_every_problem_of_a_body_is_reported(client: httpx.AsyncClient) -> None:
    problem = assert_error_body(await client.post(API, json={"email": 3}), 400)
    assert {d["fieldName"] for d in problem["details"]} == {"email", "firstName", "lastName"}


@pytest.mark.parametrize(
    ("field", "limit"),
    [("firstName", 1000), ("lastName", 1000), ("email", 256), ("externalId", 255)],
)
async def test_string_limits_are_inclusive(
    client: httpx.AsyncClient, field: str, limit: int
) -> None:
    def value(length: int) -> str:
        return "a" * (length - len("@x.io")) + "@x.io" if field == "email" else "a" * length

    ok = await client.post(API, json={**person(1), field: value(limit)})
    assert ok.status_code == 201, ok.text
    too_long = await client.post(API, json={**person(1), field: value(limit + 1)})
    assert "longer than" in assert_error_body(too_long, 400)["message"]


async def test_phone_and_organization_limits(client: httpx.AsyncClient) -> None:
    phones = [{"number": "1" * 65}]
    assert_error_body(await client.post(API, json={**person(1), "phoneNumbers": phones}), 400)
    many = [{"number": str(n)} for n in range(21)]
    assert_error_body(await client.post(API, json={**person(1), "phoneNumbers": many}), 400)
    org = {"id": "o" * 256}
    assert_error_body(await client.post(API, json={**person(1), "externalOrganization": org}), 400)


@pytest.mark.parametrize(
    "raw",
    [
        b"{not json",
        b"",
        b"   ",
        b"[1, 2]",
        b'"text"',
        b'{"firstName": NaN, "lastName": "B"}',
        b"\xff\xfe",
    ],
)
async def test_malformed_or_non_object_bodies_are_400(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    response = await client.post(API, content=raw, headers={"Content-Type": "application/json"})
    assert_error_body(response, 400, "bad.request")


async def test_a_body_over_one_mebibyte_is_413(client: httpx.AsyncClient) -> None:
    body = {**person(1), "externalId": "x" * (1024 * 1024)}
    assert_error_body(await client.post(API, json=body), 413)
