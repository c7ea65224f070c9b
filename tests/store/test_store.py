"""Manual requests (`sync_requests`) and daemon status rows (`daemon_status`), on both backends."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from syncd.errors import DatabaseError
from syncd.store import leases, requests, status
from syncd.store.db import Database


def test_request_lifecycle(db: Database) -> None:
    rid = requests.create(db, "targeted", external_ids=["a", "b"], requested_by="me@host")
    req = requests.get(db, rid)
    assert req is not None
    assert (req.status, req.kind, req.external_ids) == ("pending", "targeted", ("a", "b"))
    assert requests.pending_count(db) == 1
    claimed = requests.claim_next(db, "daemon-1")
    assert claimed is not None
    assert (claimed.id, claimed.status, claimed.claimed_by) == (rid, "running", "daemon-1")
    assert requests.claim_next(db, "daemon-2") is None  # nothing left to claim
    requests.finish(db, rid, status="done", exit_code=0, run_id=None)
    done = requests.get(db, rid)
    assert done is not None
    assert done.finished
    assert done.exit_code == 0
    assert done.finished_at is not None


def test_requests_are_claimed_oldest_first(db: Database) -> None:
    first = requests.create(db, "incremental")
    second = requests.create(db, "full", allow_mass_delete=True)
    a, b = requests.claim_next(db, "d"), requests.claim_next(db, "d")
    assert a
    assert b
    assert (a.id, b.id) == (first, second)
    assert b.allow_mass_delete


def test_concurrent_claims_give_each_request_to_one_claimer(db: Database) -> None:
    ids = [requests.create(db, "incremental") for _ in range(10)]
    claims: list[int] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while True:
            try:
                req = requests.claim_next(db, name)
            except DatabaseError:  # SQLite busy under contention is not a double claim
                time.sleep(0.01)
                continue
            if req is None:
                if requests.pending_count(db) == 0:
                    return
                continue
            with lock:
                claims.append(req.id)

    threads = [threading.Thread(target=claimer, args=(f"c{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(claims) == ids  # every request claimed exactly once


def test_claim_fenced_by_a_lease_we_lost(db: Database) -> None:
    requests.create(db, "incremental")
    lease = leases.acquire(db, "leader", "me", timedelta(seconds=30))
    assert lease
    leases.release(db, lease)
    assert requests.claim_next(db, "me", fence=lease) is None
    lease = leases.acquire(db, "leader", "me", timedelta(seconds=30))
    assert lease
    assert requests.claim_next(db, "me", fence=lease) is not None


def test_requeue_and_orphans(db: Database) -> None:
    mine, theirs = requests.create(db, "incremental"), requests.create(db, "full")
    assert requests.claim_next(db, "me")
    assert requests.claim_next(db, "dead")
    assert requests.requeue_orphans(db, keep="me") == [theirs]
    orphan = requests.get(db, theirs)
    assert orphan
    assert orphan.status == "pending"
    assert orphan.claimed_by is None
    requests.requeue(db, mine, reason="interrupted")
    again = requests.get(db, mine)
    assert again
    assert (again.status, again.error) == ("pending", "interrupted")


def test_cancel_only_while_pending(db: Database) -> None:
    rid = requests.create(db, "incremental")
    assert requests.cancel_if_pending(db, rid)
    assert not requests.cancel_if_pending(db, rid)
    other = requests.create(db, "incremental")
    assert requests.claim_next(db, "d")
    assert not requests.cancel_if_pending(db, other)


def test_status_rows(db: Database) -> None:
    status.register(db, instance_id="i1", hostname="h", pid=1, version="1")
    status.register(db, instance_id="i2", hostname="h", pid=2, version="1")
    nxt = datetime(2030, 1, 1, tzinfo=UTC)
    status.heartbeat(db, "i2", is_leader=True, state="idle", next_incremental_at=nxt)
    live = status.live_instances(db, timedelta(seconds=30))
    assert [(s.instance_id, s.is_leader) for s in live] == [("i2", True), ("i1", False)]
    assert live[0].next_incremental_at == nxt
    status.mark_stopped(db, "i2")
    assert [s.instance_id for s in status.live_instances(db, timedelta(seconds=30))] == ["i1"]
    assert status.live_instances(db, timedelta(seconds=-1)) == []
    assert status.prune(db, timedelta(seconds=-1)) == 2
