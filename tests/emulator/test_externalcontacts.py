"""Contract of the externalcontacts profile: contacts, PATCH changes, search, scan, sources.

Bulk endpoints and rate limiting are in ``test_externalcontacts_bulk.py``.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from syncd.emulator import Emulator, EmulatorConfig, ManualClock
from tests.emulator.conftest import assert_error_body, fetch_token
from tests.support.emulator import emulator_app, state_of

pytestmark = pytest.mark.anyio

API = "/api/v2/externalcontacts"
CONTACTS = f"{API}/contacts"
SCAN = f"{API}/scan/contacts"
SOURCES = f"{API}/externalsources"


@pytest.fixture
def config() -> EmulatorConfig:
    # Production's organization check (the emulator's default stays "legacy" until the
    # client creates organization records: docs/externalcontacts.md).
    return EmulatorConfig(
        profile="externalcontacts",
        requests_per_minute=100_000,
        variants={"organization_check": "strict"},
    )


async def make_source(client: httpx.AsyncClient, name: str = "crm") -> str:
    response = await client.post(SOURCES, json={"name": name})
    assert response.status_code == 200, response.text
    source_id: str = response.json()["id"]
    return source_id


def ec(n: int, source: str | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"firstName": f"First{n}", "lastName": f"Last{n}"}
    if source is not None:
        body["externalIds"] = [{"externalSource": {"id": source}, "value": f"crm-{n}"}]
    return {**body, **extra}


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(CONTACTS, json=body)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def seed_many(emulator: Emulator, count: int) -> list[dict[str, Any]]:
    return emulator.seed_contacts(
        [
            ec(n, createDate=f"2026-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z")
            for n in range(count)
        ]
    )


# -- the contact document ------------------------------------------------------------------


async def test_create_get_and_the_server_managed_fields(client: httpx.AsyncClient) -> None:
    source = await make_source(client)
    org = await client.post(f"{API}/organizations", json={"name": "Analytical"})
    assert org.status_code == 200, org.text
    org_id = org.json()["id"]
    body = ec(
        1,
        source,
        workPhone={"display": "+1 (555) 123-4567", "extension": 12, "acceptsSMS": False},
        cellPhone={"display": "030 1234567", "normalizationCountryCode": "DE"},
        homePhone={"display": "call me maybe"},
        workEmail="  ada@example.com ",
        title="Countess",
        externalOrganization={"id": org_id, "name": "Analytical"},
    )
    created = await create(client, body)
    # A reference to the record: by id, without the name (see test_organizations.py).
    assert created["externalOrganization"] == {
        "id": org_id,
        "selfUri": f"{API}/organizations/{org_id}",
    }
    assert created["division"]["name"] == "Home"
    assert created["workPhone"] == {
        "display": "+1 555-123-4567",
        "extension": 12,
        "acceptsSMS": False,
        "userInput": "+1 (555) 123-4567",
        "e164": "+15551234567",
    }
    assert created["cellPhone"]["e164"] == "+49301234567"
    assert created["cellPhone"]["countryCode"] == "DE"
    assert created["homePhone"] == {"display": "call me maybe", "userInput": "call me maybe"}
    assert created["workEmail"] == "ada@example.com"  # stripped
    assert created["externalIds"][0]["value"] == "crm-1"
    assert created["externalIds"][0]["externalSource"]["id"] == source
    assert created["selfUri"] == f"{CONTACTS}/{created['id']}"
    assert created["createDate"] == created["modifyDate"]
    assert created["type"] == "Curated"
    fetched = await client.get(f"{CONTACTS}/{created['id']}")
    assert fetched.json() == created
    assert "ININ-Correlation-Id" in fetched.headers


async def test_no_rate_limit_headers_on_any_answer(client: httpx.AsyncClient) -> None:
    ok = await client.get(CONTACTS)
    missing = await client.get(f"{CONTACTS}/nope")
    anonymous = await client.get(CONTACTS, headers={"Authorization": ""})
    for response in (ok, missing, anonymous):
        assert not [h for h in response.headers if h.lower().startswith("x-rate-limit")]
        assert response.headers["ININ-Correlation-Id"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"nickname": "x"}, "nickname"),
        ({"workEmail": "not-an-email"}, "workEmail"),
        ({"firstName": "x" * 1001}, "firstName"),
        ({"workPhone": {"extension": 1}}, "workPhone"),
        ({"workPhone": {"display": "1", "e165": "x"}}, "workPhone"),
        ({"externalSystemUrl": "ftp://x"}, "externalSystemUrl"),
        ({"externalIds": [{"externalSource": {"id": "ghost"}, "value": "1"}]}, "externalIds"),
        ({"externalIds": [{"value": "1"}]}, "externalIds"),
    ],
)
async def test_invalid_bodies_are_400_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await client.post(CONTACTS, json=body)
    details = assert_error_body(response, 400, "bad.request")["details"]
    assert details[0]["fieldName"] == field


async def test_external_ids_limits(client: httpx.AsyncClient) -> None:
    source = await make_source(client)

    def ids(count: int, length: int = 5) -> dict[str, Any]:
        return {
            "externalIds": [
                {"externalSource": {"id": source}, "value": str(n).rjust(length, "x")}
                for n in range(count)
            ]
        }

    assert (await client.post(CONTACTS, json=ids(10, 255))).status_code == 200
    assert (await client.post(CONTACTS, json=ids(11))).status_code == 400
    assert (await client.post(CONTACTS, json=ids(1, 256))).status_code == 400


async def test_put_is_a_full_replace(client: httpx.AsyncClient) -> None:
    created = await create(client, ec(1, title="Dr", workEmail="a@example.com"))
    url = f"{CONTACTS}/{created['id']}"
    replaced = (await client.put(url, json={"firstName": "Only", "id": created["id"]})).json()
    assert replaced["firstName"] == "Only"
    assert "lastName" not in replaced
    assert "title" not in replaced
    assert "workEmail" not in replaced
    assert replaced["createDate"] == created["createDate"]
    wrong = await client.put(url, json={"firstName": "x", "id": "other"})
    assert_error_body(wrong, 400)
    assert (await client.put(f"{CONTACTS}/ghost", json={"firstName": "x"})).status_code == 404


# -- PATCH -----------------------------------------------------------------------------------


def change(field: str, action: str = "Update", value: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"field": field, "action": action}
    if value is not None:
        body["value"] = value
    return body


async def patch(client: httpx.AsyncClient, cid: str, *changes: dict[str, Any]) -> httpx.Response:
    return await client.patch(f"{CONTACTS}/{cid}", json={"changes": list(changes)})


async def test_patch_actions(client: httpx.AsyncClient) -> None:
    doc = await create(client, ec(1, title="Dr", workPhone={"display": "+15551234567"}))
    cid = doc["id"]
    response = await patch(
        client,
        cid,
        change("$.firstName", value="Ada"),
        change("$.title", "UpdateIfEmpty", "Prof"),  # not empty: unchanged
        change("$.middleName", "UpdateIfEmpty", "Augusta"),  # empty: set
        change("$.salutation", "UpdateIfExists", "Lady"),  # empty: unchanged
        change("$.lastName", "Remove"),
        change("$.workPhone.extension", value=7),  # nested: the display survives
    )
    assert response.status_code == 200, response.text
    after = response.json()
    assert (after["firstName"], after["title"], after["middleName"]) == ("Ada", "Dr", "Augusta")
    assert "salutation" not in after
    assert "lastName" not in after
    assert after["workPhone"]["e164"] == "+15551234567"
    assert after["workPhone"]["extension"] == 7
    assert after["modifyDate"] >= doc["modifyDate"]


async def test_patch_collections(client: httpx.AsyncClient) -> None:
    one, two = await make_source(client, "one"), await make_source(client, "two")
    doc = await create(client, ec(1, one))
    other = {"externalSource": {"id": two}, "value": "zz-9"}
    appended = await patch(client, doc["id"], change("$.externalIds", "AppendToCollection", other))
    assert [i["value"] for i in appended.json()["externalIds"]] == ["crm-1", "zz-9"]
    ours = {"externalSource": {"id": one}, "value": "crm-1"}
    removed = await patch(
        client, doc["id"], change("$.externalIds", "RemoveFromCollection", [ours])
    )
    assert [i["value"] for i in removed.json()["externalIds"]] == ["zz-9"]
    bad = await patch(client, doc["id"], change("$.firstName", "AppendToCollection", "x"))
    assert_error_body(bad, 400)


@pytest.mark.parametrize(
    "changes",
    [
        [change("$.workPhone", value={"display": "1"}), change("$.workPhone.display", value="2")],
        [change("$.address.city", value="Paris"), change("$.address", "Remove")],
        [change("$.firstName", value="a"), change("$.firstName", value="b")],
    ],
)
async def test_a_field_and_its_parent_in_one_patch_is_409(
    client: httpx.AsyncClient, changes: list[dict[str, Any]]
) -> None:
    doc = await create(client, ec(1))
    assert_error_body(await patch(client, doc["id"], *changes), 409)
    assert (await client.get(f"{CONTACTS}/{doc['id']}")).json() == doc  # nothing applied


@pytest.mark.parametrize(
    "body",
    [
        {"changes": []},
        {"changes": [change("$.id", value="x")]},
        {"changes": [change("$.workPhone.e164", value="+1")]},
        {"changes": [change("$.nickname", value="x")]},
        {"changes": [change("firstName", value="x")]},
        {"changes": [change("$.firstName", "Update")]},
        {"changes": [change("$.firstName", "Replace", "x")]},
        {"changes": [change("$.workEmail", value="nope")]},
        {"changes": [change("$.workPhone.display", "Remove")]},
        {"firstName": "x"},
    ],
)
async def test_invalid_patches_are_400(client: httpx.AsyncClient, body: dict[str, Any]) -> None:
    doc = await create(client, ec(1, workPhone={"display": "+15551234567", "extension": 3}))
    assert_error_body(await client.patch(f"{CONTACTS}/{doc['id']}", json=body), 400)


async def test_patch_of_a_missing_contact_is_404(client: httpx.AsyncClient) -> None:
    response = await patch(client, "ghost", change("$.firstName", value="x"))
    assert_error_body(response, 404, "not.found")


# -- search -----------------------------------------------------------------------------------


async def test_search_by_external_id_value_lags_like_the_index(
    client: httpx.AsyncClient, emulator: Emulator, clock: ManualClock
) -> None:
    source = await make_source(client)
    emulator.set_faults(search_lag_ms=2000)
    doc = await create(client, ec(7, source))
    assert (await client.get(CONTACTS, params={"q": "crm-7"})).json()["total"] == 0
    clock.advance(2.5)
    found = (await client.get(CONTACTS, params={"q": "crm-7"})).json()
    assert [c["id"] for c in found["entities"]] == [doc["id"]]


async def test_search_reaches_only_the_first_1000_records(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    seed_many(emulator, 1001)
    last = await client.get(CONTACTS, params={"pageSize": 100, "pageNumber": 10})
    assert last.status_code == 200
    body = last.json()
    assert (len(body["entities"]), body["total"], body["pageCount"]) == (100, 1001, 11)
    assert "nextUri" not in body  # the 11th page is out of reach
    beyond = await client.get(CONTACTS, params={"pageSize": 100, "pageNumber": 11})
    assert "1000" in assert_error_body(beyond, 400)["message"]
    odd = await client.get(CONTACTS, params={"pageSize": 7, "pageNumber": 143})
    assert odd.status_code == 400  # 1001 > 1000
    assert (await client.get(CONTACTS, params={"pageSize": 201})).status_code == 400


async def test_search_sort_order(client: httpx.AsyncClient) -> None:
    for name in ("b", "C", "a"):
        await create(client, {"firstName": name})
    asc = (await client.get(CONTACTS, params={"sortOrder": "firstName:asc"})).json()
    desc = (await client.get(CONTACTS, params={"sortOrder": "firstName:desc"})).json()
    assert [c["firstName"] for c in asc["entities"]] == ["a", "b", "C"]
    assert [c["firstName"] for c in desc["entities"]] == ["C", "b", "a"]
    bad = await client.get(CONTACTS, params={"sortOrder": "workEmail:asc"})
    assert_error_body(bad, 400)


# -- scan -------------------------------------------------------------------------------------


async def scan_all(client: httpx.AsyncClient, **params: Any) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await client.get(SCAN, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        pages += 1
        ids += [c["id"] for c in body["entities"]]
        cursor = body.get("cursors", {}).get("after")
        if cursor is None:
            assert "nextUri" not in body
            return ids, pages
        assert body["nextUri"].endswith(f"cursor={cursor}")


async def test_scan_walks_everything_once_and_the_last_page_has_no_after(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    stored = [c["id"] for c in seed_many(emulator, 250)]
    assert await scan_all(client) == (stored, 3)  # default limit 100
    assert await scan_all(client, limit=50) == (stored, 5)  # exact multiple: no empty page
    assert await scan_all(client, limit=200) == (stored, 2)


async def test_scan_of_an_empty_store(client: httpx.AsyncClient) -> None:
    body = (await client.get(SCAN)).json()
    assert body == {"entities": [], "selfUri": f"{SCAN}?limit=100"}


@pytest.mark.parametrize("limit", ["9", "201", "0", "x"])
async def test_scan_limit_is_10_to_200(client: httpx.AsyncClient, limit: str) -> None:
    assert_error_body(await client.get(SCAN, params={"limit": limit}), 400)


async def test_scan_cursors_survive_concurrent_writes(
    client: httpx.AsyncClient, emulator: Emulator, clock: ManualClock
) -> None:
    stored = [c["id"] for c in seed_many(emulator, 30)]
    first = (await client.get(SCAN, params={"limit": 10})).json()
    cursor = first["cursors"]["after"]
    # Meanwhile: a contact already read and one not yet read go away, one is added.
    await client.delete(f"{CONTACTS}/{stored[0]}")
    await client.delete(f"{CONTACTS}/{stored[20]}")
    clock.advance(1)
    added = await create(client, ec(99))
    rest, _ = await scan_all(client, limit=10, cursor=cursor)
    seen = [c["id"] for c in first["entities"]] + rest
    assert seen == stored[:20] + stored[21:] + [added["id"]]


async def test_bad_and_expired_cursors_are_400(
    client: httpx.AsyncClient, emulator: Emulator, clock: ManualClock
) -> None:
    seed_many(emulator, 20)
    cursor = (await client.get(SCAN, params={"limit": 10})).json()["cursors"]["after"]
    assert_error_body(await client.get(SCAN, params={"cursor": "nope"}), 400)
    assert (await client.get(SCAN, params={"cursor": cursor, "limit": 10})).status_code == 200
    clock.advance(24 * 3600)
    client.headers["Authorization"] = f"Bearer {await fetch_token(client)}"  # it expired too
    assert_error_body(await client.get(SCAN, params={"cursor": cursor}), 400)


# -- external sources ------------------------------------------------------------------------


async def test_external_sources_have_unique_names(client: httpx.AsyncClient) -> None:
    source = await make_source(client, "syncd")
    again = await client.post(SOURCES, json={"name": "SyncD"})
    assert_error_body(again, 409)
    fetched = (await client.get(f"{SOURCES}/{source}")).json()
    assert fetched == {
        "id": source,
        "name": "syncd",
        "active": True,
        "selfUri": f"{SOURCES}/{source}",
    }
    assert_error_body(await client.post(SOURCES, json={"name": ""}), 400)
    assert (await client.get(f"{SOURCES}/ghost")).status_code == 404


async def test_external_source_listing_filters_by_name_prefix_and_pages(
    client: httpx.AsyncClient,
) -> None:
    for n in range(25):
        await make_source(client, f"crm-{n:02d}")
    await make_source(client, "other")
    only = (await client.get(SOURCES, params={"name": "oth"})).json()
    assert [s["name"] for s in only["entities"]] == ["other"]
    first = (await client.get(SOURCES, params={"name": "CRM", "limit": 10})).json()
    names = [s["name"] for s in first["entities"]]
    cursor = first["cursors"]["after"]
    while cursor:
        page = (await client.get(SOURCES, params={"cursor": cursor, "name": "crm"})).json()
        names += [s["name"] for s in page["entities"]]
        cursor = page.get("cursors", {}).get("after")
    assert names == [f"crm-{n:02d}" for n in range(25)]


async def test_seeding_registers_named_sources(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    ref = {"externalSource": {"id": "src-1", "name": "syncd"}, "value": "crm-1"}
    emulator.seed_contacts([{"firstName": "Ada", "externalIds": [ref]}])
    listing = (await client.get(SOURCES, params={"name": "syncd"})).json()
    assert [(s["id"], s["name"]) for s in listing["entities"]] == [("src-1", "syncd")]
    found = (await client.get(CONTACTS, params={"q": "crm-1"})).json()
    assert found["entities"][0]["externalIds"][0]["externalSource"]["id"] == "src-1"


def test_sources_persist_with_the_store(tmp_path: Any) -> None:
    path = tmp_path / "ec.json"
    config = EmulatorConfig(profile="externalcontacts", persist_path=path)
    first = state_of(emulator_app(config))
    ref = {"externalSource": {"id": "src-1", "name": "syncd"}, "value": "crm-1"}
    first.seed_contacts([{"firstName": "Ada", "externalIds": [ref]}])
    first.save()
    second = state_of(emulator_app(config))
    assert second.contacts() == first.contacts()
    assert second.profile.sources.all() == first.profile.sources.all()
