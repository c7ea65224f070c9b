"""ExternalOrganizations: records of their own, which contacts reference by id.

An organization is the SDK's ``ExternalOrganization``: ``name`` (required, up to 1,000
characters), ``division`` (fixed at creation, the home division unless given),
``companyType``, ``industry``, ``address``, ``phoneNumber`` / ``faxNumber`` (PhoneNumber),
``employeeCount`` / ``revenue`` (non-negative integers), ``tags`` / ``websites`` (strings),
``tickers`` (``{symbol, exchange}``), ``twitterId``, ``externalSystemUrl``, ``externalIds``
(as on contacts: they are its ExternalId identifiers), ``schema``, ``customFields``; read-only
``id``, ``createDate``, ``modifyDate``, ``trustor``, ``identifiers``, ``externalDataSources``,
``selfUri``. The routes are ``externalcontacts_organization_routes.py``.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

from syncd.emulator.profiles._common import Content, Invalid, check_body
from syncd.emulator.profiles.externalcontacts_document import (
    ADDRESS_KEYS,
    API,
    NAME_LIMIT,
    Known,
    division_ref,
    external_ids,
    http_url,
    phone,
    strings,
    text,
)
from syncd.emulator.profiles.externalcontacts_identity import ClaimIndex
from syncd.emulator.store import ContactStore, Doc, StoredContact

FIELDS = (
    "name", "division", "companyType", "industry", "address", "phoneNumber", "faxNumber",
    "employeeCount", "revenue", "tags", "websites", "tickers", "twitterId",
    "externalSystemUrl", "schema", "customFields", "externalIds",
)  # fmt: skip
READ_ONLY = frozenset(
    {"id", "createDate", "modifyDate", "trustor", "identifiers", "externalDataSources", "selfUri"}
)
LIST_LIMIT = 100


def validate_organization(body: Any, *, known: Known, partial: bool = False) -> Content:
    """The content of a POST / PUT / bulk body; Invalid names every bad field."""
    content, problems = check_body(
        body,
        what="the organization",
        writable=FIELDS,
        read_only=READ_ONLY,
        check=lambda name, value: _check(name, value, known),
    )
    content = {name: value for name, value in content.items() if value is not None}
    if not partial and "name" not in content and not any(p[0] == "name" for p in problems):
        problems.append(("name", "missing.property", "name is required"))
    if problems:
        raise Invalid(problems)
    return content


def _check(name: str, value: Any, known: Known) -> Any:
    if value is None:
        return None
    if name in ("name", "companyType", "industry"):
        return text(value, NAME_LIMIT)
    if name in ("phoneNumber", "faxNumber"):
        return phone(value)
    if name == "address":
        return strings(value, ADDRESS_KEYS, NAME_LIMIT, ignored=frozenset())
    if name == "division":
        return division_ref(value, known)
    if name == "externalIds":
        return external_ids(value, known)
    if name == "externalSystemUrl":
        return http_url(value)
    if name in ("employeeCount", "revenue"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("must be a non-negative integer")
        return value
    if name in ("tags", "websites"):
        if not isinstance(value, list) or len(value) > LIST_LIMIT:
            raise ValueError(f"must be a list of at most {LIST_LIMIT} strings")
        return [text(item, NAME_LIMIT) for item in value] or None
    if name == "tickers":
        if not isinstance(value, list) or len(value) > LIST_LIMIT:
            raise ValueError(f"must be a list of at most {LIST_LIMIT} tickers")
        keys = ("symbol", "exchange")
        return [strings(item, keys, NAME_LIMIT, ignored=frozenset()) for item in value] or None
    if not isinstance(value, dict):
        raise ValueError("must be an object")
    return value


def build_organization(org_id: str, content: Content, *, created: str, modified: str) -> Doc:
    doc: Doc = {"id": org_id}
    for name in FIELDS:
        if content.get(name) is not None:
            doc[name] = content[name]
    doc["createDate"] = created
    doc["modifyDate"] = modified
    doc["selfUri"] = f"{API}/organizations/{org_id}"
    return doc


def organization_content(doc: Doc) -> Content:
    return {name: doc[name] for name in FIELDS if name in doc}


class Organizations:
    """The organization records, their ExternalId claims, and the write counts."""

    def __init__(self, *, seed: int) -> None:
        self.store = ContactStore()
        self.claims = ClaimIndex()
        self.writes: dict[str, int] = {"create": 0, "replace": 0, "delete": 0}
        self._ids = random.Random(f"syncd-emulator:{seed}:organizations")

    def __len__(self) -> int:
        return len(self.store)

    def get(self, org_id: str) -> Doc | None:
        return self.store.get(org_id)

    def all(self) -> list[Doc]:
        return list(self.store)

    def new_id(self) -> str:
        while True:
            candidate = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
            if candidate not in self.store:
                return candidate

    def create(
        self, content: Content, *, now: str, at: float, home: dict[str, Any], lag: float
    ) -> Doc:
        """A new record; ``at`` is the monotonic instant (identifier lookups may lag it)."""
        content = {"division": home, **content}
        org_id = self.new_id()
        doc = build_organization(org_id, content, created=now, modified=now)
        self.store.insert(StoredContact(org_id, now, doc))
        self.claims.observe(org_id, None, doc, now=at, lag=lag)
        self.writes["create"] += 1
        return doc

    def replace(self, old: Doc, content: Content, *, now: str, at: float, lag: float) -> Doc:
        """A full replace; the division is kept (a different one is a 400)."""
        given = content.get("division")
        if given is not None and given["id"] != old["division"]["id"]:
            message = "division cannot be changed after creation"
            raise Invalid([("division", "invalid.value", message)])
        content = {**content, "division": old["division"]}
        doc = build_organization(old["id"], content, created=old["createDate"], modified=now)
        self.store.replace(old["id"], doc)
        self.claims.observe(old["id"], old, doc, now=at, lag=lag)
        self.writes["replace"] += 1
        return doc

    def delete(self, org_id: str, *, at: float, lag: float) -> Doc | None:
        doc = self.store.delete(org_id)
        if doc is not None:
            self.claims.observe(org_id, doc, None, now=at, lag=lag)
            self.writes["delete"] += 1
        return doc

    def load(self, docs: list[Doc]) -> None:
        """Seeded or restored records (already valid documents with their ids)."""
        self.store.insert_many(StoredContact(doc["id"], doc["createDate"], doc) for doc in docs)
        self.claims.load((doc["id"], doc) for doc in docs)
