"""Full reconcile: listing streamed into the snapshot, drift, recreate, adoption, reports."""

from __future__ import annotations

import math

from tests.sync.conftest import Harness, person


def _calls(h: Harness, start: int) -> list[tuple[str, str]]:
    """Contact calls since ``start``, after checking that the run's client set itself up with
    exactly the profile's documented calls (externalcontacts: one source lookup per client)."""
    calls = h.calls(start)
    setup = h.setup_calls()
    assert calls[: len(setup)] == setup
    return calls[len(setup) :]


def test_full_reconcile_lists_every_page_and_writes_nothing_when_equal(h: Harness) -> None:
    n = 230
    h.upsert(*(person(f"F-{i:03}") for i in range(n)))
    h.run()
    start = len(h.em.request_log())
    report = h.run("full")
    assert report.status == "succeeded", report
    calls = _calls(h, start)
    assert calls == [h.route("list")] * math.ceil(n / 100)  # scan/page size 100
    assert report.counts["unchanged"] == n
    assert report.listed == n


def test_drift_is_repaired_and_the_ledger_keeps_the_old_remote_values(h: Harness) -> None:
    h.upsert(person("D-1"), person("D-2"))
    h.run()
    gid = h.links()["D-1"]["genesys_id"]
    h.hand_edit(gid, first_name="Mallory", email="mallory@evil.example")
    start = len(h.em.request_log())
    report = h.run("full")
    assert report.counts["updated"] == 1
    assert [c for c in _calls(h, start) if c[0] != "GET"] == [h.route("patch")]
    [row] = h.ledger(op="drift")
    assert row["outcome"] == "ok"
    assert row["fields"] == {
        "first_name": ["Mallory", "Ada"],
        "email": ["mallory@evil.example", "d-1@example.com"],
    }
    contact = h.remote_by_id()[gid]
    assert (contact["firstName"], contact["email"]) == ("Ada", "d-1@example.com")


def test_contact_deleted_by_hand_is_confirmed_with_a_get_then_recreated(h: Harness) -> None:
    h.upsert(person("X-1"), person("X-2"))
    h.run()
    gid = h.links()["X-1"]["genesys_id"]
    h.hand_delete(gid)
    start = len(h.em.request_log())
    report = h.run("full")
    assert report.counts["created"] == 1
    calls = _calls(h, start)
    get_one = h.route("get")
    post = h.route("create")
    assert calls.index(get_one) < calls.index(post)
    assert calls.count(post) == 1
    [row] = h.ledger(op="recreate")
    assert row["outcome"] == "ok"
    assert row["genesys_id"] != gid
    assert h.links()["X-1"]["genesys_id"] == row["genesys_id"]


def test_contact_moved_between_pages_is_not_recreated(h: Harness) -> None:
    """Missing from the listing but still there (pages shift): the GET finds it."""
    h.upsert(person("M-1"))
    h.run()
    gid = h.links()["M-1"]["genesys_id"]
    h.run("full")
    # Simulate a listing that skipped it: the diff sees it missing, the GET finds it.
    from syncd.store.snapshot import Snapshot

    original = Snapshot.add_page

    def skip(self: Snapshot, run_id: int, rows: list) -> None:  # type: ignore[type-arg]
        original(self, run_id, [r for r in rows if r.genesys_id != gid])

    Snapshot.add_page = skip  # type: ignore[method-assign]
    try:
        start = len(h.api_writes())
        report = h.run("full")
    finally:
        Snapshot.add_page = original  # type: ignore[method-assign]
    assert report.counts["unchanged"] == 1
    assert h.api_writes()[start:] == []
    assert h.ledger(op="recreate") == []


def test_existing_contacts_are_adopted_instead_of_duplicated(h: Harness) -> None:
    h.hand_create("A-1", first="Ada", last="Lovelace")  # equal content after normalization
    h.hand_create("A-2", first="Old", last="Name")
    h.upsert(person("A-1", email=None, phone_numbers=[]), person("A-2"))
    start = len(h.em.request_log())
    report = h.run("full")
    assert report.counts["adopted"] == 2
    assert report.counts["created"] == 0
    calls = _calls(h, start)
    assert h.route("create") not in calls
    assert calls.count(h.route("patch")) == 1
    assert {e: len(v) for e, v in h.remote_by_ext().items()} == {"A-1": 1, "A-2": 1}
    assert {link["origin"] for link in h.links().values()} == {"adopted"}
    assert [r["fields"] for r in h.ledger(op="update")] == [
        {
            "first_name": ["Old", "Ada"],
            "last_name": ["Name", "Lovelace"],
            "email": [None, "a-2@example.com"],
            "phone_numbers": [[], [{"number": "+14155550100", "type": "WORK"}]],
        }
    ]
    # An adopted contact is ours: a tombstone deletes it.
    h.tombstone("A-1")
    assert h.run().counts["deleted"] == 1


