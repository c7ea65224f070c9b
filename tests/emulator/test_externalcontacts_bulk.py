"""Contract of the externalcontacts bulk endpoints, its 429s, and the CLI's --profile."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from syncd.emulator import Emulator, EmulatorConfig, ManualClock
from tests.emulator.conftest import assert_error_body, fetch_token
from tests.emulator.test_externalcontacts import CONTACTS, ec, make_source
from tests.support.emulator import asgi_transport, emulator_app

pytestmark = pytest.mark.anyio

BULK = "/api/v2/externalcontacts/bulk/contacts"


@pytest.fixture
def config() -> EmulatorConfig:
    return EmulatorConfig(
        profile="externalcontacts", requests_per_minute=100_000, bulk_max_entities=20, seed=3
    )


async def bulk(client: httpx.AsyncClient, op: str, entities: list[Any]) -> dict[str, Any]:
    response = await client.post(f"{BULK}/{op}" if op else BULK, json={"entities": entities})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    failed = [i for i, r in enumerate(body["results"]) if not r["success"]]
    assert body["errorIndexes"] == failed
    assert body["errorCount"] == len(failed)
    return body


def value_of(result: dict[str, Any]) -> str:
    entity = result.get("entity") or result["error"]["entity"]
    return str(entity["externalIds"][0]["value"])


async def test_bulk_add_results_come_back_shuffled_and_carry_their_entity(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    source = await make_source(client)
    entities = [ec(n, source) for n in range(12)]
    body = await bulk(client, "add", entities)
    values = [value_of(r) for r in body["results"]]
    assert sorted(values) == sorted(f"crm-{n}" for n in range(12))
    assert values != [f"crm-{n}" for n in range(12)]  # not in request order
    stored = {c["id"]: c for c in emulator.contacts()}
    for result in body["results"]:
        assert result["success"]
        assert result["status"] == 200
        assert stored[result["id"]] == result["entity"]
    assert [w["op"] for w in emulator.write_log()] == ["create"] * 12


async def test_the_shuffle_is_seeded(config: EmulatorConfig) -> None:
    async def order() -> list[str]:
        app = emulator_app(config, clock=ManualClock())
        transport = asgi_transport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
            c.headers["Authorization"] = f"Bearer {await fetch_token(c)}"
            source = await make_source(c)
            body = await bulk(c, "add", [ec(n, source) for n in range(10)])
            return [value_of(r) for r in body["results"]]

    assert await order() == await order()


async def test_one_invalid_entity_fails_alone_and_echoes_what_was_sent(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    source = await make_source(client)
    bad = ec(2, source, workEmail="broken")
    body = await bulk(client, "add", [ec(1, source), bad, ec(3, source)])
    failures = [r for r in body["results"] if not r["success"]]
    assert len(failures) == 1
    error = failures[0]["error"]
    assert (error["status"], error["code"], error["retryable"]) == (400, "bad.request", False)
    assert error["entity"] == bad
    assert error["details"][0]["fieldName"] == "workEmail"
    assert "id" not in failures[0]
    assert sorted(emulator.profile.external_id(c) or "" for c in emulator.contacts()) == [
        "crm-1",
        "crm-3",
    ]


async def test_injected_entity_faults_are_retryable_and_apply_nothing(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    source = await make_source(client)
    emulator.set_faults(bulk_entity_error_rate=0.5)
    body = await bulk(client, "add", [ec(n, source) for n in range(20)])
    failures = [r for r in body["results"] if not r["success"]]
    assert 0 < len(failures) < 20
    for failure in failures:
        assert failure["error"]["status"] == 503
        assert failure["error"]["retryable"] is True
    assert len(emulator.contacts()) == 20 - len(failures)
    assert emulator.stats()["faults"]["bulk_entity_error"] == len(failures)


async def test_over_the_maximum_batch_is_413_and_nothing_is_applied(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    response = await client.post(f"{BULK}/add", json={"entities": [ec(n) for n in range(21)]})
    assert "20" in assert_error_body(response, 413, "request.entity.too.large")["message"]
    assert emulator.contacts() == []
    assert (await client.post(f"{BULK}/add", json={"entities": []})).status_code == 400
    assert (await client.post(f"{BULK}/add", json=[ec(1)])).status_code == 400


async def test_bulk_update_replaces_whole_contacts_and_404s_unknown_ids(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    docs = (await bulk(client, "add", [ec(n, title="Dr") for n in range(3)]))["results"]
    ids = [r["id"] for r in docs]
    entities = [{"id": cid, "firstName": f"New{n}"} for n, cid in enumerate(ids)]
    body = await bulk(client, "update", [*entities, {"id": "ghost", "firstName": "x"}, {}])
    by_id = {r.get("id"): r for r in body["results"]}
    assert by_id["ghost"]["error"]["status"] == 404
    assert by_id[None]["error"]["status"] == 400  # no id
    for n, cid in enumerate(ids):
        entity = by_id[cid]["entity"]
        assert entity["firstName"] == f"New{n}"
        assert "title" not in entity
        assert "lastName" not in entity
    assert [w["op"] for w in emulator.write_log()][-3:] == ["replace"] * 3


async def test_bulk_remove_and_read(client: httpx.AsyncClient, emulator: Emulator) -> None:
    ids = [r["id"] for r in (await bulk(client, "add", [ec(n) for n in range(3)]))["results"]]
    read = await bulk(client, "", [{"id": ids[0]}, {"id": "ghost"}])
    by_id = {r["id"]: r for r in read["results"]}
    assert by_id[ids[0]]["entity"] == emulator.get(ids[0])
    assert by_id["ghost"]["error"]["code"] == "not.found"
    removed = await bulk(client, "remove", [{"id": i} for i in [*ids[:2], "ghost"]])
    statuses = {r["id"]: r["status"] for r in removed["results"]}
    assert statuses == {ids[0]: 200, ids[1]: 200, "ghost": 404}
    assert [c["id"] for c in emulator.contacts()] == [ids[2]]
    assert (await client.get(f"{CONTACTS}/{ids[0]}")).status_code == 404


async def test_a_bulk_request_costs_one_request_of_the_budget(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    await bulk(client, "add", [ec(n) for n in range(20)])
    routes = emulator.stats()["requests_by_route"]
    assert routes == {"POST /api/v2/externalcontacts/bulk/contacts/add": 1, "POST /oauth/token": 1}


# -- rate limit: 429 + Retry-After only --------------------------------------------------------


@pytest.fixture
def limited_app(clock: ManualClock) -> Starlette:
    return emulator_app(
        EmulatorConfig(profile="externalcontacts", requests_per_minute=3), clock=clock
    )


async def test_429_carries_retry_after_and_the_production_body_and_no_rate_headers(
    limited_app: Starlette, clock: ManualClock
) -> None:
    transport = asgi_transport(limited_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as c:
        c.headers["Authorization"] = f"Bearer {await fetch_token(c)}"
        answers = [await c.get(CONTACTS) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        limited = answers[-1]
        body = assert_error_body(limited, 429, "too.many.requests.retry.after")
        assert limited.headers["Retry-After"] == "60"
        assert body["message"] == (
            "Rate limit exceeded the maximum. Retry the request in [60] seconds"
        )
        for answer in answers:
            assert not [h for h in answer.headers if h.lower().startswith("x-rate-limit")]
        clock.advance(60)
        assert (await c.get(CONTACTS)).status_code == 200


def test_the_cli_serves_the_profile(tmp_path: Path) -> None:
    from tests.emulator.test_cli import STOP_TIMEOUT, emulator_process, token

    config = EmulatorConfig(profile="externalcontacts", bulk_max_entities=2)
    with emulator_process(config, tmp_path / "emulator.log") as running:
        headers = {"Authorization": f"Bearer {token(running)}"}
        url = running.url + "/api/v2/externalcontacts"
        created = httpx.post(url + "/contacts", json={"firstName": "A"}, headers=headers)
        assert created.status_code == 200
        assert "X-Rate-Limit-Limit" not in created.headers
        too_many = {"entities": [{"firstName": "x"}] * 3}
        assert (
            httpx.post(url + "/bulk/contacts/add", json=too_many, headers=headers).status_code
            == 413
        )
        assert running.stop(timeout=STOP_TIMEOUT) == 0


async def test_the_write_log_names_the_request_that_applied_each_bulk_entity(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    """A bulk update whose answer is dropped: each entity it applied names the dropped
    request, so a harness can tell these writes from answered ones (chaos ledger check)."""
    ids = [r["id"] for r in (await bulk(client, "add", [ec(n) for n in range(3)]))["results"]]
    emulator.set_faults(lost_ack_rate=1)
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(
            f"{BULK}/update", json={"entities": [{"id": i, "firstName": "X"} for i in ids]}
        )
    answered, dropped = emulator.request_log()[-2:]
    assert dropped["status"] == 0
    assert answered["status"] == 200
    assert answered["request"] != dropped["request"]
    writes = emulator.write_log()
    assert [w["request"] for w in writes] == [answered["request"]] * 3 + [dropped["request"]] * 3
    assert [w["op"] for w in writes[3:]] == ["replace"] * 3
