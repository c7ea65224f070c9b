"""The "reference" wire profile: contacts as ``genesys-api-reference.txt`` documents them.

The document model (fields, validation, limits) is in ``reference_document.py``, the
routes under ``/api/v2/contacts`` in ``reference_routes.py``; this module is the object the
core talks to: seeding, the external id for the write log, and the search terms.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syncd.emulator.profiles import reference_routes
from syncd.emulator.profiles._common import Invalid, seed_identity
from syncd.emulator.profiles.reference_document import build, validate
from syncd.emulator.search import SearchTerms, digits
from syncd.emulator.store import Doc, StoredContact

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from syncd.emulator.state import Emulator


class ReferenceProfile:
    name = "reference"

    def prepare_seed(self, raw: Any, *, new_id: Callable[[], str], now: str) -> StoredContact:
        try:
            content = validate(raw, partial=False)
        except Invalid as exc:
            raise ValueError(str(exc)) from None
        contact_id, created, modified = seed_identity(
            raw, new_id=new_id, now=now, created_field="dateCreated", modified_field="dateModified"
        )
        doc = build(contact_id, content, created=created, modified=modified)
        return StoredContact(contact_id, created, doc)

    def external_id(self, doc: Doc) -> str | None:
        value = doc.get("externalId")
        return value if isinstance(value, str) else None

    def search_terms(self, doc: Doc) -> SearchTerms:
        first = doc.get("firstName", "")
        last = doc.get("lastName", "")
        external = doc.get("externalId")
        email = doc.get("email")
        phones = tuple(d for p in doc.get("phoneNumbers", ()) if (d := digits(p["number"])))
        return SearchTerms(
            exact=(external,) if external is not None else (),
            emails=(email.lower(),) if email else (),
            phones=phones,
            names=f"{first}\n{last}\n{first} {last}".lower(),
        )

    def routes(self, emulator: Emulator) -> list[BaseRoute]:
        return reference_routes.routes(emulator)
