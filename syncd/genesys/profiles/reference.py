"""The ``reference`` wire profile: ``/api/v2/contacts`` as in genesys-api-reference.txt.

Fields: ``firstName``, ``lastName``, ``email``, ``phoneNumbers[{number,type}]``,
``externalOrganization{id,name}``, ``externalId``; paging by ``pageNumber``/``pageSize``
with a ``total``; search by ``GET /contacts/search?q=``; PATCH takes the changed fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from syncd.errors import ApiProtocolError
from syncd.genesys.api import Page
from syncd.genesys.profiles._base import (
    RequestSpec,
    contact_path,
    organization_body,
    parse_organization,
    reject_unknown_fields,
    search_term,
)
from syncd.genesys.profiles._shape import array, obj, opt_int, opt_str, opt_time, req_str
from syncd.logs import get_logger
from syncd.model import Contact, Phone, RemoteContact

log = get_logger("syncd.genesys")

MAX_PAGE_SIZE = 100

# canonical field name -> wire field name
WIRE_FIELDS = {
    "first_name": "firstName",
    "last_name": "lastName",
    "email": "email",
    "phone_numbers": "phoneNumbers",
    "organization": "externalOrganization",
    "external_id": "externalId",
}


def _wire_value(contact: Contact, field: str) -> Any:
    if field == "phone_numbers":
        return [{"number": p.number, "type": p.type} for p in contact.phone_numbers]
    if field == "organization":
        return organization_body(contact)
    if field == "external_id":
        return contact.external_id or None
    value: Any = getattr(contact, field)
    return value


def _contact_path(genesys_id: str) -> str:
    return contact_path("/contacts", genesys_id)


class ReferenceProfile:
    """Mapping between canonical contacts and the reference JSON.

    Its only state is the fingerprints of the pages of the listing in progress, to tell a
    server that ignores ``pageNumber`` from a long listing.
    """

    name = "reference"
    # GET /contacts pages the contacts collection with its ``total``; only search is indexed.
    listing_proves_absence = True
    lookup_proves_absence = False  # search is indexed asynchronously
    lookup_miss_status = None

    def __init__(self) -> None:
        self._listed_pages: set[int] = set()

    # -- requests ----------------------------------------------------------------------------

    def list_request(self, token: str | None, page_size: int) -> RequestSpec:
        return RequestSpec(
            "GET",
            "/contacts",
            "/contacts",
            params={
                "pageSize": _page_size(page_size),
                "pageNumber": _page_number(token),
                "sortOrder": "asc",
            },
        )

    def get_request(self, genesys_id: str) -> RequestSpec:
        return RequestSpec("GET", _contact_path(genesys_id), "/contacts/{id}")

    def unresolved_request(self, genesys_id: str) -> RequestSpec | None:
        return None  # the reference API merges no contacts

    def merged_into(self, body: Any, genesys_id: str) -> str | None:
        return None

    def lookup_request(self, external_id: str) -> RequestSpec:
        query = search_term(external_id)
        return RequestSpec("GET", "/contacts/search", "/contacts/search", {"q": query})

    def create_request(self, contact: Contact) -> RequestSpec:
        body = {WIRE_FIELDS[f]: _wire_value(contact, f) for f in WIRE_FIELDS}
        body = {k: v for k, v in body.items() if v not in (None, [])}
        return RequestSpec("POST", "/contacts", "/contacts", json=body)

    def patch_request(
        self, genesys_id: str, changes: Mapping[str, Any], contact: Contact
    ) -> RequestSpec:
        """Only the fields named in ``changes``, with their values taken from ``contact``.

        ``contact`` is the source of truth for the values, so the engine may pass whatever
        it likes as the mapping's values (new values, [old, new] pairs).
        """
        reject_unknown_fields(changes, WIRE_FIELDS)
        if not changes:
            raise ValueError("a PATCH needs at least one changed field")
        body = {WIRE_FIELDS[f]: _wire_value(contact, f) for f in changes}
        return RequestSpec("PATCH", _contact_path(genesys_id), "/contacts/{id}", json=body)

    def replace_request(self, genesys_id: str, contact: Contact) -> RequestSpec:
        # A full replace states every field, so a cleared field is sent as null or [].
        body = {WIRE_FIELDS[f]: _wire_value(contact, f) for f in WIRE_FIELDS}
        return RequestSpec("PUT", _contact_path(genesys_id), "/contacts/{id}", json=body)

    def delete_request(self, genesys_id: str) -> RequestSpec:
        return RequestSpec("DELETE", _contact_path(genesys_id), "/contacts/{id}")

    # -- answers -----------------------------------------------------------------------------

    def parse_contact(self, body: Any, where: str = "contact") -> RemoteContact:
        data = obj(body, where)
        phones = data.get("phoneNumbers")
        numbers: list[Phone] = []
        for i, item in enumerate(array(phones, f"{where}.phoneNumbers") if phones else []):
            phone = obj(item, f"{where}.phoneNumbers[{i}]")
            numbers.append(
                Phone(
                    number=req_str(phone, "number", f"{where}.phoneNumbers[{i}]"),
                    type=opt_str(phone, "type", f"{where}.phoneNumbers[{i}]") or "WORK",
                )
            )
        organization = parse_organization(data, where)
        contact = Contact(
            external_id=opt_str(data, "externalId", where) or "",
            first_name=opt_str(data, "firstName", where),
            last_name=opt_str(data, "lastName", where),
            email=opt_str(data, "email", where),
            phone_numbers=tuple(numbers),
            organization=organization,
        )
        return RemoteContact(
            genesys_id=req_str(data, "id", where),
            contact=contact,
            date_created=opt_time(data, "dateCreated", where),
            date_modified=opt_time(data, "dateModified", where),
            raw=data,
        )

    def parse_lookup(self, body: Any) -> list[RemoteContact]:
        data = obj(body, "search")
        results = array(data.get("results"), "search.results")
        return [self.parse_contact(item, f"search.results[{i}]") for i, item in enumerate(results)]

    def parse_page(self, body: Any, token: str | None, page_size: int) -> Page:
        """One page, and whether another one is worth asking for.

        A server may misreport ``total`` (contacts come and go while we page, or it lies):
        an empty page always ends the listing, and no listing goes more than one page past
        what ``total`` implies, so a wrong ``total`` can never make us page forever.
        """
        data = obj(body, "page")
        entities = array(data.get("entities"), "page.entities")
        contacts = [self.parse_contact(e, f"page.entities[{i}]") for i, e in enumerate(entities)]
        number = _page_number(token)
        # The server's pageSize is believed when it is smaller than what we asked for (it
        # capped it); a larger one would make a full page look short and end the listing.
        asked = _page_size(page_size)
        size = min(opt_int(data, "pageSize", "page") or asked, asked)
        total = opt_int(data, "total", "page")
        next_token = _next_token(number, size, len(contacts), total)
        if number == 1:
            self._listed_pages.clear()
        if contacts and next_token is not None:
            fingerprint = hash(tuple(c.genesys_id for c in contacts))
            if fingerprint in self._listed_pages:
                raise ApiProtocolError(
                    f"page {number} of the listing repeats an earlier page (the server seems "
                    "to ignore pageNumber): the listing would never end"
                )
            self._listed_pages.add(fingerprint)
        return Page(contacts, next_token, total)


def _next_token(number: int, size: int, count: int, total: int | None) -> str | None:
    if count == 0:
        return None
    full = count >= size
    if total is None:
        return str(number + 1) if full else None
    implied = math.ceil(total / size)
    if number >= implied + 1:
        if full:
            log.warning("genesys.list.total_mismatch", page=number, total=total, page_size=size)
        return None
    if number * size < total:
        return str(number + 1)
    if full and number * size > total:
        # More contacts than ``total`` admits: the server under-reports, so read on until a
        # short page (bounded above). A full last page that matches ``total`` exactly ends the
        # listing: ceil(N / page size) requests, not one more.
        return str(number + 1)
    return None


def _page_size(page_size: int) -> int:
    return max(1, min(MAX_PAGE_SIZE, int(page_size)))


def _page_number(token: str | None) -> int:
    if token is None:
        return 1
    if not token.isdigit() or int(token) < 1:
        raise ValueError(f"not a page token of the reference profile: {token!r}")
    return int(token)
