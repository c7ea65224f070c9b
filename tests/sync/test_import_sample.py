"""The bundled demo export: reproducible, and rejected exactly where it means to be."""

from __future__ import annotations

import csv

import phonenumbers

from syncd.sync.canonical import ContentRules
from syncd.sync.import_formats import CSV_PHONE_COLUMNS, read_rows
from syncd.sync.importer import validate
from tests.sync import make_sample_crm

SAMPLE = make_sample_crm.DEFAULT_PATH


def test_sample_is_what_the_generator_makes() -> None:
    assert SAMPLE.read_text(encoding="utf-8") == make_sample_crm.render(), (
        "regenerate with: uv run python -m tests.sync.make_sample_crm"
    )


def test_sample_phones_are_possible_except_the_deliberate_ones() -> None:
    with SAMPLE.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == make_sample_crm.COUNT
    bad_phone_ids = {k for k, v in make_sample_crm.INVALID.items() if v.startswith("phone")}
    for row in rows:
        for column in CSV_PHONE_COLUMNS:
            if not row[column]:
                continue
            possible = phonenumbers.is_possible_number(phonenumbers.parse(row[column], "US"))
            expected = not (column == "workPhone" and row["externalId"] in bad_phone_ids)
            assert possible == expected, (row["externalId"], row[column])


def test_sample_is_messy_in_the_promised_ways() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    assert "(202) 555-01" in text or "(212) 555-01" in text
    assert "+44 20 7946 0" in text
    assert "\u0301" in text or "\u0308" in text  # some names in NFD
    assert "é" in text  # and some in NFC
    assert ",  " in text  # values with stray spaces


def test_sample_rejects_exactly_the_invalid_rows() -> None:
    rejected: dict[str, list[str]] = {}
    with SAMPLE.open("rb") as handle:
        for parsed in read_rows(handle, "csv"):
            result = validate(parsed, ContentRules("US"))
            if isinstance(result, list):
                rejected[parsed.external_id or ""] = result
    assert set(rejected) == set(make_sample_crm.INVALID)
    for external_id, reasons in rejected.items():
        field = make_sample_crm.INVALID[external_id].split(":")[0]
        assert any(r.startswith(field.replace("phone", "phoneNumbers")) for r in reasons), reasons
