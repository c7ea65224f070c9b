"""Bulk operations of the client: matching shuffled results, per-entity failures, 413
halving, unknown outcomes that are never re-sent, and the fallback without bulk endpoints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from syncd.emulator import EmulatorConfig
from syncd.errors import (
    ApiNotFoundError,
    ApiUnavailableError,
    ApiValidationError,
    OutcomeUnknownError,
)
from syncd.genesys.api import BulkItemResult
from syncd.genesys.client import GenesysClient
from syncd.genesys.retry import RetryPolicy
from syncd.model import Contact, Phone
from tests.genesys.emu import in_process
from tests.genesys.fakes import API, LOGIN, FakeServer, answer
from tests.genesys.test_externalcontacts import EC, ec_rig, ec_settings, hand_edit, routes

pytestmark = pytest.mark.anyio

ADD = f"{EC}/bulk/contacts/add"
SOURCES = {"entities": [{"id": "src", "name": "syncd", "active": True}]}


def people(count: int, start: int = 0) -> list[Contact]:
    return [
        Contact(
            f"crm-{n}",
            f"First{n}",
            f"Last{n}",
            f"p{n}@example.com",
            (Phone(f"+1555000{n:04d}", "MOBILE"),),
        )
        for n in range(start, start + count)
    ]


def config(**kw: Any) -> EmulatorConfig:
    return EmulatorConfig(profile="externalcontacts", requests_per_minute=60_000, **kw)


def outcomes(results: list[BulkItemResult]) -> list[str]:
    return [r.outcome for r in results]


# -- creates -----------------------------------------------------------------------------------


async def test_shuffled_results_are_matched_back_to_their_rows() -> None:
    async with ec_rig(config(seed=5), bulk_batch_size=7) as rig:
        assert rig.client.supports_bulk
        contacts = people(30)
        results = await rig.client.bulk_create(contacts)
        assert outcomes(results) == ["ok"] * 30
        for n, (contact, result) in enumerate(zip(contacts, results, strict=True)):
            assert (result.index, result.key) == (n, contact.external_id)
            assert result.remote is not None
            assert result.remote.contact == contact
            assert result.genesys_id == result.remote.genesys_id
            assert result.correlation_id
        stored = {c["id"]: rig.emulator.profile.external_id(c) for c in rig.emulator.contacts()}
        assert {r.genesys_id: r.key for r in results} == stored
        assert routes(rig, "POST").count("POST /bulk/contacts/add") == 5  # 7+7+7+7+2


async def test_a_failed_entity_is_reported_on_its_own() -> None:
    async with ec_rig(config()) as rig:
        contacts = people(5)
        contacts[2] = Contact("crm-2", "Bad", "Email", "not-an-email")
        results = await rig.client.bulk_create(contacts)
        assert outcomes(results) == ["ok", "ok", "failed", "ok", "ok"]
        bad = results[2]
        assert isinstance(bad.error, ApiValidationError)
        assert bad.status == 400
        assert bad.retryable is False
        assert bad.genesys_id is None
        assert "workEmail" in str(bad.error)
        assert len(rig.emulator.contacts()) == 4


async def test_retryable_entity_failures_keep_the_flag_and_apply_nothing() -> None:
    async with ec_rig(config(seed=1)) as rig:
        rig.emulator.set_faults(bulk_entity_error_rate=0.3)
        results = await rig.client.bulk_create(people(40))
        failed = [r for r in results if r.outcome == "failed"]
        assert failed
        assert all(r.retryable and r.status == 503 for r in failed)
        assert all(isinstance(r.error, ApiUnavailableError) for r in failed)
        assert len(rig.emulator.contacts()) == 40 - len(failed)
        # The engine retries just those: they go through on their own.
        rig.emulator.set_faults(bulk_entity_error_rate=0.0)
        again = await rig.client.bulk_create([people(40)[r.index] for r in failed])
        assert outcomes(again) == ["ok"] * len(failed)
        assert len(rig.emulator.contacts()) == 40


async def test_a_413_halves_the_batch_and_later_batches_stay_small() -> None:
    async with ec_rig(config(bulk_max_entities=4), bulk_batch_size=10) as rig:
        results = await rig.client.bulk_create(people(10))
        assert outcomes(results) == ["ok"] * 10
        statuses = [e["status"] for e in rig.api_log("POST") if e["route"] == ADD]
        assert statuses.count(413) == 3  # 10 -> 5+5 -> each 5 -> 3+2
        assert statuses.count(200) == 4
        assert rig.client.bulk_batch_size == 3
        before = len(rig.api_log())
        assert outcomes(await rig.client.bulk_create(people(6, 10))) == ["ok"] * 6
        assert [e["status"] for e in rig.api_log()[before:]] == [200, 200]


async def test_a_single_entity_over_the_limit_fails_alone(server: FakeServer) -> None:
    too_large = answer(413, {"message": "The request is over the size limit."})
    server.script = [answer(200, SOURCES), too_large]
    async with _fake_client(server) as client:
        (result,) = await client.bulk_create(people(1))
    assert result.outcome == "failed"
    assert isinstance(result.error, ApiValidationError)
    assert result.status == 413
    assert result.retryable is False


async def test_a_lost_bulk_answer_is_unknown_per_entity_and_never_re_sent() -> None:
    async with ec_rig(config(), bulk_batch_size=3) as rig:
        await rig.client.find_by_external_id("warm-up")
        rig.emulator.set_faults(lost_ack_rate=1.0)
        contacts = people(5)
        results = await rig.client.bulk_create(contacts)
        assert outcomes(results) == ["unknown"] * 5
        assert all(isinstance(r.error, OutcomeUnknownError) for r in results)
        assert all(r.genesys_id is None and not r.retryable for r in results)
        adds = [e for e in rig.api_log("POST") if e["route"] == ADD]
        assert [e["status"] for e in adds] == [0, 0]  # two batches, each sent exactly once
        creates = [w for w in rig.emulator.write_log() if w["op"] == "create"]
        assert sorted(w["externalId"] for w in creates) == sorted(c.external_id for c in contacts)
        # The engine resolves each by lookup instead of creating it again.
        rig.emulator.set_faults(lost_ack_rate=0.0)
        for contact in contacts:
            (found,) = await rig.client.find_by_external_id(contact.external_id)
            assert found.contact == contact


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_5xx_after_a_bulk_add_is_unknown_and_not_re_sent(
    server: FakeServer, status: int
) -> None:
    server.script = [answer(200, SOURCES), answer(status, {"message": "boom"})]
    async with _fake_client(server) as client:
        results = await client.bulk_create(people(3))
    assert outcomes(results) == ["unknown"] * 3
    assert len(server.api_requests("POST")) == 1


async def test_503_and_429_are_re_sent_because_nothing_was_applied(server: FakeServer) -> None:
    ok = [
        {"id": f"g-{n}", "success": True, "entity": _entity(f"g-{n}", f"crm-{n}")} for n in range(2)
    ]
    server.script = [
        answer(200, SOURCES),
        answer(503, {"message": "down"}),
        answer(429, {"message": "slow down"}, headers={"Retry-After": "1"}),
        answer(200, {"results": ok[::-1], "errorCount": 0, "errorIndexes": []}),
    ]
    async with _fake_client(server) as client:
        results = await client.bulk_create(people(2))
    assert [r.genesys_id for r in results] == ["g-0", "g-1"]
    assert len(server.api_requests("POST")) == 3


async def test_keyless_results_pair_only_when_unambiguous(server: FakeServer) -> None:
    def failure(status: int) -> dict[str, Any]:
        error = {"code": "x", "message": "no", "status": status, "retryable": False}
        return {"success": False, "error": error}

    ok = {"id": "g-0", "success": True, "entity": _entity("g-0", "crm-0")}
    server.script = [
        answer(200, SOURCES),
        answer(200, {"results": [failure(400), ok], "errorCount": 1, "errorIndexes": [0]}),
        answer(200, {"results": [failure(400), failure(400)]}),
    ]
    async with _fake_client(server, bulk_batch_size=2) as client:
        paired = await client.bulk_create(people(2))
        assert outcomes(paired) == ["ok", "failed"]
        ambiguous = await client.bulk_create(people(2, 5))
        assert outcomes(ambiguous) == ["unknown", "unknown"]
        assert all(isinstance(r.error, OutcomeUnknownError) for r in ambiguous)


async def test_duplicates_in_one_call_are_a_caller_bug() -> None:
    async with ec_rig(config()) as rig:
        with pytest.raises(ValueError, match="twice"):
            await rig.client.bulk_create([people(1)[0], people(1)[0]])
        with pytest.raises(ValueError, match="twice"):
            await rig.client.bulk_delete(["a", "a"])


async def test_unrepresentable_contacts_fail_without_being_sent() -> None:
    twice = Contact("crm-x", "A", "B", phone_numbers=(Phone("+15550001"), Phone("+15550002")))
    async with ec_rig(config()) as rig:
        results = await rig.client.bulk_create([twice, *people(1)])
        assert outcomes(results) == ["failed", "ok"]
        assert isinstance(results[0].error, ApiValidationError)
        sent = rig.emulator.request_log()
        assert all("crm-x" not in json.dumps(entry) for entry in sent)
        assert len(rig.emulator.contacts()) == 1


# -- updates and deletes -------------------------------------------------------------------------


async def test_bulk_update_reads_first_and_keeps_unmanaged_fields() -> None:
    async with ec_rig(config()) as rig:
        created = await rig.client.bulk_create(people(3))
        gid = created[0].genesys_id
        assert gid is not None
        await hand_edit(
            rig,
            gid,
            {"field": "$.title", "value": "Countess", "action": "Update"},
            {"field": "$.cellPhone.extension", "value": 7, "action": "Update"},
            {"field": "$.otherEmail", "value": "o@example.com", "action": "Update"},
        )
        changed = [Contact(r.key, "New", f"Last{n}") for n, r in enumerate(created)]
        changed[0] = Contact("crm-0", "New", "Last0", "p0@example.com", people(1)[0].phone_numbers)
        before = len(rig.api_log())
        items = [(r.genesys_id or "", c) for r, c in zip(created, changed, strict=True)]
        results = await rig.client.bulk_update([*items, ("ghost", people(1)[0])])
        assert outcomes(results) == ["ok", "ok", "ok", "failed"]
        assert isinstance(results[3].error, ApiNotFoundError)
        assert [r.remote.contact for r in results[:3] if r.remote] == changed
        assert routes(rig)[before:] == [
            "POST /bulk/contacts",
            "POST /bulk/contacts/update",
        ]
        stored = rig.emulator.get(gid)
        assert stored is not None
        assert stored["title"] == "Countess"
        assert stored["otherEmail"] == "o@example.com"
        assert stored["cellPhone"]["extension"] == 7  # same number: the phone kept as is
        other = rig.emulator.get(created[1].genesys_id or "")
        assert other is not None
        assert "workEmail" not in other
        assert "cellPhone" not in other


async def test_bulk_update_is_retried_after_an_unclear_failure(server: FakeServer) -> None:
    entity = _entity("g-1", "crm-1")
    read = {"results": [{"id": "g-1", "success": True, "entity": entity}]}
    server.script = [
        answer(200, SOURCES),
        answer(200, read),
        answer(502, {"message": "gateway"}),  # an update may be sent again: it is idempotent
        answer(200, read),
    ]
    async with _fake_client(server) as client:
        (result,) = await client.bulk_update([("g-1", Contact("crm-1", "Ada"))])
    assert result.outcome == "ok"
    posts = [s.path.rsplit("/", 1)[-1] for s in server.api_requests("POST")]
    assert posts == ["contacts", "update", "update"]


async def test_bulk_delete_treats_unknown_ids_as_already_gone() -> None:
    async with ec_rig(config()) as rig:
        created = await rig.client.bulk_create(people(3))
        ids = [r.genesys_id or "" for r in created]
        results = await rig.client.bulk_delete([*ids, "ghost"])
        assert outcomes(results) == ["ok"] * 4
        assert [r.status for r in results] == [200, 200, 200, 404]
        assert rig.emulator.contacts() == []


async def test_whole_batch_failures_are_reported_per_entity(server: FakeServer) -> None:
    server.script = [answer(200, SOURCES)]
    server.default = answer(400, {"message": "The body must be {entities: [...]}"})
    async with _fake_client(server) as client:
        results = await client.bulk_delete(["a", "b"])
    assert outcomes(results) == ["failed", "failed"]
    assert all(isinstance(r.error, ApiValidationError) and not r.retryable for r in results)


# -- without bulk endpoints ------------------------------------------------------------------------


async def test_the_reference_profile_falls_back_to_single_calls() -> None:
    async with in_process(rpm=60_000, retry=RetryPolicy.testing()) as rig:
        client = rig.client
        assert client.supports_bulk is False
        contacts = people(4)
        contacts[1] = Contact("crm-1", "No", "Email", "bad")
        created = await client.bulk_create(contacts)
        assert outcomes(created) == ["ok", "failed", "ok", "ok"]
        assert isinstance(created[1].error, ApiValidationError)
        ids = [r.genesys_id or "" for r in created if r.ok]
        updated = await client.bulk_update([(gid, Contact("x", "Y", "Z")) for gid in ids])
        assert outcomes(updated) == ["ok"] * 3
        deleted = await client.bulk_delete([*ids, "ghost"])
        assert [r.status for r in deleted] == [204, 204, 204, 404]
        rig.emulator.set_faults(lost_ack_rate=1.0)
        (lost,) = await client.bulk_create(people(1, 50))
        assert lost.outcome == "unknown"


# -- helpers ---------------------------------------------------------------------------------------


def _entity(gid: str, external_id: str) -> dict[str, Any]:
    return {
        "id": gid,
        "firstName": "A",
        "externalIds": [{"externalSource": {"id": "src"}, "value": external_id}],
    }


def _fake_client(server: FakeServer, **overrides: Any) -> GenesysClient:
    return GenesysClient.from_settings(
        ec_settings(API, LOGIN, **overrides),
        transport=server.transport(),
        clock=server.time,
        sleep=server.time.sleep,
        retry=RetryPolicy.testing(),
    )
