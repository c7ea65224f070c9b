"""The CRM mirror (``crm_contacts``): batched upserts, the snapshot tombstone pass, counts.

An import runs on one connection held for its whole length (:class:`MirrorImport`), because
the ids it has seen live in a TEMPORARY table on that connection: a million-row snapshot
never holds a million ids in Python, and the tombstone pass is one set-based UPDATE. Each
batch is its own short write transaction, so the daemon and ETL writers are never locked out
for long; the tombstone pass is one transaction, so it is applied whole or not at all.

Rows are only rewritten when their content changes (the upsert's ``WHERE`` repeats the
change triggers' test), so an unchanged contact adds nothing to ``mirror_changes``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from syncd.errors import DatabaseError
from syncd.store.db import Database
from syncd.store.schema import crm_contacts

# The columns an import writes and compares (the content the change triggers watch).
CONTENT_COLUMNS = (
    "first_name",
    "last_name",
    "email",
    "phone_numbers",
    "organization_id",
    "organization_name",
)

# Private to the import connection; its own MetaData keeps it out of the schema comparison.
_seen = sa.Table(
    "syncd_import_seen",
    sa.MetaData(),
    sa.Column("external_id", sa.Text, primary_key=True),
    sa.Column("line", sa.BigInteger, nullable=False),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True, slots=True)
class MirrorRow:
    """One contact as stored in the mirror: ``phone_numbers`` is a list of {number, type}."""

    external_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone_numbers: list[dict[str, str]]
    organization_id: str | None
    organization_name: str | None

    def content(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in CONTENT_COLUMNS)


@dataclass(slots=True)
class BatchOutcome:
    """What one batch did (or, in a dry run, would do) to the mirror."""

    inserted: int = 0
    updated: int = 0
    revived: int = 0  # tombstoned rows brought back (also counted in ``updated``)
    unchanged: int = 0
    # (line, external_id, line of the earlier occurrence) for ids already seen in this import
    repeats: list[tuple[int, str, int]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TombstonePlan:
    """What a snapshot's tombstone pass finds: ``missing`` live rows absent from the file."""

    missing: int
    live: int


@dataclass(frozen=True, slots=True)
class TombstoneOutcome:
    plan: TombstonePlan
    tombstoned: int
    held_reason: str | None


@dataclass(frozen=True, slots=True)
class MirrorCounts:
    live: int
    tombstoned: int
    pending_changes: int


@contextmanager
def _translated() -> Iterator[None]:
    """Database failures become DatabaseError, as in :class:`syncd.store.db.Database`."""
    try:
        yield
    except OperationalError as exc:
        raise DatabaseError(f"database error: {_first_line(exc)}") from exc
    except DBAPIError as exc:
        if exc.connection_invalidated:
            raise DatabaseError(f"database connection lost: {_first_line(exc)}") from exc
        raise


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)


def mirror_counts(db: Database) -> MirrorCounts:
    """Live and tombstoned contacts, and change-log rows not yet consumed by a sync run."""
    from syncd.store.schema import mirror_changes

    with db.read() as conn:
        rows = conn.execute(
            sa.select(crm_contacts.c.deleted, sa.func.count()).group_by(crm_contacts.c.deleted)
        ).all()
        pending = conn.execute(sa.select(sa.func.count()).select_from(mirror_changes)).scalar_one()
    by_flag = {bool(flag): int(n) for flag, n in rows}
    return MirrorCounts(
        live=by_flag.get(False, 0), tombstoned=by_flag.get(True, 0), pending_changes=int(pending)
    )


