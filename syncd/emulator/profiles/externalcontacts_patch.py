"""PATCH ``{"changes": [{"field": "$.path", "value": ..., "action": ...}]}`` for the
externalcontacts profile.

Paths are ``$.<field>`` or ``$.<field>.<sub>`` (PhoneNumber fields, ``address``,
``externalOrganization``). Actions: ``Update``, ``UpdateIfEmpty``, ``UpdateIfExists``,
``Remove``, and for lists (``externalIds``, ``appleOpaqueIds``) ``AppendToCollection`` /
``RemoveFromCollection``. A field together with its parent (``$.workPhone`` and
``$.workPhone.display``), or one field twice, in one request is a 409 and nothing is applied;
an invalid change or result is a 400. Every touched field is validated again as a whole.
"""

from __future__ import annotations

import re
from typing import Any

from syncd.emulator.profiles._common import Content, Invalid, check_fields
from syncd.emulator.profiles.externalcontacts_document import (
    ADDRESS_KEYS,
    CONTENT_FIELDS,
    LIST_FIELDS,
    ORG_KEYS,
    PHONE_COMPUTED,
    PHONE_FIELDS,
    PHONE_INPUT,
    READ_ONLY_FIELDS,
    Known,
    check_field,
)
from syncd.emulator.responses import ApiProblem

# Sub-fields a PATCH may address as "$.<field>.<sub>".
NESTED = {
    **dict.fromkeys(PHONE_FIELDS, PHONE_INPUT),
    "address": ADDRESS_KEYS,
    "externalOrganization": ORG_KEYS,
}
ACTIONS = (
    "Update",
    "UpdateIfEmpty",
    "UpdateIfExists",
    "Remove",
    "AppendToCollection",
    "RemoveFromCollection",
)
_PATH = re.compile(r"\$\.([A-Za-z][A-Za-z0-9]*)(?:\.([A-Za-z][A-Za-z0-9]*))?")


def apply_changes(current: Content, body: Any, *, known: Known) -> Content:
    """The content after a PATCH ``{"changes": [...]}``; Invalid (400) or ApiProblem (409)."""
    changes = body.get("changes") if isinstance(body, dict) else None
    if not isinstance(changes, list) or not changes:
        raise Invalid([("changes", "missing.property", "changes must be a non-empty list")])
    if isinstance(body, dict) and set(body) - {"changes"}:
        extra = sorted(set(body) - {"changes"})[0]
        raise Invalid([(extra, "invalid.property", f"unknown field {extra!r}")])
    parsed = [_parse_change(position, change) for position, change in enumerate(changes)]
    paths = [top if sub is None else f"{top}.{sub}" for top, sub, _, _ in parsed]
    for i, first in enumerate(paths):
        for second in paths[i + 1 :]:
            if first == second or second.startswith(first + ".") or first.startswith(second + "."):
                raise ApiProblem(
                    409,
                    f"Conflicting changes: $.{first} and $.{second} in one request "
                    "(a field and its parent, or the same field twice).",
                    code="conflict",
                )
    content = {key: value for key, value in current.items()}
    touched: set[str] = set()
    for top, sub, action, value in parsed:
        _apply(content, top, sub, action, value)
        touched.add(top)
    touched_values = {top: content.get(top) for top in sorted(touched)}
    checked, problems = check_fields(
        touched_values, lambda name, value: check_field(name, value, known), path_prefix="$."
    )
    if problems:
        raise Invalid(problems)
    for top, value in checked.items():
        if value is None:
            content.pop(top, None)
        else:
            content[top] = value
    return content


def _parse_change(position: int, change: Any) -> tuple[str, str | None, str, Any]:
    where = f"changes[{position}]"
    if not isinstance(change, dict):
        raise Invalid([(where, "invalid.value", f"{where} must be an object")])
    unknown = sorted(set(change) - {"field", "value", "action"})
    if unknown:
        raise Invalid([(where, "invalid.property", f"{where} has unknown field {unknown[0]!r}")])
    raw_field, action = change.get("field"), change.get("action")
    match = _PATH.fullmatch(raw_field) if isinstance(raw_field, str) else None
    if match is None:
        message = f"{where}.field must be a path such as $.firstName or $.workPhone.display"
        raise Invalid([(where, "invalid.value", message)])
    field, top, sub = match.group(0), match.group(1), match.group(2)
    if top in READ_ONLY_FIELDS:
        raise Invalid([(field, "invalid.value", f"{field} is read-only")])
    if top not in CONTENT_FIELDS or (sub is not None and sub not in NESTED.get(top, ())):
        raise Invalid([(field, "invalid.property", f"{field} is not a writable field")])
    if action not in ACTIONS:
        message = f"{where}.action must be one of {', '.join(ACTIONS)}"
        raise Invalid([(where, "invalid.value", message)])
    if action in ("AppendToCollection", "RemoveFromCollection") and (
        top not in LIST_FIELDS or sub is not None
    ):
        raise Invalid([(field, "invalid.value", f"{action} applies to lists only")])
    has_value = change.get("value") is not None
    if action in ("Update", "UpdateIfEmpty", "UpdateIfExists") and not has_value:
        message = f"{where}: {action} needs a value (use Remove to clear a field)"
        raise Invalid([(field, "missing.property", message)])
    if action in ("AppendToCollection", "RemoveFromCollection") and not has_value:
        raise Invalid([(field, "missing.property", f"{where}: {action} needs a value")])
    return top, sub, action, change.get("value")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def _apply(content: Content, top: str, sub: str | None, action: str, value: Any) -> None:
    parent = content.get(top)
    nested = parent.get(sub) if sub is not None and isinstance(parent, dict) else None
    current = parent if sub is None else nested
    if action == "UpdateIfEmpty" and not _empty(current):
        return
    if action == "UpdateIfExists" and _empty(current):
        return
    if action in ("AppendToCollection", "RemoveFromCollection"):
        items = value if isinstance(value, list) else [value]
        existing = list(parent or [])
        if action == "AppendToCollection":
            content[top] = existing + items
        else:
            keys = {_item_key(item) for item in items}
            content[top] = [item for item in existing if _item_key(item) not in keys]
        return
    new = None if action == "Remove" else value
    if sub is None:
        content[top] = new
        return
    obj = {k: v for k, v in (parent or {}).items() if k not in PHONE_COMPUTED}
    if new is None:
        obj.pop(sub, None)
    else:
        obj[sub] = new
    content[top] = obj or None


def _item_key(item: Any) -> Any:
    if isinstance(item, dict) and isinstance(item.get("externalSource"), dict):
        return ("externalId", item["externalSource"].get("id"), item.get("value"))
    return repr(item)
