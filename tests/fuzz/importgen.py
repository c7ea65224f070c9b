"""Hypothesis strategies for CRM export files, each with the outcome a correct import has.

A generated file is a list of rows. A *good* row is a contact that must go in, exactly as
:func:`syncd.sync.canonical.normalize` makes it; a *bad* row is a good row damaged in one way
(broken bytes, control characters, wrong field count, wrong JSON type, a huge value, a
truncated line...) and must be rejected, reported at the physical line where it starts, and
leave the mirror's existing row for its id as it was. A few kinds of damage spill over into
the following rows (an unbalanced CSV quote swallows lines until the next quote): such a row
is *contaminating*, and only the safety half of the model is checked after it.

*File-level* damage (a broken header, a UTF-16 file) must stop the import before anything
is written: exit 2 and an unchanged database.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from hypothesis import strategies as st

from syncd.store.mirror import MirrorRow
from syncd.sync.canonical import RawContact, normalize
from syncd.sync.import_formats import CSV_COLUMNS, MAX_LINE_BYTES
from syncd.sync.importer import to_mirror_row

Fmt = Literal["csv", "jsonl"]

# Text a CRM might hold: any character but controls, surrogates and line separators.
_TEXT = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp"))
NAMES = st.text(_TEXT, min_size=1, max_size=12).filter(lambda s: bool(s.strip()))
# Quotes, commas and line breaks inside values: CSV must quote them, JSON escape them.
TRICKY_NAMES = st.one_of(
    NAMES,
    st.builds(lambda a, b: f"{a}\n{b}", NAMES, NAMES),
    st.builds(lambda a, b: f'{a}, "{b}"', NAMES, NAMES),
)
EMAILS = st.one_of(
    st.just(""),
    st.from_regex(r"[a-z0-9]{1,8}(\.[a-z0-9]{1,4})?@(example|crm)\.(com|org)", fullmatch=True),
    st.just(" Mixed.Case@Example.COM "),
)
PHONES = st.sampled_from(
    ["", "(202) 555-0143", "+44 20 7946 0958", "202.555.0199", "+1 415 555 0100", "+33142685300"]
)
CONTROL_CHARS = [chr(c) for c in (*range(0x01, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F)]
BAD_BYTES = [b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80", b"\xf8\x88\x80\x80\x80"]


@dataclass
class Row:
    """One row of a generated file and what importing it must do."""

    external_id: str | None
    values: dict[str, str]  # CSV_COLUMNS -> text, before damage
    damage: str | None = None  # None: a good row
    lines: list[int] = field(default_factory=list)  # physical lines it must be rejected at
    contaminating: bool = False
    expected: MirrorRow | None = None  # good rows only


@dataclass
class Case:
    fmt: Fmt
    data: bytes
    rows: list[Row]
    base: list[MirrorRow]  # the mirror before the import
    file_error: str | None = None  # the kind of file-level damage, if any

    def __repr__(self) -> str:  # a failing example's file may be megabytes long
        data = self.data if len(self.data) < 2000 else self.data[:2000] + b"...(cut)"
        return (
            f"Case(fmt={self.fmt!r}, file_error={self.file_error!r}, data={data!r}, "
            f"rows={[(r.external_id, r.damage, r.lines) for r in self.rows]!r}, "
            f"base={[r.external_id for r in self.base]!r})"
        )

    @property
    def contaminated(self) -> bool:
        return any(r.contaminating for r in self.rows)

    def good(self) -> list[Row]:
        return [r for r in self.rows if r.damage is None]

    def bad(self) -> list[Row]:
        return [r for r in self.rows if r.damage is not None]

    def clean_prefix(self) -> list[Row]:
        """Good rows before the first contaminating row (they must be in, whatever follows)."""
        out = []
        for row in self.rows:
            if row.contaminating:
                break
            if row.damage is None:
                out.append(row)
        return out


def raw_contact(values: dict[str, str]) -> RawContact:
    phones = tuple(
        (values[col], kind)
        for col, kind in (
            ("workPhone", "WORK"),
            ("mobilePhone", "MOBILE"),
            ("homePhone", "HOME"),
            ("otherPhone", "OTHER"),
        )
        if values[col].strip()
    )
    return RawContact(
        external_id=values["externalId"],
        first_name=values["firstName"] or None,
        last_name=values["lastName"] or None,
        email=values["email"] or None,
        phone_numbers=phones,
        organization_id=values["organizationId"] or None,
        organization_name=values["organizationName"] or None,
    )


def expected_row(values: dict[str, str]) -> MirrorRow:
    return to_mirror_row(normalize(raw_contact(values)))


@st.composite
def contact_values(draw: st.DrawFn, external_id: str) -> dict[str, str]:
    org = draw(st.booleans())
    return {
        "externalId": external_id,
        "firstName": draw(TRICKY_NAMES),
        "lastName": draw(NAMES),
        "email": draw(EMAILS),
        "workPhone": draw(PHONES),
        "mobilePhone": draw(PHONES),
        "homePhone": draw(st.sampled_from(["", "+1 (646) 555-0100"])),
        "otherPhone": "",
        "organizationId": draw(NAMES) if org else "",
        "organizationName": draw(TRICKY_NAMES) if org else "",
    }


# -------------------------------------------------------------------------- serializing


def _csv_line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


def _jsonl_object(values: dict[str, str]) -> dict[str, Any]:
    phones = [
        {"number": values[col], "type": kind}
        for col, kind in (
            ("workPhone", "WORK"),
            ("mobilePhone", "MOBILE"),
            ("homePhone", "HOME"),
            ("otherPhone", "OTHER"),
        )
        if values[col]
    ]
    obj: dict[str, Any] = {
        "externalId": values["externalId"],
        "firstName": values["firstName"] or None,
        "lastName": values["lastName"] or None,
        "email": values["email"] or None,
        "phoneNumbers": phones,
    }
    if values["organizationId"] or values["organizationName"]:
        obj["externalOrganization"] = {
            "id": values["organizationId"] or None,
            "name": values["organizationName"] or None,
        }
    return obj


CSV_DAMAGE = [
    "nul",
    "control",
    "bad_bytes",
    "extra_field",
    "missing_field",
    "no_first_name",
    "bad_email",
    "bad_phone",
    "long_name",
    "huge_field",
    "huge_line",
    "bare_cr",
    "truncated_last",
    "unbalanced_quote",
]
JSONL_DAMAGE = [
    "nul",
    "escaped_nul",
    "escaped_surrogate",
    "control",
    "bad_bytes",
    "wrong_type",
    "phones_type",
    "org_type",
    "not_object",
    "truncated",
    "trailing_garbage",
    "deep",
    "no_first_name",
    "bad_email",
    "long_name",
    "huge_line",
    "embedded_newline",
    "bom_line",
]
HEADER_DAMAGE = [
    "drop_column",
    "duplicate_column",
    "unknown_column",
    "empty_column",
    "utf16",
    "utf16_bom_only",
    "empty_file",
]


def _damage_csv(draw: st.DrawFn, values: dict[str, str], kind: str) -> tuple[bytes, bool]:
    """The damaged row's bytes and whether the damage can spill into the next rows."""
    cells = [values[c] for c in CSV_COLUMNS]
    col = draw(st.integers(0, len(cells) - 1))
    if kind == "nul":
        cells[col] = cells[col][:1] + "\x00" + cells[col][1:]
    elif kind == "control":
        ch = draw(st.sampled_from(CONTROL_CHARS))
        cells[col] = f"x{ch}{cells[col]}"
    elif kind == "bad_bytes":
        marker = "\ue000BAD\ue000"
        cells[col] = cells[col] + marker
        line = _csv_line(cells).encode()
        return line.replace(marker.encode(), draw(st.sampled_from(BAD_BYTES))), False
    elif kind == "extra_field":
        cells.append(draw(NAMES))
    elif kind == "missing_field":
        del cells[col]
    elif kind == "no_first_name":
        cells[1] = draw(st.sampled_from(["", "   "]))
    elif kind == "bad_email":
        cells[3] = draw(st.sampled_from(["not-an-email", "a@b", "two@@example.com", "x y@z.com"]))
    elif kind == "bad_phone":
        cells[4] = draw(st.sampled_from(["12", "abc", "+999 1", "1" * 40]))
    elif kind == "long_name":
        cells[2] = "L" * draw(st.sampled_from([1001, 5000, 60_000]))
    elif kind == "huge_field":
        cells[col] = "H" * (128 * 1024 + draw(st.sampled_from([1, 5000])))
    elif kind == "huge_line":
        cells[9] = "W" * (MAX_LINE_BYTES + 10)
    elif kind == "bare_cr":  # a stray CR right after the (unquoted) id: not a line end
        return _csv_line(cells).replace(",", "\r,", 1).encode(), False
    elif kind == "unbalanced_quote":
        line = _csv_line(cells)
        return ('"' + line).encode(), True
    return _csv_line(cells).encode(), False


