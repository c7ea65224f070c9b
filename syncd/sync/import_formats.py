"""Reading CRM export files row by row: CSV and JSON Lines, in constant memory.

Each reader yields :class:`ParsedRow` objects: the file line where the row starts, a
:class:`~syncd.sync.canonical.RawContact` when the row could be read, the externalId when it
could be read (even from a broken row, so that a snapshot never tombstones a contact because
its row was bad), and every structural problem found. Content checks (names, email, phones)
are left to :func:`syncd.sync.canonical.normalize`.

This module is the entry point; the readers are :mod:`syncd.sync.import_csv` and
:mod:`syncd.sync.import_jsonl`, on the bounded line reading of :mod:`syncd.sync.import_lines`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Literal

from syncd.sync.import_csv import CSV_COLUMNS, CSV_PHONE_COLUMNS, read_csv
from syncd.sync.import_jsonl import read_jsonl
from syncd.sync.import_lines import MAX_LINE_BYTES, ImportFileError, ParsedRow

__all__ = [
    "CSV_COLUMNS",
    "CSV_PHONE_COLUMNS",
    "ENCODINGS",
    "MAX_LINE_BYTES",
    "Format",
    "ImportFileError",
    "ParsedRow",
    "read_rows",
]

Format = Literal["csv", "jsonl"]
ENCODINGS = ("utf-8", "cp1252", "latin-1")


def read_rows(stream: IO[bytes], fmt: Format, *, encoding: str = "utf-8") -> Iterator[ParsedRow]:
    """The rows of ``stream`` in the given format (ImportFileError if the file is unusable)."""
    if encoding not in ENCODINGS:
        raise ImportFileError(f"unsupported encoding {encoding!r}; use one of {ENCODINGS}")
    if fmt == "csv":
        return read_csv(stream, encoding)
    if fmt == "jsonl":
        return read_jsonl(stream, encoding)
    raise ImportFileError(f"unknown format {fmt!r}; use csv or jsonl")
