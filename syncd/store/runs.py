"""``sync_runs``: one row per sync run, with its counters and final status.

A run's counters are written when it ends. A run that did not end (its process was killed:
the row still says ``running``, or a later run marked it ``interrupted``) never wrote them:
what it did is then read from its ledger rows (:func:`ledger_counters`), which every write
appends before and settles after its call. Calls and unchanged rows are not in the ledger:
those counters are unknown (``None``) for such a run, not zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syncd.store.leases import SYNC_LEASE, LeaseInfo, db_now
from syncd.store.leases import info as lease_info
from syncd.store.schema import ledger, sync_runs

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


STALE_ERROR = "the process stopped during the run; pending intents were resolved later"
"""The error :func:`interrupt_stale` records: the run's own process never closed the row."""

# Ledger (op, outcome) -> run counter. Writes settled later by another run's resolver keep
# their run id: they count for the run that sent them.
_LEDGER_COUNTERS: dict[tuple[str, str], str] = {
    ("create", "ok"): "created",
    ("recreate", "ok"): "created",
    ("update", "ok"): "updated",
    ("drift", "ok"): "updated",
    ("delete", "ok"): "deleted",
    ("adopt", "ok"): "adopted",
    ("relink", "ok"): "adopted",
    ("delete", "held"): "held",
}
UNKNOWN_COUNTERS = ("unchanged", "api_calls", "rate_limited")
"""Counters the ledger cannot tell: unknown for a run that did not record its own."""


def ledger_counters(conn: Connection, run_id: int) -> dict[str, int | None]:
    """A run's counters as its ledger rows tell them (``ix_ledger_run_id_at``), plus
    ``unresolved``: its intents whose outcome is still unknown."""
    counts: dict[str, int | None] = {k: 0 for k in COUNTERS}
    counts["unresolved"] = 0
    stmt = (
        sa.select(ledger.c.op, ledger.c.outcome, sa.func.count())
        .where(ledger.c.run_id == run_id)
        .group_by(ledger.c.op, ledger.c.outcome)
    )
    for op, outcome, n in conn.execute(stmt):
        key = _LEDGER_COUNTERS.get((op, outcome))
        if key is None and outcome in ("failed", "rejected"):
            key = outcome
        elif key is None and outcome == "pending":
            key = "unresolved"
        if key is not None:
            counts[key] = int(counts[key] or 0) + int(n)
    for key in UNKNOWN_COUNTERS:
        counts[key] = None
    return counts


def is_unfinished(run: Mapping[str, Any]) -> bool:
    """The run's process never closed its row (still ``running``, or marked by another)."""
    return run["status"] == "running" or (
        run["status"] == "interrupted" and run.get("error") == STALE_ERROR
    )


def run_is_live(run: Mapping[str, Any], lease: LeaseInfo | None, now: datetime) -> bool:
    """Whether a ``running`` row is the run in progress: the ``sync`` lease is held by a live
    holder (not a process of this host that is gone, not expired) of the run's instance."""
    if run["status"] != "running" or lease is None or lease.name != SYNC_LEASE:
        return False
    if not lease.is_live(now) or lease.holder is None:
        return False
    _base, _slash, tag = lease.holder.partition("/")
    instance = run.get("instance_id") or ""
    return instance.startswith(tag) if tag else not instance


DEAD_RUN_ERROR = (
    "the process stopped during the run (it is no longer alive); the next run records it as "
    "interrupted and resolves its pending intents"
)


def newest_running_id(conn: Connection) -> int | None:
    """The newest ``running`` row: the only one that can be in progress (primary key)."""
    stmt = sa.select(sa.func.max(sync_runs.c.id)).where(sync_runs.c.status == "running")
    found = conn.execute(stmt).scalar()
    return None if found is None else int(found)


def tell_truth(conn: Connection, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs as an operator should see them: ``counters_from`` says where the counters come
    from (``run``: recorded by the run; ``ledger``: derived, the run never recorded them); a
    ``running`` row whose process is gone shows as ``interrupted``, the run in progress as
    ``running`` with its counters so far. Reads the ledger only for unfinished runs."""
    for run in runs:
        run.setdefault("counters_from", "run")
        run.setdefault("unresolved", None)
    unfinished = [r for r in runs if is_unfinished(r)]
    if not unfinished:
        return runs
    lease, now = lease_info(conn, SYNC_LEASE), db_now(conn)
    current = newest_running_id(conn)
    for run in unfinished:
        run.update(ledger_counters(conn, int(run["id"])), counters_from="ledger")
        if run["status"] == "running" and not (
            run["id"] == current and run_is_live(run, lease, now)
        ):
            run.update(status="interrupted", error=DEAD_RUN_ERROR)
    return runs


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
                error=STALE_ERROR,
            )
        )
    return ids


def last_started(conn: Connection) -> dict[str, datetime]:
    """Per kind, when its newest real (not dry) run started, whatever became of it."""
    c = sync_runs.c
    q = sa.select(c.kind, sa.func.max(c.started_at)).where(c.dry_run.is_(sa.false()))
    return {kind: at for kind, at in conn.execute(q.group_by(c.kind)) if at is not None}


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
