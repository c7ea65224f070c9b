"""Manual resync requests (``sync_requests``): the CLI inserts, the leading daemon claims.

Life of a request::

    pending --claim--> running --finish--> done | failed
       ^                  |
       +----requeue-------+     (daemon stopped mid-run, or its leader died)
    pending --cancel--> cancelled   (a `resync --wait` that gave up before the claim)

Claiming is one conditional UPDATE (``WHERE status = 'pending'``), so two daemons can never
both claim a request; an optional fence makes the claim conditional on still being leader.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Row

from syncd.store.db import Database
from syncd.store.leases import Lease, db_now, is_valid
from syncd.store.schema import sync_requests as t

ACTIVE = ("pending", "running")


@dataclass(frozen=True)
class SyncRequest:
    id: int
    kind: str
    external_ids: tuple[str, ...]
    allow_mass_delete: bool
    status: str
    requested_at: datetime
    requested_by: str | None
    claimed_at: datetime | None
    claimed_by: str | None
    finished_at: datetime | None
    run_id: int | None
    exit_code: int | None
    error: str | None

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE


def _from_row(row: Row[tuple[object, ...]]) -> SyncRequest:
    m = row._mapping
    return SyncRequest(
        id=int(m["id"]),
        kind=str(m["kind"]),
        external_ids=tuple(m["external_ids"] or ()),
        allow_mass_delete=bool(m["allow_mass_delete"]),
        status=str(m["status"]),
        requested_at=m["requested_at"],
        requested_by=m["requested_by"],
        claimed_at=m["claimed_at"],
        claimed_by=m["claimed_by"],
        finished_at=m["finished_at"],
        run_id=m["run_id"],
        exit_code=m["exit_code"],
        error=m["error"],
    )


def create(
    db: Database,
    kind: str,
    *,
    external_ids: Sequence[str] = (),
    allow_mass_delete: bool = False,
    requested_by: str | None = None,
) -> int:
    """Queue a request and return its id."""
    with db.write() as conn:
        result = conn.execute(
            t.insert().values(
                kind=kind,
                external_ids=list(external_ids) or None,
                allow_mass_delete=allow_mass_delete,
                status="pending",
                requested_at=db_now(conn),
                requested_by=requested_by,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])


def get(db: Database, request_id: int) -> SyncRequest | None:
    with db.read() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == request_id)).one_or_none()
    return _from_row(row) if row is not None else None


def pending_count(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).select_from(t).where(t.c.status == "pending")
            ).scalar_one()
        )


def claim_next(db: Database, claimer: str, *, fence: Lease | None = None) -> SyncRequest | None:
    """Claim the oldest pending request for ``claimer``, or ``None`` if there is none.

    A cheap read comes first, so an idle daemon polling every second does not write.
    With ``fence``, the claim only happens while that lease is still ours and unexpired.
    """
    oldest = sa.select(t.c.id).where(t.c.status == "pending").order_by(t.c.id).limit(1)
    with db.read() as conn:
        candidate = conn.execute(oldest).scalar_one_or_none()
    if candidate is None:
        return None
    with db.write() as conn:
        now = db_now(conn)
        conditions = [t.c.id == candidate, t.c.status == "pending"]
        if fence is not None:
            conditions.append(is_valid(conn, fence))
        result = conn.execute(
            t.update()
            .where(*conditions)
            .values(status="running", claimed_at=now, claimed_by=claimer, finished_at=None)
        )
        if result.rowcount != 1:
            return None
        row = conn.execute(sa.select(t).where(t.c.id == candidate)).one()
    return _from_row(row)


def link_run(db: Database, request_id: int, run_id: int) -> None:
    """Record which run serves the request (as soon as the run exists)."""
    with db.write() as conn:
        conn.execute(t.update().where(t.c.id == request_id).values(run_id=run_id))


def finish(
    db: Database,
    request_id: int,
    *,
    status: str,
    exit_code: int | None,
    run_id: int | None = None,
    error: str | None = None,
) -> None:
    """Close a running request as ``done`` or ``failed``."""
    values: dict[str, object] = {"status": status, "exit_code": exit_code, "error": error}
    if run_id is not None:
        values["run_id"] = run_id
    with db.write() as conn:
        values["finished_at"] = db_now(conn)
        conn.execute(t.update().where(t.c.id == request_id).values(**values))


def requeue(db: Database, request_id: int, *, reason: str | None = None) -> None:
    """Put a running request back in the queue (its run was interrupted)."""
    with db.write() as conn:
        conn.execute(
            t.update()
            .where(t.c.id == request_id, t.c.status == "running")
            .values(status="pending", claimed_at=None, claimed_by=None, error=reason)
        )


def requeue_orphans(db: Database, *, keep: str) -> list[int]:
    """Requeue requests left ``running`` by any claimer but ``keep`` (a new leader's cleanup).

    Only a leader runs requests, so once leadership has moved, a running request claimed by
    someone else belongs to a dead or deposed daemon.
    """
    with db.write() as conn:
        ids = list(
            conn.execute(
                sa.select(t.c.id).where(
                    t.c.status == "running",
                    sa.or_(t.c.claimed_by.is_(None), t.c.claimed_by != keep),
                )
            ).scalars()
        )
        if ids:
            conn.execute(
                t.update()
                .where(t.c.id.in_(ids), t.c.status == "running")
                .values(
                    status="pending",
                    claimed_at=None,
                    claimed_by=None,
                    error="requeued: the daemon running it stopped",
                )
            )
    return [int(i) for i in ids]


def cancel_if_pending(db: Database, request_id: int) -> bool:
    """Cancel a request nobody has claimed yet; ``False`` if it was claimed meanwhile."""
    with db.write() as conn:
        result = conn.execute(
            t.update()
            .where(t.c.id == request_id, t.c.status == "pending")
            .values(status="cancelled", finished_at=db_now(conn))
        )
    return result.rowcount == 1
