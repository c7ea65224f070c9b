"""Bulk writes through the engine: the externalcontacts profile's bulk endpoints, with the
intent protocol per entity (invariants 1 and 2), per-entity failures, lost acknowledgements
and crashes between the intents and the batch call. In-process emulator, real client."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncd.errors import ApiValidationError
from syncd.genesys.api import BulkItemResult
from syncd.genesys.client import GenesysClient
from syncd.model import Contact
from syncd.store.db import Database
from syncd.sync.guards import DeleteLimits
from tests.sync.conftest import FAST_OPTIONS, CrashAt, CrashError, Harness, make_app, person

BATCH = 10  # bulk_batch_size of syncd's client in these tests


@pytest.fixture
def h(db: Database) -> Harness:
    harness = Harness(
        db, make_app("externalcontacts"), options=replace(FAST_OPTIONS, batch_size=500)
    )
    harness.client_overrides = {"bulk_batch_size": BATCH}
    return harness


def _creates_per_ext(h: Harness) -> Counter[str]:
    return Counter(w["externalId"] for w in h.syncd_writes() if w["op"] == "create")


def _no_single_writes(h: Harness, start: int) -> None:
    singles = {h.route("create"), h.route("patch"), h.route("delete")}
    assert [c for c in h.calls(start) if c in singles] == []


def _every_write_has_a_ledger_row(h: Harness) -> None:
    ops = {
        "create": ("create", "recreate"),
        "update": ("update", "drift"),
        "replace": ("update", "drift"),
        "delete": ("delete",),
    }
    rows = h.ledger()
    for write in h.syncd_writes():
        assert any(
            r["op"] in ops[write["op"]]
            and r["genesys_id"] == write["id"]
            and r["outcome"] in ("ok", "pending")
            for r in rows
        ), f"no ledger row for {write}"


def test_creates_updates_and_deletes_go_out_in_bulk_batches(h: Harness) -> None:
    n = 26
    exts = [f"B-{i:02}" for i in range(n)]
    h.upsert(*(person(e) for e in exts))
    report = h.run()
    assert report.status == "succeeded", report
    assert report.counts["created"] == n
    batches = -(-n // BATCH)
    assert h.calls() == h.setup_calls(created=True) + [h.route("bulk_add")] * batches
    links = h.links()
    creates = h.ledger(op="create")
    assert sorted(r["external_id"] for r in creates) == exts  # one ledger row per entity
    for row in creates:
        assert row["outcome"] == "ok"
        assert row["genesys_id"] == links[row["external_id"]]["genesys_id"]
    assert {e: len(v) for e, v in h.remote_by_ext().items()} == dict.fromkeys(exts, 1)

    h.upsert(*(person(e, first="Grace") for e in exts))
    start = len(h.em.request_log())
    report = h.run()
    assert report.counts["updated"] == n
    # The client reads each batch before replacing it (fields syncd does not manage stay).
    calls = h.calls(start)
    assert calls[:1] == h.setup_calls()
    assert Counter(calls[1:]) == {h.route("bulk_read"): batches, h.route("bulk_update"): batches}
    updates = h.ledger(op="update")
    assert len(updates) == n
    assert all(r["fields"] == {"first_name": ["Ada", "Grace"]} for r in updates)
    assert all(r["outcome"] == "ok" for r in updates)
    assert {c["firstName"] for c in h.remote()} == {"Grace"}

    h.tombstone(*exts[1:])
    start = len(h.em.request_log())
    report = h.run()
    assert report.counts["deleted"] == n - 1
    assert h.calls(start) == h.setup_calls() + [h.route("bulk_remove")] * -(-(n - 1) // BATCH)
    assert set(h.remote_by_ext()) == {exts[0]}
    assert len(h.ledger(op="delete", outcome="ok")) == n - 1
    assert set(h.links()) == {exts[0]}
    _every_write_has_a_ledger_row(h)


def test_the_guard_holds_a_delete_batch_before_it_is_sent(h: Harness) -> None:
    h.options = replace(h.options, limits=DeleteLimits(max_count=5, max_percent=100.0))
    h.upsert(*(person(f"G-{i:02}") for i in range(12)))
    h.run()
    h.tombstone(*(f"G-{i:02}" for i in range(1, 12)))
    start = len(h.em.request_log())
    report = h.run()
    assert report.status == "held"
    assert report.counts["held"] == 11
    assert h.calls(start) == []
    assert len(h.remote()) == 12
    report = h.run(allow_mass_delete=True)
    assert report.counts["deleted"] == 11
    assert h.calls(start) == h.setup_calls() + [h.route("bulk_remove")] * 2


def test_entities_failing_inside_a_batch_back_off_on_their_own(h: Harness) -> None:
    n = 30
    exts = [f"F-{i:02}" for i in range(n)]
    h.upsert(*(person(e) for e in exts))
    h.em.set_faults(bulk_entity_error_rate=0.5)
    report = h.run()
    failed, created = report.counts["failed"], report.counts["created"]
    assert failed + created == n
    assert 0 < failed < n
    assert report.status == "partial"
    _no_single_writes(h, 0)
    links = h.links()
    rows = {r["external_id"]: r for r in h.ledger(op="create")}
    assert sorted(rows) == exts  # every entity its own ledger row
    for ext in exts:
        if links[ext]["state"] == "failed":
            assert (rows[ext]["outcome"], rows[ext]["http_status"]) == ("failed", 503)
            assert links[ext]["next_attempt_at"] is not None
            assert links[ext]["attempts"] == 1
        else:
            assert links[ext]["state"] == "synced"
            assert rows[ext]["outcome"] == "ok"
    assert h.changes() == []  # represented by the failed links
    h.em.set_faults(bulk_entity_error_rate=0.0)
    later = datetime.now(UTC) + timedelta(hours=2)
    start = len(h.em.request_log())
    report = h.run(clock=lambda: later)
    assert report.counts["created"] == failed
    if failed >= 2:
        _no_single_writes(h, start)
    assert {link["state"] for link in h.links().values()} == {"synced"}
    assert {e: len(v) for e, v in h.remote_by_ext().items()} == dict.fromkeys(exts, 1)
    assert _creates_per_ext(h) == dict.fromkeys(exts, 1)
    _every_write_has_a_ledger_row(h)


class _RejectOne:
    """syncd's client, except that the server answers one entity of a bulk create with a
    non-retryable 400 (as production does for content it refuses)."""

    def __init__(self, client: GenesysClient, bad: str) -> None:
        self._client, self._bad = client, bad

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def bulk_create(self, contacts: Sequence[Contact]) -> list[BulkItemResult]:
        keep = [c for c in contacts if c.external_id != self._bad]
        results = iter(await self._client.bulk_create(keep))
        out: list[BulkItemResult] = []
        for i, contact in enumerate(contacts):
            if contact.external_id == self._bad:
                error = ApiValidationError("firstName: not acceptable here", status=400)
                out.append(
                    BulkItemResult(i, self._bad, "failed", status=400, error=error, retryable=False)
                )
            else:
                out.append(replace(next(results), index=i))
        return out


def test_a_400_inside_a_batch_rejects_that_entity_only(h: Harness) -> None:
    h.wrap = lambda client: _RejectOne(client, "R-03")
    exts = [f"R-{i:02}" for i in range(6)]
    h.upsert(*(person(e) for e in exts))
    report = h.run()
    assert (report.counts["created"], report.counts["rejected"]) == (5, 1)
    [row] = h.ledger(op="create", external_id="R-03")
    assert (row["outcome"], row["http_status"]) == ("rejected", 400)
    assert "not acceptable" in row["error"]
    link = h.links()["R-03"]
    assert link["state"] == "failed"
    assert link["rejected_hash"] is not None
    assert "R-03" not in h.remote_by_ext()
    # Unchanged content waits, even after any backoff: nothing is sent.
    h.upsert(person("R-03"))
    start = len(h.em.request_log())
    h.run(clock=lambda: datetime.now(UTC) + timedelta(days=1))
    assert h.calls(start) == []
    h.wrap = None
    h.upsert(person("R-03", first="Fixed"))
    assert h.run().counts["created"] == 1
    assert len(h.remote_by_ext()["R-03"]) == 1


def test_unrepresentable_contact_is_rejected_locally_and_the_batch_goes_on(h: Harness) -> None:
    two_work = [
        {"number": "+1 415 555 0100", "type": "WORK"},
        {"number": "+1 415 555 0101", "type": "WORK"},
    ]
    h.upsert(*(person(f"U-{i}") for i in range(4)), person("U-X", phone_numbers=two_work))
    report = h.run()
    assert (report.counts["created"], report.counts["rejected"]) == (4, 1)
    [row] = h.ledger(op="reject")
    assert row["external_id"] == "U-X"
    assert "cannot be represented: two WORK phone numbers" in row["error"]
    assert h.ledger(op="create", external_id="U-X") == []  # no intent: nothing was sent
    assert "U-X" not in h.remote_by_ext()


def test_a_lost_batch_acknowledgement_creates_no_duplicates(h: Harness) -> None:
    exts = [f"L-{i:02}" for i in range(12)]
    h.upsert(*(person(e) for e in exts))
    h.em.set_faults(lost_ack_rate=1.0)
    report = h.run()
    assert report.counts["failed"] == 12
    assert report.counts["created"] == 0
    assert {link["state"] for link in h.links().values()} == {"pending_create"}
    assert [r["outcome"] for r in h.ledger(op="create")] == ["pending"] * 12
    assert _creates_per_ext(h) == dict.fromkeys(exts, 1)  # the server applied both batches
    assert h.calls().count(h.route("bulk_add")) == 2
    _no_single_writes(h, 0)
    h.em.set_faults(lost_ack_rate=0.0)
    h.upsert(person("L-00", first="Changed"))  # and the CRM moved on meanwhile
    report = h.run()
    assert report.status == "succeeded", report
    assert _creates_per_ext(h) == dict.fromkeys(exts, 1)  # resolved by lookup, not re-sent
    links = h.links()
    assert {link["state"] for link in links.values()} == {"synced"}
    for row in h.ledger(op="create"):
        assert row["outcome"] == "ok"
        assert row["genesys_id"] == links[row["external_id"]]["genesys_id"]
    assert {e: len(v) for e, v in h.remote_by_ext().items()} == dict.fromkeys(exts, 1)
    assert h.remote_by_ext()["L-00"][0]["firstName"] == "Changed"
    _every_write_has_a_ledger_row(h)


@pytest.mark.parametrize("step", ["after_intent", "after_write"])
@pytest.mark.parametrize("op", ["create", "update", "delete"])
def test_a_crash_around_the_batch_call_is_resolved_next_run(h: Harness, step: str, op: str) -> None:
    exts = [f"C-{i:02}" for i in range(25)]
    if op != "create":
        h.upsert(*(person(e) for e in exts), person("KEEP"))
        h.run()
        if op == "update":
            h.upsert(*(person(e, first="New") for e in exts))
        else:
            h.tombstone(*exts)
    else:
        h.upsert(*(person(e) for e in exts))
    start = len(h.em.request_log())
    with pytest.raises(CrashError):
        h.run(hooks=CrashAt(step, op=op))
    _no_single_writes(h, start)
    bulk = h.route({"create": "bulk_add", "update": "bulk_update", "delete": "bulk_remove"}[op])
    pending = [e for e, link in h.links().items() if link["state"].startswith("pending_")]
    if step == "after_write":  # the batch was applied; no outcome was committed
        assert bulk in h.calls(start)
    assert len(pending) >= BATCH  # the crashing batch at least: intents of every entity
    for ext in pending:  # intents committed for the whole batch, outcome not
        assert h.ledger(external_id=ext, op=op)[-1]["outcome"] == "pending"
    for _ in range(3):  # creates never sent: "not found" twice (absent_checks=2), then sent
        h.run()
    links = h.links()
    assert [r for r in h.ledger() if r["outcome"] == "pending"] == []
    assert {link["state"] for link in links.values()} == {"synced"}
    remote = h.remote_by_ext()
    if op == "delete":
        assert set(remote) == {"KEEP"}
        assert set(links) == {"KEEP"}
    else:
        assert {e: len(v) for e, v in remote.items() if e != "KEEP"} == dict.fromkeys(exts, 1)
        assert all(links[e]["genesys_id"] == remote[e][0]["id"] for e in exts)
    if op == "update":
        assert {remote[e][0]["firstName"] for e in exts} == {"New"}
    assert max(_creates_per_ext(h).values()) == 1
    _every_write_has_a_ledger_row(h)
