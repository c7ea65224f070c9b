"""Organization links (``organization_links``): which Genesys ExternalOrganization record
each CRM organization id is linked to, and the name it was last given.

The table is small (one row per organization, not per contact), so a run reads it whole;
the mirror query below names, per organization, what the CRM calls it now.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from syncd.store.schema import crm_contacts, organization_links

__all__ = ["OrganizationLink", "all_links", "save", "wanted_names"]


@dataclass(frozen=True, slots=True)
class OrganizationLink:
    organization_id: str
    state: str  # synced | pending_create
    origin: str  # created | found
    genesys_id: str | None = None
    name: str | None = None
    intent_at: datetime | None = None

    def evolve(self, **changes: Any) -> OrganizationLink:
        return replace(self, **changes)


def all_links(conn: Connection) -> dict[str, OrganizationLink]:
    rows = conn.execute(sa.select(organization_links)).mappings()
    return {
        r["organization_id"]: OrganizationLink(
            r["organization_id"],
            r["state"],
            r["origin"],
            r["genesys_id"],
            r["name"],
            r["intent_at"],
        )
        for r in rows
    }


def save(conn: Connection, link: OrganizationLink) -> None:
    values = {
        "genesys_id": link.genesys_id,
        "name": link.name,
        "state": link.state,
        "origin": link.origin,
        "intent_at": link.intent_at,
        "updated_at": datetime.now(UTC),
    }
    key = organization_links.c.organization_id == link.organization_id
    if conn.execute(sa.update(organization_links).where(key).values(values)).rowcount == 0:
        conn.execute(
            sa.insert(organization_links).values(organization_id=link.organization_id, **values)
        )


def wanted_names(conn: Connection) -> dict[str, str | None]:
    """What the live mirror calls each organization it names (one scan: a full run's). Rows
    that disagree are settled by majority, then by the smallest name, so that every run
    picks the same one."""
    c = crm_contacts.c
    query = (
        sa.select(c.organization_id, c.organization_name, sa.func.count())
        .where(c.organization_id.is_not(None), c.deleted.is_(sa.false()))
        .group_by(c.organization_id, c.organization_name)
    )
    votes: dict[str, Counter[str | None]] = {}
    for org_id, name, count in conn.execute(query):
        votes.setdefault(org_id, Counter())[name] += count
    return {org_id: _elect(counter) for org_id, counter in votes.items()}


def _elect(votes: Counter[str | None]) -> str | None:
    named = {name: n for name, n in votes.items() if name}
    if not named:
        return None
    return min(named, key=lambda name: (-named[name], name))
