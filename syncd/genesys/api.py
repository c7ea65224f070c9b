"""The interface the sync engine uses to talk to Genesys (and nothing else does).

Implementations: :class:`syncd.genesys.client.GenesysClient` (HTTP, either wire profile).
Every method raises only :class:`syncd.errors.ApiError` subclasses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from syncd.model import Contact, RemoteContact, WriteResult


@dataclass(frozen=True, slots=True)
class Page:
    """One listing page. ``next_token`` is None on the last page (a page number or a cursor)."""

    contacts: list[RemoteContact]
    next_token: str | None
    total: int | None = None


class ContactsApi(Protocol):
    async def list_page(self, token: str | None = None, page_size: int = 100) -> Page:
        """One page of the full listing; ``token`` is the previous page's ``next_token``."""
        ...

    def iter_all(self, page_size: int = 100) -> AsyncIterator[RemoteContact]:
        """Every contact, page by page (streamed: never the whole org in memory)."""
        ...

    async def get(self, genesys_id: str) -> RemoteContact:
        """One contact; ApiNotFoundError when it does not exist."""
        ...

    async def find_by_external_id(self, external_id: str) -> list[RemoteContact]:
        """Contacts whose externalId equals ``external_id`` exactly (search, then filter).

        Search is indexed asynchronously: an empty answer does not prove absence.
        """
        ...

    async def create(self, contact: Contact) -> WriteResult:
        """POST a contact. Never retried once sent: OutcomeUnknownError when unsure."""
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
