"""The "reference" wire profile: contacts as ``genesys-api-reference.txt`` documents them.

A contact is ``{id, firstName, lastName, email, phoneNumbers[{number, type}],
externalOrganization{id, name}, externalId, dateCreated, dateModified}``; fields without a
value are left out of the JSON. Validation limits (documented in ``docs/emulator.md``):
names and organization name 1,000 characters, email 256, externalId and organization id
255, phone number 64 (with at least one digit), at most 20 phone numbers whose type, when
given, is WORK, MOBILE, HOME or OTHER. Unknown fields are rejected; the read-only fields
(``id``, ``dateCreated``, ``dateModified``, ``selfUri``) are accepted and ignored, except
that an ``id`` that contradicts the path is rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from syncd.emulator.clock import iso_millis, parse_iso
from syncd.emulator.responses import ApiProblem
from syncd.emulator.search import SearchTerms, digits
from syncd.emulator.store import Doc, StoredContact

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from syncd.emulator.state import Emulator

CONTENT_FIELDS = (
    "firstName",
    "lastName",
    "email",
    "phoneNumbers",
    "externalOrganization",
    "externalId",
)
READ_ONLY_FIELDS = frozenset({"id", "dateCreated", "dateModified", "selfUri"})
REQUIRED_FIELDS = ("firstName", "lastName")
STRING_LIMITS = {"firstName": 1000, "lastName": 1000, "email": 256, "externalId": 255}
ORG_LIMITS = {"id": 255, "name": 1000}
PHONE_NUMBER_LIMIT = 64
MAX_PHONE_NUMBERS = 20
PHONE_TYPES = frozenset({"WORK", "MOBILE", "HOME", "OTHER"})
ID_LIMIT = 255
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")

Content = dict[str, Any]


class Invalid(Exception):
    """One or more field problems; becomes a 400 (API) or a ValueError (seeding)."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems  # (fieldName, errorCode, message)
        super().__init__("; ".join(message for _, _, message in problems))

    def problem(self) -> ApiProblem:
        details = [
            {"fieldName": field, "errorCode": code, "errorMessage": message}
            for field, code, message in self.problems
        ]
        return ApiProblem(400, f"Validation failed: {self}", details=details)


def validate(body: Any, *, partial: bool) -> Content:
    """The content fields a body sets (``None`` = cleared); raises :class:`Invalid`.

    ``partial`` is PATCH: only the given fields are checked and the names may be absent
    (but not null). Otherwise (POST, PUT, seeding) the names are required.
    """
    if not isinstance(body, dict):
        raise Invalid([("", "invalid.value", "the request body must be a JSON object")])
    problems: list[tuple[str, str, str]] = []
    content: Content = {}
    for name, value in body.items():
        if name in READ_ONLY_FIELDS:
            if value is not None and not isinstance(value, str):
                problems.append((name, "invalid.value", f"{name} must be a string"))
            continue
        if name not in CONTENT_FIELDS:
            problems.append((name, "invalid.property", f"unknown field {name!r}"))
            continue
        try:
            content[name] = _check_field(name, value)
        except ValueError as exc:
            problems.append((name, "invalid.value", f"{name} {exc}"))
    for name in REQUIRED_FIELDS:
        if any(field == name for field, _, _ in problems):
            continue
        absent = content.get(name) is None if name in body else not partial
        if absent:
            problems.append((name, "missing.property", f"{name} is required"))
    if problems:
        raise Invalid(problems)
    return content


def _check_field(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in STRING_LIMITS:
        return _string(value, STRING_LIMITS[name], name in REQUIRED_FIELDS, email=name == "email")
    if name == "phoneNumbers":
        return _phones(value)
    return _organization(value)


def _string(value: Any, limit: int, required: bool, *, email: bool = False) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    if len(value) > limit:
        raise ValueError(f"is longer than {limit} characters")
    if required and not value.strip():
        raise ValueError("must not be empty")
    if email and not _EMAIL.fullmatch(value):
        raise ValueError("is not a valid email address")
    return value


def _phones(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise ValueError("must be a list")
    if len(value) > MAX_PHONE_NUMBERS:
        raise ValueError(f"has more than {MAX_PHONE_NUMBERS} entries")
    phones = []
    for position, item in enumerate(value):
        where = f"[{position}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be an object")
        unknown = sorted(set(item) - {"number", "type"})
        if unknown:
            raise ValueError(f"{where} has unknown field {unknown[0]!r}")
        number = item.get("number")
        if not isinstance(number, str) or not digits(number):
            raise ValueError(f"{where}.number must be a string with digits")
        if len(number) > PHONE_NUMBER_LIMIT:
            raise ValueError(f"{where}.number is longer than {PHONE_NUMBER_LIMIT} characters")
        phone = {"number": number}
        kind = item.get("type")
        if kind is not None:
            if kind not in PHONE_TYPES:
                raise ValueError(f"{where}.type must be one of {', '.join(sorted(PHONE_TYPES))}")
            phone["type"] = kind
        phones.append(phone)
    return phones


def _organization(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ValueError("must be an object")
    unknown = sorted(set(value) - set(ORG_LIMITS))
    if unknown:
        raise ValueError(f"has unknown field {unknown[0]!r}")
    org = {}
    for key, limit in ORG_LIMITS.items():
        item = value.get(key)
        if item is None:
            continue
        if not isinstance(item, str):
            raise ValueError(f".{key} must be a string")
        if len(item) > limit:
            raise ValueError(f".{key} is longer than {limit} characters")
        org[key] = item
    return org


def build(contact_id: str, content: Content, *, created: str, modified: str) -> Doc:
    """The wire document, fields in the reference's order, empty fields left out."""
    doc: Doc = {"id": contact_id}
    for name in CONTENT_FIELDS:
        value = content.get(name)
        if value is not None:
            doc[name] = value
    doc["dateCreated"] = created
    doc["dateModified"] = modified
    return doc


def content_of(doc: Doc) -> Content:
    return {name: doc[name] for name in CONTENT_FIELDS if name in doc}


def _timestamp(raw: dict[str, Any], name: str, default: str) -> str:
    value = raw.get(name)
    if value is None:
        return default
    try:
        return iso_millis(parse_iso(value))
    except (TypeError, ValueError):
        raise ValueError(f"{name} is not an ISO-8601 timestamp") from None


class ReferenceProfile:
    name = "reference"

    def prepare_seed(self, raw: Any, *, new_id: Callable[[], str], now: str) -> StoredContact:
        try:
            content = validate(raw, partial=False)
        except Invalid as exc:
            raise ValueError(str(exc)) from None
        contact_id = raw.get("id") or new_id()
        if not isinstance(contact_id, str) or len(contact_id) > ID_LIMIT or "/" in contact_id:
            raise ValueError(f"id must be a string of at most {ID_LIMIT} characters without '/'")
        created = _timestamp(raw, "dateCreated", now)
        modified = _timestamp(raw, "dateModified", created)
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
        from syncd.emulator.profiles.reference_routes import routes

        return routes(emulator)