def _damage_jsonl(draw: st.DrawFn, values: dict[str, str], kind: str) -> bytes:
    obj = _jsonl_object(values)
    key = draw(st.sampled_from(["externalId", "firstName", "lastName", "email"]))
    if kind == "nul":
        obj["firstName"] = "a\ue001b"
        return (json.dumps(obj, ensure_ascii=False).replace("\ue001", "\x00") + "\n").encode()
    if kind == "escaped_nul":
        obj[key] = "a\x00b"
    elif kind == "escaped_surrogate":
        text = json.dumps({**obj, key: "a\ue002b"}, ensure_ascii=False).replace("\ue002", "\\ud800")
        return (text + "\n").encode()
    elif kind == "control":
        obj[key] = "a" + draw(st.sampled_from(CONTROL_CHARS)) + "b"
    elif kind == "bad_bytes":
        text = json.dumps({**obj, key: "a\ue003b"}, ensure_ascii=False)
        return text.encode().replace("\ue003".encode(), draw(st.sampled_from(BAD_BYTES))) + b"\n"
    elif kind == "wrong_type":
        obj[key] = draw(
            st.sampled_from([12, 1.5, True, [], ["a"], {"a": 1}, {"id": "x"}, 1e308, -0.0])
        )
    elif kind == "phones_type":
        obj["phoneNumbers"] = draw(
            st.sampled_from(
                ["+12025550143", {"number": "+12025550143"}, [12], [{"number": 1}], [["x"]]]
            )
        )
    elif kind == "org_type":
        obj["externalOrganization"] = draw(
            st.sampled_from(["Acme", 5, ["Acme"], {"id": 5}, {"name": ["x"]}])
        )
    elif kind == "not_object":
        return (
            draw(st.sampled_from(["[1, 2]", '"text"', "42", "null", "true", "[]"])) + "\n"
        ).encode()
    elif kind == "truncated":
        text = json.dumps(obj)
        cut = draw(st.integers(1, len(text) - 1))
        return (text[:cut] + "\n").encode()
    elif kind == "trailing_garbage":
        return (json.dumps(obj) + draw(st.sampled_from([" x", "}", ",", " {}"])) + "\n").encode()
    elif kind == "deep":
        depth = draw(st.sampled_from([10_000, 100_000]))
        text = json.dumps({**obj, "firstName": "\ue004"}, ensure_ascii=False)
        return (text.replace('"\ue004"', "[" * depth + "]" * depth) + "\n").encode()
    elif kind == "no_first_name":
        obj["firstName"] = draw(st.sampled_from([None, "", "  "]))
    elif kind == "bad_email":
        obj["email"] = "not-an-email"
    elif kind == "long_name":
        obj["lastName"] = "L" * draw(st.sampled_from([1001, 60_000]))
    elif kind == "huge_line":
        obj["organizationName"] = "W" * (MAX_LINE_BYTES + 10)
    elif kind == "embedded_newline":
        text = json.dumps({**obj, "firstName": "a\ue005b"}, ensure_ascii=False)
        return (text.replace("\ue005", "\n") + "\n").encode()
    elif kind == "bom_line":
        return ("\ufeff" + json.dumps(obj) + "\n").encode()
    return (json.dumps(obj) + "\n").encode()


