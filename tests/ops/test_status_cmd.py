"""`syncd status` as a health check: its exit codes and what it reports, on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from syncd.exit_codes import ExitCode
from syncd.store import leases
from tests.ops.conftest import Invoke, Rows, make_invoke, utcnow, write_config
from tests.support.notices import plain


def status(invoke: Invoke, *args: str) -> tuple[int, dict[str, Any]]:
    result = invoke("status", "--format", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def healthy(rows: Rows) -> None:
    rows.daemon()
    rows.run(kind="incremental", status="succeeded")
    # Minutes ago: no scheduled full reconcile (03:00 daily) can be overdue since then.
    rows.run(kind="full", status="succeeded", started_at=utcnow() - timedelta(minutes=6))
    rows.link("A")
    rows.mirror("A")


def test_healthy_exits_0(invoke: Invoke, rows: Rows) -> None:
    healthy(rows)
    rows.mirror("Z", deleted=True)
    rows.request()
    code, report = status(invoke)
    assert code == 0
    assert report["health"] == {"state": "healthy", "exit_code": 0, "problems": []}
    daemon = report["daemon"]
    assert daemon["alive"] is True
    assert daemon["leader"] == "host-a:123"
    assert 0 <= daemon["heartbeat_age_seconds"] < 60
    assert report["next_runs"]["incremental"].endswith("Z")
    assert report["last_runs"]["incremental"]["status"] == "succeeded"
    assert report["last_runs"]["targeted"] is None
    assert report["requests"]["pending"] == 1
    assert report["links"]["total"] == 1
    assert report["links"]["by_state"]["synced"] == 1
    assert report["mirror"] == {"live": 1, "tombstoned": 1}


def test_healthy_table(invoke: Invoke, rows: Rows) -> None:
    healthy(rows)
    result = invoke("status", columns=80)
    assert result.exit_code == 0
    assert result.stdout.startswith("syncd status: HEALTHY (exit 0)")
    assert "host-a:123" in result.stdout
    assert "Last finished runs" in result.stdout
    assert max(len(line) for line in result.stdout.splitlines()) <= 80


def test_stale_heartbeat_exits_4(invoke: Invoke, rows: Rows) -> None:
    healthy(rows)
    with rows.db.write() as conn:
        from syncd.store.schema import daemon_status

        conn.execute(
            daemon_status.update().values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=10))
        )
    code, report = status(invoke)
    assert code == 4
    assert report["health"]["state"] == "down"
    assert "no live daemon" in report["health"]["problems"][0]
    assert report["daemon"]["alive"] is False
    assert report["daemon"]["leader"] is None
    result = invoke("status")
    assert result.exit_code == 4
    assert "STALE" in result.stdout
    # A longer tolerance makes the same heartbeat fresh again.
    assert status(invoke, "--stale-after", "1h")[0] == 0


def test_no_daemon_exits_4(invoke: Invoke, rows: Rows) -> None:
    rows.link("A")
    code, report = status(invoke)
    assert code == 4
    assert "no daemon has ever reported" in report["health"]["problems"][0]
    assert invoke("status").stdout.startswith("syncd status: DOWN (exit 4)")


def test_stopped_daemon_is_down(invoke: Invoke, rows: Rows) -> None:
    rows.daemon(state="stopped")
    assert status(invoke)[0] == 4


def test_failed_rows_exit_1(invoke: Invoke, rows: Rows) -> None:
    healthy(rows)
    rows.link("B", state="failed", attempts=5, last_error="400 invalid phone")
    code, report = status(invoke)
    assert code == 1
    assert report["health"]["state"] == "degraded"
    assert report["health"]["problems"] == ["1 contact link(s) in state failed"]
    assert report["links"]["by_state"]["failed"] == 1
    assert "DEGRADED (exit 1)" in invoke("status").stdout


def test_held_rows_exit_1(invoke: Invoke, rows: Rows) -> None:
    healthy(rows)
    rows.link("B", state="held")
    assert status(invoke)[0] == 1


def test_failed_last_run_exits_1(invoke: Invoke, rows: Rows) -> None:
    healthy(rows)
    rows.run(kind="full", status="failed", error="401 bad credentials")
    code, report = status(invoke)
    assert code == 1
    assert "the last full run" in report["health"]["problems"][0]
    assert "401 bad credentials" in report["health"]["problems"][0]


def test_a_failed_dry_run_or_an_older_failure_does_not_count(invoke: Invoke, rows: Rows) -> None:
    rows.daemon()
    rows.run(kind="full", status="failed", started_at=utcnow() - timedelta(minutes=9))
    rows.run(kind="full", status="succeeded", started_at=utcnow() - timedelta(minutes=7))
    rows.run(kind="full", status="failed", dry_run=True, started_at=utcnow() - timedelta(minutes=5))
    assert status(invoke)[0] == 0


def test_running_run_is_reported(invoke: Invoke, rows: Rows) -> None:
    healthy(rows)
    # A run in progress: its process holds the sync lease (on another host, so alive).
    assert leases.acquire(rows.db, leases.SYNC_LEASE, "sync@elsewhere:42", timedelta(minutes=5))
    rows.run(kind="full", status="running", started_at=utcnow() - timedelta(minutes=2))
    code, report = status(invoke)
    assert code == 0
    assert report["current_run"]["status"] == "running"
    assert report["last_runs"]["full"]["status"] == "succeeded"


def test_down_beats_degraded(invoke: Invoke, rows: Rows) -> None:
    rows.link("B", state="failed")
    code, report = status(invoke)
    assert code == 4
    assert len(report["health"]["problems"]) == 2


def test_live_daemon_without_leader_is_degraded(invoke: Invoke, rows: Rows) -> None:
    rows.daemon(is_leader=False)
    rows.daemon("host-b:9", hostname="host-b", is_leader=True,
                heartbeat_at=datetime.now(UTC) - timedelta(hours=1))  # fmt: skip
    code, report = status(invoke)
    assert code == 1
    assert "none is the leader" in report["health"]["problems"][0]
    assert [i["alive"] for i in report["daemon"]["instances"]] == [True, False]


def test_unreachable_database_exits_database_unavailable(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = make_invoke(config)("status")
    assert result.exit_code == ExitCode.DATABASE_UNAVAILABLE
    assert plain(result.stderr).startswith("syncd: error: cannot read the database")


@pytest.mark.parametrize(
    "command",
    [("ledger",), ("runs",), ("runs", "show", "1"), ("contact", "crm-1")],
    ids=" ".join,
)
def test_every_operator_command_gives_the_same_code_for_an_unreadable_database(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """One meaning per number: ``status`` is not the only command that reads the database."""
    config = write_config(tmp_path / "c.toml", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = make_invoke(config)(*command)
    assert result.exit_code == ExitCode.DATABASE_UNAVAILABLE, result.stderr
    assert plain(result.stderr).startswith("syncd: error: cannot read the database")


def test_missing_schema_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path / 'empty.db'}")
    result = make_invoke(config)("status")
    assert result.exit_code == 2
    assert "syncd db upgrade" in result.stderr
