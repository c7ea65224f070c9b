"""Ledger retention: delete rows older than a cutoff, in small batches, never ``pending`` ones.

A ``pending`` row is an intent whose effect is not known yet (invariant 2): it must survive
until crash recovery resolves it, however old it is. Each batch is its own short write
transaction over ``ix_ledger_at``, so on SQLite a prune of millions of rows never holds the
single write lock for long, and the daemon's sync runs interleave with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from syncd.config import LedgerSettings
from syncd.store.db import Database
from syncd.store.schema import ledger

DEFAULT_BATCH_SIZE = LedgerSettings.model_fields["prune_batch_size"].default


@dataclass(frozen=True)
class PruneResult:
    """What a prune did (or, with ``dry_run``, would do)."""

    cutoff: datetime
    deleted: int
    pending_kept: int
    batches: int
    dry_run: bool


def _prunable(cutoff: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(ledger.c.at < cutoff, ledger.c.outcome != "pending")


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
            return PruneResult(cutoff, would, pending_kept, 0, dry_run=True)
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
    return PruneResult(cutoff, deleted, pending_kept, batches, dry_run=False)
