"""Identifier lookup and enrich (upsert) in the externalcontacts profile, under each variant."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from syncd.emulator import Emulator, EmulatorConfig, ManualClock
from tests.emulator.conftest import assert_error_body
from tests.emulator.test_externalcontacts import API, CONTACTS, create, ec, make_source
from tests.support.emulator import duplicate_external_ids

pytestmark = pytest.mark.anyio

LOOKUP = f"{API}/identifierlookup/contacts"
ENRICH = f"{API}/contacts/enrich"
BULK_ENRICH = f"{API}/bulk/contacts/enrich"


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig(profile="externalcontacts", requests_per_minute=100_000)


def identifier(source: str, value: str) -> dict[str, Any]:
    return {"type": "ExternalId", "value": value, "externalSource": {"id": source}}


def upsert(source: str, n: int, action: str = "Upsert", **contact: Any) -> dict[str, Any]:
    body = {"firstName": f"First{n}", **contact}
    return {
        "matchingIdentifiers": [identifier(source, f"crm-{n}")],
        "action": action,
        "contact": body,
    }


async def test_lookup_finds_the_claimant_or_404(client: httpx.AsyncClient) -> None:
    source = await make_source(client)
    created = await create(client, ec(1, source))
    found = await client.post(LOOKUP, json=identifier(source, "crm-1"))
    assert found.status_code == 200, found.text
    assert found.json() == created
    missing = await client.post(LOOKUP, json=identifier(source, "crm-2"))
    assert_error_body(missing, 404, "not.found")
    bad = await client.post(LOOKUP, json={"type": "ExternalId", "value": "crm-1"})
    assert assert_error_body(bad, 400)["details"][0]["fieldName"] == "identifier.externalSource"
    await client.delete(f"{CONTACTS}/{created['id']}")
    assert (await client.post(LOOKUP, json=identifier(source, "crm-1"))).status_code == 404


async def test_lookup_lag_variant(
    client: httpx.AsyncClient, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.set_variants(identifier_lookup_lag_ms=2000)
    source = await make_source(client)
    await create(client, ec(1, source))
    assert (await client.post(LOOKUP, json=identifier(source, "crm-1"))).status_code == 404
    clock.advance(2.0)
    assert (await client.post(LOOKUP, json=identifier(source, "crm-1"))).status_code == 200


async def test_upsert_re_sent_never_makes_a_second_contact(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    source = await make_source(client)
    first = await client.post(ENRICH, json=upsert(source, 1, lastName="King"))
    assert first.status_code == 201, first.text
    doc = first.json()
    assert doc["externalIds"][0]["value"] == "crm-1"  # claims what it was matched on
    again = await client.post(ENRICH, json=upsert(source, 1, title="Countess"))
    assert again.status_code == 200
    assert again.json()["id"] == doc["id"]
    # PreferProvided: an omitted field keeps the stored value.
    assert (again.json()["lastName"], again.json()["title"]) == ("King", "Countess")
    assert len(emulator.contacts()) == 1


async def test_actions_and_field_rules(client: httpx.AsyncClient) -> None:
    source = await make_source(client)
    update = await client.post(ENRICH, json=upsert(source, 1, action="Update"))
    assert_error_body(update, 404, "not.found")
    insert = await client.post(ENRICH, json=upsert(source, 1, action="Insert", title="Dr"))
    assert insert.status_code == 201
    twice = await client.post(ENRICH, json=upsert(source, 1, action="Insert"))
    assert_error_body(twice, 409)
    rules = {
        "defaultAction": "PreferExisting",
        "rules": [{"field": "$.title", "action": "AlwaysUseProvided"}],
    }
    body = {**upsert(source, 1, firstName="Other"), "fieldRules": rules}
    combined = (await client.post(ENRICH, json=body)).json()
    assert combined["firstName"] == "First1"  # existing kept
    assert "title" not in combined  # AlwaysUseProvided with nothing provided clears it


async def test_dry_run_stores_nothing(client: httpx.AsyncClient, emulator: Emulator) -> None:
    source = await make_source(client)
    dry = await client.post(ENRICH, params={"dryRun": "true"}, json=upsert(source, 1))
    assert dry.status_code == 201
    assert "id" not in dry.json()
    assert dry.json()["firstName"] == "First1"
    assert emulator.contacts() == []


async def test_bulk_enrich_and_its_limit(client: httpx.AsyncClient, emulator: Emulator) -> None:
    source = await make_source(client)
    entities = [upsert(source, n) for n in range(10)]
    answer = (await client.post(BULK_ENRICH, json={"entities": entities})).json()
    assert answer["errorCount"] == 0
    assert {r["status"] for r in answer["results"]} == {201}
    again = (await client.post(BULK_ENRICH, json={"entities": entities})).json()
    assert {r["status"] for r in again["results"]} == {200}
    assert len(emulator.contacts()) == 10
    over = await client.post(BULK_ENRICH, json={"entities": [*entities, upsert(source, 10)]})
    assert_error_body(over, 413)
    emulator.set_variants(bulk_limit_status=400, bulk_enrich_max_entities=2)
    assert (await client.post(BULK_ENRICH, json={"entities": entities[:3]})).status_code == 400
    bad = {"entities": [{"id": "tracker-1", **upsert(source, 1, action="Nope")}]}
    (result,) = (await client.post(BULK_ENRICH, json=bad)).json()["results"]
    assert (result["success"], result["status"]) == (False, 400)
    assert result["error"]["entity"]["id"] == "tracker-1"


@pytest.mark.parametrize(
    ("policy", "status", "stored"), [("duplicate", 200, 2), ("reject", 409, 1), ("merge", 200, 1)]
)
async def test_second_create_with_a_claimed_external_id(
    client: httpx.AsyncClient, emulator: Emulator, policy: str, status: int, stored: int
) -> None:
    emulator.set_variants(claimed_external_id=policy)
    source = await make_source(client)
    first = await create(client, ec(1, source))
    second = await client.post(CONTACTS, json=ec(1, source, title="Dr"))
    assert second.status_code == status, second.text
    assert len(emulator.contacts()) == stored
    if policy == "merge":
        assert (second.json()["id"], second.json()["title"]) == (first["id"], "Dr")
    assert duplicate_external_ids(emulator) == stored - 1
