"""The interface the sync engine uses to talk to Genesys (and nothing else does).

Implementations: :class:`syncd.genesys.client.GenesysClient` (HTTP, either wire profile).
Every method raises only :class:`syncd.errors.ApiError` subclasses. The capabilities the engine
depends on (bulk endpoints, what a profile can represent, the request counters) are declared
here, so that the engine asks the protocol instead of probing the client.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from syncd.errors import ApiError
from syncd.model import Contact, RemoteContact, WriteResult

TOKEN_ROUTE = "/oauth/token"
"""The ``route`` of errors raised by the login service: no token means no call can succeed,
so the engine ends a run instead of failing every row the same way."""


@dataclass(frozen=True, slots=True)
class Page:
    """One listing page. ``next_token`` is None on the last page (a page number or a cursor)."""

    contacts: list[RemoteContact]
    next_token: str | None
    total: int | None = None


class ApiMetrics(Protocol):
    """The client's counters a run reports (``syncd.genesys.metrics.ClientMetrics``)."""

    @property
    def requests(self) -> int:
        """Requests sent, retries included (token requests excluded)."""
        ...

    @property
    def rate_limited(self) -> int:
        """429 answers received."""
        ...


@dataclass(frozen=True, slots=True)
class OrganizationRecord:
    """An ExternalOrganization as Genesys holds it; ``external_id`` is the CRM's id from
    its externalIds entry in syncd's source (None: it carries none)."""

    genesys_id: str
    name: str | None
    external_id: str | None
    raw: Mapping[str, Any]


class OrganizationDirectoryView(Protocol):
    """Which Genesys record each CRM organization id is linked to (the profile translates
    contacts' references with it; the engine keeps it current)."""

    def bind(self, crm_id: str, genesys_id: str) -> None: ...

    def genesys_id(self, crm_id: str) -> str | None: ...


class OrganizationsApi(Protocol):
    """Organization records, where contacts reference them by Genesys id (externalcontacts)."""

    @property
    def directory(self) -> OrganizationDirectoryView: ...

    async def find(self, crm_id: str) -> OrganizationRecord | None:
        """The record claiming ``crm_id`` in syncd's source (the keyed lookup), or None."""
        ...

    async def create(self, crm_id: str, name: str) -> OrganizationRecord:
        """POST a record carrying ``crm_id``. Never retried once sent: OutcomeUnknownError
        when unsure (look it up before creating it again)."""
        ...

    async def rename(self, genesys_id: str, name: str) -> OrganizationRecord | None:
        """Give the record ``name`` (a read, then one PUT when it differs); None when it
        already had it."""
        ...


class ContactsApi(Protocol):
    @property
    def metrics(self) -> ApiMetrics:
        """Monotonic counters since the client was created (a run reports their delta)."""
        ...

    @property
    def supports_bulk(self) -> bool:
        """Whether the wire profile has bulk endpoints (then this is a :class:`BulkContactsApi`)."""
        ...

    @property
    def listing_proves_absence(self) -> bool:
        """Whether a complete listing shows every contact created before it began (it reads
        the contacts themselves, not an index that lags): then an externalId missing from a
        complete, stable listing that began after a create could have landed was never
        created, and the engine may send that create again at once."""
        ...

    @property
    def lookup_proves_absence(self) -> bool:
        """Whether :meth:`find_by_external_id` finding nothing, asked after a create could
        have landed, proves that create was never applied (a keyed lookup declared
        consistent with writes; never search, which is indexed asynchronously)."""
        ...

    @property
    def scans_every_contact(self) -> bool:
        """Whether the full listing covers every contact that could claim an externalId
        (False when it is limited to ``[genesys] division_id``: then a new row is looked up
        before it is created, since a contact of another division may claim it)."""
        ...

    @property
    def organizations(self) -> OrganizationsApi | None:
        """Organization records (externalcontacts), or None: the profile embeds a contact's
        organization (reference). With records, a contact read back or sent carries the
        CRM's organization id and no name (the name is the record's)."""
        ...

    def representation_problem(self, contact: Contact) -> str | None:
        """Why the wire profile cannot express ``contact`` (None: it can). Writes of such a
        contact raise (or report) ``ApiValidationError`` without sending anything."""
        ...

    async def list_page(self, token: str | None = None, page_size: int = 100) -> Page:
        """One page of the full listing; ``token`` is the previous page's ``next_token``."""
        ...

    def iter_all(self, page_size: int = 100) -> AsyncIterator[RemoteContact]:
        """Every contact, page by page (streamed: never the whole org in memory)."""
        ...

    async def get(self, genesys_id: str) -> RemoteContact:
        """One contact; ApiNotFoundError when it does not exist, ContactMergedError (one)
        when Genesys merged it into another."""
        ...

    async def merged_into(self, genesys_id: str) -> str | None:
        """The contact ``genesys_id`` was merged into in Genesys (the merge chain's head), or
        None: the profile merges nothing, or the contact was not merged (deleted, or never
        existed)."""
        ...

    async def find_by_external_id(self, external_id: str) -> list[RemoteContact]:
        """Contacts whose externalId equals ``external_id`` exactly (the profile's lookup:
        search in the reference profile, the identifier lookup in externalcontacts).

        An empty answer proves absence only where :attr:`lookup_proves_absence` says so.
        """
        ...

    async def create(self, contact: Contact) -> WriteResult:
        """POST a contact. Never retried once sent: OutcomeUnknownError when unsure."""
        ...

    @property
    def upserts(self) -> bool:
        """Whether :meth:`upsert` exists (externalcontacts: ``enrich`` with ``Upsert``)."""
        ...

    async def upsert(self, contact: Contact) -> WriteResult:
        """Create the contact, or update the one that claims its externalId (matched by
        Genesys, not by a lookup): sent again after a lost answer, it cannot make a second
        contact. Like :meth:`create`, never retried once sent: OutcomeUnknownError when
        unsure. ValueError where :attr:`upserts` is False."""
        ...

    async def patch(
        self, genesys_id: str, changes: Mapping[str, Any], *, contact: Contact
    ) -> WriteResult:
        """PATCH only the canonical fields in ``changes`` (``contact`` is the full new state)."""
        ...

    async def replace(self, genesys_id: str, contact: Contact) -> WriteResult:
        """PUT the whole contact."""
        ...

    async def delete(self, genesys_id: str) -> WriteResult:
        """DELETE; a 404 means already gone and is not an error (status 404 in the result)."""
        ...

    async def aclose(self) -> None: ...


