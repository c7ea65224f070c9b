"""Contract of GET /api/v2/contacts/search?q=: what matches, and how."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from syncd.emulator import Emulator
from tests.emulator.conftest import assert_error_body

pytestmark = pytest.mark.anyio

SEARCH = "/api/v2/contacts/search"


@pytest.fixture
def people(emulator: Emulator) -> dict[str, str]:
    """Three contacts; returns their ids by nickname."""
    stored = emulator.seed_contacts(
        [
            {
                "firstName": "John",
                "lastName": "Doe",
                "email": "John.Doe@Example.com",
                "phoneNumbers": [{"number": "+15551234567", "type": "MOBILE"}],
                "externalId": "sf-contact-789",
                "dateCreated": "2026-01-01T00:00:00Z",
            },
            {
                "firstName": "Jane",
                "lastName": "Smith",
                "email": "jane@example.com",
                "phoneNumbers": [{"number": "+44 20 7946 0018", "type": "WORK"}],
                "externalId": "SF-CONTACT-790",
                "dateCreated": "2026-01-02T00:00:00Z",
            },
            {
                "firstName": "Johanna",
                "lastName": "Smithers",
                "externalId": "sf-contact-78",
                "dateCreated": "2026-01-03T00:00:00Z",
            },
        ]
    )
    return dict(zip(("john", "jane", "johanna"), (c["id"] for c in stored), strict=True))


async def search(client: httpx.AsyncClient, q: str) -> list[str]:
    response = await client.get(SEARCH, params={"q": q})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"results", "total"}
    assert body["total"] == len(body["results"])
    return [c["id"] for c in body["results"]]


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("sf-contact-789", ["john"]),  # externalId: exact
        ("sf-contact-78", ["johanna"]),  # ... not a prefix match
        ("sf-contact-790", []),  # ... and case-sensitive
        ("SF-CONTACT-790", ["jane"]),
        ("john.doe@example.com", ["john"]),  # email: whole, case-insensitive
        ("example.com", []),  # ... not a substring
        ("+15551234567", ["john"]),  # phone: digits compared
        ("+1 (555) 123-4567", ["john"]),
        ("15551234567", ["john"]),
        ("5551234567", []),  # ... whole number, no suffix matching
        ("+442079460018", ["jane"]),
        ("smith", ["jane", "johanna"]),  # names: case-insensitive substring
        ("JOH", ["john", "johanna"]),
        ("jane smith", ["jane"]),  # "first last"
        ("doe john", []),
        ("nobody", []),
    ],
)
async def test_what_a_query_matches(
    client: httpx.AsyncClient, people: dict[str, str], q: str, expected: list[str]
) -> None:
    assert await search(client, q) == [people[name] for name in expected]


async def test_results_are_whole_contacts_in_creation_order(
    client: httpx.AsyncClient, people: dict[str, str], emulator: Emulator
) -> None:
    results = (await client.get(SEARCH, params={"q": "j"})).json()["results"]
    assert results == emulator.contacts()


@pytest.mark.parametrize("params", [{}, {"q": ""}, {"q": "   "}, {"q": "x" * 1001}])
async def test_a_missing_blank_or_huge_query_is_400(
    client: httpx.AsyncClient, params: dict[str, str]
) -> None:
    assert_error_body(await client.get(SEARCH, params=params), 400, "bad.request")


async def test_writes_are_searchable_at_once_without_lag(
    client: httpx.AsyncClient, people: dict[str, str]
) -> None:
    await client.patch(f"/api/v2/contacts/{people['john']}", json={"externalId": "crm-new"})
    assert await search(client, "crm-new") == [people["john"]]
    assert await search(client, "sf-contact-789") == []
    await client.delete(f"/api/v2/contacts/{people['john']}")
    assert await search(client, "crm-new") == []
    created = (
        await client.post("/api/v2/contacts", json={"firstName": "Zed", "lastName": "Q"})
    ).json()
    assert await search(client, "zed") == [created["id"]]
