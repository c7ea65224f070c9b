"""Ledger queries for operators (`syncd ledger`, `runs --show`, `contact`).

The ledger can hold millions of rows, so every ledger query is ``ORDER BY at, id`` with a
``LIMIT`` over an index (``ix_ledger_at``, ``ix_ledger_external_id_at``, ...), and long
results are read in keyset pages (``at, id`` strictly after the last row seen) instead of
``OFFSET`` or one huge result set: memory stays flat and each page is an index range scan.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from syncd.store.ledger import in_field_order
from syncd.store.schema import ledger

# What an operator sees of a ledger row, in this order (the surrogate ``id`` stays internal).
LEDGER_FIELDS = (
    "at",
    "run_id",
    "external_id",
    "genesys_id",
    "op",
    "outcome",
    "fields",
    "http_status",
    "error",
    "correlation_id",
)
DEFAULT_PAGE = 1000


@dataclass(frozen=True)
class LedgerFilter:
    """Conditions of a ledger query; empty tuples and ``None`` mean "any".

    ``since`` is inclusive and ``until`` exclusive, so consecutive windows never overlap.
    """

    since: datetime | None = None
    until: datetime | None = None
    external_ids: tuple[str, ...] = ()
    genesys_ids: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    run_id: int | None = None
    oldest_first: bool = False


def match(column: sa.Column[Any], values: Sequence[Any]) -> ColumnElement[bool]:
    return column == values[0] if len(values) == 1 else column.in_(values)


def ledger_conditions(flt: LedgerFilter) -> list[ColumnElement[bool]]:
    c = ledger.c
    conds: list[ColumnElement[bool]] = []
    if flt.since is not None:
        conds.append(c.at >= flt.since)
    if flt.until is not None:
        conds.append(c.at < flt.until)
    if flt.external_ids:
        conds.append(match(c.external_id, flt.external_ids))
    if flt.genesys_ids:
        conds.append(match(c.genesys_id, flt.genesys_ids))
    if flt.ops:
        conds.append(match(c.op, flt.ops))
    if flt.outcomes:
        conds.append(match(c.outcome, flt.outcomes))
    if flt.run_id is not None:
        conds.append(c.run_id == flt.run_id)
    return conds


def _after(key: tuple[datetime, int], oldest_first: bool) -> ColumnElement[bool]:
    """Rows strictly after ``key`` in the query order, written so ``at`` bounds an index range."""
    at, row_id = key
    c = ledger.c
    if oldest_first:
        return sa.and_(c.at >= at, sa.or_(c.at > at, c.id > row_id))
    return sa.and_(c.at <= at, sa.or_(c.at < at, c.id < row_id))


def ledger_page(
    flt: LedgerFilter, limit: int, after: tuple[datetime, int] | None = None
) -> sa.Select[Any]:
    """One keyset page of the ledger as a SELECT (exposed for ``EXPLAIN`` in tests)."""
    c = ledger.c
    conds = ledger_conditions(flt)
    if after is not None:
        conds.append(_after(after, flt.oldest_first))
    order = (c.at.asc(), c.id.asc()) if flt.oldest_first else (c.at.desc(), c.id.desc())
    return (
        sa.select(c.id, *(c[name] for name in LEDGER_FIELDS))
        .where(*conds)
        .order_by(*order)
        .limit(limit)
    )


def iter_ledger(
    conn: Connection, flt: LedgerFilter, *, limit: int | None = 100, page_size: int = DEFAULT_PAGE
) -> Iterator[dict[str, Any]]:
    """Matching ledger rows, newest first (or oldest first), at most ``limit`` (None = all).

    Pages of ``page_size`` rows are fetched lazily, so a caller that streams the rows out
    never holds more than one page.
    """
    remaining = limit
    after: tuple[datetime, int] | None = None
    while remaining is None or remaining > 0:
        size = page_size if remaining is None else min(page_size, remaining)
        rows = conn.execute(ledger_page(flt, size, after)).mappings().all()
        for row in rows:
            yield {name: row[name] for name in LEDGER_FIELDS} | {
                "fields": in_field_order(row["fields"])
            }
        if len(rows) < size:
            return
        after = (rows[-1]["at"], rows[-1]["id"])
        if remaining is not None:
            remaining -= len(rows)


def count_ledger(conn: Connection, flt: LedgerFilter) -> int:
    stmt = sa.select(sa.func.count()).select_from(ledger).where(*ledger_conditions(flt))
    return int(conn.execute(stmt).scalar_one())
