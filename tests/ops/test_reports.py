"""The query layer under the commands: keyset paging, index use, formatting helpers."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from syncd.cli.formatting import human_duration, iso_z, write_csv, write_json
from syncd.cli.ops_common import parse_when
from syncd.cli.ops_ledger_view import change_pair, format_changes, plain_value, stacked_lines
from syncd.store.db import Database
from syncd.store.ledger_query import LedgerFilter, iter_ledger, ledger_page
from tests.ops.conftest import Rows


@pytest.fixture
def ties(rows: Rows) -> list[str]:
    """25 rows on 5 distinct timestamps (5 rows each): keyset paging must not skip or repeat."""
    base = datetime(2026, 1, 1, tzinfo=UTC)
    rows.ledger_many(
        [
            {"at": base + timedelta(seconds=i // 5), "op": "update", "outcome": "ok",
             "external_id": f"X{i % 3}", "correlation_id": f"r{i:02d}"}
            for i in range(25)
        ]
    )  # fmt: skip
    return [f"r{i:02d}" for i in range(25)]


@pytest.mark.parametrize("page_size", [1, 2, 3, 5, 7, 100])
@pytest.mark.parametrize("oldest_first", [False, True])
def test_keyset_pages_cover_every_row_once(
    db: Database, ties: list[str], page_size: int, oldest_first: bool
) -> None:
    flt = LedgerFilter(oldest_first=oldest_first)
    with db.read() as conn:
        got = [r["correlation_id"] for r in iter_ledger(conn, flt, limit=None, page_size=page_size)]
    assert got == (ties if oldest_first else ties[::-1])


@pytest.mark.parametrize("limit", [1, 4, 5, 6, 24, 25, 26])
def test_limit_across_pages(db: Database, ties: list[str], limit: int) -> None:
    with db.read() as conn:
        got = list(iter_ledger(conn, LedgerFilter(), limit=limit, page_size=4))
    assert len(got) == min(limit, 25)


def test_filtered_keyset(db: Database, ties: list[str]) -> None:
    flt = LedgerFilter(external_ids=("X1",))
    with db.read() as conn:
        got = [r["correlation_id"] for r in iter_ledger(conn, flt, limit=None, page_size=2)]
    assert got == [t for i, t in enumerate(ties) if i % 3 == 1][::-1]


def test_iter_ledger_is_lazy(db: Database, ties: list[str]) -> None:
    statements: list[str] = []
    sa.event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    with db.read() as conn:
        rows = iter_ledger(conn, LedgerFilter(), limit=None, page_size=5)
        next(rows)
        assert sum("FROM ledger" in s for s in statements) == 1


def _plan(db: Database, stmt: sa.Select[object]) -> str:
    compiled = stmt.compile(db.engine, compile_kwargs={"literal_binds": True})
    with db.read() as conn:
        rows = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}").all()
    return "\n".join(str(r[-1]) for r in rows)


@pytest.mark.parametrize(
    ("flt", "index"),
    [
        (LedgerFilter(external_ids=("X1",)), "ix_ledger_external_id_at"),
        (LedgerFilter(since=datetime(2026, 1, 1, tzinfo=UTC)), "ix_ledger_at"),
        (LedgerFilter(), "ix_ledger_at"),
        (LedgerFilter(oldest_first=True), "ix_ledger_at"),
        (LedgerFilter(run_id=3), "ix_ledger_run_id_at"),
        (LedgerFilter(outcomes=("failed",)), "ix_ledger_outcome_at"),
        (LedgerFilter(outcomes=("pending",), oldest_first=True), "ix_ledger_outcome_at"),
    ],
)
def test_sqlite_plans_use_an_index_without_sorting(
    sqlite_db: Database, flt: LedgerFilter, index: str
) -> None:
    plan = _plan(sqlite_db, ledger_page(flt, 100))
    assert index in plan
    assert "TEMP B-TREE" not in plan, plan
    page_two = _plan(sqlite_db, ledger_page(flt, 100, (datetime(2026, 1, 1, tzinfo=UTC), 5)))
    assert index in page_two


def test_parse_when() -> None:
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_when("2h", now=now) == datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
    assert parse_when("7d", now=now) == datetime(2026, 4, 24, 12, 0, tzinfo=UTC)
    assert parse_when("2026-05-01") == datetime(2026, 5, 1, tzinfo=UTC)
    assert parse_when("2026-05-01T10:00:00Z") == datetime(2026, 5, 1, 10, tzinfo=UTC)
    assert parse_when("2026-05-01T12:00:00+02:00") == datetime(2026, 5, 1, 10, tzinfo=UTC)
    with pytest.raises(ValueError, match="neither a duration"):
        parse_when("last tuesday")


def test_iso_z_and_durations() -> None:
    assert iso_z(datetime(2026, 5, 1, 12, 0, 3, tzinfo=UTC)) == "2026-05-01T12:00:03Z"
    cest = timezone(timedelta(hours=2))
    assert iso_z(datetime(2026, 5, 1, 14, 0, 0, 5, tzinfo=cest)) == "2026-05-01T12:00:00.000005Z"
    assert iso_z(datetime(2026, 5, 1)) == "2026-05-01T00:00:00Z"
    assert [human_duration(s) for s in (4.25, 42, 185, 7800, 360000)] == [
        "4.2s", "42s", "3m05s", "2h10m", "4d4h",
    ]  # fmt: skip


def test_format_changes() -> None:
    assert format_changes(None) == []
    assert format_changes({"email": ["a@x", "b@x"], "first_name": [None, "Ada"]}) == [
        "email: a@x → b@x",
        "first_name: ∅ → Ada",
    ]
    assert format_changes({"note": "free form"}) == ["note: free form"]
    (line,) = format_changes({"x": ["a" * 100, ""]})
    assert len(line) < 50
    assert "…" in line


def test_stacked_lines_fit_the_width() -> None:
    row = {
        "at": datetime(2026, 5, 1, tzinfo=UTC), "run_id": 12, "op": "update",
        "outcome": "failed", "http_status": 400, "external_id": "CRM-1",
        "genesys_id": "0b0e7f8e-7a0c-4d7e-9a53-1d1b0f6a2c11", "error": "x" * 300,
        "fields": {"email": ["a@x", "b@x"]},
    }  # fmt: skip
    for width in (40, 60, 80, 200):
        lines = stacked_lines(row, width)
        assert all(len(line) <= width for line in lines)
        assert any("email: a@x → b@x" in line for line in lines)


def test_writers() -> None:
    out = io.StringIO()
    write_json([], out)
    assert json.loads(out.getvalue()) == []
    out = io.StringIO()
    rows = [{"a": 1, "b": {"k": [1, None]}, "c": None, "d": True}]
    write_json(rows, out)
    assert json.loads(out.getvalue()) == rows
    out = io.StringIO()
    write_csv(rows, ["a", "b", "c", "d"], out)
    assert out.getvalue() == 'a,b,c,d\n1,"{""k"": [1, null]}",,true\n'


def test_plain_values_read_like_people_write_them() -> None:
    phones = [{"type": "work", "e164": "+14155550100"}, {"type": "mobile", "e164": "+1415"}]
    assert plain_value(phones) == "work +14155550100, mobile +1415"
    assert plain_value([]) == "[]"
    assert plain_value(None) == "∅"
    assert plain_value({"deep": {"er": 1}}) == '{"deep": {"er": 1}}'


def test_change_pair_shows_where_long_values_differ() -> None:
    old, new = change_pair("x" * 60 + "abc", "x" * 60 + "abd")
    assert old.endswith("abc")
    assert new.endswith("abd")
    assert old.startswith("…")
    assert change_pair("short", "also short") == ("short", "also short")
    assert change_pair(None, "a" * 80)[1].endswith("…")
