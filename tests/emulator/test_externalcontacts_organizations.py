"""Organizations as records, merges, divisions and contact types (externalcontacts profile)."""

from __future__ import annotations

import httpx
import pytest

from syncd.emulator import Emulator, EmulatorConfig
from tests.emulator.conftest import assert_error_body
from tests.emulator.test_externalcontacts import API, CONTACTS, create, ec, make_source

pytestmark = pytest.mark.anyio

ORGS = f"{API}/organizations"


@pytest.fixture
def config() -> EmulatorConfig:
    # Production's organization check (the emulator's default stays "legacy" until the
    # client creates organization records: docs/externalcontacts.md).
    return EmulatorConfig(
        profile="externalcontacts",
        requests_per_minute=100_000,
        variants={"organization_check": "strict"},
    )


async def make_org(client: httpx.AsyncClient, name: str, source: str | None = None) -> str:
    body: dict[str, object] = {"name": name}
    if source is not None:
        body["externalIds"] = [{"externalSource": {"id": source}, "value": f"org-{name}"}]
    response = await client.post(ORGS, json=body)
    assert response.status_code == 200, response.text
    org_id: str = response.json()["id"]
    return org_id


async def test_organization_crud_lookup_and_scan(client: httpx.AsyncClient) -> None:
    source = await make_source(client)
    org_id = await make_org(client, "Analytical", source)
    lookup = {"type": "ExternalId", "value": "org-Analytical", "externalSource": {"id": source}}
    found = await client.post(f"{API}/identifierlookup/organizations", json=lookup)
    assert found.json()["id"] == org_id
    renamed = await client.put(f"{ORGS}/{org_id}", json={"name": "Engines"})
    assert renamed.json()["name"] == "Engines"
    assert "externalIds" not in renamed.json()
    lost = await client.post(f"{API}/identifierlookup/organizations", json=lookup)
    assert lost.status_code == 404  # a full replace released the ExternalId
    for n in range(11):
        await make_org(client, f"o{n}")
    page = (await client.get(f"{API}/scan/organizations", params={"limit": 10})).json()
    after = {"limit": 10, "cursor": page["cursors"]["after"]}
    rest = (await client.get(f"{API}/scan/organizations", params=after)).json()
    assert len(page["entities"]) + len(rest["entities"]) == 12
    assert "cursors" not in rest
    search = (await client.get(ORGS, params={"q": "ENGI"})).json()
    assert [o["id"] for o in search["entities"]] == [org_id]
    assert (await client.delete(f"{ORGS}/{org_id}")).status_code == 204
    assert_error_body(await client.get(f"{ORGS}/{org_id}"), 404, "not.found")
    assert_error_body(await client.post(ORGS, json={"industry": "x"}), 400)


async def test_bulk_organizations(client: httpx.AsyncClient) -> None:
    added = (
        await client.post(f"{API}/bulk/organizations/add", json={"entities": [{"name": "a"}, {}]})
    ).json()
    assert added["errorCount"] == 1
    (ok,) = [r for r in added["results"] if r["success"]]
    update = {"entities": [{"id": ok["id"], "name": "b"}]}
    updated = (await client.post(f"{API}/bulk/organizations/update", json=update)).json()
    assert updated["results"][0]["entity"]["name"] == "b"
    ids = {"entities": [{"id": ok["id"]}, {"id": "ghost"}]}
    read = (await client.post(f"{API}/bulk/organizations", json=ids)).json()
    assert read["errorCount"] == 1
    removed = (await client.post(f"{API}/bulk/organizations/remove", json=ids)).json()
    assert sorted(r["status"] for r in removed["results"]) == [200, 404]