def _parse_phones(text: str | None) -> Any:
    """The stored JSON, or a marker that never compares equal (an ETL job wrote junk)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return object()


class MirrorImport:
    """One import's connection to the mirror: batches in, then (for a snapshot) tombstones.

    With ``dry_run`` every batch is classified exactly as a real import would, but nothing
    is written outside the connection's private temporary table.
    """

    def __init__(self, db: Database, *, dry_run: bool = False) -> None:
        self._db = db
        self.dry_run = dry_run
        self._conn: Connection | None = None

    def __enter__(self) -> MirrorImport:
        with _translated():
            conn = self._db.engine.connect()
            try:
                if not self.dry_run:
                    # BEGIN IMMEDIATE on SQLite, exactly like Database.write().
                    conn.execution_options(syncd_write=True)
                with conn.begin():
                    _seen.drop(conn, checkfirst=True)
                    _seen.create(conn)
            except BaseException:
                conn.close()
                raise
        self._conn = conn
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if not conn.invalidated:
                with conn.begin():  # a pooled PostgreSQL session would keep it otherwise
                    _seen.drop(conn, checkfirst=True)
        except DBAPIError:
            if exc is None:
                raise
        finally:
            conn.close()

    @property
    def conn(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("MirrorImport used outside its `with` block")
        return self._conn

    def apply_batch(
        self, rows: Sequence[MirrorRow], seen: Sequence[tuple[str, int]]
    ) -> BatchOutcome:
        """Record ``seen`` (id, line) pairs and upsert the ``rows`` whose content changed.

        ``seen`` holds every readable id of the batch, rejected rows included, each once;
        ``rows`` holds the accepted ones, each id once (callers keep the last occurrence).
        """
        outcome = BatchOutcome()
        with _translated(), self.conn.begin():
            outcome.repeats = self._record_seen(seen)
            changed = self._classify(rows, outcome)
            if changed and not self.dry_run:
                self._upsert(changed)
        return outcome

    def _record_seen(self, seen: Sequence[tuple[str, int]]) -> list[tuple[int, str, int]]:
        if not seen:
            return []
        ids = [external_id for external_id, _ in seen]
        query = sa.select(_seen.c.external_id, _seen.c.line).where(_seen.c.external_id.in_(ids))
        earlier = {external_id: int(line) for external_id, line in self.conn.execute(query)}
        fresh = [{"external_id": i, "line": n} for i, n in seen if i not in earlier]
        if fresh:
            self.conn.execute(_seen.insert(), fresh)
        return [(line, i, earlier[i]) for i, line in seen if i in earlier]

    def _classify(self, rows: Sequence[MirrorRow], outcome: BatchOutcome) -> list[MirrorRow]:
        if not rows:
            return []
        c = crm_contacts.c
        stored = {
            r.external_id: r
            for r in self.conn.execute(
                sa.select(
                    c.external_id,
                    c.first_name,
                    c.last_name,
                    c.email,
                    # As text: a value an ETL job wrote badly must not break the import.
                    sa.cast(c.phone_numbers, sa.Text).label("phone_numbers"),
                    c.organization_id,
                    c.organization_name,
                    c.deleted,
                ).where(c.external_id.in_([row.external_id for row in rows]))
            )
        }
        changed: list[MirrorRow] = []
        for row in rows:
            old = stored.get(row.external_id)
            if old is None:
                outcome.inserted += 1
                changed.append(row)
                continue
            old_content = (
                old.first_name,
                old.last_name,
                old.email,
                _parse_phones(old.phone_numbers),
                old.organization_id,
                old.organization_name,
            )
            if old.deleted:
                outcome.revived += 1
                outcome.updated += 1
                changed.append(row)
            elif old_content != row.content():
                outcome.updated += 1
                changed.append(row)
            else:
                outcome.unchanged += 1
        return changed

    def _upsert(self, rows: Sequence[MirrorRow]) -> None:
        now = datetime.now(UTC)
        insert = pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        stmt = insert(crm_contacts)
        table = crm_contacts.c
        stmt = stmt.on_conflict_do_update(
            index_elements=[table.external_id],
            set_={
                **{name: stmt.excluded[name] for name in CONTENT_COLUMNS},
                "deleted": sa.false(),
                "updated_at": stmt.excluded.updated_at,
            },
            # Repeats the trigger's test: a concurrent writer may have got there first.
            where=sa.or_(
                table.deleted,
                *(table[name].is_distinct_from(stmt.excluded[name]) for name in CONTENT_COLUMNS),
            ),
        )
        self.conn.execute(
            stmt,
            [
                {
                    "external_id": row.external_id,
                    **dict(zip(CONTENT_COLUMNS, row.content(), strict=True)),
                    "deleted": False,
                    "updated_at": now,
                }
                for row in rows
            ],
        )

    def tombstone_missing(self, hold: Callable[[TombstonePlan], str | None]) -> TombstoneOutcome:
        """Tombstone every live row whose id this import has not seen, in one transaction.

        ``hold`` is the delete guard: given the plan it returns why to hold (nothing is
        tombstoned) or None. If the UPDATE touches more rows than were counted (a concurrent
        writer added some), the guard is asked again and the transaction rolled back if it holds.
        """
        c = crm_contacts.c
        missing_where = sa.and_(
            c.deleted == sa.false(),
            ~sa.exists().where(_seen.c.external_id == c.external_id),
        )
        with _translated(), self.conn.begin() as tx:
            live = self.conn.execute(
                sa.select(sa.func.count()).select_from(crm_contacts).where(c.deleted == sa.false())
            ).scalar_one()
            missing = self.conn.execute(
                sa.select(sa.func.count()).select_from(crm_contacts).where(missing_where)
            ).scalar_one()
            plan = TombstonePlan(missing=int(missing), live=int(live))
            reason = hold(plan) if plan.missing else None
            if reason is not None or self.dry_run or not plan.missing:
                return TombstoneOutcome(plan=plan, tombstoned=0, held_reason=reason)
            result = self.conn.execute(
                crm_contacts.update()
                .where(missing_where)
                .values(deleted=True, updated_at=datetime.now(UTC))
            )
            done = int(result.rowcount)
            if done > plan.missing:
                actual = TombstonePlan(missing=done, live=plan.live + done - plan.missing)
                reason = hold(actual)
                if reason is not None:
                    tx.rollback()
                    return TombstoneOutcome(plan=actual, tombstoned=0, held_reason=reason)
            return TombstoneOutcome(plan=plan, tombstoned=done, held_reason=None)
