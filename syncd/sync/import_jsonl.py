"""JSON Lines exports: one object per line in the reference API's contact shape.

Keys syncd does not use are ignored and any value may be ``null``; a line that is not JSON
still gives up its externalId when one can be salvaged, so a snapshot never tombstones a
contact because its line was bad.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any

from syncd.sync.canonical import RawContact, clean_text
from syncd.sync.import_lines import (
    SURROGATE,
    UNDECODABLE,
    Lines,
    LineTooLong,
    ParsedRow,
    undecodable_reason,
    usable_id,
)

# Salvages the externalId from a line that is not valid JSON.
_JSON_ID = re.compile(r'"externalId"\s*:\s*("(?:[^"\\\x00-\x1f]|\\.)*")')


def read_jsonl(stream: IO[bytes], encoding: str) -> Iterator[ParsedRow]:
    """Read the first line now (so a UTF-16 file fails before any work), then stream."""
    lines = Lines(stream, encoding)
    try:
        first: str | LineTooLong | None = next(lines)
    except StopIteration:
        first = None
    except LineTooLong as exc:
        first = exc
    return _jsonl_rows(lines, first, encoding)


def _jsonl_rows(
    lines: Lines, first: str | LineTooLong | None, encoding: str
) -> Iterator[ParsedRow]:
    if isinstance(first, LineTooLong):
        yield ParsedRow(first.line, None, None, [str(first)], unidentified=True)
    elif first is None:
        return
    elif first.strip():
        yield _jsonl_row(1, first, encoding)
    while True:
        try:
            text = next(lines)
        except StopIteration:
            return
        except LineTooLong as exc:
            yield ParsedRow(exc.line, None, None, [str(exc)], unidentified=True)
            continue
        if not text.strip():
            continue
        yield _jsonl_row(lines.number, text, encoding)


def _salvage_id(text: str) -> str | None:
    match = _JSON_ID.search(text)
    if match is None:
        return None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None
    return usable_id(clean_text(value)) if isinstance(value, str) else None


def _jsonl_row(line: int, text: str, encoding: str) -> ParsedRow:
    if UNDECODABLE.search(text):
        salvaged = _salvage_id(text)
        ok_id = salvaged if salvaged and not UNDECODABLE.search(salvaged) else None
        return ParsedRow(
            line,
            None,
            ok_id,
            [undecodable_reason("line", text, encoding)],
            unidentified=ok_id is None,
        )
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deeply
        why = "arrays or objects nested too deeply" if isinstance(exc, RecursionError) else exc
        salvaged = _salvage_id(text)
        return ParsedRow(
            line, None, salvaged, [f"not valid JSON: {why}"], unidentified=salvaged is None
        )
    if not isinstance(data, dict):
        return ParsedRow(
            line,
            None,
            None,
            [f"expected a JSON object, got {_json_type(data)}"],
            unidentified=True,
        )
    reasons: list[str] = []
    external_id: str | None = None
    unidentified = False
    raw_id = data.get("externalId")
    if isinstance(raw_id, str) and SURROGATE.search(raw_id):
        reasons.append(_surrogate_reason("externalId"))
        raw_id, unidentified = "?", True
    elif isinstance(raw_id, str):
        external_id = usable_id(clean_text(raw_id))
        unidentified = external_id is None and bool(raw_id.strip())
    elif raw_id is not None:
        reasons.append(f"externalId: expected a string, got {_json_type(raw_id)}")
        if isinstance(raw_id, int) and not isinstance(raw_id, bool):
            external_id = str(raw_id)  # rejected, but it still names a contact
        else:
            unidentified = True
    first = _text(data, "firstName", reasons)
    last = _text(data, "lastName", reasons)
    email = _text(data, "email", reasons)
    phones = _phones(data.get("phoneNumbers"), reasons)
    org_id = org_name = None
    org = data.get("externalOrganization")
    if isinstance(org, dict):
        org_id = _text(org, "id", reasons, "externalOrganization.id")
        org_name = _text(org, "name", reasons, "externalOrganization.name")
    elif org is not None:
        reasons.append(f"externalOrganization: expected an object, got {_json_type(org)}")
    # A non-string id is already a reason; a stand-in lets normalize report the others.
    stand_in = raw_id if isinstance(raw_id, str) else ("" if raw_id is None else "?")
    raw = RawContact(
        external_id=stand_in,
        first_name=first,
        last_name=last,
        email=email,
        phone_numbers=phones,
        organization_id=org_id,
        organization_name=org_name,
    )
    return ParsedRow(line, raw, external_id, reasons, unidentified=unidentified)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _surrogate_reason(label: str) -> str:
    return f"{label}: contains an unpaired surrogate (an escape in \\ud800-\\udfff), not text"


def _text(
    data: dict[str, Any], key: str, reasons: list[str], label: str | None = None
) -> str | None:
    value = data.get(key)
    if isinstance(value, str) and SURROGATE.search(value):
        reasons.append(_surrogate_reason(label or key))
        return SURROGATE.sub("\ufffd", value)  # reported; not "missing" as far as checks go
    if value is None or isinstance(value, str):
        return value
    reasons.append(f"{label or key}: expected a string or null, got {_json_type(value)}")
    return None


def _phones(value: object, reasons: list[str]) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        reasons.append(f"phoneNumbers: expected an array, got {_json_type(value)}")
        return ()
    phones: list[tuple[str, str]] = []
    for index, item in enumerate(value):
        where = f"phoneNumbers[{index}]"
        if not isinstance(item, dict):
            reasons.append(f"{where}: expected an object, got {_json_type(item)}")
            continue
        number = item.get("number")
        kind = item.get("type")
        if not isinstance(number, str):
            reasons.append(f"{where}.number: expected a string, got {_json_type(number)}")
            continue
        if kind is not None and not isinstance(kind, str):
            reasons.append(f"{where}.type: expected a string, got {_json_type(kind)}")
            continue
        if SURROGATE.search(number + (kind or "")):
            reasons.append(_surrogate_reason(where))
            continue
        phones.append((number, kind or "WORK"))
    return tuple(phones)
