"""Wire profiles: how one flavour of the contacts API looks on the wire.

The core (store, search index, auth, rate limit, faults, stats) is shared; a profile owns
its paths, its JSON shape and its validation. It stores contacts as its own wire
documents and tells the core what it needs to know about one: the external id (for the
write log) and the search terms. Adding the production "externalcontacts" profile means
adding a module here and a line in :func:`get_profile`, not touching the core (it did:
``externalcontacts.py``). A profile may also have state of its own (``reset(config)``,
``persist_state()``, ``restore_state(extra)``) and ``rate_limit_headers = False`` when
its API sends no ``X-Rate-Limit-*`` headers; the core looks for them with ``getattr``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from syncd.emulator.search import SearchTerms
from syncd.emulator.store import Doc, StoredContact

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from syncd.emulator.state import Emulator

PROFILES = ("reference", "externalcontacts")


class Profile(Protocol):
    name: str

    def prepare_seed(self, raw: Any, *, new_id: Callable[[], str], now: str) -> StoredContact:
        """Validate a seeded (or persisted) contact; keeps its id and dates when given.

        Raises ValueError with a readable message when the document is not acceptable.
        """
        ...

    def external_id(self, doc: Doc) -> str | None: ...

    def search_terms(self, doc: Doc) -> SearchTerms: ...

    def routes(self, emulator: Emulator) -> list[BaseRoute]:
        """The API routes of this profile (mounted at the root; paths include /api/v2)."""
        ...


def get_profile(name: str) -> Profile:
    if name == "reference":
        from syncd.emulator.profiles.reference import ReferenceProfile

        return ReferenceProfile()
    if name == "externalcontacts":
        from syncd.emulator.profiles.externalcontacts import ExternalContactsProfile

        return ExternalContactsProfile()
    raise ValueError(f"unknown emulator profile {name!r} (known: {', '.join(PROFILES)})")
