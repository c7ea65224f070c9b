"""What every wire profile shares: the request value, the protocols the client detects, and
the few mapping rules both wire formats agree on.

It imports no profile, so the profiles and the package ``__init__`` (which only assembles
them) can all import from here without a cycle.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote

from syncd.genesys.api import Page
from syncd.genesys.profiles._shape import obj, opt_str
from syncd.model import Contact, Organization, RemoteContact


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One HTTP request, relative to the API base URL.

    ``route`` is the path template (``/contacts/{id}``) used in logs and errors, so contact
    ids and search terms (personal data) stay out of log aggregation keys.
    """

    method: str
    path: str
    route: str
    params: Mapping[str, str | int] = field(default_factory=dict)
    json: Any = None
    # A POST whose effect is the same however often it is sent (a bulk update, remove or
    # read): retried like PUT after a failure that may have been applied.
    idempotent: bool = False


class Profile(Protocol):
    """Maps canonical contacts and operations to one wire format."""

    name: str
    # Whether the full listing reads the contacts themselves (no lagging index), so that a
    # complete, stable listing proves an externalId absent (ContactsApi.listing_proves_absence).
    listing_proves_absence: bool

    @property
    def lookup_proves_absence(self) -> bool:
        """Whether a lookup that finds nothing proves an externalId absent (ContactsApi.
        lookup_proves_absence): only a keyed lookup the operator declared consistent."""
        ...

    @property
    def lookup_miss_status(self) -> int | None:
        """The status a lookup answers when nothing holds the externalId (None: an empty
        list, and every error status is an error)."""
        ...

    def list_request(self, token: str | None, page_size: int) -> RequestSpec: ...

    def parse_page(self, body: Any, token: str | None, page_size: int) -> Page: ...

    def get_request(self, genesys_id: str) -> RequestSpec: ...

    def unresolved_request(self, genesys_id: str) -> RequestSpec | None:
        """Read a contact as it was before a merge (None: the API merges no contacts)."""
        ...

    def merged_into(self, body: Any, genesys_id: str) -> str | None:
        """The surviving contact an answer about ``genesys_id`` names (``canonicalContact``,
        else ``mergedTo``), when that is another contact; None when it was not merged."""
        ...

    def lookup_request(self, external_id: str) -> RequestSpec:
        """Find the contacts holding ``external_id`` (search, or a keyed lookup)."""
        ...

    def parse_lookup(self, body: Any) -> list[RemoteContact]: ...

    def create_request(self, contact: Contact) -> RequestSpec: ...

    def patch_request(
        self, genesys_id: str, changes: Mapping[str, Any], contact: Contact
    ) -> RequestSpec: ...

    def replace_request(self, genesys_id: str, contact: Contact) -> RequestSpec: ...

    def delete_request(self, genesys_id: str) -> RequestSpec: ...

    def parse_contact(self, body: Any) -> RemoteContact:
        """One contact body; ApiProtocolError when it is not the documented shape."""
        ...


@runtime_checkable
class SourceProfile(Protocol):
    """A profile that must find (or create) an external source once, before other calls."""

    @property
    def ready(self) -> bool: ...

    def source_lookup_request(self, cursor: str | None) -> RequestSpec: ...

    def parse_source_lookup(self, body: Any) -> tuple[str | None, str | None]:
        """(the id of our source if on this page, the cursor of the next page)."""
        ...

    def source_create_request(self) -> RequestSpec: ...

    def parse_source(self, body: Any) -> str: ...

    def bind_source(self, source_id: str) -> None: ...


@runtime_checkable
class ReadBeforeWriteProfile(Protocol):
    """Writes are computed against the contact as Genesys holds it right now.

    ``changes`` None means "replace": every canonical field is written (still only the
    fields syncd manages). ``write_request`` returns None when nothing needs sending.
    """

    def write_needs_current(self, changes: Mapping[str, Any] | None) -> bool: ...

    def write_request(
        self,
        genesys_id: str,
        changes: Mapping[str, Any] | None,
        contact: Contact,
        current: RemoteContact | None,
    ) -> RequestSpec | None: ...


@dataclass(frozen=True, slots=True)
class BulkEntry:
    """One element of a bulk answer's ``results``, parsed (matching is the client's job).

    ``external_id``: our external id in the entity sent back (the created entity, or the one
    a failure echoes), so creates can be matched without an id.
    """

    success: bool
    id: str | None
    remote: RemoteContact | None
    external_id: str | None
    status: int | None
    code: str | None = None
    message: str | None = None
    retryable: bool | None = None
    details: Any = None  # the error's ``details``, as a 400 answer's (environmental_cause)


@runtime_checkable
class BulkProfile(Protocol):
    """Bulk endpoints: one request for many entities, one result per entity."""

    def bulk_create_request(self, contacts: Sequence[Contact]) -> RequestSpec: ...

    def bulk_update_request(self, documents: Sequence[dict[str, Any]]) -> RequestSpec: ...

    def bulk_delete_request(self, genesys_ids: Sequence[str]) -> RequestSpec: ...

    def bulk_read_request(self, genesys_ids: Sequence[str]) -> RequestSpec: ...

    def parse_bulk(self, body: Any) -> list[BulkEntry]: ...

    def merged_document(self, current: RemoteContact, contact: Contact) -> dict[str, Any]:
        """The full entity for a bulk update: ``current`` with syncd's fields replaced."""
        ...

    def merged_into(self, body: Any, genesys_id: str) -> str | None:
        """As :meth:`Profile.merged_into`: the survivor a read of ``genesys_id`` names."""
        ...

    def representation_problem(self, contact: Contact) -> str | None:
        """Why ``contact`` cannot be expressed in this wire format (None: it can)."""
        ...


# -- mapping rules both wire formats share ---------------------------------------------------


def contact_path(collection: str, genesys_id: str) -> str:
    """``collection/<id>`` with the id escaped; an empty id is a caller bug, not a listing."""
    if not genesys_id:
        raise ValueError("a Genesys contact id must not be empty")
    return f"{collection}/{quote(genesys_id, safe='')}"


def search_term(external_id: str) -> str:
    """The looked-up value of an external id (an empty search would match everything)."""
    if not external_id:
        raise ValueError("cannot look up an empty externalId")
    return external_id


def reject_unknown_fields(fields: Collection[str], known: Collection[str]) -> None:
    """A PATCH naming a field the profile does not map is a caller bug."""
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ValueError(f"not canonical contact fields: {', '.join(unknown)}")


def organization_body(contact: Contact) -> dict[str, str] | None:
    """``externalOrganization`` as sent: its set keys, None when it has neither."""
    org = contact.organization
    if org is None or (org.id is None and org.name is None):
        return None
    return {k: v for k, v in (("id", org.id), ("name", org.name)) if v is not None}


def parse_organization(data: dict[str, Any], where: str) -> Organization | None:
    """``externalOrganization`` read back; one with neither id nor name is no organization."""
    org_raw = data.get("externalOrganization")
    if org_raw is None:
        return None
    org = obj(org_raw, f"{where}.externalOrganization")
    org_id = opt_str(org, "id", f"{where}.externalOrganization")
    org_name = opt_str(org, "name", f"{where}.externalOrganization")
    if org_id is None and org_name is None:
        return None
    return Organization(id=org_id, name=org_name)