async def test_a_contact_references_an_existing_organization(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    missing = await client.post(CONTACTS, json=ec(1, externalOrganization={"id": "ghost"}))
    details = assert_error_body(missing, 400, "bad.request")["details"]
    assert details[0]["fieldName"] == "externalOrganization"
    org_id = await make_org(client, "Analytical")
    contact = await create(client, ec(1, externalOrganization={"id": org_id}))
    url = f"{CONTACTS}/{contact['id']}"
    plain = (await client.get(url)).json()["externalOrganization"]
    assert plain == {"id": org_id, "selfUri": f"{ORGS}/{org_id}"}
    expanded = (await client.get(url, params={"expand": "externalOrganization"})).json()
    assert expanded["externalOrganization"]["name"] == "Analytical"
    emulator.set_variants(organization_read="name")
    await client.put(f"{ORGS}/{org_id}", json={"name": "Renamed"})
    named = (await client.get(url)).json()["externalOrganization"]
    assert named == {"id": org_id, "name": "Renamed", "selfUri": f"{ORGS}/{org_id}"}
    emulator.set_variants(organization_check="legacy")
    legacy = await create(client, ec(2, externalOrganization={"id": "crm-org", "name": "X"}))
    assert legacy["externalOrganization"]["name"] == "X"


@pytest.mark.parametrize("mode", ["canonical", "unresolved", "not_found"])
async def test_a_merged_away_contact(
    client: httpx.AsyncClient, anon: httpx.AsyncClient, emulator: Emulator, mode: str
) -> None:
    emulator.set_variants(merged_contact_get=mode)
    source = await make_source(client)
    a = await create(client, ec(1, source))
    b = await create(client, ec(2, source, title="Dr"))
    merged = (await anon.post("/__emulator/merge", json={"contactIds": [a["id"], b["id"]]})).json()
    assert {r["id"] for r in merged["mergedFrom"]} == {a["id"], b["id"]}
    assert {e["value"] for e in merged["externalIds"]} == {"crm-1", "crm-2"}
    assert [c["id"] for c in emulator.contacts()] == [merged["id"]]
    answer = await client.get(f"{CONTACTS}/{a['id']}")
    if mode == "not_found":
        assert answer.status_code == 404
    elif mode == "canonical":
        assert answer.json()["id"] == merged["id"]
    else:
        assert answer.json()["mergedTo"]["id"] == merged["id"]
    unresolved = (await client.get(f"{CONTACTS}/{a['id']}/unresolved")).json()
    assert (unresolved["id"], unresolved["canonicalContact"]["id"]) == (a["id"], merged["id"])
    lookup = {"type": "ExternalId", "value": "crm-1", "externalSource": {"id": source}}
    found = await client.post(f"{API}/identifierlookup/contacts", json=lookup)
    assert found.json()["id"] == merged["id"]
    assert (await client.patch(f"{CONTACTS}/{a['id']}", json={"changes": []})).status_code in (
        400,
        404,
    )
    assert "merge" in {w["op"] for w in emulator.write_log()}


async def test_divisions_are_fixed_at_creation_and_scans_filter_on_them(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    division = {"id": "div-2", "name": "Second"}
    assert (await anon.post("/__emulator/divisions", json=division)).status_code == 201
    home = await create(client, ec(1))
    other = await create(client, ec(2, division={"id": "div-2"}))
    assert other["division"]["name"] == "Second"
    moved = await client.put(f"{CONTACTS}/{home['id']}", json=ec(1, division={"id": "div-2"}))
    assert assert_error_body(moved, 400)["details"][0]["fieldName"] == "division"
    unknown = await client.post(CONTACTS, json=ec(3, division={"id": "nope"}))
    assert assert_error_body(unknown, 400)["details"][0]["fieldName"] == "division"
    scan = (await client.get(f"{API}/scan/contacts", params={"divisionId": "div-2"})).json()
    assert [c["id"] for c in scan["entities"]] == [other["id"]]
    every = (await client.get(f"{API}/scan/contacts/divisionviews/all")).json()
    assert len(every["entities"]) == 2


async def test_seeded_contact_types_are_listed_with_their_type(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.seed_contacts([ec(1, type="Ephemeral"), ec(2, type="Identified"), ec(3)])
    scan = (await client.get(f"{API}/scan/contacts")).json()
    assert [c["type"] for c in scan["entities"]] == ["Ephemeral", "Identified", "Curated"]
    (ephemeral, *_) = scan["entities"]
    kept = await client.put(f"{CONTACTS}/{ephemeral['id']}", json=ec(1, title="x"))
    assert kept.json()["type"] == "Ephemeral"
    with pytest.raises(ValueError, match="type"):
        emulator.seed_contacts([ec(4, type="Other")])
