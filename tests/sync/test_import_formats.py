"""The import readers and the snapshot guard on their own (no database)."""

from __future__ import annotations

import io

import pytest

from syncd.store.mirror import TombstonePlan
from syncd.sync.canonical import ContentRules
from syncd.sync.import_formats import (
    CSV_COLUMNS,
    MAX_LINE_BYTES,
    ImportFileError,
    ParsedRow,
    read_rows,
)
from syncd.sync.importer import snapshot_hold_reason, validate

HEADER = ",".join(CSV_COLUMNS).encode() + b"\n"


def rows(data: bytes, fmt: str = "csv") -> list[ParsedRow]:
    return list(read_rows(io.BytesIO(data), fmt))  # type: ignore[arg-type]


def test_csv_line_numbers_count_physical_lines() -> None:
    data = HEADER + b'a,"multi\nline",L,,,,,,,\n\n\nb,F,L,,,,,,,\r\n'
    got = rows(data)
    assert [(r.line, r.external_id) for r in got] == [(2, "a"), (6, "b")]
    assert got[0].raw is not None
    assert got[0].raw.first_name == "multi\nline"


def test_csv_maps_phone_columns_to_types() -> None:
    data = HEADER + b"a,F,L,e@x.io,1,2,3,4,oid,oname\n"
    raw = rows(data)[0].raw
    assert raw is not None
    assert raw.phone_numbers == (("1", "WORK"), ("2", "MOBILE"), ("3", "HOME"), ("4", "OTHER"))
    assert (raw.organization_id, raw.organization_name) == ("oid", "oname")


def test_external_ids_are_trimmed_and_nfc() -> None:
    data = HEADER + " Jose\u0301 ,F,L,,,,,,,\n".encode()
    assert rows(data)[0].external_id == "Jos\u00e9"


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_an_overlong_line_is_one_rejection_and_reading_goes_on(fmt: str) -> None:
    head = HEADER if fmt == "csv" else b""
    good = b"g,F,L,,,,,,,\n" if fmt == "csv" else b'{"externalId": "g"}\n'
    data = head + b"x" * (MAX_LINE_BYTES + 10) + b"\n" + good
    got = rows(data, fmt)
    first = 2 if fmt == "csv" else 1
    assert [r.line for r in got] == [first, first + 1]
    assert got[0].unidentified
    assert "longer than" in got[0].reasons[0]
    assert got[1].external_id == "g"


def test_jsonl_bom_blank_lines_and_salvaged_id() -> None:
    data = b'\xef\xbb\xbf{"externalId": "a"}\n\n  \n{"externalId": "b\\u00e9", "x": }\n'
    got = rows(data, "jsonl")
    assert [(r.line, r.external_id, r.unidentified) for r in got] == [
        (1, "a", False),
        (4, "b\u00e9", False),
    ]
    assert "not valid JSON" in got[1].reasons[0]


def test_jsonl_wrong_types_keep_every_reason() -> None:
    data = (
        b'{"externalId": "t", "firstName": 1, "lastName": null, "email": ["x"], '
        b'"externalOrganization": "acme", "phoneNumbers": [1, {"number": "2", "type": 3}]}\n'
    )
    parsed = rows(data, "jsonl")[0]
    result = validate(parsed, ContentRules("US"))
    assert isinstance(result, list)
    assert result[:6] == [
        "firstName: expected a string or null, got a number",
        "email: expected a string or null, got an array",
        "phoneNumbers[0]: expected an object, got a number",
        "phoneNumbers[1].type: expected a string, got a number",
        "externalOrganization: expected an object, got a string",
        "firstName: missing (Genesys requires it)",
    ]
    assert "lastName: missing (Genesys requires it)" in result


def test_unknown_encoding_is_refused() -> None:
    with pytest.raises(ImportFileError, match="unsupported encoding"):
        read_rows(io.BytesIO(b""), "csv", encoding="utf-16")


def test_header_problems_are_all_named_at_once() -> None:
    with pytest.raises(ImportFileError) as info:
        rows(b"externalId,firstName,nickname,,email\n")
    message = str(info.value)
    assert "unknown columns: 'nickname', '(empty, column 4)'" in message
    assert "missing columns: lastName, workPhone" in message


def plan(missing: int, live: int) -> TombstonePlan:
    return TombstonePlan(missing=missing, live=live)


def hold(missing: int, live_before: int, **kw: int | float) -> str | None:
    args: dict[str, int | float] = {
        "accepted": 10,
        "unidentified": 0,
        "max_count": 100,
        "max_percent": 10.0,
    }
    args.update(kw)
    return snapshot_hold_reason(
        plan(missing, live_before),
        live_before=live_before,
        **args,  # type: ignore[arg-type]
    )


def test_guard_limits_are_strictly_more_than() -> None:
    assert hold(10, 100) is None  # exactly 10%: allowed
    assert hold(11, 100) is not None
    assert hold(100, 1000, max_count=100) is None
    assert "max_delete_count (99)" in (hold(100, 1000, max_count=99) or "")


def test_guard_empty_source_and_unidentified_rows() -> None:
    assert "no valid rows" in (hold(1, 100, accepted=0) or "")
    assert "no readable externalId" in (hold(1, 100, unidentified=1) or "")
    assert hold(0, 100, accepted=0, unidentified=3) is None  # nothing to tombstone


def test_guard_lists_every_reason() -> None:
    reason = hold(500, 500, accepted=0, max_count=10)
    assert reason is not None
    assert reason.count(";") == 2


def test_a_short_csv_row_without_its_id_cell_is_unidentified() -> None:
    header = b"firstName,lastName,email,workPhone,mobilePhone,homePhone,otherPhone,"
    header += b"organizationId,organizationName,externalId\n"
    [short, full_but_blank] = rows(header + b"Ann,Lee\nAnn,Lee,,,,,,,,\n")
    assert (short.external_id, short.unidentified) == (None, True)
    assert (full_but_blank.external_id, full_but_blank.unidentified) == (None, False)
