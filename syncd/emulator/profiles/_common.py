"""What the emulator's wire profiles share: the Profile protocol, field problems
(:class:`Invalid`), the validation loop, seeding rules and the small route helpers.

It imports no profile, so every profile module (and the package ``__init__``, which only
names them) can import from here without an import cycle.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from starlette.responses import JSONResponse, Response

from syncd.emulator.clock import iso_millis, parse_iso
from syncd.emulator.pipeline import ApiCall
from syncd.emulator.responses import ApiProblem
from syncd.emulator.search import SearchTerms
from syncd.emulator.store import Doc, StoredContact

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from syncd.emulator.state import Emulator

Content = dict[str, Any]
Problem = tuple[str, str, str]  # (fieldName, errorCode, message)
FieldCheck = Callable[[str, Any], Any]  # the stored form of one field; ValueError if invalid
ID_LIMIT = 255
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")  # something@something, no spaces
_INTEGER = re.compile(r"-?[0-9]{1,9}")


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


# -- validation ---------------------------------------------------------------------------


REFERENCE_CODES = frozenset(
    {"organization.not.found", "division.not.found", "external.source.not.found"}
)


class MissingReference(ValueError):
    """A field naming a record that does not exist (an organization, a division, an external
    source): a 400 whose ``errorCode`` says which, so that a client can tell it from bad
    content (``invalid.value``)."""

    def __init__(self, message: str, code: str) -> None:
        assert code in REFERENCE_CODES, code
        super().__init__(message)
        self.code = code


class Invalid(Exception):
    """One or more field problems; becomes a 400 (API) or a ValueError (seeding)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(message for _, _, message in problems))

    def problem(self) -> ApiProblem:
        details = [
            {"fieldName": field, "errorCode": code, "errorMessage": message}
            for field, code, message in self.problems
        ]
        return ApiProblem(400, f"Validation failed: {self}", details=details)


def check_body(
    body: Any,
    *,
    what: str,
    writable: Collection[str],
    read_only: Collection[str],
    check: FieldCheck,
    check_read_only: Callable[[str, Any], None] | None = None,
) -> tuple[Content, list[Problem]]:
    """Every field of a JSON object checked on its own, in body order, so one 400 names
    every bad field: ``(checked content, problems)``.

    Unknown fields are ``invalid.property``; read-only ones are left out of the content
    (``check_read_only`` may still reject their type).
    """
    if not isinstance(body, dict):
        raise Invalid([("", "invalid.value", f"{what} must be a JSON object")])
    content: Content = {}
    problems: list[Problem] = []
    for name, value in body.items():
        if name in read_only:
            if check_read_only is not None:
                _checked(name, value, check_read_only, problems)
            continue
        if name not in writable:
            problems.append((name, "invalid.property", f"unknown field {name!r}"))
            continue
        ok, checked = _checked(name, value, check, problems)
        if ok:
            content[name] = checked
    return content, problems


def check_fields(
    fields: Mapping[str, Any], check: FieldCheck, *, path_prefix: str = ""
) -> tuple[Content, list[Problem]]:
    """Each of ``fields`` checked on its own (``fieldName`` is ``path_prefix + name``)."""
    content: Content = {}
    problems: list[Problem] = []
    for name, value in fields.items():
        ok, checked = _checked(name, value, check, problems, path_prefix)
        if ok:
            content[name] = checked
    return content, problems


def _checked(
    name: str, value: Any, check: FieldCheck, problems: list[Problem], path_prefix: str = ""
) -> tuple[bool, Any]:
    try:
        return True, check(name, value)
    except ValueError as exc:
        code = exc.code if isinstance(exc, MissingReference) else "invalid.value"
        problems.append((path_prefix + name, code, f"{name} {exc}"))
        return False, None


# -- seeding ------------------------------------------------------------------------------


def object_items(
    value: Any, *, limit: int, keys: frozenset[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(where, item)`` for each object of a JSON list field, after the checks every such
    field shares (a list, at most ``limit`` entries, objects with only ``keys``)."""
    if not isinstance(value, list):
        raise ValueError("must be a list")
    if len(value) > limit:
        raise ValueError(f"has more than {limit} entries")
    for position, item in enumerate(value):
        where = f"[{position}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where} must be an object")
        unknown = sorted(set(item) - keys)
        if unknown:
            raise ValueError(f"{where} has unknown field {unknown[0]!r}")
        yield where, item


def seed_identity(
    raw: dict[str, Any],
    *,
    new_id: Callable[[], str],
    now: str,
    created_field: str,
    modified_field: str,
) -> tuple[str, str, str]:
    """``(id, created, modified)`` of a seeded contact: its own when given, else fresh."""
    contact_id = raw.get("id") or new_id()
    if not isinstance(contact_id, str) or len(contact_id) > ID_LIMIT or "/" in contact_id:
        raise ValueError(f"id must be a string of at most {ID_LIMIT} characters without '/'")
    created = timestamp(raw, created_field, now)
    return contact_id, created, timestamp(raw, modified_field, created)


def timestamp(raw: dict[str, Any], name: str, default: str) -> str:
    """``raw[name]`` normalised to the store's fixed-width form (it sorts), or ``default``."""
    value = raw.get(name)
    if value is None:
        return default
    try:
        return iso_millis(parse_iso(value))
    except (TypeError, ValueError):
        raise ValueError(f"{name} is not an ISO-8601 timestamp") from None


# -- routes -------------------------------------------------------------------------------


def int_param(call: ApiCall, name: str, default: int, low: int, high: int | None) -> int:
    """A bounded integer query parameter: out of range is a 400, never a silent clamp."""
    raw = call.request.query_params.get(name)
    if raw is None:
        return default
    value = int(raw) if _INTEGER.fullmatch(raw) else None
    if value is None or value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiProblem(400, f"{name} must be an integer {bounds}, got {raw!r}.")
    return value


def not_found(contact_id: str) -> ApiProblem:
    return ApiProblem(404, f"Contact {contact_id} was not found.", code="not.found")


def check_path_id(body: object, contact_id: str) -> None:
    """A body may carry the contact's ``id`` (a fetched contact sent back), not another."""
    if isinstance(body, dict) and body.get("id") not in (None, contact_id):
        raise ApiProblem(400, "The id in the body does not match the id in the path.")


async def get_contact(call: ApiCall) -> Response:
    contact_id = call.params["contactId"]
    doc = call.emulator.get(contact_id)
    if doc is None:
        raise not_found(contact_id)
    return JSONResponse(doc)


async def delete_contact(call: ApiCall) -> Response:
    contact_id = call.params["contactId"]
    em = call.emulator
    if em.apply_delete(contact_id, at=em.now_iso()) is None:
        raise not_found(contact_id)
    return Response(status_code=204)
