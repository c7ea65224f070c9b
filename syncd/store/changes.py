"""The mirror as the engine reads it: the change log and the desired rows.

``mirror_changes`` is filled by database triggers and consumed by deleting the ids that were
processed, in the same transaction as their outcome: there is no watermark, so a writer that
commits an older id late is still seen by the next run. Reads here are primary-key lookups or
keyset pages, so an incremental run costs what its changes cost, not what the mirror holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syncd.store.schema import contact_links, crm_contacts, mirror_changes


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    external_id: str


@dataclass(frozen=True, slots=True)
class MirrorRow:
    """A ``crm_contacts`` row as stored (not yet normalized)."""

    external_id: str
    first_name: str | None
    last_name: str | None
    email: str | None
    phone_numbers: str | None  # JSON text, as stored
    organization_id: str | None
    organization_name: str | None
    deleted: bool
    updated_at: datetime | None = None


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def read_changes(conn: Connection, *, after_id: int = 0, limit: int = 500) -> list[Change]:
    """The next page of pending changes, oldest id first (primary-key range scan)."""
    q = (
        sa.select(mirror_changes.c.id, mirror_changes.c.external_id)
        .where(mirror_changes.c.id > after_id)
        .order_by(mirror_changes.c.id)
        .limit(limit)
    )
    return [Change(int(r[0]), r[1]) for r in conn.execute(q)]


def consume(conn: Connection, ids: Sequence[int]) -> None:
    """Delete processed change rows (call in the transaction that records their outcome)."""
    for chunk in _chunks(list(ids)):
        conn.execute(sa.delete(mirror_changes).where(mirror_changes.c.id.in_(chunk)))


def change_ids_for(conn: Connection, external_ids: Sequence[str]) -> dict[str, list[int]]:
    """The pending change ids of these externalIds (index lookups). Read in the transaction
    that reads their mirror rows, they are exactly the changes those rows already show."""
    found: dict[str, list[int]] = {}
    c = mirror_changes.c
    for chunk in _chunks(list(external_ids)):
        query = sa.select(c.id, c.external_id).where(c.external_id.in_(chunk)).order_by(c.id)
        for change_id, ext in conn.execute(query):
            found.setdefault(ext, []).append(int(change_id))
    return found


def count_pending(conn: Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(mirror_changes)).scalar_one())


def load_mirror(conn: Connection, external_ids: Sequence[str]) -> dict[str, MirrorRow]:
    """Mirror rows by externalId (primary-key lookups)."""
    found: dict[str, MirrorRow] = {}
    for chunk in _chunks(list(external_ids)):
        # phone_numbers as text: a malformed value written by an ETL job must reject one
        # row (the engine parses it), not fail the whole batch inside the driver.
        cols = [c for c in crm_contacts.c if c.name != "phone_numbers"]
        phones = sa.cast(crm_contacts.c.phone_numbers, sa.Text).label("phone_numbers")
        rows = conn.execute(sa.select(*cols, phones).where(crm_contacts.c.external_id.in_(chunk)))
        for row in rows:
            m = row._mapping
            found[m["external_id"]] = MirrorRow(
                external_id=m["external_id"],
                first_name=m["first_name"],
                last_name=m["last_name"],
                email=m["email"],
                phone_numbers=m["phone_numbers"],
                organization_id=m["organization_id"],
                organization_name=m["organization_name"],
                deleted=bool(m["deleted"]),
                updated_at=m["updated_at"],
            )
    return found


def mirror_keys(conn: Connection, *, after: str | None = None, limit: int = 500) -> list[str]:
    """A keyset page of every mirror externalId (full reconcile; primary-key order)."""
    q = sa.select(crm_contacts.c.external_id)
    if after is not None:
        q = q.where(crm_contacts.c.external_id > after)
    q = q.order_by(crm_contacts.c.external_id).limit(limit)
    return [r[0] for r in conn.execute(q)]


def live_mirror_exists(conn: Connection) -> bool:
    """Whether the mirror holds at least one live (not tombstoned) row."""
    q = sa.select(crm_contacts.c.external_id).where(crm_contacts.c.deleted == sa.false()).limit(1)
    return conn.execute(q).first() is not None


def count_change_deletes(conn: Connection) -> int:
    """Linked externalIds in the change log whose mirror row is tombstoned or gone.

    Costs what the change log holds: each change row probes two primary keys.
    """
    live = (
        sa.select(crm_contacts.c.external_id)
        .where(crm_contacts.c.external_id == mirror_changes.c.external_id)
        .where(crm_contacts.c.deleted == sa.false())
    )
    q = (
        sa.select(sa.func.count(sa.distinct(mirror_changes.c.external_id)))
        .select_from(
            mirror_changes.join(
                contact_links, contact_links.c.external_id == mirror_changes.c.external_id
            )
        )
        .where(contact_links.c.genesys_id.is_not(None))
        .where(contact_links.c.state != "held")
        .where(~sa.exists(live))
    )
    return int(conn.execute(q).scalar_one())


def count_mirror(conn: Connection) -> int:
    """Every mirror row (a full reconcile's progress total)."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(crm_contacts)).scalar_one())


def unknown_external_ids(conn: Connection, external_ids: Sequence[str]) -> list[str]:
    """Those of ``external_ids`` with neither a mirror row nor a link (primary-key probes)."""
    known: set[str] = set()
    for chunk in _chunks(list(external_ids)):
        for table in (crm_contacts, contact_links):
            q = sa.select(table.c.external_id).where(table.c.external_id.in_(chunk))
            known.update(r[0] for r in conn.execute(q))
    return [e for e in external_ids if e not in known]
