"""Sync state per externalId (``contact_links``): what Genesys is known to hold for it.

A link with ``genesys_id`` set is a contact syncd created or adopted; only those are ever
deleted (invariant 3). A link without one is a create in flight (``pending_create``) or a row
that could not be sent (``failed`` with ``rejected_hash``). Every query here is served by an
index (primary key, the unique ``genesys_id``, or ``(state, next_attempt_at)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syncd.store.schema import contact_links, crm_contacts

PENDING_STATES = ("pending_create", "pending_update", "pending_delete")


@dataclass(frozen=True, slots=True)
class Link:
    external_id: str
    state: str
    genesys_id: str | None = None
    origin: str = "created"
    synced_hash: str | None = None
    synced_content: dict[str, Any] | None = None
    rejected_hash: str | None = None
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None

    def evolve(self, **changes: Any) -> Link:
        return replace(self, **changes)


_COLUMNS = (
    "external_id",
    "genesys_id",
    "state",
    "origin",
    "synced_hash",
    "synced_content",
    "rejected_hash",
    "attempts",
    "next_attempt_at",
    "last_error",
)


def _link(row: sa.Row[Any]) -> Link:
    m = row._mapping
    return Link(**{c: m[c] for c in _COLUMNS})


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def get_links(conn: Connection, external_ids: Sequence[str]) -> dict[str, Link]:
    """The links of these externalIds (primary-key lookups)."""
    found: dict[str, Link] = {}
    for chunk in _chunks(list(external_ids)):
        rows = conn.execute(sa.select(contact_links).where(contact_links.c.external_id.in_(chunk)))
        for row in rows:
            link = _link(row)
            found[link.external_id] = link
    return found


def get_link(conn: Connection, external_id: str) -> Link | None:
    return get_links(conn, [external_id]).get(external_id)


def links_by_genesys_id(conn: Connection, genesys_ids: Sequence[str]) -> dict[str, Link]:
    """Links keyed by genesys_id (unique index)."""
    found: dict[str, Link] = {}
    for chunk in _chunks(list(genesys_ids)):
        rows = conn.execute(sa.select(contact_links).where(contact_links.c.genesys_id.in_(chunk)))
        for row in rows:
            link = _link(row)
            assert link.genesys_id is not None
            found[link.genesys_id] = link
    return found


def save_link(conn: Connection, link: Link) -> None:
    """Insert or update (syncd is the only writer of this table: no upsert race)."""
    values = {c: getattr(link, c) for c in _COLUMNS if c != "external_id"}
    values["updated_at"] = datetime.now(UTC)
    result = conn.execute(
        sa.update(contact_links)
        .where(contact_links.c.external_id == link.external_id)
        .values(**values)
    )
    if result.rowcount == 0:
        conn.execute(sa.insert(contact_links).values(external_id=link.external_id, **values))


def delete_link(conn: Connection, external_id: str) -> None:
    conn.execute(sa.delete(contact_links).where(contact_links.c.external_id == external_id))


def keys_in_states(
    conn: Connection,
    states: Sequence[str],
    *,
    due_before: datetime | None = None,
    after: str | None = None,
    limit: int = 500,
) -> list[str]:
    """externalIds of links in ``states`` (optionally due by ``due_before``), keyset-paged.

    Served by ``ix_contact_links_state_next_attempt_at`` for the state filter.
    """
    q = sa.select(contact_links.c.external_id).where(contact_links.c.state.in_(states))
    if due_before is not None:
        q = q.where(
            sa.or_(
                contact_links.c.next_attempt_at.is_(None),
                contact_links.c.next_attempt_at <= due_before,
            )
        )
    if after is not None:
        q = q.where(contact_links.c.external_id > after)
    q = q.order_by(contact_links.c.external_id).limit(limit)
    return [r[0] for r in conn.execute(q)]


def due_failed_keys(
    conn: Connection, now: datetime, *, after: str | None = None, limit: int = 500
) -> list[str]:
    """Failed links whose backoff has elapsed (those waiting on rejected content have no
    ``next_attempt_at`` and are not due: they wait for a mirror change)."""
    q = (
        sa.select(contact_links.c.external_id)
        .where(contact_links.c.state == "failed")
        .where(contact_links.c.next_attempt_at.is_not(None))
        .where(contact_links.c.next_attempt_at <= now)
    )
    if after is not None:
        q = q.where(contact_links.c.external_id > after)
    q = q.order_by(contact_links.c.external_id).limit(limit)
    return [r[0] for r in conn.execute(q)]


def count_linked(conn: Connection) -> int:
    """Contacts syncd holds in Genesys (the base of the delete-percent guard)."""
    q = (
        sa.select(sa.func.count())
        .select_from(contact_links)
        .where(contact_links.c.genesys_id.is_not(None))
    )
    return int(conn.execute(q).scalar_one())


def count_in_state(conn: Connection, state: str) -> int:
    q = sa.select(sa.func.count()).select_from(contact_links).where(contact_links.c.state == state)
    return int(conn.execute(q).scalar_one())


def count_in_states(conn: Connection, states: Sequence[str]) -> int:
    q = (
        sa.select(sa.func.count())
        .select_from(contact_links)
        .where(contact_links.c.state.in_(states))
    )
    return int(conn.execute(q).scalar_one())


def _without_live_mirror() -> sa.ColumnElement[bool]:
    live = (
        sa.select(crm_contacts.c.external_id)
        .where(crm_contacts.c.external_id == contact_links.c.external_id)
        .where(crm_contacts.c.deleted == sa.false())
    )
    return ~sa.exists(live)


def count_linked_without_live_mirror(conn: Connection) -> int:
    """Linked contacts whose mirror row is tombstoned or gone: a full reconcile's deletes."""
    q = (
        sa.select(sa.func.count())
        .select_from(contact_links)
        .where(contact_links.c.genesys_id.is_not(None))
        .where(_without_live_mirror())
    )
    return int(conn.execute(q).scalar_one())


def keys_without_mirror_row(
    conn: Connection, *, after: str | None = None, limit: int = 500
) -> list[str]:
    """Links whose externalId has no mirror row at all (deleted by an ETL job)."""
    exists = sa.select(crm_contacts.c.external_id).where(
        crm_contacts.c.external_id == contact_links.c.external_id
    )
    q = sa.select(contact_links.c.external_id).where(~sa.exists(exists))
    if after is not None:
        q = q.where(contact_links.c.external_id > after)
    q = q.order_by(contact_links.c.external_id).limit(limit)
    return [r[0] for r in conn.execute(q)]
