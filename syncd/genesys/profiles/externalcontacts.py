"""The ``externalcontacts`` wire profile: production Genesys Cloud's External Contacts API.

Mapping (configurable parts in ``[genesys]``, see ``docs/externalcontacts.md``):

=================  ===================================================================
canonical          ExternalContact
=================  ===================================================================
first_name         ``firstName``
last_name          ``lastName``
email              one slot: ``email_slot`` (``workEmail``; or personalEmail, otherEmail)
phone_numbers      one slot per type: ``phone_slots`` (WORK→workPhone, MOBILE→cellPhone,
                   HOME→homePhone, OTHER→otherPhone), each a PhoneNumber ``{display}``;
                   read back from ``e164`` (or ``display`` when the server could not read it)
organization       ``externalOrganization`` ``{id}``: a reference to the ExternalOrganization
                   record linked to the CRM's organization id (``externalcontacts_orgs``)
external_id        the ``externalIds`` entry whose ``externalSource.id`` is our source
=================  ===================================================================

Fields syncd does not manage (the other email slots, ``middleName``, ``title``, address,
other systems' ``externalIds``, custom fields, a phone's ``extension`` while its number is
unchanged, ...) are never sent, so never clobbered: updates are PATCHes of field paths
(``Remove`` for a cleared field), computed against a fresh read when phones are involved;
PUT is never used. A contact with two phones that map to one slot, or a value longer than
Genesys stores, cannot be represented: :meth:`representation_problem` says why, and building
a write for it (or a lookup of an externalId over 255 characters) raises ``ApiValidationError``
unsent. externalIds are found by the keyed identifier lookup, never by search.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from syncd.config import MAX_SOURCE_NAME
from syncd.errors import ApiProtocolError, ApiValidationError
from syncd.genesys.api import Page
from syncd.genesys.profiles._base import (
    BulkEntry,
    RequestSpec,
    contact_path,
    reject_unknown_fields,
)
from syncd.genesys.profiles._shape import array, obj, opt_int, opt_str, opt_time, req_str
from syncd.genesys.profiles.externalcontacts_fields import (
    PHONE_READ_ONLY,
    PHONE_SLOTS,
    PHONE_TYPES,
    FieldMapping,
    held_number,
    length_problem,
    same_number,
)
from syncd.genesys.profiles.externalcontacts_identity import IdentityRequests
from syncd.genesys.profiles.externalcontacts_orgs import (
    OrganizationDirectory,
    OrganizationRequests,
)
from syncd.genesys.profiles.externalcontacts_source import ExternalSourceRequests, claimed_id
from syncd.model import CONTACT_FIELDS, Contact, Phone, RemoteContact

if TYPE_CHECKING:
    from syncd.config import GenesysSettings

__all__ = ["ExternalContactsProfile", "FieldMapping"]

SCAN_MIN, SCAN_MAX = 10, 200
# Server-managed fields: never sent back in a bulk update.
READ_ONLY = frozenset({
    "createDate", "modifyDate", "selfUri", "type", "identifiers", "externalDataSources",
    "canonicalContact", "mergeSet", "mergedFrom", "mergedTo", "mergeOperation",
})  # fmt: skip
C = "/externalcontacts/contacts"
ROUTE = C + "/{id}"


class ExternalContactsProfile(IdentityRequests, OrganizationRequests, ExternalSourceRequests):
    """Mapping for one client: holds the field mapping and, once known, our source's id."""

    name = "externalcontacts"
    rate_limit_headers = False  # production sends no X-Rate-Limit-*: 429 + Retry-After only
    # A scan showing a just-created contact is unconfirmed (and it has no total): no proof.
    listing_proves_absence = False
    lookup_miss_status = 404  # the identifier lookup: no contact claims it

    def __init__(
        self,
        mapping: FieldMapping | None = None,
        source_name: str = "syncd",
        *,
        lookup_consistent: bool = False,
        division_id: str | None = None,
    ) -> None:
        if not 1 <= len(source_name) <= MAX_SOURCE_NAME:
            raise ValueError(f"genesys.external_source: 1 to {MAX_SOURCE_NAME} characters")
        self.mapping = mapping or FieldMapping()
        self.source_name = source_name
        self.source_id: str | None = None
        # Whether the operator declared the lookup consistent with writes (unconfirmed).
        self.lookup_proves_absence = lookup_consistent
        # Creates go to this division and scans are limited to it (None: Genesys' defaults).
        self.division_id = division_id
        self.organizations = OrganizationDirectory()

    @classmethod
    def from_settings(cls, settings: GenesysSettings | None) -> ExternalContactsProfile:
        if settings is None:
            return cls()
        mapping = FieldMapping(settings.email_slot, dict(settings.phone_slots))
        return cls(
            mapping,
            settings.external_source,
            lookup_consistent=settings.identifier_lookup_consistent,
            division_id=settings.division_id,
        )

    # -- mapping -----------------------------------------------------------------------------

    def representation_problem(self, contact: Contact) -> str | None:
        too_long = length_problem(contact, self.mapping.email_slot)
        if too_long is not None:
            return too_long
        unreferenced = self.organization_problem(contact)
        if unreferenced is not None:
            return unreferenced
        seen: dict[str, str] = {}
        for phone in contact.phone_numbers:
            slot = self.mapping.phone_slots.get(phone.type)
            if slot is None:
                return f"phone type {phone.type!r} has no slot (use {', '.join(PHONE_TYPES)})"
            if slot in seen:
                return (
                    f"two {phone.type} phone numbers ({seen[slot]}, {phone.number}) but the "
                    f"External Contacts API has one {slot} slot"
                )
            seen[slot] = phone.number
        return None

    def _check(self, contact: Contact, method: str, route: str) -> None:
        problem = self.representation_problem(contact)
        if problem is not None:
            raise ApiValidationError(
                f"cannot be represented: {problem}", method=method, route=route
            )

    def _slot_numbers(self, contact: Contact) -> dict[str, str]:
        return {self.mapping.phone_slots[p.type]: p.number for p in contact.phone_numbers}

    def _external_ids(self, contact: Contact) -> list[dict[str, Any]]:
        if not contact.external_id:
            return []
        return [{"externalSource": {"id": self._source()}, "value": contact.external_id}]

    def document(self, contact: Contact) -> dict[str, Any]:
        """The ExternalContact for a create: syncd's fields only, empty ones left out."""
        body: dict[str, Any] = {
            "firstName": contact.first_name,
            "lastName": contact.last_name,
            self.mapping.email_slot: contact.email,
        }
        for slot, number in self._slot_numbers(contact).items():
            body[slot] = {"display": number}
        body["externalOrganization"] = self.organization_ref(contact)
        body["externalIds"] = self._external_ids(contact)
        if self.division_id is not None:  # fixed at creation: never sent in a PATCH
            body["division"] = {"id": self.division_id}
        return {k: v for k, v in body.items() if v not in (None, [])}

    # -- requests (Profile) --------------------------------------------------------------------

    def list_request(self, token: str | None, page_size: int) -> RequestSpec:
        limit = max(SCAN_MIN, min(SCAN_MAX, int(page_size)))
        params: dict[str, str | int] = {"limit": limit}
        if token:
            params["cursor"] = token
        if self.division_id is not None:
            params["divisionId"] = self.division_id
        route = "/externalcontacts/scan/contacts"
        return RequestSpec("GET", route, route, params=params)

    def get_request(self, genesys_id: str) -> RequestSpec:
        return RequestSpec("GET", _path(genesys_id), ROUTE)

    def unresolved_request(self, genesys_id: str) -> RequestSpec | None:
        return RequestSpec("GET", f"{_path(genesys_id)}/unresolved", f"{ROUTE}/unresolved")

    def merged_into(self, body: Any, genesys_id: str) -> str | None:
        data = obj(body, "contact")
        answered = data.get("id")
        if isinstance(answered, str) and answered and answered != genesys_id:
            return answered  # a read of a merged-away id that answers the survivor itself
        for key in ("canonicalContact", "mergedTo"):
            ref = data.get(key)
            survivor = ref.get("id") if isinstance(ref, dict) else None
            if isinstance(survivor, str) and survivor and survivor != genesys_id:
                return survivor
        return None

    def create_request(self, contact: Contact) -> RequestSpec:
        self._check(contact, "POST", C)
        return RequestSpec("POST", C, C, json=self.document(contact))

    def patch_request(
        self, genesys_id: str, changes: Mapping[str, Any], contact: Contact
    ) -> RequestSpec:
        """PATCH without a fresh read (phones are then written slot by slot, whole)."""
        spec = self.write_request(genesys_id, changes, contact, None)
        if spec is None:
            raise ValueError("a PATCH needs at least one changed field")
        return spec

    def replace_request(self, genesys_id: str, contact: Contact) -> RequestSpec:
        """Never a PUT (it would clear every field syncd does not manage): all fields, PATCHed."""
        return self.patch_request(genesys_id, dict.fromkeys(CONTACT_FIELDS), contact)

    def delete_request(self, genesys_id: str) -> RequestSpec:
        return RequestSpec("DELETE", _path(genesys_id), ROUTE)

    # -- PATCH against the current contact (ReadBeforeWriteProfile) ----------------------------

    def write_needs_current(self, changes: Mapping[str, Any] | None) -> bool:
        """Phones need a fresh read: only slots whose number changes are written, so an
        unchanged phone keeps its extension and SMS flag."""
        return changes is None or "phone_numbers" in changes

    def write_request(
        self,
        genesys_id: str,
        changes: Mapping[str, Any] | None,
        contact: Contact,
        current: RemoteContact | None,
    ) -> RequestSpec | None:
        fields = list(CONTACT_FIELDS) if changes is None else list(changes)
        reject_unknown_fields(fields, CONTACT_FIELDS)
        path = _path(genesys_id)
        self._check(contact, "PATCH", ROUTE)
        ops: list[dict[str, Any]] = []

        def put(wire: str, value: Any) -> None:
            if value is None:
                ops.append({"field": f"$.{wire}", "action": "Remove"})
            else:
                ops.append({"field": f"$.{wire}", "value": value, "action": "Update"})

        for name in fields:
            if name == "first_name":
                put("firstName", contact.first_name)
            elif name == "last_name":
                put("lastName", contact.last_name)
            elif name == "email":
                put(self.mapping.email_slot, contact.email)
            elif name == "organization":
                put("externalOrganization", self.organization_ref(contact))
            else:  # phone_numbers
                wanted = self._slot_numbers(contact)
                raw = current.raw if current is not None else {}
                for slot in PHONE_SLOTS:
                    number, held = wanted.get(slot), raw.get(slot)
                    if current is not None and same_number(number, held):
                        continue  # unchanged: keep its extension, SMS flag, ...
                    if current is not None and number is None and held is None:
                        continue
                    put(slot, {"display": number} if number is not None else None)
        if not ops:
            return None
        return RequestSpec("PATCH", path, ROUTE, json={"changes": ops})

    # -- answers -------------------------------------------------------------------------------

    def parse_contact(self, body: Any, where: str = "contact") -> RemoteContact:
        data = obj(body, where)
        phones: list[Phone] = []
        for slot in PHONE_SLOTS:
            held = data.get(slot)
            if held is None:
                continue
            number = held_number(obj(held, f"{where}.{slot}"))
            if number is not None:
                phones.append(Phone(number=number, type=self.mapping.type_of(slot)))
        phones.sort(key=lambda p: PHONE_TYPES.index(p.type))
        organization = self.read_organization(data, where)
        contact = Contact(
            external_id=self._our_external_id(data, where) or "",
            first_name=opt_str(data, "firstName", where),
            last_name=opt_str(data, "lastName", where),
            email=opt_str(data, self.mapping.email_slot, where),
            phone_numbers=tuple(phones),
            organization=organization,
        )
        return RemoteContact(
            genesys_id=req_str(data, "id", where),
            contact=contact,
            date_created=opt_time(data, "createDate", where),
            date_modified=opt_time(data, "modifyDate", where),
            raw=data,
            curated=opt_str(data, "type", where) in (None, "Curated"),
            outside_division=self._outside_division(data, where),
        )

    def _outside_division(self, data: dict[str, Any], where: str) -> str | None:
        division = data.get("division")
        if self.division_id is None or not division:
            return None
        found = opt_str(obj(division, f"{where}.division"), "id", f"{where}.division")
        return found if found not in (None, self.division_id) else None

    def _our_external_id(self, data: dict[str, Any], where: str) -> str | None:
        return claimed_id(data, self._source(), where)

    def parse_lookup(self, body: Any) -> list[RemoteContact]:
        return [self.parse_contact(body, "identifierlookup")]

    def parse_page(self, body: Any, token: str | None, page_size: int) -> Page:
        """A scan page: ``cursors.after`` is the next token; none (or no entities) ends it."""
        data = obj(body, "scan")
        entities = array(data.get("entities") or [], "scan.entities")
        contacts = [self.parse_contact(e, f"scan.entities[{i}]") for i, e in enumerate(entities)]
        cursors = data.get("cursors")
        after = opt_str(obj(cursors, "scan.cursors"), "after", "scan.cursors") if cursors else None
        return Page(contacts, after if (after and contacts) else None, None)

    # -- bulk (BulkProfile) --------------------------------------------------------------------

    def bulk_create_request(self, contacts: Sequence[Contact]) -> RequestSpec:
        route = "/externalcontacts/bulk/contacts/add"
        entities = [self.document(contact) for contact in contacts]
        return RequestSpec("POST", route, route, json={"entities": entities})

    def bulk_update_request(self, documents: Sequence[dict[str, Any]]) -> RequestSpec:
        route = "/externalcontacts/bulk/contacts/update"
        return RequestSpec(
            "POST", route, route, json={"entities": list(documents)}, idempotent=True
        )

    def bulk_delete_request(self, genesys_ids: Sequence[str]) -> RequestSpec:
        route = "/externalcontacts/bulk/contacts/remove"
        entities = [{"id": gid} for gid in genesys_ids]
        return RequestSpec("POST", route, route, json={"entities": entities}, idempotent=True)

    def bulk_read_request(self, genesys_ids: Sequence[str]) -> RequestSpec:
        route = "/externalcontacts/bulk/contacts"
        entities = [{"id": gid} for gid in genesys_ids]
        return RequestSpec("POST", route, route, json={"entities": entities}, idempotent=True)

    def merged_document(self, current: RemoteContact, contact: Contact) -> dict[str, Any]:
        """What Genesys holds, minus server-managed fields, with syncd's fields replaced."""
        doc = {k: v for k, v in current.raw.items() if k not in READ_ONLY}
        doc["id"] = current.genesys_id
        wanted: dict[str, Any] = {
            "firstName": contact.first_name,
            "lastName": contact.last_name,
            self.mapping.email_slot: contact.email,
            "externalOrganization": self.organization_ref(contact),
        }
        numbers = self._slot_numbers(contact)
        for slot in PHONE_SLOTS:
            held, number = doc.get(slot), numbers.get(slot)
            if number is not None and same_number(number, held) and isinstance(held, dict):
                wanted[slot] = {k: v for k, v in held.items() if k not in PHONE_READ_ONLY}
            else:
                wanted[slot] = {"display": number} if number is not None else None
        for key, value in wanted.items():
            if value is None:
                doc.pop(key, None)
            else:
                doc[key] = value
        ours = self._source()
        others = [
            item
            for item in doc.get("externalIds") or []
            if not (isinstance(item, dict) and (item.get("externalSource") or {}).get("id") == ours)
        ]
        doc["externalIds"] = others + self._external_ids(contact)
        if not doc["externalIds"]:
            del doc["externalIds"]
        return doc

    def parse_bulk(self, body: Any) -> list[BulkEntry]:
        data = obj(body, "bulk")
        results = array(data.get("results"), "bulk.results")
        return [self._bulk_entry(item, f"bulk.results[{i}]") for i, item in enumerate(results)]

    def _bulk_entry(self, item: Any, where: str) -> BulkEntry:
        result = obj(item, where)
        success = result.get("success")
        if not isinstance(success, bool):
            raise ApiProtocolError(f"{where}.success: expected true or false")
        entity_id = opt_str(result, "id", where)
        status = opt_int(result, "status", where)
        if success:
            remote = None
            external_id = None
            entity = result.get("entity")
            if isinstance(entity, dict) and entity.get("id"):
                remote = self.parse_contact(entity, f"{where}.entity")
                external_id = remote.contact.external_id or None
                entity_id = entity_id or remote.genesys_id
            return BulkEntry(True, entity_id, remote, external_id, status or 200)
        error = obj(result.get("error") or {}, f"{where}.error")
        echoed = error.get("entity")
        external_id = None
        if isinstance(echoed, dict):
            echoed_id = echoed.get("id")
            if entity_id is None and isinstance(echoed_id, str) and echoed_id:
                entity_id = echoed_id
            try:
                external_id = self._our_external_id(echoed, f"{where}.error.entity")
            except ApiProtocolError:
                external_id = None
        retryable = error.get("retryable")
        return BulkEntry(
            False,
            entity_id,
            None,
            external_id,
            opt_int(error, "status", f"{where}.error") or status,
            opt_str(error, "code", f"{where}.error"),
            opt_str(error, "message", f"{where}.error"),
            retryable if isinstance(retryable, bool) else None,
            error.get("details"),
        )


def _path(genesys_id: str) -> str:
    return contact_path(C, genesys_id)
