"""Organizations as records (issue 13): contacts reference an ExternalOrganization by its
Genesys id; syncd finds or creates each record once, renames it with one write, and never
churns whatever shape the read-back has.

In-process emulator in the externalcontacts profile with production's organization check
(``strict``: a contact may name only an existing record), the real client and engine.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from syncd.emulator.profiles.externalcontacts_organizations import organization_content
from syncd.store.db import Database
from tests.sync.conftest import (
    FAST_OPTIONS,
    Harness,
    cli_in,
    make_app,
    person,
    single_calls,
)

EC = "/api/v2/externalcontacts"


def _harness(db: Database, **variants: Any) -> Harness:
    h = Harness(db, make_app("externalcontacts"), options=replace(FAST_OPTIONS, batch_size=50))
    h.em.set_variants(organization_check="strict", **variants)
    return h


def _member(ext: str, org: str | None, name: str | None) -> dict[str, Any]:
    return person(ext, organization_id=org, organization_name=name)


def _records(h: Harness) -> list[dict[str, Any]]:
    return list(h.em.profile.organizations.all())


def _crm_id(h: Harness, record: dict[str, Any]) -> str | None:
    [source] = h.em.profile.sources.all()
    ids = [
        i["value"]
        for i in record.get("externalIds") or ()
        if i["externalSource"]["id"] == source["id"]
    ]
    return ids[0] if ids else None


def _record_of(h: Harness, crm_id: str) -> dict[str, Any]:
    [record] = [r for r in _records(h) if _crm_id(h, r) == crm_id]
    return record


def _reference(h: Harness, ext: str) -> str | None:
    gid = h.links()[ext]["genesys_id"]
    [doc] = [c for c in h.raw_remote() if c["id"] == gid]
    org = doc.get("externalOrganization")
    return org["id"] if org else None


def _by_hand(h: Harness, write: Any) -> Any:
    """A person's write to the organization records, straight into the emulator."""
    with h.em.lock:
        at = {"now": h.em.now_iso(), "at": h.em.clock.monotonic(), "lag": 0.0}
        return write(h.em.profile.organizations, **at)


def _writes(h: Harness, start: int = 0) -> list[tuple[str, str]]:
    return [
        (r["method"], r["route"].removeprefix(EC))
        for r in h.em.request_log()[start:]
        if r["method"] != "GET" and "/oauth" not in r["path"] and "lookup" not in r["route"]
    ]


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
@pytest.mark.parametrize("read", ["reference", "name"])
def test_each_organization_is_one_record_and_nothing_churns(
    db: Database, bulk: bool, read: str
) -> None:
    h = _harness(db, organization_read=read)
    if not bulk:
        h.wrap = single_calls
    h.upsert(
        *(_member(f"A-{n}", "ORG-A", "Analytical Engines") for n in range(4)),
        *(_member(f"B-{n}", "ORG-B", "Babbage & Co") for n in range(3)),
        _member("C-0", None, None),
    )
    report = h.run()
    assert report.status == "succeeded", report.error
    assert sorted((_crm_id(h, r), r["name"]) for r in _records(h)) == [
        ("ORG-A", "Analytical Engines"),
        ("ORG-B", "Babbage & Co"),
    ]
    for prefix, crm in (("A", "ORG-A"), ("B", "ORG-B")):
        record = _record_of(h, crm)
        members = [ext for ext in h.links() if ext.startswith(prefix)]
        assert {_reference(h, ext) for ext in members} == {record["id"]}
    assert _reference(h, "C-0") is None
    assert [r["external_id"] for r in h.ledger(op="org_create", outcome="ok")] == [
        "ORG-A",
        "ORG-B",
    ]
    # Whatever the read-back carries ({id, selfUri}, or the name too), nothing is written.
    before = len(h.em.request_log())
    for kind in ("full", "incremental", "full"):
        again = h.run(kind)
        assert again.status == "succeeded", again.error
        assert again.counts["updated"] == 0
    assert _writes(h, before) == []
    assert len(_records(h)) == 2


