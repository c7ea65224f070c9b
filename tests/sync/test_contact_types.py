"""Contacts Genesys makes itself are nobody's orphans (issue 13).

Identity resolution (web messaging, journeys) makes Ephemeral and Identified contacts that
expire; a CRM sync owns Curated ones. A full reconcile must not report the others as orphans
(they would flood the report and the ledger), nor adopt them; a contact of any type that
claims one of syncd's externalIds is still syncd's. In-process emulator, real client.
"""

from __future__ import annotations

from dataclasses import replace

from syncd.store.db import Database
from tests.sync.conftest import FAST_OPTIONS, Harness, creates, make_app, person


def _made_by_genesys(h: Harness, contact_type: str, first: str, **content: object) -> str:
    with h.em.lock:
        doc, _ = h.em.profile.writer.create(
            {"firstName": first, "lastName": "Visitor", **content}, contact_type=contact_type
        )
    return str(doc["id"])


def _harness(db: Database) -> Harness:
    return Harness(db, make_app("externalcontacts"), options=replace(FAST_OPTIONS, batch_size=50))


def test_a_full_run_reports_only_curated_orphans(db: Database) -> None:
    h = _harness(db)
    h.upsert(person("C-1"))
    ephemeral = [_made_by_genesys(h, "Ephemeral", f"Web{i}") for i in range(3)]
    identified = _made_by_genesys(h, "Identified", "Journey")
    curated = _made_by_genesys(h, "Curated", "Walk")
    report = h.run("full")
    assert report.status == "succeeded", report
    orphans = [r["genesys_id"] for r in h.ledger(op="orphan")]
    assert orphans == [curated]
    assert not {r["genesys_id"] for r in h.ledger()} & {*ephemeral, identified}
    assert set(h.remote_by_id()) >= {*ephemeral, identified}  # left alone, never deleted
    assert h.links()["C-1"]["state"] == "synced"


def test_a_genesys_made_contact_is_not_adopted_by_name(db: Database) -> None:
    """An Ephemeral contact that looks like a CRM row but claims no externalId is not it."""
    h = _harness(db)
    _made_by_genesys(h, "Ephemeral", "Ada", email="ada@example.com")
    h.upsert(person("C-2", email="ada@example.com"))
    assert h.run("full").status == "succeeded"
    assert len(creates(h, "C-2")) == 1
    assert h.ledger(op="adopt") == []


def test_a_contact_of_any_type_claiming_our_externalid_is_still_ours(db: Database) -> None:
    h = _harness(db)
    h.upsert(person("C-3"))
    h.run()
    gid = h.links()["C-3"]["genesys_id"]
    with h.em.lock:  # as if Genesys re-typed it: it still carries syncd's ExternalId
        h.em.get(gid)["type"] = "Identified"
    assert [c["type"] for c in h.raw_remote() if c["id"] == gid] == ["Identified"]
    assert h.run("full").status == "succeeded"
    assert h.links()["C-3"]["genesys_id"] == gid
    assert len(creates(h, "C-3")) == 1
    assert h.ledger(op="recreate") == []