BulkOutcome = Literal["ok", "failed", "unknown"]


@dataclass(frozen=True, slots=True)
class BulkItemResult:
    """What happened to one entity of a bulk call (one per input, in input order).

    ``outcome``:

    - ``"ok"``: applied. ``genesys_id`` and, for creates, updates and reads, ``remote`` (the
      contact as stored). A delete of a contact that was already gone is ``ok`` with
      ``status`` 404, like :meth:`ContactsApi.delete`.
    - ``"failed"``: definitely **not** applied. ``error`` is the exception a single call would
      have raised (``ApiValidationError`` for a 400 or for a contact the wire format cannot
      represent, ``ApiNotFoundError`` for an unknown id, ``ApiUnavailableError`` /
      ``ApiRateLimitedError`` for transient trouble, ...); ``retryable`` is the server's flag
      (or, for a whole-batch failure, whether the failure was transient). Retry or reject
      this entity on its own.
    - ``"unknown"``: a create that may or may not have been applied (the batch's answer was
      lost, or does not account for this entity). ``error`` is an ``OutcomeUnknownError``.
      Never re-send it blindly: resolve it with :meth:`ContactsApi.find_by_external_id`.

    ``key`` is the external id (creates) or the Genesys id (updates, deletes);
    ``correlation_id`` is the bulk request's ``ININ-Correlation-Id``.
    """

    index: int
    key: str
    outcome: BulkOutcome
    genesys_id: str | None = None
    remote: RemoteContact | None = None
    status: int | None = None
    error: ApiError | None = None
    retryable: bool = False
    correlation_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


class BulkContactsApi(ContactsApi, Protocol):
    """Bulk writes, an extension of :class:`ContactsApi` (``GenesysClient`` implements both).

    Every method returns exactly one :class:`BulkItemResult` per input, in input order, and
    raises no ``ApiError``: per-entity and whole-batch failures are reported per entity, so
    each entity gets its own ledger row. Inputs are split into batches of
    ``bulk_batch_size`` (a 413 halves a batch; later batches stay at the size that worked)
    sent concurrently through the client's shared throttle. ``ValueError`` for caller bugs
    (the same external id or Genesys id twice in one call).

    ``supports_bulk`` is False when the wire profile has no bulk endpoints (the reference
    profile): the methods then make one single call per entity with the same result
    semantics, so the engine may use them either way.
    """

    @property
    def bulk_batch_size(self) -> int: ...

    async def bulk_create(self, contacts: Sequence[Contact]) -> list[BulkItemResult]:
        """Create each contact (its ``external_id`` must be unique in the call)."""
        ...

    async def bulk_update(self, items: Sequence[tuple[str, Contact]]) -> list[BulkItemResult]:
        """Write the full canonical state of each ``(genesys_id, contact)``.

        Fields syncd does not manage are kept: the contacts are read first (one bulk read
        per batch) and syncd's fields merged into what Genesys holds.
        """
        ...

    async def bulk_delete(self, genesys_ids: Sequence[str]) -> list[BulkItemResult]: ...