def test_orphans_are_reported_when_first_seen_or_changed_not_every_night(h: Harness) -> None:
    h.upsert(person("DUP-2"))
    h.hand_create("DUP-2")
    h.hand_create("DUP-2")
    orphan = h.hand_create("STRAY-1", first="Stray")
    h.run("full")
    first = h.ledger(op="orphan") + h.ledger(op="duplicate")
    assert len(first) == 3
    assert {"first_name": [None, "Stray"]}.items() <= h.ledger(op="orphan")[0]["fields"].items()
    report = h.run("full")
    assert report.counts["orphans"] == 1  # still counted by each run...
    assert report.counts["duplicates"] == 2
    assert h.ledger(op="orphan") + h.ledger(op="duplicate") == first  # ...logged once
    h.hand_edit(orphan, first_name="Changed")
    h.run("full")
    reports = h.ledger(op="orphan")
    assert [r["fields"]["first_name"] for r in reports] == [[None, "Stray"], [None, "Changed"]]


def test_duplicates_and_orphans_are_reported_and_left_untouched(h: Harness) -> None:
    h.upsert(person("DUP-1"), person("OK-1"))
    h.hand_create("DUP-1")
    h.hand_create("DUP-1")
    orphan = h.hand_create("NOT-IN-CRM")
    no_ext = h.hand_create("")
    before = h.remote_by_id()
    start = len(h.em.request_log())
    report = h.run("full")
    assert report.counts["created"] == 1  # OK-1 only
    assert report.counts["duplicates"] == 2
    assert report.counts["orphans"] == 2
    dups = h.ledger(op="duplicate")
    assert {r["external_id"] for r in dups} == {"DUP-1"}
    assert all(r["outcome"] == "reported" for r in dups)
    orphans = {r["genesys_id"]: r for r in h.ledger(op="orphan")}
    assert set(orphans) == {orphan, no_ext}
    after = h.remote_by_id()
    for gid, doc in before.items():
        assert after[gid] == doc
    writes = [c for c in _calls(h, start) if c[0] != "GET"]
    assert writes == [h.route("create")]
    assert "DUP-1" not in h.links()
    # A tombstone of an unlinked externalId never deletes anything (invariant 3).
    h.tombstone("DUP-1")
    h.run()
    h.run("full")
    assert len(h.remote_by_ext()["DUP-1"]) == 2


def test_linked_contact_with_a_hand_made_duplicate_keeps_its_link(h: Harness) -> None:
    h.upsert(person("L-1"))
    h.run()
    gid = h.links()["L-1"]["genesys_id"]
    extra = h.hand_create("L-1")
    report = h.run("full")
    assert report.counts["unchanged"] == 1
    [dup] = h.ledger(op="duplicate")
    assert dup["genesys_id"] == extra
    assert h.links()["L-1"]["genesys_id"] == gid
    assert len(h.remote_by_ext()["L-1"]) == 2


def test_full_reconcile_deletes_links_whose_mirror_row_is_gone(h: Harness) -> None:
    h.upsert(person("G-1"), person("G-2"))
    h.run()
    with h.db.write() as conn:  # an ETL job hard-deleted the row; the change log was lost
        conn.exec_driver_sql("DELETE FROM crm_contacts WHERE external_id = 'G-2'")
        conn.exec_driver_sql("DELETE FROM mirror_changes")
    assert h.run().counts["deleted"] == 0
    report = h.run("full")
    assert report.counts["deleted"] == 1
    assert set(h.remote_by_ext()) == {"G-1"}


def test_the_incremental_run_after_a_full_one_does_not_diff_its_changes_again(
    h: Harness,
) -> None:
    """A full reconcile settles every mirror row, so the change-log entries those rows showed
    are consumed with them; a change made after the full run read its row stays pending."""
    h.upsert(*(person(f"F-{i}") for i in range(6)))
    report = h.run("full")
    assert report.counts["created"] == 6
    assert h.changes() == []
    h.upsert(person("F-1", first="Changed"), person("F-2"))  # an edit and a no-op rewrite
    report = h.run("full")
    assert (report.counts["updated"], report.counts["unchanged"]) == (1, 5)
    assert h.changes() == []
    report = h.run()
    assert (report.counts["unchanged"], report.counts["updated"], report.api_calls) == (0, 0, 0)
