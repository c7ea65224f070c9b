"""Turning stored rows into the diff's inputs, one batch of externalIds at a time.

Mirror rows become :class:`~syncd.sync.diff.Desired` (normalized, or rejected with reasons);
remote contacts (listed, fetched or found) become canonical :class:`~syncd.sync.diff.Remote`.
A batch is loaded with a handful of keyed queries, never a scan.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.model import Contact, RemoteContact
from syncd.store import changes, links
from syncd.store.db import Database
from syncd.store.links import Link
from syncd.store.snapshot import Snapshot, SnapshotRow
from syncd.sync.canonical import (
    ContentRules,
    RawContact,
    RejectedRow,
    content_hash,
    normalize_remote,
)
from syncd.sync.diff import (
    NOT_OBSERVED,
    Absent,
    Decision,
    Desired,
    Invalid,
    Remote,
    RemoteView,
    Wanted,
)


@dataclass(slots=True)
class Item:
    """One externalId to decide: what the mirror wants, the link, what Genesys showed."""

    external_id: str
    desired: Desired
    link: Link | None
    view: RemoteView = NOT_OBSERVED
    change_ids: list[int] = field(default_factory=list)


# One row and what the diff decided for it (the unit the executor and the writers pass on).
Decided = tuple[Item, Decision]


def _text(name: str, value: Any, reasons: list[str]) -> str | None:
    if value is None or isinstance(value, str):
        return value
    reasons.append(f"{name}: stored as {type(value).__name__}, expected text")
    return None


def _phones(text: str | None, reasons: list[str]) -> tuple[tuple[str, str], ...]:
    if text is None or text in ("", "null"):
        return ()
    try:
        data = json.loads(text)
    except ValueError:
        reasons.append("phoneNumbers: stored value is not JSON")
        return ()
    if not isinstance(data, list):
        reasons.append("phoneNumbers: stored value is not a JSON list")
        return ()
    out: list[tuple[str, str]] = []
    for item in data:
        if isinstance(item, dict) and isinstance(item.get("number"), str):
            kind = item.get("type")
            out.append((item["number"], kind if isinstance(kind, str) else "WORK"))
        elif isinstance(item, str):
            out.append((item, "WORK"))
        else:
            reasons.append(f"phoneNumbers: entry {item!r} is not {{number, type}}")
    return tuple(out)


def desired_from_row(row: changes.MirrorRow | None, rules: ContentRules) -> Desired:
    """The desired state for a mirror row (``None``: the row is gone)."""
    if row is None:
        return Absent(tombstoned=False)
    if row.deleted:
        return Absent(tombstoned=True)
    reasons: list[str] = []
    raw = RawContact(
        external_id=row.external_id,
        first_name=_text("firstName", row.first_name, reasons),
        last_name=_text("lastName", row.last_name, reasons),
        email=_text("email", row.email, reasons),
        phone_numbers=_phones(row.phone_numbers, reasons),
        organization_id=_text("organizationId", row.organization_id, reasons),
        organization_name=_text("organizationName", row.organization_name, reasons),
    )
    try:
        contact = rules.normalize(raw)
    except RejectedRow as exc:
        reasons.extend(exc.reasons)
    if reasons:
        return Invalid(tuple(reasons), raw_hash(row))
    referenced = rules.referencing(contact)
    return Wanted(referenced, content_hash(referenced), rules.record_name(contact))


def raw_hash(row: changes.MirrorRow) -> str:
    """Identifies a rejected row's stored content, so it is re-tried only when that changes."""
    data = [
        row.first_name,
        row.last_name,
        row.email,
        row.phone_numbers,
        row.organization_id,
        row.organization_name,
    ]
    blob = json.dumps(data, default=str, ensure_ascii=False)
    return "raw:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:60]


def canonical_remote(rc: RemoteContact, rules: ContentRules) -> Remote:
    contact = rules.referencing(normalize_remote(rc.contact, default_region=rules.default_region))
    return Remote(rc.genesys_id, contact, content_hash(contact), rc.outside_division)


def snapshot_row(rc: RemoteContact, rules: ContentRules) -> SnapshotRow:
    remote = canonical_remote(rc, rules)
    return SnapshotRow(
        remote.genesys_id,
        remote.contact.external_id or None,
        remote.contact.content(),
        remote.hash,
    )


def remote_from_snapshot(row: SnapshotRow) -> Remote:
    contact = Contact.from_content(row.external_id or "", row.content)
    return Remote(row.genesys_id, contact, row.content_hash)


def load_items(
    db: Database, external_ids: Sequence[str], rules: ContentRules, *, with_changes: bool = False
) -> list[Item]:
    """Desired state and link for each externalId (remote not observed).

    ``with_changes`` (a full reconcile) also takes the pending change ids of each, read in the
    same transaction as its mirror row, so settling the item consumes the changes it covers
    and the next incremental run does not diff them again.
    """
    with db.read() as conn:
        rows = changes.load_mirror(conn, external_ids)
        found = links.get_links(conn, external_ids)
        pending = changes.change_ids_for(conn, external_ids) if with_changes else {}
    return [
        Item(
            ext,
            desired_from_row(rows.get(ext), rules),
            found.get(ext),
            change_ids=pending.get(ext, []),
        )
        for ext in external_ids
    ]


def observe_snapshot(db: Database, snapshot: Snapshot, items: Sequence[Item]) -> None:
    """Fill each item's view from the snapshot (full reconcile): the linked contact by id, and
    the contacts carrying its externalId that no other link claims."""
    by_ext = snapshot.by_external_ids([i.external_id for i in items])
    linked_ids = [i.link.genesys_id for i in items if i.link and i.link.genesys_id]
    by_gid = snapshot.by_genesys_ids(linked_ids)
    candidate_ids = [r.genesys_id for rows in by_ext.values() for r in rows]
    with db.read() as conn:
        claimed = links.links_by_genesys_id(conn, candidate_ids)
    for item in items:
        gid = item.link.genesys_id if item.link else None
        linked = by_gid.get(gid) if gid else None
        others = tuple(
            remote_from_snapshot(r)
            for r in by_ext.get(item.external_id, ())
            if r.genesys_id != gid and r.genesys_id not in claimed
        )
        item.view = RemoteView(
            observed=True,
            linked=remote_from_snapshot(linked) if linked else None,
            others=others,
        )
