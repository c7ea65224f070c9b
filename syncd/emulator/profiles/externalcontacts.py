"""The "externalcontacts" wire profile: production Genesys Cloud's External Contacts API.

The contact document (fields, validation, limits) is ``externalcontacts_document.py``; the
routes are ``externalcontacts_routes.py`` (contacts, scan, external sources),
``externalcontacts_bulk.py`` (bulk endpoints), ``externalcontacts_enrich.py`` (identifier
lookup, enrich), ``externalcontacts_organization_routes.py`` (organizations); every
contact write follows ``externalcontacts_writes.py``. This module is the object the core
talks to, holding the profile's own state: external sources, organizations, divisions,
ExternalId claims, merged-away contacts, the variants and the bulk shuffle.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syncd.emulator.profiles import (
    externalcontacts_bulk,
    externalcontacts_enrich,
    externalcontacts_organization_routes,
    externalcontacts_routes,
)
from syncd.emulator.profiles._common import Invalid, seed_identity
from syncd.emulator.profiles.externalcontacts_divisions import Divisions
from syncd.emulator.profiles.externalcontacts_document import (
    CONTACT_TYPES,
    EMAIL_FIELDS,
    PHONE_FIELDS,
    build,
    validate,
)
from syncd.emulator.profiles.externalcontacts_identity import ClaimIndex
from syncd.emulator.profiles.externalcontacts_introspect import introspection_routes
from syncd.emulator.profiles.externalcontacts_merges import Merges
from syncd.emulator.profiles.externalcontacts_organizations import (
    Organizations,
    build_organization,
    validate_organization,
)
from syncd.emulator.profiles.externalcontacts_sources import Sources
from syncd.emulator.profiles.externalcontacts_variants import Variants
from syncd.emulator.profiles.externalcontacts_writes import ContactWriter
from syncd.emulator.search import SearchTerms, digits
from syncd.emulator.store import Doc, StoredContact

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from syncd.emulator.config import EmulatorConfig
    from syncd.emulator.pipeline import ApiCall
    from syncd.emulator.state import Emulator


class ExternalContactsProfile:
    """The profile object; one per emulator, holding the profile's state."""

    name = "externalcontacts"
    rate_limit_headers = False  # production signals its limit by 429 + Retry-After only

    def __init__(self) -> None:
        self.emulator: Emulator | None = None
        self.configured_variants = Variants()
        self._fresh(seed=0, bulk_max_entities=100)

    def _fresh(self, *, seed: int, bulk_max_entities: int) -> None:
        self.sources = Sources(seed=seed)
        self.divisions = Divisions(seed=seed)
        self.organizations = Organizations(seed=seed)
        self.contact_claims = ClaimIndex()
        self.merges = Merges()
        self.variants = self.configured_variants
        self.bulk_order = random.Random(f"syncd-emulator:{seed}:bulk-order")
        self.bulk_max_entities = bulk_max_entities

    # -- state hooks called by the core ----------------------------------------------------

    def reset(self, config: EmulatorConfig) -> None:
        self.configured_variants = Variants().updated(dict(config.variants or {}))
        self._fresh(seed=config.seed, bulk_max_entities=config.bulk_max_entities)

    def observe_write(self, contact_id: str, old: Doc | None, new: Doc | None, now: float) -> None:
        """Every contact write the core applies: the ExternalId claims follow it."""
        lag = self.variants.identifier_lookup_lag_ms / 1000.0
        self.contact_claims.observe(contact_id, old, new, now=now, lag=lag)

    def observe_seeded(self, items: list[StoredContact]) -> None:
        self.contact_claims.load((item.id, item.doc) for item in items)

    def persist_state(self) -> dict[str, Any]:
        return {
            "externalSources": self.sources.all(),
            "divisions": self.divisions.all(),
            "organizations": self.organizations.all(),
            "mergedContacts": self.merges.all(),
        }

    def restore_state(self, extra: dict[str, Any]) -> None:
        for doc in extra.get("externalSources") or []:
            self.sources.register(doc)
        for doc in extra.get("divisions") or []:
            if self.divisions.get(doc.get("id", "")) is None:
                self.divisions.add(doc)
        self.organizations.load(list(extra.get("organizations") or []))
        self.merges.load(list(extra.get("mergedContacts") or []))

    def set_variants(self, changes: dict[str, Any]) -> dict[str, Any]:
        self.variants = self.variants.updated(changes)
        return self.variants.describe()

    # -- what validation checks references against (document.Known) ------------------------

    @property
    def strict_organizations(self) -> bool:
        return self.variants.organization_check == "strict"

    def source_exists(self, source_id: str) -> bool:
        return self.sources.exists(source_id)

    def organization_exists(self, organization_id: str) -> bool:
        return self.organizations.get(organization_id) is not None

    def division_ref(self, division_id: str) -> dict[str, Any] | None:
        return self.divisions.get(division_id)

    # -- reading contacts ------------------------------------------------------------------

    @property
    def writer(self) -> ContactWriter:
        assert self.emulator is not None, "routes() binds the profile to its emulator"
        return ContactWriter(self.emulator, self)

    def read_contact(self, contact_id: str) -> Doc | None:
        """A live contact; a merged-away one per the ``merged_contact_get`` variant."""
        assert self.emulator is not None
        doc = self.emulator.get(contact_id)
        if doc is not None or contact_id not in self.merges:
            return doc
        mode = self.variants.merged_contact_get
        if mode == "canonical":
            return self.emulator.get(self.merges.canonical_id(contact_id))
        return self.merges.unresolved(contact_id) if mode == "unresolved" else None

    def unresolved_contact(self, contact_id: str) -> Doc | None:
        assert self.emulator is not None
        return self.emulator.get(contact_id) or self.merges.unresolved(contact_id)

    def present(self, doc: Doc, call: ApiCall) -> Doc:
        """A contact as a read answers it: its organization as ``{id, selfUri}``, with the
        name under the ``organization_read = "name"`` variant, whole with
        ``expand=externalOrganization``."""
        org = doc.get("externalOrganization")
        if not isinstance(org, dict) or not self.strict_organizations:
            return doc
        expand = ",".join(call.request.query_params.getlist("expand")).split(",")
        record = self.organizations.get(org.get("id", ""))
        if record is None:
            return doc
        if "externalOrganization" in expand:
            return {**doc, "externalOrganization": record}
        if self.variants.organization_read == "name":
            named = {"id": record["id"], "name": record["name"], "selfUri": record["selfUri"]}
            return {**doc, "externalOrganization": named}
        return doc

    # -- the core's Profile protocol -------------------------------------------------------

    def prepare_seed(self, raw: Any, *, new_id: Callable[[], str], now: str) -> StoredContact:
        """Seeded contacts may name their sources (``externalSource: {id, name}``) and
        organizations (``externalOrganization: {id, name}``): missing ones are registered.
        ``type`` may be Curated (the default), Identified or Ephemeral."""
        contact_type = "Curated"
        if isinstance(raw, dict):
            self._register_seed_references(raw, now)
            contact_type = raw.get("type") or "Curated"
            if contact_type not in CONTACT_TYPES:
                raise ValueError(f"type must be one of {', '.join(CONTACT_TYPES)}")
        try:
            content = validate(raw, known=self)
        except Invalid as exc:
            raise ValueError(str(exc)) from None
        content.setdefault("division", self.divisions.home)
        contact_id, created, modified = seed_identity(
            raw, new_id=new_id, now=now, created_field="createDate", modified_field="modifyDate"
        )
        doc = build(
            contact_id, content, created=created, modified=modified, contact_type=contact_type
        )
        return StoredContact(contact_id, created, doc)

    def _register_seed_references(self, raw: dict[str, Any], now: str) -> None:
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
        org = raw.get("externalOrganization")
        if (
            self.strict_organizations
            and isinstance(org, dict)
            and isinstance(org.get("id"), str)
            and self.organizations.get(org["id"]) is None
        ):
            try:
                content = validate_organization({"name": org.get("name") or org["id"]}, known=self)
            except Invalid as exc:
                raise ValueError(str(exc)) from None
            content["division"] = self.divisions.home
            doc = build_organization(org["id"], content, created=now, modified=now)
            self.organizations.load([doc])

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
        """Enrich first: ``/contacts/enrich`` is not a contact id."""
        self.emulator = emulator
        return [
            *externalcontacts_enrich.routes(emulator, self),
            *externalcontacts_routes.routes(emulator, self),
            *externalcontacts_bulk.routes(emulator, self),
            *externalcontacts_organization_routes.routes(emulator, self),
        ]

    def introspection_routes(self, emulator: Emulator) -> list[tuple[str, str, Any]]:
        return introspection_routes(emulator, self)
