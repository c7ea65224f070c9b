"""`syncd ledger`: every filter and every output format, through the real CLI, on both backends."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.ops.conftest import LONG_NAME, Invoke, Rows, Story, make_invoke, write_config

ALL = ["c9", "c8", "c7", "c6", "c5", "c4", "c3", "c2", "c1"]
JSON_KEYS = {
    "at", "run_id", "external_id", "genesys_id", "op", "outcome", "fields", "http_status",
    "error", "correlation_id",
}  # fmt: skip


def ledger_json(invoke: Invoke, *args: str) -> list[dict[str, Any]]:
    result = invoke("ledger", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert isinstance(data, list)
    return data


def ids(entries: list[dict[str, Any]]) -> list[str]:
    return [e["correlation_id"] for e in entries]


def iso(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param([], ALL, id="no-filter-newest-first"),
        pytest.param(["--since", "1h"], ALL[:7], id="since-duration"),
        pytest.param(["--until", "1h"], ["c2", "c1"], id="until-duration"),
        pytest.param(["--since", "45m", "--until", "10m"], ["c7", "c6", "c5", "c4"],
                     id="window"),
        pytest.param(["--external-id", "A"], ["c9", "c3", "c1"], id="external-id"),
        pytest.param(["--external-id", "A", "--external-id", "B"],
                     ["c9", "c7", "c3", "c2", "c1"], id="external-id-repeated"),
        pytest.param(["--genesys-id", "g-b"], ["c7", "c2"], id="genesys-id"),
        pytest.param(["--op", "create"], ["c5", "c4", "c2", "c1"], id="op"),
        pytest.param(["--op", "delete", "--op", "drift"], ["c8", "c6"], id="op-repeated"),
        pytest.param(["--outcome", "failed"], ["c7", "c5", "c4"], id="outcome"),
        pytest.param(["--outcome", "held", "--outcome", "pending"], ["c9", "c6"],
                     id="outcome-repeated"),
        pytest.param(["--limit", "2"], ["c9", "c8"], id="limit"),
        pytest.param(["--limit", "0"], ALL, id="limit-0-is-all"),
        pytest.param(["--oldest-first", "--limit", "3"], ["c1", "c2", "c3"], id="oldest-first"),
        pytest.param(["--reverse"], ALL[::-1], id="reverse-alias"),
        pytest.param(["--op", "create", "--outcome", "failed", "--since", "2h"], ["c5", "c4"],
                     id="combined"),
    ],
)  # fmt: skip
def test_filters(invoke: Invoke, story: Story, args: list[str], expected: list[str]) -> None:
    assert ids(ledger_json(invoke, *args)) == expected


def test_run_filter(invoke: Invoke, story: Story) -> None:
    assert ids(ledger_json(invoke, "--run", str(story.full_run))) == ["c2", "c1"]
    assert ids(ledger_json(invoke, "--run", str(story.incr_run), "--outcome", "failed")) == [
        "c7", "c5", "c4",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "when",
    [
        pytest.param(lambda t: t.replace(tzinfo=None).isoformat(), id="naive-is-utc"),
        pytest.param(lambda t: t.isoformat().replace("+00:00", "Z"), id="z-suffix"),
        pytest.param(lambda t: t.astimezone(timezone(timedelta(hours=2))).isoformat(),
                     id="offset"),
    ],
)  # fmt: skip
def test_since_iso_timestamps(invoke: Invoke, story: Story, when: Any) -> None:
    cutoff = (story.now - timedelta(minutes=45)).astimezone(UTC)
    assert ids(ledger_json(invoke, "--since", when(cutoff))) == ALL[:6]


def test_since_date_only(invoke: Invoke, story: Story) -> None:
    tomorrow = (story.now + timedelta(days=1)).date().isoformat()
    assert ledger_json(invoke, "--since", tomorrow) == []


def test_bad_since_is_a_usage_error(invoke: Invoke, story: Story) -> None:
    result = invoke("ledger", "--since", "yesterday")
    assert result.exit_code == 2
    assert "neither a duration" in result.output


def test_json_shape(invoke: Invoke, story: Story) -> None:
    entries = ledger_json(invoke, "--external-id", "A", "--oldest-first")
    assert all(set(e) == JSON_KEYS for e in entries)
    first = entries[0]
    assert first["fields"] == {"first_name": [None, "Ada"], "email": [None, "ada@x.org"]}
    assert first["op"] == "create"
    assert first["outcome"] == "ok"
    assert first["http_status"] == 200
    assert first["run_id"] == story.full_run
    assert first["genesys_id"] == "g-a"
    assert first["at"].endswith("Z")
    at = datetime.fromisoformat(first["at"])
    assert abs(at - (story.now - timedelta(days=3))) < timedelta(milliseconds=1)


def test_json_empty_is_an_empty_array(invoke: Invoke, story: Story) -> None:
    assert ledger_json(invoke, "--external-id", "nobody") == []


def test_jsonl_matches_json(invoke: Invoke, story: Story) -> None:
    result = invoke("ledger", "--format", "jsonl", "--limit", "0")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 9
    assert [json.loads(line) for line in lines] == ledger_json(invoke, "--limit", "0")


def test_csv_round_trips(invoke: Invoke, story: Story) -> None:
    result = invoke("ledger", "--format", "csv")
    assert result.exit_code == 0
    reader = csv.DictReader(io.StringIO(result.stdout))
    assert reader.fieldnames == [
        "at", "run_id", "external_id", "genesys_id", "op", "outcome", "fields", "http_status",
        "error", "correlation_id",
    ]  # fmt: skip
    parsed = list(reader)
    expected = ledger_json(invoke)
    assert len(parsed) == len(expected) == 9
    for row, want in zip(parsed, expected, strict=True):
        assert row["at"] == want["at"]
        assert (json.loads(row["fields"]) if row["fields"] else None) == want["fields"]
        assert (int(row["http_status"]) if row["http_status"] else None) == want["http_status"]
        assert (int(row["run_id"]) if row["run_id"] else None) == want["run_id"]
        for key in ("external_id", "genesys_id", "op", "outcome", "error", "correlation_id"):
            assert (row[key] or None) == want[key]


def test_csv_quotes_commas_and_newlines(invoke: Invoke, rows: Rows) -> None:
    rows.ledger(external_id="X", error='bad, "quoted"\nsecond line', fields={"a": ["x,y", "z"]})
    result = invoke("ledger", "--format", "csv")
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["error"] == 'bad, "quoted"\nsecond line'
    assert json.loads(row["fields"]) == {"a": ["x,y", "z"]}


def test_table_shows_compact_changes(invoke: Invoke, story: Story) -> None:
    result = invoke("ledger", "--limit", "0")
    assert result.exit_code == 0
    out = result.stdout
    assert "email: ada@x.org → ada@y.org" in out
    assert "first_name: ∅ → Ada" in out
    assert "last_name: Byron → Lovelace" in out
    assert "phone_numbers: work +15551234567 → []" in out
    assert "failed 400" in out
    assert "phone number invalid" in out
    assert LONG_NAME not in out
    assert "organization_name: ∅ → Compagnie" in out
    assert "…" in out


def test_table_fits_an_80_column_terminal(invoke: Invoke, story: Story) -> None:
    result = invoke("ledger", "--limit", "0", columns=80)
    assert result.exit_code == 0
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_table_says_when_the_limit_cut_the_output(invoke: Invoke, story: Story) -> None:
    result = invoke("ledger", "--limit", "3")
    assert "showing the newest 3 entries" in result.stderr
    assert "showing" not in invoke("ledger", "--limit", "9").stderr


def test_table_empty(invoke: Invoke, story: Story) -> None:
    result = invoke("ledger", "--external-id", "nobody")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no ledger entries match" in result.stderr


def test_missing_schema_is_a_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path / 'empty.db'}")
    result = make_invoke(config)("ledger")
    assert result.exit_code == 2
    assert "syncd db upgrade" in result.stderr


def test_fields_show_in_the_same_order_on_every_backend(rows: Rows, invoke: Invoke) -> None:
    """PostgreSQL's JSONB stores object keys by length (``email`` before ``last_name``),
    SQLite's JSON as written: the ledger shows the contact's fields in its field order
    (first name, last name, email, phones, organization)."""
    written = {
        "organization": [None, {"name": "Acme", "id": "A-1"}],
        "email": ["a@x.io", "b@x.io"],
        "phone_numbers": [[], [{"type": "WORK", "number": "+12025550100"}]],
        "first_name": ["Al", "Alan"],
        "last_name": ["T", "Turing"],
    }
    rows.ledger(external_id="F-1", correlation_id="f1", fields=written)
    [entry] = ledger_json(invoke, "--external-id", "F-1")
    shown = entry["fields"]
    assert list(shown) == ["first_name", "last_name", "email", "phone_numbers", "organization"]
    table = invoke("ledger", "--external-id", "F-1")
    assert table.exit_code == 0, table.output
    order = [table.stdout.index(f"{name}:") for name in ("first_name", "last_name", "email")]
    assert order == sorted(order), table.stdout