def test_a_rename_in_the_crm_is_one_write_to_the_record(db: Database) -> None:
    h = _harness(db)
    h.upsert(*(_member(f"A-{n}", "ORG-A", "Analytical Engines") for n in range(12)))
    assert h.run().status == "succeeded"
    record = _record_of(h, "ORG-A")
    # Someone fills in the industry in Genesys: a field of the record syncd does not own.
    _by_hand(
        h,
        lambda orgs, **at: orgs.replace(
            record, {**organization_content(record), "industry": "Computing"}, **at
        ),
    )
    h.upsert(*(_member(f"A-{n}", "ORG-A", "Analytical Engines Ltd") for n in range(12)))
    before = len(h.em.request_log())
    report = h.run()
    assert report.status == "succeeded", report.error
    assert _writes(h, before) == [("PUT", "/organizations/{externalOrganizationId}")]
    assert report.counts["updated"] == 0
    renamed = _record_of(h, "ORG-A")
    assert renamed["name"] == "Analytical Engines Ltd"
    assert renamed["industry"] == "Computing"  # the PUT sent the record back whole
    [row] = h.ledger(op="org_rename")
    assert (row["outcome"], row["external_id"], row["genesys_id"]) == ("ok", "ORG-A", record["id"])
    assert row["fields"] == {"name": ["Analytical Engines", "Analytical Engines Ltd"]}
    before = len(h.em.request_log())
    assert h.run("full").status == "succeeded"
    assert _writes(h, before) == []


def test_syncd_contact_shows_the_organization_record(db: Database, tmp_path: Path) -> None:
    h = _harness(db)
    h.upsert(_member("A-1", "ORG-A", "Analytical Engines"))
    assert h.run().status == "succeeded"
    record = _record_of(h, "ORG-A")
    shown = cli_in(db, tmp_path, "contact", "A-1", "--format", "json", profile="externalcontacts")
    assert shown.exit_code == 0, shown.output
    org = json.loads(shown.output)["organization"]
    assert (org["organization_id"], org["genesys_id"]) == ("ORG-A", record["id"])
    assert (org["name"], org["state"], org["origin"]) == ("Analytical Engines", "synced", "created")
    # The organization's own id: its link and its ledger (the record's create).
    shown = cli_in(db, tmp_path, "contact", "ORG-A", "--format", "json", profile="externalcontacts")
    report = json.loads(shown.output)
    assert report["organization"]["genesys_id"] == record["id"]
    assert [(r["op"], r["outcome"]) for r in report["ledger"]] == [("org_create", "ok")]
    text = cli_in(db, tmp_path, "contact", "A-1", profile="externalcontacts").output
    assert "Organization record (Genesys side)" in text


def test_an_existing_record_is_linked_not_duplicated(db: Database) -> None:
    h = _harness(db)
    h.upsert(person("X-0"))
    assert h.run().status == "succeeded"  # creates syncd's external source
    [source] = h.em.profile.sources.all()
    ours = [{"externalSource": {"id": source["id"]}, "value": "ORG-E"}]
    theirs = _by_hand(
        h,
        lambda orgs, **at: orgs.create(
            {"name": "Old Name", "externalIds": ours}, home=h.em.profile.divisions.home, **at
        ),
    )["id"]
    h.upsert(_member("E-1", "ORG-E", "Existing Inc"), _member("E-2", "ORG-E", "Existing Inc"))
    assert h.run().status == "succeeded"
    assert [r["id"] for r in _records(h)] == [theirs]
    assert {_reference(h, "E-1"), _reference(h, "E-2")} == {theirs}
    assert [r["outcome"] for r in h.ledger(op="org_link")] == ["ok"]
    assert [r["outcome"] for r in h.ledger(op="org_rename")] == ["ok"]
    assert _records(h)[0]["name"] == "Existing Inc"
    assert h.ledger(op="org_create") == []


