"""Wire profiles: everything that differs between Genesys APIs lives in one module each.

A profile turns canonical operations into :class:`RequestSpec` values and answers back into
canonical objects; it never does I/O. The client adds auth, pacing, retries and error
mapping, so a new API dialect (``externalcontacts``) is one more module here and one more
line in :func:`get_profile`.

A profile may also implement the optional protocols below, which the client detects with
``isinstance``: :class:`SourceProfile` (a one-time discovery step before the first call),
:class:`ReadBeforeWriteProfile` (writes computed from a fresh read, so fields syncd does not
manage are never clobbered) and :class:`BulkProfile` (bulk endpoints).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from syncd.errors import ConfigError
from syncd.genesys.api import Page
from syncd.model import Contact, RemoteContact

if TYPE_CHECKING:
    from syncd.config import GenesysSettings


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

    def list_request(self, token: str | None, page_size: int) -> RequestSpec: ...

    def parse_page(self, body: Any, token: str | None, page_size: int) -> Page: ...

    def get_request(self, genesys_id: str) -> RequestSpec: ...

    def search_request(self, external_id: str) -> RequestSpec: ...

    def parse_search(self, body: Any) -> list[RemoteContact]: ...

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

    def representation_problem(self, contact: Contact) -> str | None:
        """Why ``contact`` cannot be expressed in this wire format (None: it can)."""
        ...


def get_profile(name: str, settings: GenesysSettings | None = None) -> Profile:
    """The profile named in ``genesys.profile`` (a new instance: profiles may hold state)."""
    from syncd.genesys.profiles import externalcontacts, reference

    if name == "reference":
        return reference.ReferenceProfile()
    if name == "externalcontacts":
        return externalcontacts.ExternalContactsProfile.from_settings(settings)
    raise ConfigError(
        f"genesys.profile: the {name!r} wire profile is not implemented (available: "
        "externalcontacts, reference)"
    )
