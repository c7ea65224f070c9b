"""The reference profile's contact document: validation, and the JSON the server stores.

A contact is ``{id, firstName, lastName, email, phoneNumbers[{number, type}],
externalOrganization{id, name}, externalId, dateCreated, dateModified}``; fields without a
value are left out of the JSON. Validation limits (documented in ``docs/emulator.md``):
names and organization name 1,000 characters, email 256, externalId and organization id
255, phone number 64 (with at least one digit), at most 20 phone numbers whose type, when
given, is WORK, MOBILE, HOME or OTHER. Unknown fields are rejected; the read-only fields
(``id``, ``dateCreated``, ``dateModified``, ``selfUri``) are accepted and ignored, except
that an ``id`` that contradicts the path is rejected.

Used by the profile (seeding) and its routes (``reference_routes.py``).
"""

from __future__ import annotations

from typing import Any

from syncd.emulator.profiles._common import EMAIL, Content, Invalid, check_body, object_items
from syncd.emulator.search import digits
from syncd.emulator.store import Doc

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


def validate(body: Any, *, partial: bool) -> Content:
    """The content fields a body sets (``None`` = cleared); raises :class:`Invalid`.

    ``partial`` is PATCH: only the given fields are checked and the names may be absent
    (but not null). Otherwise (POST, PUT, seeding) the names are required.
    """
    content, problems = check_body(
        body,
        what="the request body",
        writable=CONTENT_FIELDS,
        read_only=READ_ONLY_FIELDS,
        check=_check_field,
        check_read_only=_check_read_only,
    )
    for name in REQUIRED_FIELDS:
        if any(field == name for field, _, _ in problems):
            continue
        absent = content.get(name) is None if name in body else not partial
        if absent:
            problems.append((name, "missing.property", f"{name} is required"))
    if problems:
        raise Invalid(problems)
    return content


def _check_read_only(name: str, value: Any) -> None:
    """Read-only fields are ignored, but only when they have the type a fetch gives."""
    if value is not None and not isinstance(value, str):
        raise ValueError("must be a string")


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
    if email and not EMAIL.fullmatch(value):
        raise ValueError("is not a valid email address")
    return value


def _phones(value: Any) -> list[dict[str, str]]:
    phones = []
    keys = frozenset({"number", "type"})
    for where, item in object_items(value, limit=MAX_PHONE_NUMBERS, keys=keys):
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
