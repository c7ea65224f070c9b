"""A contact Genesys merged is followed to the survivor and re-linked, never re-created (issue 13).

Genesys merges contacts into a new one; the merged-away ids answer a PATCH with 404 and a
GET per the emulator's ``merged_contact_get`` variant (the survivor itself, the merged-away
record with ``mergedTo``, or 404: unconfirmed for production, so every test runs under each).
The survivor carries the union of the ExternalIds, ours among them. syncd must move its link
to the survivor (ledger op ``relink``) and bring it up to date: a re-create would make a
second contact claiming the externalId. A contact deleted by hand is still re-created.
In-process emulator in the externalcontacts profile, real client, single and bulk writes.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from syncd.store.db import Database
from tests.sync.conftest import FAST_OPTIONS, Harness, creates, make_app, person

VARIANTS = ("canonical", "unresolved", "not_found")


def _harness(db: Database, variant: str, *, bulk: bool = False) -> Harness:
    h = Harness(db, make_app("externalcontacts"), options=replace(FAST_OPTIONS, batch_size=50))
    h.em.set_variants(merged_contact_get=variant)
    if bulk:
        h.client_overrides = {"bulk_batch_size": 10}
    return h


def _merged_by_hand(h: Harness, ext: str) -> tuple[str, str]:
    """Merge ``ext``'s contact with a hand-made one, as an agent would in Genesys: returns
    ``(merged-away id, survivor id)``."""
    h.run()
    old = h.links()[ext]["genesys_id"]
    with h.em.lock:  # a walk-in contact Genesys made, claimed by no CRM row
        walk_in, _ = h.em.profile.writer.create({"firstName": "Walk", "lastName": "In"})
    survivor = h.em.profile.writer.merge([old, walk_in["id"]])["id"]
    assert [c["id"] for c in h.remote_by_ext()[ext]] == [survivor]
    return old, survivor


def _relinked(h: Harness, ext: str, old: str, survivor: str) -> dict[str, object]:
    # the emulator logs the merge's new contact as a create: any other is syncd's re-create
    assert {w["id"] for w in creates(h, ext)} == {old, survivor}, "a merged contact was re-created"
    assert [c["id"] for c in h.remote_by_ext()[ext]] == [survivor]
    link = h.links()[ext]
    assert link["genesys_id"] == survivor
    assert link["state"] == "synced"
    [row] = h.ledger(external_id=ext, op="relink")
    assert row["outcome"] == "ok"
    assert row["genesys_id"] == survivor
    assert f"{old} was merged into this one" in row["error"]
    return link


@pytest.mark.parametrize("variant", VARIANTS)
def test_an_update_of_a_merged_contact_relinks_and_updates_the_survivor(
    db: Database, variant: str
) -> None:
    h = _harness(db, variant)  # one row: a single PATCH (bulk needs two)
    h.upsert(person("M-1", email="old@example.com"))
    old, survivor = _merged_by_hand(h, "M-1")
    h.upsert(person("M-1", email="new@example.com"))
    report = h.run()
    assert report.status == "succeeded", report
    _relinked(h, "M-1", old, survivor)
    assert h.remote_by_id()[survivor]["email"] == "new@example.com"
    # Settled: the next runs send nothing.
    start = len(h.em.write_log())
    assert h.run("full").status == "succeeded"
    assert h.em.write_log()[start:] == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_targeted_run_follows_the_merge(db: Database, variant: str) -> None:
    h = _harness(db, variant)
    h.upsert(person("M-2"))
    old, survivor = _merged_by_hand(h, "M-2")
    report = h.run("targeted", external_ids=("M-2",))
    assert report.status == "succeeded", report
    _relinked(h, "M-2", old, survivor)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_full_run_relinks_to_the_survivor_it_lists(db: Database, variant: str) -> None:
    h = _harness(db, variant)
    h.upsert(person("M-3"))
    old, survivor = _merged_by_hand(h, "M-3")
    report = h.run("full")
    assert report.status == "succeeded", report
    assert {w["id"] for w in creates(h, "M-3")} == {old, survivor}
    assert h.links()["M-3"]["genesys_id"] == survivor
    [row] = h.ledger(external_id="M-3", op="relink")
    assert row["outcome"] == "ok"
    assert f"the linked contact {old} " in row["error"]


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_dry_run_plans_the_relink_and_changes_nothing(db: Database, variant: str) -> None:
    h = _harness(db, variant)
    h.upsert(person("M-4", email="old@example.com"))
    old, survivor = _merged_by_hand(h, "M-4")
    h.upsert(person("M-4", email="new@example.com"))
    before = (len(h.em.write_log()), h.links()["M-4"])
    h.run("full", dry_run=True)  # an incremental dry run sends nothing, so sees no merge
    [entry] = h.plan
    assert (entry.op, entry.genesys_id) == ("relink", survivor)
    assert entry.fields is not None
    assert entry.fields["email"][1] == "new@example.com"
    assert (len(h.em.write_log()), h.links()["M-4"]) == before
    assert h.links()["M-4"]["genesys_id"] == old


def test_a_contact_deleted_by_hand_is_still_recreated(db: Database) -> None:
    h = _harness(db, "not_found")
    h.upsert(person("D-1", email="old@example.com"))
    h.run()
    old = h.links()["D-1"]["genesys_id"]
    h.hand_delete(old)
    h.upsert(person("D-1", email="new@example.com"))
    start = len(h.em.request_log())
    assert h.run().status == "succeeded"
    assert len(creates(h, "D-1")) == 2
    assert h.ledger(external_id="D-1", op="relink") == []
    assert [r["outcome"] for r in h.ledger(external_id="D-1", op="recreate")] == ["ok"]
    assert h.calls(start).count(h.route("unresolved")) == 1  # one read tells it from a merge


@pytest.mark.parametrize("variant", VARIANTS)
def test_two_crm_rows_merged_into_one_contact_are_not_both_relinked(
    db: Database, variant: str
) -> None:
    """Genesys merged the contacts of two CRM rows: the survivor follows one of them; the
    other row fails, saying why, instead of a re-create or a contact rewritten by turns."""
    h = _harness(db, variant)
    h.upsert(person("P-1", email="p1@example.com"), person("P-2", email="p2@example.com"))
    h.run()
    old = {ext: h.links()[ext]["genesys_id"] for ext in ("P-1", "P-2")}
    survivor = h.em.profile.writer.merge(list(old.values()))["id"]
    h.upsert(person("P-1", email="p1@new.example.com"), person("P-2", email="p2@new.example.com"))
    report = h.run()
    assert report.status == "partial", report
    links = h.links()
    relinked = [ext for ext in old if links[ext]["genesys_id"] == survivor]
    assert len(relinked) == 1
    [other] = [ext for ext in old if ext not in relinked]
    assert links[other]["state"] == "failed"
    assert f"linked to externalId {relinked[0]!r}" in links[other]["last_error"]
    assert {w["id"] for e in old for w in creates(h, e)} == {*old.values(), survivor}
    start = len(h.em.write_log())
    h.run()  # the failed row backs off: nothing is written by turns
    assert h.em.write_log()[start:] == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_bulk_update_of_merged_contacts_relinks_each(db: Database, variant: str) -> None:
    h = _harness(db, variant, bulk=True)
    exts = ("B-1", "B-2", "B-3")
    h.upsert(*(person(ext, email=f"{ext.lower()}@old.example.com") for ext in exts))
    h.run()
    merged = {}
    for ext in exts:
        old = h.links()[ext]["genesys_id"]
        with h.em.lock:
            walk_in, _ = h.em.profile.writer.create({"firstName": "Walk", "lastName": "In"})
        merged[ext] = (old, h.em.profile.writer.merge([old, walk_in["id"]])["id"])
    h.upsert(*(person(ext, email=f"{ext.lower()}@new.example.com") for ext in exts))
    start = len(h.em.request_log())
    report = h.run()
    assert report.status == "succeeded", report
    assert h.route("bulk_read") in h.calls(start)  # the batch went the bulk way
    for ext, (old, survivor) in merged.items():
        _relinked(h, ext, old, survivor)
        assert h.remote_by_id()[survivor]["email"] == f"{ext.lower()}@new.example.com"