def test_a_lost_create_answer_is_looked_up_never_sent_again(db: Database) -> None:
    h = _harness(db)
    h.upsert(person("X-0"))
    assert h.run().status == "succeeded"
    h.upsert(_member("L-1", "ORG-L", "Lost Answers"), _member("L-2", "ORG-L", "Lost Answers"))
    h.em.set_faults(lost_ack_rate=1.0)
    report = h.run()
    h.em.set_faults(lost_ack_rate=0.0)
    assert report.status == "partial"  # the contacts wait for their organization
    assert len(_records(h)) == 1  # applied, but syncd does not know it yet
    [intent] = h.ledger(op="org_create")
    assert intent["outcome"] == "pending"
    link = h.links()["L-1"]
    assert link["state"] == "failed"
    assert "organization 'ORG-L' has no Genesys record yet" in link["last_error"]
    report = h.run("targeted", external_ids=("L-1", "L-2"))
    assert report.status == "succeeded", report.error
    [record] = _records(h)  # found by the lookup: one record, never a second create
    assert {_reference(h, "L-1"), _reference(h, "L-2")} == {record["id"]}
    [row] = [r for r in h.ledger() if r["op"].startswith("org_")]  # the intent, settled
    assert (row["op"], row["outcome"], row["genesys_id"]) == ("org_create", "ok", record["id"])
    assert "confirmed later" in row["error"]
    creates = [
        w
        for w in h.em.request_log()
        if w["method"] == "POST" and w["route"] == f"{EC}/organizations"
    ]
    assert len(creates) == 1


def test_a_name_without_an_organization_id_is_rejected_with_the_reason(db: Database) -> None:
    h = _harness(db)
    h.upsert(_member("N-1", None, "Nameless Org"))
    report = h.run()
    assert report.counts["rejected"] == 1
    [row] = h.ledger(external_id="N-1", op="reject")
    assert "without an organizationId" in row["error"]
    assert _records(h) == []


def test_a_dry_run_creates_no_record(db: Database) -> None:
    h = _harness(db)
    h.upsert(_member("D-1", "ORG-D", "Dry Run"))
    report = h.run(dry_run=True)
    assert report.status == "succeeded", report.error
    assert _records(h) == []
    assert h.ledger() == []


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_a_record_deleted_in_genesys_blocks_its_contacts_then_is_made_again(
    db: Database, bulk: bool
) -> None:
    """Genesys refuses a contact naming a deleted record with a 400 that is not about the
    contact's content: the row backs off (shown ``blocked``), it is not rejected; the link
    to the record is dropped, so the next run creates the organization again."""
    h = _harness(db)
    if not bulk:
        h.wrap = single_calls
    h.upsert(_member("K-1", "ORG-K", "Kept Ltd"))
    assert h.run().status == "succeeded"
    gone = _record_of(h, "ORG-K")
    _by_hand(h, lambda orgs, **at: orgs.delete(gone["id"], at=at["at"], lag=0.0))
    h.upsert(_member("K-2", "ORG-K", "Kept Ltd"))
    report = h.run()
    assert report.status == "partial"
    assert report.counts["rejected"] == 0
    assert "1 row(s) wait for a fix in Genesys" in (report.error or "")  # `syncd runs` shows it
    link = h.links()["K-2"]
    assert (link["state"], link["rejected_hash"]) == ("failed", None)
    assert "[fix in Genesys: the organization record]" in link["last_error"]
    [failed] = h.ledger(external_id="K-2", op="create")
    assert (failed["outcome"], failed["http_status"]) == ("failed", 400)
    report = h.run("targeted", external_ids=("K-2",))
    assert report.status == "succeeded", report.error
    again = _record_of(h, "ORG-K")
    assert again["id"] != gone["id"]
    assert _reference(h, "K-2") == again["id"]
    assert [r["outcome"] for r in h.ledger(op="org_create")] == ["ok", "ok"]
    # K-1 still names the deleted record: the next full run reads that as another
    # organization than ORG-K's and repairs the reference.
    assert _reference(h, "K-1") == gone["id"]
    assert h.run("full").status == "succeeded"
    assert _reference(h, "K-1") == again["id"]


def test_an_organization_id_longer_than_genesys_stores_is_rejected(db: Database) -> None:
    h = _harness(db)
    h.upsert(_member("L-1", "O" * 256, "Long Id Inc"))
    report = h.run()
    assert report.counts["rejected"] == 1
    [row] = h.ledger(external_id="L-1", op="reject")
    assert "organizationId is 256 characters; Genesys stores at most 255" in row["error"]
    assert _records(h) == []
