"""The "externalcontacts" wire profile: production Genesys Cloud's External Contacts API.

The contact document (fields, validation, limits) is ``externalcontacts_document.py``; the
routes are ``externalcontacts_routes.py`` (contacts, scan, external sources) and
``externalcontacts_bulk.py`` (bulk endpoints). This module is the object the core talks to,
holding the profile's own state: the external sources and the bulk shuffle.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syncd.emulator.profiles import externalcontacts_bulk, externalcontacts_routes
from syncd.emulator.profiles._common import Invalid, seed_identity
from syncd.emulator.profiles.externalcontacts_document import (
    EMAIL_FIELDS,
    PHONE_FIELDS,
    build,
    validate,
)
from syncd.emulator.profiles.externalcontacts_sources import Sources
from syncd.emulator.search import SearchTerms, digits
from syncd.emulator.store import Doc, StoredContact

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from syncd.emulator.config import EmulatorConfig
    from syncd.emulator.state import Emulator


class ExternalContactsProfile:
    """The profile object; one per emulator, holding the external sources."""

    name = "externalcontacts"
    rate_limit_headers = False  # production signals its limit by 429 + Retry-After only

    def __init__(self) -> None:
        self.sources = Sources(seed=0)
        self.bulk_order = random.Random("syncd-emulator:0:bulk-order")
        self.bulk_max_entities = 100

    # -- state hooks called by the core ----------------------------------------------------

    def reset(self, config: EmulatorConfig) -> None:
        self.sources = Sources(seed=config.seed)
        self.bulk_order = random.Random(f"syncd-emulator:{config.seed}:bulk-order")
        self.bulk_max_entities = config.bulk_max_entities

    def persist_state(self) -> dict[str, Any]:
        return {"externalSources": self.sources.all()}

    def restore_state(self, extra: dict[str, Any]) -> None:
        for doc in extra.get("externalSources") or []:
            self.sources.register(doc)

    # -- the core's Profile protocol -------------------------------------------------------

    def prepare_seed(self, raw: Any, *, new_id: Callable[[], str], now: str) -> StoredContact:
        """Seeded contacts may name their sources: ``externalSource: {id, name}`` entries
        register missing sources (with ``name``, else the id as the name)."""
        if isinstance(raw, dict):
            for item in raw.get("externalIds") or []:
                source = item.get("externalSource") if isinstance(item, dict) else None
                if (
                    isinstance(source, dict)
                    and isinstance(source.get("id"), str)
                    and self.sources.get(source["id"]) is None
                ):
                    self.sources.register(
                        {"id": source["id"], "name": source.get("name") or source["id"]}
                    )
        try:
            content = validate(raw, known_source=self.sources.exists)
        except Invalid as exc:
            raise ValueError(str(exc)) from None
        contact_id, created, modified = seed_identity(
            raw, new_id=new_id, now=now, created_field="createDate", modified_field="modifyDate"
        )
        doc = build(contact_id, content, created=created, modified=modified)
        return StoredContact(contact_id, created, doc)

    def external_id(self, doc: Doc) -> str | None:
        for item in doc.get("externalIds") or ():
            return str(item["value"])
        return None

    def search_terms(self, doc: Doc) -> SearchTerms:
        names = [doc.get(name, "") for name in ("firstName", "middleName", "lastName")]
        full = " ".join(n for n in (names[0], names[2]) if n)
        phones = []
        for name in PHONE_FIELDS:
            number = doc.get(name)
            if number and (found := digits(number.get("e164") or number["display"])):
                phones.append(found)
        return SearchTerms(
            exact=tuple(item["value"] for item in doc.get("externalIds") or ()),
            emails=tuple(doc[name].lower() for name in EMAIL_FIELDS if doc.get(name)),
            phones=tuple(phones),
            names="\n".join([*names, full]).lower(),
        )

    def routes(self, emulator: Emulator) -> list[BaseRoute]:
        return [
            *externalcontacts_routes.routes(emulator, self),
            *externalcontacts_bulk.routes(emulator, self),
        ]
