"""``sync_runs``: one row per sync run, with its counters and final status."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syncd.store.schema import sync_runs

COUNTERS = (
    "created",
    "updated",
    "deleted",
    "unchanged",
    "adopted",
    "failed",
    "held",
    "rejected",
    "api_calls",
    "rate_limited",
)


def start_run(conn: Connection, *, kind: str, trigger: str, instance_id: str | None = None) -> int:
    result = conn.execute(
        sa.insert(sync_runs)
        .values(
            kind=kind,
            trigger=trigger,
            dry_run=False,
            status="running",
            started_at=datetime.now(UTC),
            instance_id=instance_id,
        )
        .returning(sync_runs.c.id)
    )
    return int(result.scalar_one())


def finish_run(
    conn: Connection,
    run_id: int,
    *,
    status: str,
    counters: Mapping[str, int],
    error: str | None = None,
) -> None:
    values: dict[str, Any] = {k: int(counters.get(k, 0)) for k in COUNTERS}
    conn.execute(
        sa.update(sync_runs)
        .where(sync_runs.c.id == run_id)
        .values(status=status, finished_at=datetime.now(UTC), error=error, **values)
    )


def interrupt_stale(conn: Connection, *, recent: int = 20) -> list[int]:
    """Runs left ``running`` by a process that died: only called while holding the sync lock,
    so no other run can really be in progress. Only the newest runs can be stale (each run
    clears its predecessors), so this reads ``recent`` rows by primary key, not the table."""
    newest = (
        sa.select(sync_runs.c.id, sync_runs.c.status).order_by(sync_runs.c.id.desc()).limit(recent)
    )
    ids = [int(r.id) for r in conn.execute(newest) if r.status == "running"]
    if ids:
        conn.execute(
            sa.update(sync_runs)
            .where(sync_runs.c.id.in_(ids))
            .values(
                status="interrupted",
                finished_at=datetime.now(UTC),
                error="the process stopped during the run; pending intents were resolved later",
            )
        )
    return ids


def get_run(conn: Connection, run_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(sync_runs).where(sync_runs.c.id == run_id)).first()
    return dict(row._mapping) if row else None


# A run with one of these statuses went through all its work: rows may have failed or deletes
# been held, but a full reconcile with them listed all of Genesys and adopted what it found.
COMPLETED_STATUSES = ("succeeded", "partial", "held")


def has_succeeded(conn: Connection, kind: str, statuses: tuple[str, ...] = ("succeeded",)) -> bool:
    """Whether a real (not dry) run of ``kind`` has ever ended with one of ``statuses``."""
    row = conn.execute(
        sa.select(sync_runs.c.id)
        .where(
            sync_runs.c.kind == kind,
            sync_runs.c.status.in_(statuses),
            sync_runs.c.dry_run.is_(False),
        )
        .limit(1)
    ).first()
    return row is not None
