"""CSV exports: a header that must name every column, then one contact per record.

Columns may come in any order and are matched case-insensitively; a missing, unknown or
repeated column stops the import before anything is written, because a missing column would
erase that field on every contact. Records follow RFC 4180; line numbers are physical lines.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import IO, Any

from syncd.sync.canonical import RawContact, clean_text
from syncd.sync.import_lines import (
    UNDECODABLE,
    ImportFileError,
    Lines,
    LineTooLong,
    ParsedRow,
    undecodable_reason,
    usable_id,
)

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
_LINE_BREAK = re.compile(r"[\r\n]")
# A cell holding a delimiter, a quote or a line break is a sign that a quote left open has
# swallowed its neighbours: in a row of the wrong width, no id in it can be trusted.
_SWALLOWED = re.compile(r'[,"\r\n]')


def _csv_header(reader: Any, lines: Lines) -> list[str]:
    while True:
        try:
            header = next(reader)
        except StopIteration:
            raise ImportFileError(
                "the file is empty: a CSV import needs the header line " + ",".join(CSV_COLUMNS)
            ) from None
        except (csv.Error, LineTooLong) as exc:
            raise ImportFileError(
                f"line {lines.number}: cannot read the CSV header: {exc}"
            ) from None
        if header:
            return [name.strip() for name in header]


_OTHER_DELIMITERS = {";": "';'", "\t": "a tab", "|": "'|'"}
# First bytes of files exported by mistake, as decoded with errors="surrogateescape".
_SIGNATURES = {
    "PK\x03\x04": "a ZIP archive (an .xlsx workbook is one)",
    "\x1f\udc8b": "a gzip file",
    "%PDF": "a PDF document",
}


def _not_a_csv(header: list[str], first: str, encoding: str) -> str | None:
    """One line for a header that names none of the columns because the file is not a
    comma-separated text file at all (binary, another delimiter): listing 10 missing columns
    would bury the cause. ``first`` is the header's raw text (before cells are stripped)."""
    known = {name.lower() for name in CSV_COLUMNS}
    if any(name.lower() in known for name in header):
        return None
    for signature, what in _SIGNATURES.items():
        if first.startswith(signature):
            return f"this is {what}, not a CSV file: export the contacts as UTF-8 CSV"
    if "\x00" in first or UNDECODABLE.search(first):
        return (
            f"this is not {encoding} text (its first line holds NUL or undecodable bytes): it "
            "looks binary or UTF-16; export the contacts as UTF-8 CSV, or give its encoding"
        )
    if len(header) == 1:
        for delimiter, name in _OTHER_DELIMITERS.items():
            if len(header[0].split(delimiter)) > 1:
                return (
                    f"the header is separated by {name}, not by commas: syncd reads "
                    "comma-separated CSV (RFC 4180); re-export the file with ',' as the delimiter"
                )
    return None


def _check_header(header: list[str], encoding: str) -> dict[str, int]:
    known = {name.lower(): name for name in CSV_COLUMNS}
    positions: dict[str, int] = {}
    problems: list[str] = []
    unknown: list[str] = []
    for index, name in enumerate(header):
        if UNDECODABLE.search(name):
            problems.append(undecodable_reason(f"column {index + 1}", name, encoding))
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


def read_csv(stream: IO[bytes], encoding: str) -> Iterator[ParsedRow]:
    """Check the header now (so a bad one fails before any work), then stream the rows."""
    lines = Lines(stream, encoding)
    reader = csv.reader(lines, strict=False)
    header = _csv_header(reader, lines)
    if problem := _not_a_csv(header, "".join(lines.taken), encoding):
        raise ImportFileError(problem)
    positions = _check_header(header, encoding)
    return _csv_rows(reader, lines, positions, encoding)


def _csv_rows(
    reader: Any, lines: Lines, positions: dict[str, int], encoding: str
) -> Iterator[ParsedRow]:
    width = len(positions)
    id_index = positions["externalId"]
    while True:
        start = lines.number + 1
        lines.taken.clear()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except LineTooLong as exc:  # reported where its record starts, as every row is
            yield ParsedRow(start, None, None, [str(exc)], unidentified=True)
            continue
        except csv.Error as exc:
            yield ParsedRow(start, None, None, [f"cannot be read as CSV: {exc}"], unidentified=True)
            continue
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue  # blank line
        quoting = _quote_problem("".join(lines.taken))
        if quoting is not None:
            # Python's reader takes a stray quote literally; what the row's cells (its id
            # included) were meant to be is then a guess, so the row is rejected unidentified.
            yield ParsedRow(start, None, None, [f"malformed CSV: {quoting}"], unidentified=True)
            continue
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


def _quote_problem(record: str) -> str | None:
    """What breaks RFC 4180's quoting in one raw record, or None: a quote inside an unquoted
    field, text after a closing quote, or a quote left open at the end of the file."""
    if '"' not in record:
        return None  # the common case, at no cost
    state = "start"  # start | bare | quoted | closing (a quote seen inside a quoted field)
    for char in record:
        if state == "quoted":
            state = "closing" if char == '"' else "quoted"
        elif char == '"':
            if state == "bare":
                return "a quote inside an unquoted field (quote the whole field, doubling it)"
            state = "quoted"  # opens a field, or (after "closing") is a doubled quote
        elif char in ",\r\n":
            state = "start"
        elif state == "closing":
            return "text after a closing quote (is a quote left open or not doubled?)"
        else:
            state = "bare"
    if state == "quoted":
        return "a quote left open at the end of the file"
    return None


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
        if UNDECODABLE.search(value):
            unidentified = True
        else:
            external_id = usable_id(clean_text(value))  # as normalize keys it: trimmed, NFC
            unidentified = unidentified or (external_id is None and bool(value.strip()))
    id_problem = []
    if external_id is not None and _LINE_BREAK.search(external_id):
        id_problem = ["externalId: contains a line break (is a quote left open before it?)"]
    if len(cells) != width:
        # Which cell is which is unknown; the id (if any) still protects its contact from a
        # snapshot's tombstone, which errs on the safe side, unless a quote swallowed the row
        # (the ids it hides are unknown, so a snapshot must hold).
        unidentified = unidentified or any(_SWALLOWED.search(cell) for cell in cells)
        reason = f"has {len(cells)} fields but the header has {width}"
        return ParsedRow(line, None, external_id, [reason, *id_problem], unidentified=unidentified)
    reasons: list[str] = id_problem
    values: dict[str, str] = {}
    for name, index in positions.items():
        value = cells[index]
        if UNDECODABLE.search(value):
            reasons.append(undecodable_reason(name, value, encoding))
            value = UNDECODABLE.sub("\ufffd", value)  # not "missing" as far as checks go
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
