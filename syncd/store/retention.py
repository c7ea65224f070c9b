"""Ledger retention: delete rows older than a cutoff, in small batches, never ``pending`` ones.

A ``pending`` row is an intent whose effect is not known yet (invariant 2): it must survive
until crash recovery resolves it, however old it is. Each batch is its own short write
transaction over ``ix_ledger_at``, so on SQLite a prune of millions of rows never holds the
single write lock for long, and the daemon's sync runs interleave with it.

Runs (``sync_runs``) go with the same cutoff, once their ledger rows are gone: a run that
still has rows (a ``pending`` intent among them) is kept, so is a run in progress, and so is
the newest run of each kind and the newest completed full reconcile (``syncd status`` and
the daemon's start-up decision read those).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from syncd.config import LedgerSettings
from syncd.store.db import Database
from syncd.store.runs import COMPLETED_STATUSES
from syncd.store.schema import ledger, sync_runs

DEFAULT_BATCH_SIZE = LedgerSettings.model_fields["prune_batch_size"].default


@dataclass(frozen=True)
class PruneResult:
    """What a prune did (or, with ``dry_run``, would do)."""

    cutoff: datetime
    deleted: int
    pending_kept: int
    batches: int
    dry_run: bool
    runs_deleted: int = 0


def _prunable(cutoff: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(ledger.c.at < cutoff, ledger.c.outcome != "pending")


def _prunable_run(cutoff: datetime, *, after_ledger_prune: bool = False) -> sa.ColumnElement[bool]:
    """Old, over, not the newest of its kind, and without ledger rows (``after_ledger_prune``:
    without rows that the ledger prune keeps, for a dry run's count)."""
    r = sync_runs.c
    newest_per_kind = sa.select(sa.func.max(r.id)).group_by(r.kind)
    newest_full = sa.select(sa.func.coalesce(sa.func.max(r.id), 0)).where(
        r.kind == "full", r.status.in_(COMPLETED_STATUSES), r.dry_run.is_(sa.false())
    )
    rows = ledger.c.run_id == r.id
    kept_rows = sa.and_(rows, sa.not_(_prunable(cutoff))) if after_ledger_prune else rows
    return sa.and_(
        r.started_at < cutoff,
        r.status != "running",
        ~sa.exists().where(kept_rows),
        r.id.not_in(newest_per_kind),
        r.id.not_in(newest_full),
    )


def _prune_runs(db: Database, cutoff: datetime, batch_size: int) -> int:
    deleted = 0
    ids = (
        sa.select(sync_runs.c.id)
        .where(_prunable_run(cutoff))
        .order_by(sync_runs.c.id)
        .limit(batch_size)
    )
    while True:
        with db.write() as conn:
            # Materialized first: MySQL-like engines refuse a subquery on the table deleted from.
            batch = [row[0] for row in conn.execute(ids)]
            if batch:
                conn.execute(sync_runs.delete().where(sync_runs.c.id.in_(batch)))
        deleted += len(batch)
        if len(batch) < batch_size:
            return deleted


def prune_ledger(
    db: Database,
    older_than: timedelta,
    batch_size: int = DEFAULT_BATCH_SIZE,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
) -> PruneResult:
    """Delete ledger rows with ``at`` before ``now - older_than`` except ``pending`` ones.

    Called daily by the daemon and by `syncd ledger prune`. Safe to interrupt: each batch
    commits on its own and the next call carries on.
    """
    if older_than <= timedelta(0):
        raise ValueError("older_than must be a positive duration")
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    cutoff = (now or datetime.now(UTC)) - older_than
    with db.read() as conn:
        pending_kept = int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(ledger)
                .where(ledger.c.at < cutoff, ledger.c.outcome == "pending")
            ).scalar_one()
        )
        if dry_run:
            would = int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(ledger).where(_prunable(cutoff))
                ).scalar_one()
            )
            runs = sa.select(sa.func.count()).select_from(sync_runs)
            would_runs = int(
                conn.execute(
                    runs.where(_prunable_run(cutoff, after_ledger_prune=True))
                ).scalar_one()
            )
            return PruneResult(
                cutoff, would, pending_kept, 0, dry_run=True, runs_deleted=would_runs
            )
    deleted = batches = 0
    batch_ids = (
        sa.select(ledger.c.id).where(_prunable(cutoff)).order_by(ledger.c.at).limit(batch_size)
    )
    while True:
        with db.write() as conn:
            n = conn.execute(ledger.delete().where(ledger.c.id.in_(batch_ids))).rowcount
        batches += 1
        deleted += n
        if n < batch_size:
            break
    runs_deleted = _prune_runs(db, cutoff, batch_size)
    return PruneResult(
        cutoff,
        deleted,
        pending_kept,
        batches,
        dry_run=False,
        runs_deleted=runs_deleted,
    )