@st.composite
def import_cases(
    draw: st.DrawFn, fmt: Fmt, *, file_damage: bool = True, force: str | None = None
) -> Case:
    """A file of good and bad rows over a mirror that already holds a few contacts."""
    base_values = [draw(contact_values(f"E{i:04d}")) for i in range(draw(st.integers(0, 4)))]
    base = [expected_row(v) for v in base_values]
    base_ids = [v["externalId"] for v in base_values]
    kinds = CSV_DAMAGE if fmt == "csv" else JSONL_DAMAGE
    plan = draw(st.lists(st.one_of(st.none(), st.sampled_from(kinds)), min_size=0, max_size=10))
    if force is not None:  # one damaged row between good ones
        plan = [None, force] if force == "truncated_last" else [None, force, None]
    # Only a file's last row can be truncated.
    plan = [k for k in plan if k != "truncated_last"] + (
        ["truncated_last"] if "truncated_last" in plan else []
    )
    free_base = list(base_ids)
    # A UTF-8 BOM opening the file is always fine (a JSONL row that starts with its own BOM
    # must not be the first, or the file's BOM rule would accept it).
    file_bom = draw(st.booleans()) or (fmt == "jsonl" and plan[:1] == ["bom_line"])
    rows: list[Row] = []
    chunks: list[bytes] = []
    line = 1
    if fmt == "csv":
        chunks.append(_csv_line(list(CSV_COLUMNS)).encode())
        line = 2
    for index, kind in enumerate(plan):
        reuse = free_base and draw(st.booleans())
        ext = free_base.pop(draw(st.integers(0, len(free_base) - 1))) if reuse else None
        ext = ext or (f"G{index:04d}" if kind is None else f"B{index:04d}")
        values = draw(contact_values(ext))
        if kind is None:
            data = (
                _csv_line([values[c] for c in CSV_COLUMNS])
                if fmt == "csv"
                else json.dumps(_jsonl_object(values)) + "\n"
            ).encode()
            rows.append(Row(ext, values, None, expected=expected_row(values)))
            chunks.append(data)
            line += data.count(b"\n")
            continue
        contaminating = False
        if fmt == "csv" and kind == "truncated_last":
            cells = [values[c] for c in CSV_COLUMNS]
            prefix = _csv_line(cells[:9]).rstrip("\n").encode()
            data = prefix[: draw(st.integers(1, len(prefix)))]
        elif fmt == "csv":
            data, contaminating = _damage_csv(draw, values, kind)
            # A CSV error inside a record that spans lines ends the record at that line: its
            # other lines are read as records of their own (rejected, or worse: see
            # docs/security.md, "known limits").
            contaminating = contaminating or (
                kind in ("bare_cr", "huge_field") and data.count(b"\n") > 1
            )
        else:
            data = _damage_jsonl(draw, values, kind)
        lines = [line]
        if kind == "embedded_newline":
            lines.append(line + 1)
        rows.append(Row(ext, values, kind, lines, contaminating))
        chunks.append(data)
        line += data.count(b"\n")
    body = b"".join(chunks)
    file_error = None
    if file_damage and draw(st.integers(0, 9)) == 0:
        file_error = draw(
            st.sampled_from(HEADER_DAMAGE if fmt == "csv" else ["utf16", "utf16_bom_only"])
        )
        body = _damage_file(draw, fmt, body, file_error)
    elif file_bom:
        body = b"\xef\xbb\xbf" + body
    return Case(fmt, body, rows, base, file_error)


def _damage_file(draw: st.DrawFn, fmt: Fmt, body: bytes, kind: str) -> bytes:
    if kind == "utf16":
        return body.decode("utf-8", "replace").encode(draw(st.sampled_from(["utf-16", "utf-32"])))
    if kind == "utf16_bom_only":
        return draw(st.sampled_from([b"\xff\xfe", b"\xfe\xff"])) + body
    if kind == "empty_file":
        return draw(st.sampled_from([b"", b"\xef\xbb\xbf", b"\n\n"]))
    header, _, rest = body.partition(b"\n")
    names = header.decode().split(",")
    col = draw(st.integers(0, len(names) - 1))
    if kind == "drop_column":
        del names[col]
    elif kind == "duplicate_column":
        names.append(names[col].upper())
    elif kind == "unknown_column":
        names.append(draw(st.sampled_from(["phone", "Email Address", "id", "x\x00y"])))
    elif kind == "empty_column":
        names.insert(col, "")
    return ",".join(names).encode() + b"\n" + rest
