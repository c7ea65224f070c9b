"""Reading CRM export files row by row: CSV and JSON Lines, in constant memory.

Each reader yields :class:`ParsedRow` objects: the file line where the row starts, a
:class:`~syncd.sync.canonical.RawContact` when the row could be read, the externalId when it
could be read (even from a broken row, so that a snapshot never tombstones a contact because
its row was bad), and every structural problem found. Content checks (names, email, phones)
are left to :func:`syncd.sync.canonical.normalize`.

The file is read as bytes, one physical line at a time and never more than ``MAX_LINE_BYTES``
of it, and decoded per line: an undecodable byte spoils one field of one row, not the import.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from syncd.errors import InputError
from syncd.sync.canonical import RawContact, clean_text

Format = Literal["csv", "jsonl"]
ENCODINGS = ("utf-8", "cp1252", "latin-1")
MAX_LINE_BYTES = 1024 * 1024

CSV_COLUMNS = (
    "externalId",
    "firstName",
    "lastName",
    "email",
    "workPhone",
    "mobilePhone",
    "homePhone",
    "otherPhone",
    "organizationId",
    "organizationName",
)
CSV_PHONE_COLUMNS = {
    "workPhone": "WORK",
    "mobilePhone": "MOBILE",
    "homePhone": "HOME",
    "otherPhone": "OTHER",
}
_BOM = b"\xef\xbb\xbf"
# Byte-order marks of encodings that are not ASCII-compatible: refused up front, because
# every line of such a file would be rejected one by one (UTF-32 LE starts like UTF-16 LE).
_FOREIGN_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
_UNDECODABLE = re.compile(r"[\udc80-\udcff]")
# Lone surrogates: JSON can spell them (``"\ud800"``) but they are not text, and no database
# or UTF-8 stream can store them.
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_LINE_BREAK = re.compile(r"[\r\n]")
# Control characters other than tab, CR and LF; canonical.normalize does not check every field.
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Salvages the externalId from a line that is not valid JSON.
_JSON_ID = re.compile(r'"externalId"\s*:\s*("(?:[^"\\\x00-\x1f]|\\.)*")')


class ImportFileError(InputError):
    """The file as a whole cannot be imported (unreadable, wrong header): nothing was read."""


@dataclass(slots=True)
class ParsedRow:
    """One row as read from the file, before normalization."""

    line: int
    raw: RawContact | None
    external_id: str | None  # readable id (None: missing or unreadable)
    reasons: list[str] = field(default_factory=list)
    # There was an id, or may have been, that cannot be read: the row's own, or those of the
    # rows a broken multi-line CSV record may have swallowed.
    unidentified: bool = False


class _Lines:
    """Physical lines of a binary stream, decoded one by one and bounded in length."""

    def __init__(self, stream: IO[bytes], encoding: str) -> None:
        self._stream = stream
        self._encoding = encoding
        self.number = 0  # lines consumed so far

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        data = self._stream.readline(MAX_LINE_BYTES + 1)
        if not data:
            raise StopIteration
        self.number += 1
        if self.number == 1:
            for bom, name in _FOREIGN_BOMS:
                if data.startswith(bom):
                    raise ImportFileError(
                        f"the file is {name} text (it starts with a {name} byte-order mark): "
                        f"re-export it as UTF-8 (e.g. iconv -f {name} -t UTF-8 FILE)"
                    )
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        if len(data) > MAX_LINE_BYTES and not data.endswith(b"\n"):
            while (rest := self._stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            raise _LineTooLong(self.number)
        return data.decode(self._encoding, "surrogateescape")


class _LineTooLong(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(f"line is longer than {MAX_LINE_BYTES // 1024} KiB")
        self.line = line


def _usable_id(value: str | None) -> str | None:
    """An id that can key a database row: no NUL (PostgreSQL refuses it), no lone surrogate."""
    if value is None or "\x00" in value or _SURROGATE.search(value):
        return None
    return value


def _undecodable(field_name: str, value: str, encoding: str) -> str:
    bad = "".join(f"\\x{ord(ch) - 0xDC00:02x}" for ch in _UNDECODABLE.findall(value)[:4])
    return (
        f"{field_name}: not valid {encoding} text (bytes {bad}); "
        "re-export the file as UTF-8 or give its encoding"
    )


def read_rows(stream: IO[bytes], fmt: Format, *, encoding: str = "utf-8") -> Iterator[ParsedRow]:
    """The rows of ``stream`` in the given format (ImportFileError if the file is unusable)."""
    if encoding not in ENCODINGS:
        raise ImportFileError(f"unsupported encoding {encoding!r}; use one of {ENCODINGS}")
    if fmt == "csv":
        return _read_csv(stream, encoding)
    if fmt == "jsonl":
        return _read_jsonl(stream, encoding)
    raise ImportFileError(f"unknown format {fmt!r}; use csv or jsonl")


# ------------------------------------------------------------------------------------ CSV


def _csv_header(reader: Any, lines: _Lines) -> list[str]:
    while True:
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError(
                "the file is empty: a CSV import needs the header line " + ",".join(CSV_COLUMNS)
            ) from None
        except (csv.Error, _LineTooLong) as exc:
            raise ImportFileError(
                f"line {lines.number}: cannot read the CSV header: {exc}"
            ) from None
        if header:
            return [name.strip() for name in header]


def _check_header(header: list[str], encoding: str) -> dict[str, int]:
    known = {name.lower(): name for name in CSV_COLUMNS}
    positions: dict[str, int] = {}
    problems: list[str] = []
    unknown: list[str] = []
    for index, name in enumerate(header):
        if _UNDECODABLE.search(name):
            problems.append(_undecodable(f"column {index + 1}", name, encoding))
            continue
        canonical = known.get(name.lower())
        if canonical is None:
            unknown.append(name or f"(empty, column {index + 1})")
        elif canonical in positions:
            problems.append(f"column {canonical!r} appears twice")
        else:
            positions[canonical] = index
    if unknown:
        problems.append(f"unknown columns: {', '.join(repr(n) for n in unknown)}")
    missing = [name for name in CSV_COLUMNS if name not in positions]
    if missing:
        problems.append(
            f"missing columns: {', '.join(missing)} (every column is required, because a "
            "missing column would erase that field on every contact: leave its cells empty "
            "instead)"
        )
    if problems:
        hint = (
            " (the header holds NUL bytes: the file looks like UTF-16 or binary; re-export it as "
            "UTF-8)"
            if any("\x00" in name for name in header)
            else ""
        )
        raise ImportFileError(
            "bad CSV header: " + "; ".join(problems) + f". Expected: {','.join(CSV_COLUMNS)} "
            "(in any order)" + hint
        )
    return positions


def _read_csv(stream: IO[bytes], encoding: str) -> Iterator[ParsedRow]:
    """Check the header now (so a bad one fails before any work), then stream the rows."""
    lines = _Lines(stream, encoding)
    reader = csv.reader(lines, strict=False)
    positions = _check_header(_csv_header(reader, lines), encoding)
    return _csv_rows(reader, lines, positions, encoding)


def _csv_rows(
    reader: Any, lines: _Lines, positions: dict[str, int], encoding: str
) -> Iterator[ParsedRow]:
    width = len(positions)
    id_index = positions["externalId"]
    while True:
        start = lines.number + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except _LineTooLong as exc:  # reported where its record starts, as every row is
            yield ParsedRow(start, None, None, [str(exc)], unidentified=True)
            continue
        except csv.Error as exc:
            yield ParsedRow(start, None, None, [f"cannot be read as CSV: {exc}"], unidentified=True)
            continue
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # blank line
        row = _csv_row(start, cells, positions, width, id_index, encoding)
        if (
            lines.number > start
            and row.reasons
            and (len(cells) != width or _LINE_BREAK.search(row.external_id or ""))
        ):
            # A broken record over several lines: a quote left open may have swallowed the
            # rows that follow it, ids included (a snapshot must not tombstone those).
            row.unidentified = True
        yield row


def _csv_row(
    line: int,
    cells: list[str],
    positions: dict[str, int],
    width: int,
    id_index: int,
    encoding: str,
) -> ParsedRow:
    external_id: str | None = None
    unidentified = id_index >= len(cells)  # a short row: its id may be in a missing cell
    if id_index < len(cells):
        value = cells[id_index]
        if _UNDECODABLE.search(value):
            unidentified = True
        else:
            external_id = _usable_id(clean_text(value))  # as normalize keys it: trimmed, NFC
            unidentified = unidentified or (external_id is None and bool(value.strip()))
    id_problem = []
    if external_id is not None and _LINE_BREAK.search(external_id):
        id_problem = ["externalId: contains a line break (is a quote left open before it?)"]
    if len(cells) != width:
        # Which cell is which is unknown; the id (if any) still protects its contact from a
        # snapshot's tombstone, which errs on the safe side.
        reason = f"has {len(cells)} fields but the header has {width}"
        return ParsedRow(line, None, external_id, [reason, *id_problem], unidentified=unidentified)
    reasons: list[str] = id_problem
    values: dict[str, str] = {}
    for name, index in positions.items():
        value = cells[index]
        if _UNDECODABLE.search(value):
            reasons.append(_undecodable(name, value, encoding))
            value = _UNDECODABLE.sub("\ufffd", value)  # not "missing" as far as checks go
        values[name] = value
    phones = tuple(
        (number, kind)
        for column, kind in CSV_PHONE_COLUMNS.items()
        if (number := values[column]).strip()
    )
    raw = RawContact(
        external_id=values["externalId"],
        first_name=values["firstName"],
        last_name=values["lastName"],
        email=values["email"],
        phone_numbers=phones,
        organization_id=values["organizationId"],
        organization_name=values["organizationName"],
    )
    return ParsedRow(line, raw, external_id, reasons, unidentified=unidentified)


# ---------------------------------------------------------------------------------- JSONL


def _read_jsonl(stream: IO[bytes], encoding: str) -> Iterator[ParsedRow]:
    """Read the first line now (so a UTF-16 file fails before any work), then stream."""
    lines = _Lines(stream, encoding)
    try:
        first: str | _LineTooLong | None = next(lines)
    except StopIteration:
        first = None
    except _LineTooLong as exc:
        first = exc
    return _jsonl_rows(lines, first, encoding)


def _jsonl_rows(
    lines: _Lines, first: str | _LineTooLong | None, encoding: str
) -> Iterator[ParsedRow]:
    if isinstance(first, _LineTooLong):
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
        except _LineTooLong as exc:
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
    return _usable_id(clean_text(value)) if isinstance(value, str) else None


def _jsonl_row(line: int, text: str, encoding: str) -> ParsedRow:
    if _UNDECODABLE.search(text):
        salvaged = _salvage_id(text)
        ok_id = salvaged if salvaged and not _UNDECODABLE.search(salvaged) else None
        return ParsedRow(
            line, None, ok_id, [_undecodable("line", text, encoding)], unidentified=ok_id is None
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
    if isinstance(raw_id, str) and _SURROGATE.search(raw_id):
        reasons.append(_surrogate_reason("externalId"))
        raw_id, unidentified = "?", True
    elif isinstance(raw_id, str):
        external_id = _usable_id(clean_text(raw_id))
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
    if isinstance(value, str) and _SURROGATE.search(value):
        reasons.append(_surrogate_reason(label or key))
        return _SURROGATE.sub("\ufffd", value)  # reported; not "missing" as far as checks go
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
        if _SURROGATE.search(number + (kind or "")):
            reasons.append(_surrogate_reason(where))
            continue
        phones.append((number, kind or "WORK"))
    return tuple(phones)
