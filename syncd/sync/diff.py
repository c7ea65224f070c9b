"""The diff: one externalId in, one decision out. Pure: no I/O, no clock, no database.

Inputs are the desired state (a canonical contact, a row that cannot be sent, or absence),
the link (what syncd last knew Genesys held) and, when the run looked, what Genesys holds for
that externalId. Comparing canonical content hashes is what makes "unchanged" cost zero calls
(invariant 5); changes are always expressed as ``{field: [old, new]}`` so a PATCH names only
the changed fields. Deletes come only from links (invariant 3); the guards decide later whether
they may happen (invariant 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from syncd.model import Contact
from syncd.store.links import PENDING_STATES, Link
from syncd.sync.canonical import changed_fields

Changes = dict[str, list[Any]]

# --- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Wanted:
    """The mirror row, normalized: what Genesys should hold."""

    contact: Contact
    hash: str
    # What the CRM calls the contact's organization, when organizations are records and so
    # the name is not part of the contact (ContentRules.organizations_as_records).
    organization_name: str | None = None


@dataclass(frozen=True, slots=True)
class Invalid:
    """A mirror row that cannot be sent; ``raw_hash`` identifies its content."""

    reasons: tuple[str, ...]
    raw_hash: str


@dataclass(frozen=True, slots=True)
class Absent:
    """No live mirror row: tombstoned (``deleted``) or gone altogether."""

    tombstoned: bool = False


Desired = Wanted | Invalid | Absent


@dataclass(frozen=True, slots=True)
class Remote:
    """A remote contact in canonical form."""

    genesys_id: str
    contact: Contact
    hash: str
    outside_division: str | None = None  # see RemoteContact.outside_division


@dataclass(frozen=True, slots=True)
class RemoteView:
    """What a run saw in Genesys for one externalId.

    ``observed`` is False for incremental runs (no listing, no lookup). ``linked`` is the
    linked contact as seen (None: missing from the listing, or 404 on GET, which
    ``confirmed_missing`` then says). ``others`` are unlinked contacts carrying the externalId.
    """

    observed: bool = False
    linked: Remote | None = None
    others: tuple[Remote, ...] = ()
    confirmed_missing: bool = False


NOT_OBSERVED = RemoteView()

# --- actions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Create:
    contact: Contact
    changes: Changes


@dataclass(frozen=True, slots=True)
class Update:
    """PATCH the changed fields; ``changes`` old values are what syncd last wrote."""

    genesys_id: str
    contact: Contact
    changes: Changes


@dataclass(frozen=True, slots=True)
class Drift:
    """Genesys was edited by hand: the CRM wins; ``changes`` old values are the remote ones."""

    genesys_id: str
    contact: Contact
    changes: Changes


@dataclass(frozen=True, slots=True)
class Delete:
    genesys_id: str


@dataclass(frozen=True, slots=True)
class Adopt:
    """Link an existing contact with this externalId instead of creating a duplicate."""

    remote: Remote
    contact: Contact
    changes: Changes


@dataclass(frozen=True, slots=True)
class Recreate:
    """The linked contact is missing remotely: confirm with a GET unless already confirmed."""

    genesys_id: str
    contact: Contact
    changes: Changes
    confirmed: bool


@dataclass(frozen=True, slots=True)
class Reject:
    reasons: tuple[str, ...]
    raw_hash: str


@dataclass(frozen=True, slots=True)
class Unchanged:
    """Nothing to send. ``seen`` is the remote when a run observed it equal to the mirror."""

    contact: Contact
    hash: str
    seen: Remote | None = None


@dataclass(frozen=True, slots=True)
class Forget:
    """A link that never reached Genesys and is no longer wanted: drop it, no call."""


@dataclass(frozen=True, slots=True)
class Wait:
    reason: str


@dataclass(frozen=True, slots=True)
class Nothing:
    """Not wanted, not ours: nothing to do (orphans may still be reported)."""


Action = (
    Create
    | Update
    | Drift
    | Delete
    | Adopt
    | Recreate
    | Reject
    | Unchanged
    | Forget
    | Wait
    | Nothing
)
WRITES = (Create, Update, Drift, Delete, Adopt, Recreate)


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    duplicates: tuple[Remote, ...] = field(default=())
    orphans: tuple[Remote, ...] = field(default=())


# --- the function ---------------------------------------------------------------------------


def diff(
    desired: Desired,
    link: Link | None,
    remote: RemoteView = NOT_OBSERVED,
    *,
    now: datetime,
    ignore_backoff: bool = False,
) -> Decision:
    """Decide what to do for one externalId (see the module docstring)."""
    if link is not None and link.state in PENDING_STATES:
        return Decision(Wait(f"unresolved {link.state} intent"))
    if isinstance(desired, Invalid):
        if link is not None and link.rejected_hash == desired.raw_hash:
            return Decision(Wait("rejected row unchanged"))
        return Decision(Reject(desired.reasons, desired.raw_hash))
    if (
        link is not None
        and link.state == "failed"
        and link.next_attempt_at is not None
        and link.next_attempt_at > now
        and not ignore_backoff
    ):
        return Decision(Wait(f"backing off until {link.next_attempt_at.isoformat()}"))
    if isinstance(desired, Absent):
        return _absent(link, remote)
    return _wanted(desired, link, remote)


def _absent(link: Link | None, remote: RemoteView) -> Decision:
    if link is not None and link.genesys_id is not None:
        return Decision(Delete(link.genesys_id), duplicates=remote.others)
    if link is not None:
        return Decision(Forget(), orphans=remote.others)
    return Decision(Nothing(), orphans=remote.others)


def _wanted(desired: Wanted, link: Link | None, remote: RemoteView) -> Decision:
    contact, digest = desired.contact, desired.hash
    if link is not None and link.rejected_hash == digest:
        return Decision(Wait("content rejected by the API; waiting for it to change"))
    if link is None or link.genesys_id is None:
        if not remote.observed or not remote.others:
            return Decision(Create(contact, changed_fields(None, contact)))
        if len(remote.others) == 1:
            found = remote.others[0]
            return Decision(Adopt(found, contact, changed_fields(found.contact, contact)))
        return Decision(
            Wait("several Genesys contacts share this externalId"), duplicates=remote.others
        )
    gid = link.genesys_id
    if not remote.observed:
        if link.synced_hash == digest:
            return Decision(Unchanged(contact, digest))
        return Decision(Update(gid, contact, changed_fields(link.synced_content, contact)))
    if remote.linked is None:
        if remote.others:
            found, rest = remote.others[0], remote.others[1:]
            adopt = Adopt(found, contact, changed_fields(found.contact, contact))
            return Decision(adopt, duplicates=rest)
        changes = changed_fields(None, contact)
        return Decision(Recreate(gid, contact, changes, confirmed=remote.confirmed_missing))
    seen = remote.linked
    if seen.hash == digest:
        return Decision(Unchanged(contact, digest, seen=seen), duplicates=remote.others)
    changes = changed_fields(seen.contact, contact)
    if link.synced_hash is not None and seen.hash == link.synced_hash:
        return Decision(Update(gid, contact, changes), duplicates=remote.others)
    return Decision(Drift(gid, contact, changes), duplicates=remote.others)
