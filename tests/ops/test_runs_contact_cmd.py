"""`syncd runs`, `syncd runs show` and `syncd contact`, through the real CLI, on both backends."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from typing import Any

import pytest

from syncd.exit_codes import ExitCode
from syncd.store import leases
from tests.ops.conftest import Invoke, Rows, Story, utcnow
from tests.support.notices import plain

COUNTERS = ("created", "updated", "deleted", "unchanged", "adopted", "failed", "held", "rejected")


def run_json(invoke: Invoke, *args: str) -> Any:
    result = invoke(*args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_runs_json_newest_first_with_counters(invoke: Invoke, story: Story) -> None:
    runs = run_json(invoke, "runs")
    assert [r["id"] for r in runs] == [story.incr_run, story.full_run]
    incr = runs[0]
    assert incr["kind"] == "incremental"
    assert incr["trigger"] == "schedule"
    assert incr["status"] == "partial"
    assert incr["dry_run"] is False
    assert {k: incr[k] for k in COUNTERS} == {
        "created": 0, "updated": 1, "deleted": 0, "unchanged": 0, "adopted": 0, "failed": 3,
        "held": 1, "rejected": 0,
    }  # fmt: skip
    assert incr["api_calls"] == 7
    assert incr["rate_limited"] == 2
    assert incr["duration_seconds"] == 42.0
    assert incr["started_at"].endswith("Z")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--kind", "full"], ["full"]),
        (["--kind", "full", "--kind", "incremental"], ["incremental", "full"]),
        (["--status", "partial"], ["incremental"]),
        (["--status", "failed"], []),
        (["--limit", "1"], ["incremental"]),
    ],
)
def test_runs_filters(invoke: Invoke, story: Story, args: list[str], expected: list[str]) -> None:
    assert [r["kind"] for r in run_json(invoke, "runs", *args)] == expected


def test_runs_unknown_kind_is_a_usage_error(invoke: Invoke, story: Story) -> None:
    assert invoke("runs", "--kind", "weekly").exit_code == 2


def test_runs_csv_and_jsonl(invoke: Invoke, story: Story) -> None:
    as_json = run_json(invoke, "runs")
    lines = invoke("runs", "--format", "jsonl").stdout.splitlines()
    assert [json.loads(line) for line in lines] == as_json
    parsed = list(csv.DictReader(io.StringIO(invoke("runs", "--format", "csv").stdout)))
    assert [int(r["id"]) for r in parsed] == [r["id"] for r in as_json]
    assert [int(r["failed"]) for r in parsed] == [r["failed"] for r in as_json]
    assert parsed[0]["dry_run"] == "false"
    assert parsed[0]["error"] == ""


def test_runs_table_wide_and_narrow(invoke: Invoke, story: Story) -> None:
    wide = invoke("runs", columns=200).stdout
    assert "calls" in wide
    assert "429s" in wide
    assert "partial" in wide
    assert "schedule" in wide
    narrow = invoke("runs", columns=80).stdout
    assert max(len(line) for line in narrow.splitlines()) <= 80
    assert "upd 1, fail 3, held 1" in narrow


def test_runs_running_and_dry(invoke: Invoke, rows: Rows) -> None:
    # A run in progress: its process holds the sync lease (on another host, so alive).
    assert leases.acquire(rows.db, leases.SYNC_LEASE, "sync@elsewhere:42", timedelta(minutes=5))
    rows.run(kind="full", status="running", started_at=utcnow() - timedelta(minutes=3))
    rows.run(kind="full", dry_run=True, trigger="manual", started_at=utcnow() - timedelta(hours=1))
    out = invoke("runs").stdout
    assert "running" in out
    assert "full (dry)" in out
    runs = run_json(invoke, "runs")
    assert runs[0]["status"] == "running"
    assert runs[0]["duration_seconds"] is None


def test_runs_status_filter_matches_the_status_shown(invoke: Invoke, rows: Rows) -> None:
    """A run left `running` by a process that is gone shows as `interrupted`: `--status`
    finds it under what it shows, not under what the row still says."""
    rows.run(kind="full", status="running", started_at=utcnow() - timedelta(hours=2))
    rows.run(kind="incremental", status="succeeded", started_at=utcnow() - timedelta(hours=1))
    assert [r["status"] for r in run_json(invoke, "runs")] == ["succeeded", "interrupted"]
    assert [r["kind"] for r in run_json(invoke, "runs", "--status", "interrupted")] == ["full"]
    assert run_json(invoke, "runs", "--status", "running") == []
    assert len(run_json(invoke, "runs", "--status", "interrupted", "--limit", "1")) == 1


def test_idle_incremental_runs_fold_into_one_line(invoke: Invoke, rows: Rows) -> None:
    """A day of runs that found nothing does not flood the table; every run stays countable."""
    start = utcnow() - timedelta(hours=3)
    busy = rows.run(started_at=start, created=4, api_calls=4)
    idle = [rows.run(started_at=start + timedelta(minutes=1 + i)) for i in range(30)]
    later = rows.run(started_at=start + timedelta(hours=1), updated=1, api_calls=1)
    lone = rows.run(started_at=start + timedelta(hours=2))  # one idle run is shown as it is
    table = invoke("runs").stdout
    assert f"{idle[0]}–{idle[-1]}" in table
    assert "succeeded ×30" in table
    listed = [line.split()[0] for line in table.splitlines() if line.strip()[:1].isdigit()]
    assert listed == [str(lone), str(later), f"{idle[0]}–{idle[-1]}", str(busy)]
    every = json.loads(invoke("runs", "--limit", "0", "--format", "json").stdout)
    assert len(every) == 33
    assert str(idle[5]) in invoke("runs", "--expand", "--limit", "0").stdout
    # --limit counts the table's lines: the fold is one, counted whole.
    assert "succeeded ×30" in invoke("runs", "--limit", "3").stdout


def test_runs_empty(invoke: Invoke) -> None:
    result = invoke("runs")
    assert result.exit_code == 0
    assert "no runs recorded yet" in result.stderr
    assert run_json(invoke, "runs") == []


def test_runs_show_json_groups_errors(invoke: Invoke, story: Story) -> None:
    run = run_json(invoke, "runs", "show", str(story.incr_run))
    assert run["id"] == story.incr_run
    assert run["status"] == "partial"
    assert run["errors"] == [
        {"error": "phone number invalid", "http_status": 400, "count": 2,
         "example_external_id": "C"},
        {"error": "service unavailable", "http_status": 503, "count": 1,
         "example_external_id": "B"},
    ]  # fmt: skip
    assert run["ledger_total"] == 6
    assert [e["correlation_id"] for e in run["ledger"]] == ["c3", "c4", "c5", "c6", "c7", "c9"]
    assert run["ledger_summary"]["create/failed"] == 2


def test_runs_show_limit(invoke: Invoke, story: Story) -> None:
    run = run_json(invoke, "runs", "show", str(story.incr_run), "--limit", "2")
    assert len(run["ledger"]) == 2
    assert run["ledger_total"] == 6
    result = invoke("runs", "show", str(story.incr_run), "--limit", "2")
    assert "first 2 of 6" in result.stdout
    assert f"syncd ledger --run {story.incr_run}" in result.stderr


def test_runs_show_table(invoke: Invoke, story: Story) -> None:
    result = invoke("runs", "show", str(story.incr_run))
    assert result.exit_code == 0
    out = result.stdout
    assert "Errors by reason" in out
    assert "phone number invalid" in out
    assert "service unavailable" in out
    assert "email: ada@x.org → ada@y.org" in out
    assert "API calls" in out
    assert "2 answered 429" in out
    assert "failed 3" in out
    assert "held 1" in out


def test_runs_show_unknown_run_exits_not_found(invoke: Invoke, story: Story) -> None:
    result = invoke("runs", "show", "999999")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert plain(result.stderr).strip() == (
        "syncd: error: no run with id 999999; `syncd runs` lists the recent runs"
    )


def test_runs_show_non_numeric_is_a_usage_error(invoke: Invoke, story: Story) -> None:
    assert invoke("runs", "show", "last").exit_code == 2


def test_contact_found_json(invoke: Invoke, story: Story) -> None:
    report = run_json(invoke, "contact", "A")
    assert report["external_id"] == "A"
    assert report["mirror"]["email"] == "ada@y.org"
    assert report["mirror"]["deleted"] is False
    assert report["mirror"]["phone_numbers"] == [{"type": "mobile", "number": "+15550001111"}]
    link = report["link"]
    assert link["genesys_id"] == "g-a"
    assert link["state"] == "pending_update"
    assert link["attempts"] == 1
    assert link["next_attempt_at"].endswith("Z")
    assert [e["correlation_id"] for e in report["ledger"]] == ["c9", "c3", "c1"]
    assert report["ledger_total"] == 3


def test_contact_table(invoke: Invoke, story: Story) -> None:
    result = invoke("contact", "A")
    assert result.exit_code == 0
    out = result.stdout
    assert "Mirror" in out
    assert "ada@y.org" in out
    assert "Link" in out
    assert "pending_update" in out
    assert "attempts" in out
    assert "email: ada@x.org → ada@y.org" in out
    assert "Ledger (3 entries)" in out


def test_contact_with_a_failed_link(invoke: Invoke, rows: Rows) -> None:
    rows.link("C", genesys_id=None, state="failed", attempts=3, last_error="400 bad phone")
    report = run_json(invoke, "contact", "C")
    assert report["mirror"] is None
    assert report["ledger"] == []
    assert report["link"]["last_error"] == "400 bad phone"
    out = invoke("contact", "C").stdout
    assert "Mirror: no row" in out
    assert "400 bad phone" in out
    assert "Ledger: no entries" in out


def test_contact_only_in_the_ledger(invoke: Invoke, story: Story) -> None:
    report = run_json(invoke, "contact", "F")
    assert report["mirror"] is None
    assert report["link"] is None
    assert [e["op"] for e in report["ledger"]] == ["drift"]


def test_contact_limit(invoke: Invoke, story: Story) -> None:
    report = run_json(invoke, "contact", "A", "--limit", "1")
    assert len(report["ledger"]) == 1
    assert report["ledger_total"] == 3
    assert "newest 1 of 3" in invoke("contact", "A", "--limit", "1").stdout


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_contact_not_found_exits_not_found(invoke: Invoke, story: Story, fmt: str) -> None:
    result = invoke("contact", "nobody", "--format", fmt)
    assert result.exit_code == ExitCode.NOT_FOUND
    assert result.stdout == ""
    assert "no contact with external id 'nobody'" in result.stderr


def test_contact_not_found_hints_at_a_genesys_id(invoke: Invoke, story: Story) -> None:
    result = invoke("contact", "g-b")
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "'g-b' is the Genesys id of external id 'B'" in result.stderr
