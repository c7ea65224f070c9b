"""Incremental runs: the change log is the only input, consumed by id; rows fail on their own."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from syncd.store.schema import crm_contacts, mirror_changes
from tests.sync.conftest import Harness, person


def _listing_calls(h: Harness) -> list[tuple[str, str]]:
    return [c for c in h.calls() if c in (h.route("list"), h.route("lookup"))]


def test_incremental_reads_only_the_change_log(h: Harness) -> None:
    h.upsert(*(person(f"C-{i:02}") for i in range(20)))
    assert h.run().counts["created"] == 20
    h.upsert(person("C-03", last="Byron"), person("C-20"))
    before = len(h.em.request_log())
    report = h.run()
    assert (report.counts["updated"], report.counts["created"]) == (1, 1)
    calls = h.calls(before)
    setup = h.setup_calls()
    assert calls[: len(setup)] == setup
    assert sorted(calls[len(setup) :]) == sorted([h.route("patch"), h.route("create")])
    assert _listing_calls(h) == []
    # Nothing changed: zero calls of any kind (not even a token).
    before = len(h.em.request_log())
    report = h.run()
    assert report.status == "succeeded"
    assert h.em.request_log()[before:] == []
    assert report.api_calls == 0


def test_an_update_that_changes_no_synced_column_costs_nothing(h: Harness) -> None:
    h.upsert(person("N-1"))
    h.run()
    with h.db.write() as conn:  # reformatting only: the trigger logs it, the diff ignores it
        conn.execute(
            sa.update(crm_contacts)
            .where(crm_contacts.c.external_id == "N-1")
            .values(email="  N-1@EXAMPLE.com ", phone_numbers=[{"number": "(415) 555-0100"}])
        )
    assert len(h.changes()) == 1
    before = len(h.api_writes())
    report = h.run()
    assert report.counts["unchanged"] == 1
    assert h.api_writes()[before:] == []
    assert h.changes() == []


def test_changes_committed_out_of_order_are_not_missed(h: Harness) -> None:
    """A writer that took a lower id but committed later is still seen: no watermark."""
    h.upsert(person("O-1"))
    h.run()
    h.upsert(person("O-2"))
    [late] = h.changes()
    # O-3 is committed first with a *higher* id; the run consumes it.
    h.upsert(person("O-3"))
    with h.db.write() as conn:  # hide O-2's change as if its transaction had not committed
        conn.execute(sa.delete(mirror_changes).where(mirror_changes.c.id == late["id"]))
    h.run()
    assert set(h.remote_by_ext()) == {"O-1", "O-3"}
    with h.db.write() as conn:  # ... now it commits, with its old, lower id
        conn.execute(sa.insert(mirror_changes).values(id=late["id"], external_id="O-2", op="I"))
    h.run()
    assert set(h.remote_by_ext()) == {"O-1", "O-2", "O-3"}
    assert h.changes() == []


@pytest.mark.postgres
def test_concurrent_writers_committing_out_of_order_on_postgres(h: Harness) -> None:
    if h.db.dialect != "postgresql":
        pytest.skip("real concurrent writers need PostgreSQL (SQLite has one writer)")
    slow = h.db.engine.connect()
    tx = slow.begin()
    slow.execute(sa.insert(crm_contacts).values(**person("P-1")))  # takes the lower id
    h.upsert(person("P-2"))  # higher id, committed first
    h.run()
    assert set(h.remote_by_ext()) == {"P-2"}
    tx.commit()
    slow.close()
    h.run()
    assert set(h.remote_by_ext()) == {"P-1", "P-2"}


def test_transient_failure_backs_off_per_row_and_never_stops_the_run(h: Harness) -> None:
    h.upsert(person("T-1"), person("T-2"))
    h.run()
    h.upsert(person("T-1", first="Changed"), person("T-2", first="Changed"), person("T-3"))
    h.em.set_faults(write_error_rate=1.0, error_statuses=[503])
    report = h.run()
    assert report.status == "partial"
    assert report.counts["failed"] == 3
    assert report.exit_code == 1
    links = h.links()
    assert {links[e]["state"] for e in ("T-1", "T-2", "T-3")} == {"failed"}
    assert all(links[e]["next_attempt_at"] is not None for e in ("T-1", "T-2", "T-3"))
    assert h.changes() == []  # represented by the failed links now
    h.em.set_faults(write_error_rate=0.0)
    report = h.run()  # not due yet: nothing is sent
    assert report.counts["failed"] == 0
    assert report.counts["updated"] == 0
    later = datetime.now(UTC) + timedelta(hours=2)
    report = h.run(clock=lambda: later)
    assert (report.counts["updated"], report.counts["created"]) == (2, 1)
    assert {h.links()[e]["state"] for e in ("T-1", "T-2", "T-3")} == {"synced"}


def test_a_login_outage_fails_the_run_at_once_with_few_token_requests(h: Harness) -> None:
    """Chaos suite (a total outage met by a fresh run at its first request): every row went
    on to fail on its own, each after a full round of token requests, so a login service
    that was down got hammered for minutes and every row was put into backoff. No token,
    no call: the run now fails at once with the reason, and the rows not started keep
    their change rows for the next run."""
    h.upsert(*(person(f"T-{i:02}") for i in range(30)))
    h.em.set_faults(outage=True)
    report = h.run()
    assert report.status == "failed", report
    assert report.error is not None
    assert "login service" in report.error
    tokens = [r for r in h.em.request_log() if "/oauth" in r["path"]]
    assert len(tokens) == 3  # one fetch: its three attempts (the test client's policy)
    failed = [link for link in h.links().values() if link["state"] == "failed"]
    assert len(failed) <= h.options.max_in_flight  # only the rows already in flight
    h.em.set_faults(outage=False)
    later = datetime.now(UTC) + timedelta(hours=2)  # past the rows' backoff
    for _ in range(3):  # (intents left pending are resolved after absent_checks runs)
        h.run(clock=lambda: later)
    assert {e: len(c) for e, c in h.remote_by_ext().items()} == {f"T-{i:02}": 1 for i in range(30)}


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"last_name": None}, "lastName: missing"),
        ({"first_name": "   "}, "firstName: missing"),
        ({"email": "not an email"}, "email:"),
        ({"phone_numbers": [{"number": "12", "type": "WORK"}]}, "phoneNumbers:"),
        ({"phone_numbers": [{"number": "+14155550100", "type": "PAGER"}]}, "type 'PAGER'"),
        ({"last_name": "x" * 1001}, "longer than 1000"),
        ({"first_name": "bell\x07"}, "control characters"),
    ],
)
def test_bad_rows_are_rejected_locally_with_a_ledger_row_and_no_call(
    h: Harness, overrides: dict[str, object], reason: str
) -> None:
    h.upsert(person("B-1", **overrides), person("G-1"))
    report = h.run()
    assert report.counts["rejected"] == 1
    assert report.counts["created"] == 1
    assert report.status == "partial"
    assert set(h.remote_by_ext()) == {"G-1"}
    [row] = h.ledger(op="reject")
    assert row["external_id"] == "B-1"
    assert row["outcome"] == "rejected"
    assert reason in row["error"]
    # Touched again without a real change: still rejected, no new ledger row, no call.
    with h.db.write() as conn:
        conn.execute(
            sa.update(crm_contacts)
            .where(crm_contacts.c.external_id == "B-1")
            .values(organization_name="Acme")
        )
        conn.execute(
            sa.update(crm_contacts)
            .where(crm_contacts.c.external_id == "B-1")
            .values(organization_name=None)
        )
    before = len(h.em.request_log())
    report = h.run()
    assert report.counts["rejected"] == 0
    assert len(h.ledger(op="reject")) == 1
    assert h.em.request_log()[before:] == []
    h.upsert(person("B-1"))  # fixed in the CRM
    assert h.run().counts["created"] == 1
    assert "B-1" in h.remote_by_ext()


def test_unparseable_phone_json_written_by_etl_rejects_one_row(h: Harness) -> None:
    with h.db.write() as conn:
        conn.exec_driver_sql(
            "INSERT INTO crm_contacts (external_id, first_name, last_name, phone_numbers, deleted)"
            " VALUES ('J-1', 'A', 'B', '[{\"number\": 5}]', false)"
        )
    h.upsert(person("J-2"))
    report = h.run()
    assert (report.counts["rejected"], report.counts["created"]) == (1, 1)
    assert "phoneNumbers" in h.ledger(op="reject")[0]["error"]


def test_a_400_waits_until_the_content_changes(h: Harness) -> None:
    """Content the API refuses: the reference answers 400 to 21 phone numbers; the
    externalcontacts profile cannot even express two OTHER numbers (one otherPhone slot), so
    the engine rejects it before any call (``representation_problem``), with a ledger row."""
    phones = [{"number": f"+1415555{i:04}", "type": "OTHER"} for i in range(21)]
    h.upsert(person("V-1", phone_numbers=phones))
    before = len(h.em.request_log())
    report = h.run()
    assert report.counts["rejected"] == 1
    if h.profile == "reference":
        [row] = h.ledger(op="create")
        assert (row["outcome"], row["http_status"]) == ("rejected", 400)
        assert "phoneNumbers" in row["error"]
    else:
        assert h.ledger(op="create") == []
        [row] = h.ledger(op="reject")
        assert row["outcome"] == "rejected"
        assert "cannot be represented: two OTHER phone numbers" in row["error"]
        assert h.em.request_log()[before:] == []  # nothing sent, not even a token
    assert h.links()["V-1"]["rejected_hash"] is not None
    # Re-run and a content-free touch: nothing is sent.
    with h.db.write() as conn:
        conn.execute(
            sa.update(crm_contacts).where(crm_contacts.c.external_id == "V-1").values(deleted=True)
        )
        conn.execute(
            sa.update(crm_contacts).where(crm_contacts.c.external_id == "V-1").values(deleted=False)
        )
    posts = len(h.api_writes())
    h.run()
    h.run(clock=lambda: datetime.now(UTC) + timedelta(days=1))
    assert len(h.api_writes()) == posts
    fixed = phones[:3] if h.profile == "reference" else phones[:1]
    h.upsert(person("V-1", phone_numbers=fixed))
    assert h.run().counts["created"] == 1


def test_stop_leaves_the_rest_pending_and_the_run_interrupted(h: Harness) -> None:
    h.upsert(*(person(f"S-{i:02}") for i in range(30)))
    stop = threading.Event()

    class StopAfterFirst:
        def after_intent(self, external_id: str, op: str) -> None:
            stop.set()

        def after_write(self, external_id: str, op: str) -> None:
            pass

    report = h.run(hooks=StopAfterFirst(), stop=stop)  # type: ignore[arg-type]
    assert report.status == "interrupted"
    done = report.counts["created"]
    assert 1 <= done < 30
    assert len(h.changes()) == 30 - done
    assert all(link["state"] == "synced" for link in h.links().values())  # in flight finished
    report = h.run()
    assert report.counts["created"] == 30 - done
    assert len(h.remote_by_ext()) == 30


def test_patch_of_a_contact_deleted_by_hand_recreates_it(h: Harness) -> None:
    h.upsert(person("R-1"))
    h.run()
    gid = h.links()["R-1"]["genesys_id"]
    h.hand_delete(gid)
    h.upsert(person("R-1", first="Again"))
    report = h.run()
    assert report.counts["created"] == 1
    [upd] = h.ledger(op="update")
    assert (upd["outcome"], upd["http_status"]) == ("failed", 404)
    [rec] = h.ledger(op="recreate")
    assert rec["outcome"] == "ok"
    assert rec["genesys_id"] != gid
    [contact] = h.remote_by_ext()["R-1"]
    assert contact["firstName"] == "Again"
    assert h.links()["R-1"]["genesys_id"] == contact["id"]


def test_targeted_run_syncs_only_the_given_ids(h: Harness) -> None:
    h.upsert(person("K-1"), person("K-2"))
    h.hand_create("K-1", first="Ada", last="Lovelace")  # exists already: adopted
    report = h.run("targeted", external_ids=("K-1",))
    assert report.counts["adopted"] == 1
    assert set(h.remote_by_ext()) == {"K-1"}
    assert len(h.changes()) == 2  # a targeted run does not consume the change log
    gid = h.links()["K-1"]["genesys_id"]
    h.hand_delete(gid)
    report = h.run("targeted", external_ids=("K-1", "K-2"))
    assert report.counts["created"] == 2
    assert h.ledger(op="recreate")[0]["outcome"] == "ok"


def test_a_restored_row_adopts_the_contact_the_last_listing_reported_as_an_orphan(
    h: Harness,
) -> None:
    """Chaos (seed 2085356144): a contact pre-existing in Genesys whose CRM row was
    tombstoned during the first full reconcile was reported as an orphan; when the CRM
    restored the row, the next incremental run created a second contact with the same
    externalId. The incremental run now looks up externalIds the last listing saw on an
    unlinked contact, and adopts."""
    from syncd.model import Contact

    h.upsert(person("R-1"), person("R-2"))
    h.tombstone("R-2")
    [gid] = h.seed_remote(Contact(external_id="R-2", first_name="Pre", last_name="Existing"))
    report = h.run("full")
    assert [e["genesys_id"] for e in h.ledger(op="orphan")] == [gid]
    h.upsert(person("R-2", last="Restored"))
    h.upsert(person("R-3"))  # an externalId the listing never saw costs no lookup
    before = len(h.em.request_log())
    report = h.run()
    assert (report.counts["adopted"], report.counts["created"]) == (1, 1)
    [found] = h.remote_by_ext()["R-2"]
    assert found["id"] == gid
    assert found["lastName"] == "Restored"
    assert h.links()["R-2"]["genesys_id"] == gid
    searches = [c for c in h.calls(before) if c == h.route("lookup")]
    assert len(searches) == 1


def test_a_row_deleted_and_restored_in_one_run_is_created_not_adopted_from_stale_search(
    h: Harness,
) -> None:
    """Chaos full size (seed 204429921): the CRM tombstoned a row and restored it while one
    incremental run went through the change log. The run deleted the contact, then looked
    the restored externalId up (the last listing had seen it) and search, lagging, still
    found the deleted contact: adopted, PATCHed (404), re-created. Search hits are now
    confirmed with a GET before they are adopted."""
    h.upsert(person("D-1"), person("D-2"))
    h.run()
    h.run("full")  # the listing sees D-1's contact (linked)
    [gid] = [c["id"] for c in h.remote_by_ext()["D-1"]]
    h.em.set_faults(search_lag_ms=60_000)
    h.tombstone("D-1")
    h.run()  # deleted in Genesys; search still shows it for a minute
    assert "D-1" not in h.remote_by_ext()
    h.upsert(person("D-1", first="Back"))
    report = h.run()
    assert (report.counts["created"], report.counts["adopted"]) == (1, 0), report
    assert [r["op"] for r in h.ledger(external_id="D-1")][-1] == "create"
    assert h.ledger(op="adopt") == []
    [contact] = h.remote_by_ext()["D-1"]
    assert contact["id"] != gid
    assert contact["firstName"] == "Back"
