"""The physical lines of an export file, and what a reader makes of each row.

The file is read as bytes, one physical line at a time and never more than ``MAX_LINE_BYTES``
of it, and decoded per line: an undecodable byte spoils one field of one row, not the import.
Both readers (:mod:`syncd.sync.import_csv`, :mod:`syncd.sync.import_jsonl`) build on this.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import IO

from syncd.errors import InputError
from syncd.sync.canonical import RawContact

MAX_LINE_BYTES = 1024 * 1024
_BOM = b"\xef\xbb\xbf"
# Byte-order marks of encodings that are not ASCII-compatible: refused up front, because
# every line of such a file would be rejected one by one (UTF-32 LE starts like UTF-16 LE).
_FOREIGN_BOMS = (
    (b"\x00\x00\xfe\xff", "UTF-32"),
    (b"\xff\xfe\x00\x00", "UTF-32"),
    (b"\xff\xfe", "UTF-16"),
    (b"\xfe\xff", "UTF-16"),
)
# Bytes the line's encoding could not decode, kept as surrogate escapes to be reported.
UNDECODABLE = re.compile(r"[\udc80-\udcff]")
# Lone surrogates: JSON can spell them (``"\ud800"``) but they are not text, and no database
# or UTF-8 stream can store them.
SURROGATE = re.compile(r"[\ud800-\udfff]")


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


class Lines:
    """Physical lines of a binary stream, decoded one by one and bounded in length."""

    def __init__(self, stream: IO[bytes], encoding: str) -> None:
        self._stream = stream
        self._encoding = encoding
        self.number = 0  # lines consumed so far
        self.taken: list[str] = []  # the lines read since the caller last cleared it

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        data = self._stream.readline(MAX_LINE_BYTES + 1)
        if not data:
            raise StopIteration
        self.number += 1
        # Measured before a BOM is taken off: else a line just over the limit reads as fitting
        # and its tail as the next line.
        too_long = len(data) > MAX_LINE_BYTES and not data.endswith(b"\n")
        if self.number == 1:
            for bom, name in _FOREIGN_BOMS:
                if data.startswith(bom):
                    raise ImportFileError(
                        f"the file is {name} text (it starts with a {name} byte-order mark): "
                        f"re-export it as UTF-8 (e.g. iconv -f {name} -t UTF-8 FILE)"
                    )
            if data.startswith(_BOM):
                data = data[len(_BOM) :]
        if too_long:
            while (rest := self._stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            raise LineTooLong(self.number)
        text = data.decode(self._encoding, "surrogateescape")
        self.taken.append(text)
        return text


class LineTooLong(Exception):
    """A line over ``MAX_LINE_BYTES``: skipped to its end and reported as one rejected row."""

    def __init__(self, line: int) -> None:
        super().__init__(f"line is longer than {MAX_LINE_BYTES // 1024} KiB")
        self.line = line


def usable_id(value: str | None) -> str | None:
    """An id that can key a database row: no NUL (PostgreSQL refuses it), no lone surrogate."""
    if value is None or "\x00" in value or SURROGATE.search(value):
        return None
    return value


def undecodable_reason(field_name: str, value: str, encoding: str) -> str:
    """The rejection reason for undecodable bytes, showing the first few of them."""
    bad = "".join(f"\\x{ord(ch) - 0xDC00:02x}" for ch in UNDECODABLE.findall(value)[:4])
    return (
        f"{field_name}: not valid {encoding} text (bytes {bad}); "
        "re-export the file as UTF-8 or give its encoding"
    )
