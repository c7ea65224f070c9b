"""Contract of /api/v2/contacts in the reference profile: listing, CRUD, PUT vs PATCH.

Body validation is in ``test_validation.py``.

Each test documents one behaviour a client can rely on (or must survive).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from syncd.emulator import Emulator, ManualClock
from tests.emulator.conftest import assert_error_body, person

pytestmark = pytest.mark.anyio

Seeder = Callable[[int], list[dict[str, Any]]]
API = "/api/v2/contacts"


async def list_page(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    response = await client.get(API, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- listing ---------------------------------------------------------------------------


async def test_empty_store_lists_an_empty_first_page(client: httpx.AsyncClient) -> None:
    assert await list_page(client) == {"entities": [], "pageNumber": 1, "pageSize": 25, "total": 0}


async def test_default_page_size_is_25_and_the_last_page_is_partial(
    client: httpx.AsyncClient, seed: Seeder
) -> None:
    seed(30)
    first = await list_page(client)
    second = await list_page(client, pageNumber=2)
    assert (len(first["entities"]), first["total"], first["pageSize"]) == (25, 30, 25)
    assert (len(second["entities"]), second["pageNumber"]) == (5, 2)


async def test_exact_multiple_of_page_size_then_an_empty_page(
    client: httpx.AsyncClient, seed: Seeder
) -> None:
    seed(20)
    pages = [await list_page(client, pageSize=10, pageNumber=n) for n in (1, 2, 3)]
    assert [len(p["entities"]) for p in pages] == [10, 10, 0]
    assert all(p["total"] == 20 for p in pages)


async def test_a_page_beyond_the_last_is_empty_with_the_true_total(
    client: httpx.AsyncClient, seed: Seeder
) -> None:
    seed(3)
    page = await list_page(client, pageNumber=99, pageSize=100)
    assert page == {"entities": [], "pageNumber": 99, "pageSize": 100, "total": 3}


async def test_walking_every_page_returns_each_contact_once_in_creation_order(
    client: httpx.AsyncClient, seed: Seeder
) -> None:
    stored = seed(57)
    seen: list[str] = []
    for number in range(1, 5):
        seen += [
            c["id"] for c in (await list_page(client, pageSize=17, pageNumber=number))["entities"]
        ]
    assert seen == [c["id"] for c in stored]


@pytest.mark.parametrize(
    "params",
    [
        {"pageSize": 0},
        {"pageSize": 101},
        {"pageSize": -5},
        {"pageSize": "ten"},
        {"pageSize": ""},
        {"pageSize": "2.5"},
        {"pageNumber": 0},
        {"pageNumber": "x"},
        {"sortOrder": "sideways"},
    ],
)
async def test_out_of_range_paging_parameters_are_400_not_clamped(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    body = assert_error_body(await client.get(API, params=params), 400, "bad.request")
    assert next(iter(params)) in body["message"]


async def test_page_size_100_is_the_maximum(client: httpx.AsyncClient, seed: Seeder) -> None:
    seed(120)
    page = await list_page(client, pageSize=100)
    assert len(page["entities"]) == 100


async def test_sort_is_by_date_created_then_arrival_and_desc_is_the_exact_reverse(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """Equal instants keep the order the store received them in ("b" was seeded before
    "a"), never the order of their ids: one total order, the same on every run."""
    emulator.seed_contacts(
        [
            person(1, id="b", dateCreated="2026-01-03T00:00:00Z"),
            person(2, id="z", dateCreated="2026-01-01T00:00:00Z"),
            person(3, id="a", dateCreated="2026-01-03T00:00:00.000Z"),
            person(4, id="m", dateCreated="2026-01-02T00:00:00+01:00"),
        ]
    )
    asc = [c["id"] for c in (await list_page(client))["entities"]]
    desc = [c["id"] for c in (await list_page(client, sortOrder="desc"))["entities"]]
    assert asc == ["z", "m", "b", "a"]
    assert desc == asc[::-1]
    desc_pages = [
        c["id"]
        for n in (1, 2, 3)
        for c in (await list_page(client, sortOrder="desc", pageSize=3, pageNumber=n))["entities"]
    ]
    assert desc_pages == desc
    # Timestamps are normalized to UTC with milliseconds.
    assert (await client.get(f"{API}/m")).json()["dateCreated"] == "2026-01-01T23:00:00.000Z"


async def test_contacts_created_in_one_instant_list_in_creation_order(
    client: httpx.AsyncClient,
) -> None:
    """The manual clock stands still, so every create gets the same dateCreated: pages
    still follow the order of the creates, whatever the ids, on every run."""
    created = [(await client.post(API, json=person(n))).json() for n in range(8)]
    assert len({c["dateCreated"] for c in created}) == 1
    ids = [c["id"] for c in created]
    assert ids != sorted(ids)  # an order by id would differ
    asc = [
        c["id"]
        for n in (1, 2, 3)
        for c in (await list_page(client, pageSize=3, pageNumber=n))["entities"]
    ]
    assert asc == ids
    desc = await list_page(client, sortOrder="desc")
    assert [c["id"] for c in desc["entities"]] == ids[::-1]


async def test_sort_order_is_case_insensitive(client: httpx.AsyncClient, seed: Seeder) -> None:
    stored = seed(3)
    page = await list_page(client, sortOrder="DESC")
    assert [c["id"] for c in page["entities"]] == [c["id"] for c in reversed(stored)]


# -- create and read -------------------------------------------------------------------


async def test_create_assigns_id_and_dates_and_answers_201(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    body = {
        "firstName": "Jane",
        "lastName": "Smith",
        "email": "jane@example.com",
        "phoneNumbers": [{"number": "+15559876543", "type": "WORK"}],
        "externalOrganization": {"id": "org-789", "name": "Tech Solutions Inc"},
        "externalId": "sf-contact-001",
    }
    response = await client.post(API, json=body)
    assert response.status_code == 201
    created = response.json()
    assert created == {
        "id": created["id"],
        **body,
        "dateCreated": "2026-03-14T10:30:00.000Z",
        "dateModified": "2026-03-14T10:30:00.000Z",
    }
    fetched = await client.get(f"{API}/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


async def test_fields_without_a_value_are_left_out(client: httpx.AsyncClient) -> None:
    created = (
        await client.post(API, json={"firstName": "A", "lastName": "B", "email": None})
    ).json()
    assert set(created) == {"id", "firstName", "lastName", "dateCreated", "dateModified"}


async def test_read_only_fields_in_a_create_are_ignored(client: httpx.AsyncClient) -> None:
    body = {**person(1), "id": "mine", "dateCreated": "1999-01-01T00:00:00Z"}
    created = (await client.post(API, json=body)).json()
    assert created["id"] != "mine"
    assert created["dateCreated"] == "2026-03-14T10:30:00.000Z"


async def test_duplicate_external_ids_are_allowed(client: httpx.AsyncClient) -> None:
    first = await client.post(API, json=person(1))
    second = await client.post(API, json=person(1))
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert (await list_page(client))["total"] == 2


async def test_unknown_id_is_404_for_every_method(client: httpx.AsyncClient) -> None:
    for method, body in (("GET", None), ("PUT", person(1)), ("PATCH", {}), ("DELETE", None)):
        response = await client.request(method, f"{API}/no-such-id", json=body)
        assert_error_body(response, 404, "not.found")


async def test_ids_are_reproducible_from_the_seed(app: Any, client: httpx.AsyncClient) -> None:
    first = (await client.post(API, json=person(1))).json()["id"]
    app.state.emulator.reset()
    assert (await client.post(API, json=person(1))).json()["id"] == first


# -- PUT versus PATCH --------------------------------------------------------------------


async def _create_full(client: httpx.AsyncClient) -> dict[str, Any]:
    body = {
        **person(1),
        "email": "one@example.com",
        "phoneNumbers": [{"number": "+15550000001", "type": "MOBILE"}],
        "externalOrganization": {"name": "Acme"},
    }
    created: dict[str, Any] = (await client.post(API, json=body)).json()
    return created


async def test_put_replaces_the_whole_contact_and_clears_what_is_left_out(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    created = await _create_full(client)
    clock.advance(5)
    response = await client.put(
        f"{API}/{created['id']}", json={"firstName": "New", "lastName": "Name"}
    )
    assert response.status_code == 200
    assert response.json() == {
        "id": created["id"],
        "firstName": "New",
        "lastName": "Name",
        "dateCreated": created["dateCreated"],
        "dateModified": "2026-03-14T10:30:05.000Z",
    }
    assert (await client.get(f"{API}/{created['id']}")).json() == response.json()


async def test_put_still_requires_the_names(client: httpx.AsyncClient) -> None:
    created = await _create_full(client)
    response = await client.put(f"{API}/{created['id']}", json={"email": "x@example.com"})
    assert_error_body(response, 400)
    assert (await client.get(f"{API}/{created['id']}")).json() == created


async def test_put_accepts_a_fetched_contact_back_but_not_a_different_id(
    client: httpx.AsyncClient,
) -> None:
    created = await _create_full(client)
    same = await client.put(f"{API}/{created['id']}", json={**created, "lastName": "Changed"})
    assert same.status_code == 200
    assert same.json()["lastName"] == "Changed"
    other = await client.put(f"{API}/{created['id']}", json={**created, "id": "other"})
    assert_error_body(other, 400)


async def test_patch_changes_only_the_given_fields(
    client: httpx.AsyncClient, clock: ManualClock
) -> None:
    created = await _create_full(client)
    clock.advance(1)
    response = await client.patch(f"{API}/{created['id']}", json={"email": "new@example.com"})
    assert response.status_code == 200
    assert response.json() == {
        **created,
        "email": "new@example.com",
        "dateModified": "2026-03-14T10:30:01.000Z",
    }


async def test_patch_null_clears_an_optional_field_but_not_a_name(
    client: httpx.AsyncClient,
) -> None:
    created = await _create_full(client)
    cleared = await client.patch(
        f"{API}/{created['id']}", json={"phoneNumbers": None, "email": None}
    )
    assert cleared.status_code == 200
    assert "phoneNumbers" not in cleared.json()
    assert "email" not in cleared.json()
    refused = await client.patch(f"{API}/{created['id']}", json={"lastName": None})
    assert_error_body(refused, 400)


async def test_patch_validates_the_given_fields(client: httpx.AsyncClient) -> None:
    created = await _create_full(client)
    for body in ({"email": "nope"}, {"bogus": 1}, {"firstName": "x" * 1001}):
        assert_error_body(await client.patch(f"{API}/{created['id']}", json=body), 400)
    assert (await client.get(f"{API}/{created['id']}")).json() == created


async def test_an_empty_patch_is_a_write_that_only_touches_date_modified(
    client: httpx.AsyncClient, clock: ManualClock, emulator: Emulator
) -> None:
    created = await _create_full(client)
    clock.advance(2)
    response = await client.patch(f"{API}/{created['id']}", json={})
    assert response.json() == {**created, "dateModified": "2026-03-14T10:30:02.000Z"}
    assert [w["op"] for w in emulator.write_log()] == ["create", "update"]


# -- delete and the write log -------------------------------------------------------------


async def test_delete_answers_204_then_the_contact_is_gone(client: httpx.AsyncClient) -> None:
    created = await _create_full(client)
    deleted = await client.delete(f"{API}/{created['id']}")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_error_body(await client.get(f"{API}/{created['id']}"), 404)
    assert_error_body(await client.delete(f"{API}/{created['id']}"), 404)
    assert (await list_page(client))["total"] == 0


async def test_the_write_log_has_every_applied_write_and_only_those(
    client: httpx.AsyncClient, emulator: Emulator, clock: ManualClock
) -> None:
    created = (await client.post(API, json=person(7))).json()
    cid = created["id"]
    clock.advance(1)
    await client.put(f"{API}/{cid}", json=person(7, email="a@b.io"))
    await client.patch(f"{API}/{cid}", json={"externalId": "crm-8"})
    await client.patch(f"{API}/{cid}", json={"email": "bad"})  # rejected: not a write
    await client.delete(f"{API}/{cid}")
    await client.delete(f"{API}/{cid}")  # 404: not a write
    log = emulator.write_log()
    assert [(w["op"], w["id"], w["externalId"]) for w in log] == [
        ("create", cid, "crm-7"),
        ("replace", cid, "crm-7"),
        ("update", cid, "crm-8"),
        ("delete", cid, "crm-8"),
    ]
    assert log[0]["at"] == created["dateCreated"]
    assert emulator.stats()["writes_by_op"] == {"create": 1, "update": 1, "replace": 1, "delete": 1}


# -- routing -----------------------------------------------------------------------------


async def test_wrong_method_is_405_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/search", json={})
    assert_error_body(response, 405)
    assert response.headers["Allow"] == "GET"
    assert_error_body(await client.delete(API), 405)


async def test_unknown_api_paths_are_404_after_authentication(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    assert_error_body(await client.get("/api/v2/conversations"), 404, "not.found")
    del client.headers["Authorization"]
    assert_error_body(await anon.get("/api/v2/conversations"), 401)


async def test_paths_outside_the_api_get_the_same_error_shape(anon: httpx.AsyncClient) -> None:
    assert_error_body(await anon.get("/"), 404)
    assert_error_body(await anon.get("/oauth/token"), 405)


async def test_every_response_has_a_fresh_correlation_id(client: httpx.AsyncClient) -> None:
    responses = [
        await client.get(API),
        await client.get(f"{API}/x"),
        await client.get("/__emulator/stats"),
    ]
    ids = {r.headers["ININ-Correlation-Id"] for r in responses}
    assert len(ids) == 3
