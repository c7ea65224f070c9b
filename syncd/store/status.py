"""Daemon status rows (``daemon_status``): one per daemon instance, rewritten every heartbeat.

Operators (``syncd status``) and ``syncd resync --wait`` read it to know whether a daemon is
alive, which instance leads, what it is doing and when the next runs are due. A heartbeat
older than the daemon's ``stale_after`` means the instance is dead (kill -9, lost host).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from syncd.store import leases
from syncd.store.db import Database
from syncd.store.leases import db_now
from syncd.store.schema import daemon_status as t
from syncd.store.schema import leases as lease_table

STATES = ("starting", "standby", "idle", "running", "stopping", "stopped")


@dataclass(frozen=True)
class DaemonStatus:
    instance_id: str
    hostname: str
    pid: int
    version: str
    started_at: datetime
    heartbeat_at: datetime
    is_leader: bool
    state: str
    next_incremental_at: datetime | None
    next_full_at: datetime | None
    current_run_id: int | None

    def age(self, now: datetime) -> timedelta:
        return now - self.heartbeat_at


def register(db: Database, *, instance_id: str, hostname: str, pid: int, version: str) -> None:
    """Insert this instance's row (state ``starting``)."""
    with db.write() as conn:
        now = db_now(conn)
        conn.execute(
            t.insert().values(
                instance_id=instance_id,
                hostname=hostname[:255],
                pid=pid,
                version=version[:32],
                started_at=now,
                heartbeat_at=now,
                is_leader=False,
                state="starting",
            )
        )


def heartbeat(
    db: Database,
    instance_id: str,
    *,
    is_leader: bool,
    state: str,
    next_incremental_at: datetime | None = None,
    next_full_at: datetime | None = None,
    current_run_id: int | None = None,
) -> None:
    """Refresh the row: a fresh ``heartbeat_at`` is the proof of life."""
    with db.write() as conn:
        conn.execute(
            t.update()
            .where(t.c.instance_id == instance_id)
            .values(
                heartbeat_at=db_now(conn),
                is_leader=is_leader,
                state=state,
                next_incremental_at=next_incremental_at,
                next_full_at=next_full_at,
                current_run_id=current_run_id,
            )
        )


def mark_stopped(db: Database, instance_id: str) -> None:
    with db.write() as conn:
        conn.execute(
            t.update()
            .where(t.c.instance_id == instance_id)
            .values(
                heartbeat_at=db_now(conn), is_leader=False, state="stopped", current_run_id=None
            )
        )


def _from_row(row: sa.Row[tuple[object, ...]]) -> DaemonStatus:
    m = row._mapping
    return DaemonStatus(
        instance_id=m["instance_id"],
        hostname=m["hostname"],
        pid=int(m["pid"]),
        version=m["version"],
        started_at=m["started_at"],
        heartbeat_at=m["heartbeat_at"],
        is_leader=bool(m["is_leader"]),
        state=m["state"],
        next_incremental_at=m["next_incremental_at"],
        next_full_at=m["next_full_at"],
        current_run_id=m["current_run_id"],
    )


def all_instances(db: Database) -> tuple[datetime, list[DaemonStatus]]:
    """Every row, newest heartbeat first, with the database's current time to age them."""
    with db.read() as conn:
        now = db_now(conn)
        rows = conn.execute(sa.select(t).order_by(t.c.heartbeat_at.desc())).all()
    return now, [_from_row(r) for r in rows]


def live_instances(db: Database, stale_after: timedelta) -> list[DaemonStatus]:
    """Instances that are running and heartbeated within ``stale_after``, leader first."""
    now, rows = all_instances(db)
    live = [r for r in rows if r.state != "stopped" and r.age(now) <= stale_after]
    return sorted(live, key=lambda r: not r.is_leader)


def users_of_database(db: Database, stale_after: timedelta) -> list[str]:
    """Who is using the database right now, one phrase each, for a refusal message.

    A daemon counts when :func:`live_instances` (the rule of ``syncd status``) finds it; a
    writer without a status row (a foreground ``syncd sync``) counts while its lease is
    unexpired. A database without the tables (empty, or not yet migrated) has no users.
    """
    names = set(sa.inspect(db.engine).get_table_names())
    found = []
    if t.name in names:
        for inst in live_instances(db, stale_after):
            role = "leader" if inst.is_leader else inst.state
            found.append(
                f"daemon {inst.instance_id} on {inst.hostname} (pid {inst.pid}, {role}, "
                f"last heartbeat {inst.heartbeat_at.isoformat(timespec='seconds')})"
            )
    if lease_table.name in names:
        with db.read() as conn:
            now = db_now(conn)
        for name in (leases.SYNC_LEASE, leases.LEADER_LEASE):
            info = leases.current(db, name)
            if info is not None and info.is_held(now):
                until = info.expires_at.isoformat(timespec="seconds") if info.expires_at else "?"
                found.append(f"the {name!r} lease, held by {info.holder} until {until}")
    return found


def prune(db: Database, older_than: timedelta) -> int:
    """Delete rows of instances silent for longer than ``older_than``."""
    with db.write() as conn:
        cutoff = db_now(conn) - older_than
        return conn.execute(t.delete().where(t.c.heartbeat_at < cutoff)).rowcount
