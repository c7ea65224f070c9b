"""The ledger: one row per attempted or observed change, never deleted.

A remote write first appends its row with ``outcome='pending'`` (the intent, committed before
the call), then fills in the outcome once, after the call (invariant 2). A row still
``pending`` after a run is an intent whose outcome is unknown; the next run resolves it.

Ops: create, update, delete, adopt, relink, drift, recreate, orphan, duplicate, reject,
resolve; and, for organization records (``external_id`` is then the CRM's organization
id), org_create, org_link, org_rename.
Outcomes: pending, ok, failed, rejected, held, reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syncd.model import CONTACT_FIELDS
from syncd.store.schema import ledger, sync_runs

# What the engine writes (docs/operations.md explains each); `syncd ledger --op/--outcome`
# accept only these, so a typo is an error instead of an empty answer.
OPS = (
    "create",
    "update",
    "delete",
    "adopt",
    "relink",
    "drift",
    "recreate",
    "orphan",
    "duplicate",
    "reject",
    "resolve",
    "org_create",
    "org_link",
    "org_rename",
)
OUTCOMES = (
    "pending",
    "ok",
    "failed",
    "rejected",
    "held",
    "reported",
    "dry_run",
    "skipped",
    "unknown",
)


@dataclass(frozen=True, slots=True)
class Entry:
    op: str
    outcome: str
    external_id: str | None = None
    genesys_id: str | None = None
    fields: dict[str, Any] | None = None
    http_status: int | None = None
    error: str | None = None
    correlation_id: str | None = None
    run_id: int | None = None
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def values(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "run_id": self.run_id,
            "external_id": self.external_id,
            "genesys_id": self.genesys_id,
            "op": self.op,
            "outcome": self.outcome,
            "fields": self.fields,
            "http_status": self.http_status,
            "error": self.error[:2000] if self.error else None,
            "correlation_id": self.correlation_id,
        }


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    op: str
    outcome: str
    external_id: str | None
    genesys_id: str | None
    fields: dict[str, Any] | None
    run_id: int | None
    at: datetime


def append(conn: Connection, entry: Entry) -> int:
    """Append one row; returns its id."""
    result = conn.execute(sa.insert(ledger).values(**entry.values()).returning(ledger.c.id))
    return int(result.scalar_one())


def append_many(conn: Connection, entries: Sequence[Entry]) -> None:
    if entries:
        conn.execute(sa.insert(ledger), [e.values() for e in entries])


def settle(
    conn: Connection,
    row_id: int,
    *,
    outcome: str,
    genesys_id: str | None = None,
    http_status: int | None = None,
    error: str | None = None,
    correlation_id: str | None = None,
) -> None:
    """Record the outcome of a pending intent (only a pending row can be settled)."""
    values: dict[str, Any] = {"outcome": outcome}
    if genesys_id is not None:
        values["genesys_id"] = genesys_id
    if http_status is not None:
        values["http_status"] = http_status
    if error is not None:
        values["error"] = error[:2000]
    if correlation_id is not None:
        values["correlation_id"] = correlation_id
    conn.execute(
        sa.update(ledger)
        .where(ledger.c.id == row_id)
        .where(ledger.c.outcome == "pending")
        .values(**values)
    )


def note(conn: Connection, row_id: int, *, error: str) -> None:
    """Annotate a still-pending intent (for example: the outcome of its call is unknown)."""
    conn.execute(sa.update(ledger).where(ledger.c.id == row_id).values(error=error[:2000]))


def latest_pending(conn: Connection, external_id: str, op: str | None = None) -> Row | None:
    """The newest unsettled intent of an externalId (``ix_ledger_external_id_at``), of
    ``op`` only when given (an organization's id may equal a contact's)."""
    q = (
        sa.select(ledger)
        .where(ledger.c.external_id == external_id)
        .where(ledger.c.outcome == "pending")
        .order_by(ledger.c.at.desc(), ledger.c.id.desc())
        .limit(1)
    )
    if op is not None:
        q = q.where(ledger.c.op == op)
    row = conn.execute(q).first()
    if row is None:
        return None
    m = row._mapping
    return Row(
        id=m["id"],
        op=m["op"],
        outcome=m["outcome"],
        external_id=m["external_id"],
        genesys_id=m["genesys_id"],
        fields=m["fields"],
        run_id=m["run_id"],
        at=m["at"],
    )


def unsettled_create_runs(conn: Connection) -> dict[int | None, datetime | None]:
    """The runs that left create intents unsettled, each with when it ended (None: not
    recorded, or no run): a write cannot have been in flight after its run ended."""
    c = ledger.c
    q = (
        sa.select(c.run_id, sync_runs.c.finished_at)
        .select_from(ledger.outerjoin(sync_runs, c.run_id == sync_runs.c.id))
        .where(c.outcome == "pending", c.op.in_(("create", "recreate")))
        .distinct()
    )
    return {row.run_id: row.finished_at for row in conn.execute(q)}


def latest_by_genesys_id(conn: Connection, genesys_ids: Sequence[str]) -> dict[str, Row]:
    """The newest row naming each of ``genesys_ids`` (``ix_ledger_genesys_id``)."""
    c = ledger.c
    found: dict[str, Row] = {}
    ids = list(dict.fromkeys(genesys_ids))
    for start in range(0, len(ids), 500):
        newest = (
            sa.select(sa.func.max(c.id))
            .where(c.genesys_id.in_(ids[start : start + 500]))
            .group_by(c.genesys_id)
        )
        for m in conn.execute(sa.select(ledger).where(c.id.in_(newest))).mappings():
            found[m["genesys_id"]] = Row(
                id=m["id"],
                op=m["op"],
                outcome=m["outcome"],
                external_id=m["external_id"],
                genesys_id=m["genesys_id"],
                fields=m["fields"],
                run_id=m["run_id"],
                at=m["at"],
            )
    return found


def rows_for_run(conn: Connection, run_id: int) -> list[dict[str, Any]]:
    """Every row a run wrote, oldest first (for reports and tests)."""
    q = sa.select(ledger).where(ledger.c.run_id == run_id).order_by(ledger.c.id)
    return [dict(r._mapping) for r in conn.execute(q)]


def pending_summary(conn: Connection, older_than: datetime) -> dict[str, Any]:
    """Intents whose outcome is unknown (ledger rows still ``pending``, ``ix_ledger_outcome_at``):
    how many, the oldest, and how many are older than ``older_than``."""
    c = ledger.c
    n, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(c.at)).where(c.outcome == "pending")
    ).one()
    old = conn.execute(
        sa.select(sa.func.count()).where(c.outcome == "pending", c.at < older_than)
    ).scalar_one()
    return {"pending": int(n), "oldest_at": oldest, "older_than_threshold": int(old)}


_FIELD_RANK = {name: i for i, name in enumerate(CONTACT_FIELDS)}


def in_field_order(fields: Any) -> Any:
    """A ledger row's ``fields`` in one order whatever the backend stored: PostgreSQL's
    JSONB keeps object keys by length, SQLite's JSON as written. The contact's fields come
    in ``CONTACT_FIELDS`` order, then any others by name."""
    if not isinstance(fields, dict):
        return fields
    names = sorted(fields, key=lambda n: (_FIELD_RANK.get(n, len(_FIELD_RANK)), n))
    return {name: fields[name] for name in names}
