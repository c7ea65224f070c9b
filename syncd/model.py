"""The canonical contact, shared by every layer (the wire profiles map it to and from JSON).

A :class:`Contact` holds content only: what the CRM wants Genesys to show. Server-managed
fields (id, dateCreated, dateModified) live on :class:`RemoteContact`. Normalization (NFC,
lower-cased emails, E.164 phones) happens in ``syncd.sync.canonical`` before a Contact is
compared or sent, so equal content always compares equal (invariant 5, no churn).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# The canonical field names; a PATCH names a subset of these.
CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone_numbers",
    "organization",
)


@dataclass(frozen=True, slots=True)
class Phone:
    number: str
    type: str = "WORK"  # WORK | MOBILE | HOME | OTHER


@dataclass(frozen=True, slots=True)
class Organization:
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Contact:
    external_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone_numbers: tuple[Phone, ...] = ()
    organization: Organization | None = None

    def content(self) -> dict[str, Any]:
        """Plain JSON-able content keyed by canonical field name (stable for hashing)."""
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
            "phone_numbers": [{"number": p.number, "type": p.type} for p in self.phone_numbers],
            "organization": (
                {"id": self.organization.id, "name": self.organization.name}
                if self.organization
                else None
            ),
        }

    @classmethod
    def from_content(cls, external_id: str, content: dict[str, Any]) -> Contact:
        org = content.get("organization")
        return cls(
            external_id=external_id,
            first_name=content.get("first_name"),
            last_name=content.get("last_name"),
            email=content.get("email"),
            phone_numbers=tuple(
                Phone(number=p["number"], type=p.get("type") or "WORK")
                for p in content.get("phone_numbers") or ()
            ),
            organization=Organization(id=org.get("id"), name=org.get("name")) if org else None,
        )


@dataclass(frozen=True, slots=True)
class RemoteContact:
    """A contact as Genesys holds it. ``contact.external_id`` may be empty ("" = none)."""

    genesys_id: str
    contact: Contact
    date_created: datetime | None = None
    date_modified: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    # False for the Ephemeral and Identified contacts Genesys' identity resolution makes
    # (web messaging, journeys): they expire, and no CRM sync owns them.
    curated: bool = True
    # externalcontacts with [genesys] division_id: the other division the contact lives in
    # (None: in the configured one, or no division configured). syncd never moves it.
    outside_division: str | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write call returned: the stored contact (when the API echoes it) and tracing."""

    genesys_id: str
    remote: RemoteContact | None
    status: int
    correlation_id: str | None = None
