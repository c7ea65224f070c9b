"""`syncd status` and `syncd runs` say what is true after a kill (issue 16), on both backends.

- a daemon instance of this host whose process is gone is dead, not "running, leader yes";
- a `running` run whose process is gone is not "running now", and its counters come from its
  ledger rows;
- held deletes and intents unresolved for longer than `--pending-after` make it degraded,
  with the count and the command that clears them.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest

from syncd.exit_codes import ExitCode
from syncd.store import leases
from syncd.store.runs import STALE_ERROR
from tests.ops.conftest import Invoke, Rows, utcnow

HOST = socket.gethostname()


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def status(invoke: Invoke, *args: str) -> tuple[int, dict[str, Any]]:
    result = invoke("status", "--format", "json", *args)
    return result.exit_code, json.loads(result.stdout)


def test_a_killed_instance_of_this_host_is_dead(invoke: Invoke, rows: Rows) -> None:
    # Its last heartbeat is fresh and says "running, leader": the process is gone (kill -9).
    rows.daemon("killed", hostname=HOST, pid=dead_pid(), is_leader=True, state="running")
    code, report = status(invoke)
    assert code == ExitCode.NO_DAEMON
    (inst,) = report["daemon"]["instances"]
    assert (inst["alive"], inst["process_gone"]) == (False, True)
    assert report["daemon"]["leader"] is None
    assert any("its process no longer exists" in p for p in report["health"]["problems"])
    table = invoke("status").stdout
    assert "dead (process gone)" in table
    row = next(line for line in table.splitlines() if "killed" in line)
    assert " yes " not in row


@pytest.mark.parametrize(
    ("hostname", "pid"),
    [(HOST, os.getpid()), (f"other-{HOST}", dead_pid())],
    ids=["live-local", "other-host"],
)
def test_an_instance_that_cannot_be_told_dead_stays_alive(
    invoke: Invoke, rows: Rows, hostname: str, pid: int
) -> None:
    rows.daemon("d", hostname=hostname, pid=pid)
    code, report = status(invoke)
    assert code == ExitCode.OK, report["health"]
    assert report["daemon"]["leader"] == "d"


def test_a_running_row_left_by_a_dead_process_is_not_running_now(
    invoke: Invoke, rows: Rows
) -> None:
    rows.daemon(hostname="host-a")
    run = rows.run(kind="full", status="running", started_at=utcnow() - timedelta(minutes=2))
    rows.ledger_many(
        [{"run_id": run, "op": "create", "outcome": "ok", "at": utcnow()} for _ in range(5)]
    )
    # Its lease was held by a process of this host that is gone.
    assert leases.acquire(rows.db, "sync", f"sync@{HOST}:{dead_pid()}", timedelta(minutes=5))
    code, report = status(invoke)
    assert code == ExitCode.OK
    assert report["current_run"] is None
    assert report["abandoned_run"]["id"] == run
    assert "was left by a process that is gone" in invoke("status").stdout
    (shown,) = json.loads(invoke("runs", "--format", "json").stdout)
    assert (shown["status"], shown["created"], shown["counters_from"]) == (
        "interrupted",
        5,
        "ledger",
    )
    assert shown["api_calls"] is None


def test_a_run_marked_interrupted_by_the_next_run_counts_from_its_ledger(
    invoke: Invoke, rows: Rows
) -> None:
    run = rows.run(status="interrupted", error=STALE_ERROR)
    rows.ledger_many(
        [{"run_id": run, "op": "create", "outcome": "ok", "at": utcnow()} for _ in range(820)]
        + [{"run_id": run, "op": "create", "outcome": "pending", "at": utcnow()}]
    )
    out = invoke("runs").stdout
    assert "820" in out
    assert "no changes" not in out
    shown = json.loads(invoke("runs", "show", str(run), "--format", "json").stdout)
    assert (shown["created"], shown["unresolved"], shown["api_calls"]) == (820, 1, None)
    text = invoke("runs", "show", str(run)).stdout
    assert "created 820" in text
    assert "unresolved intents 1" in text
    # A run interrupted by its own process (stop) recorded its counters: they are kept.
    own = rows.run(status="interrupted", error="stopped", created=3, api_calls=4)
    kept = json.loads(invoke("runs", "show", str(own), "--format", "json").stdout)
    assert (kept["created"], kept["api_calls"], kept["counters_from"]) == (3, 4, "run")


def test_held_deletes_make_status_degraded_with_the_command(invoke: Invoke, rows: Rows) -> None:
    rows.daemon()
    for ext in ("A", "B", "C"):
        rows.link(ext, state="held")
    code, report = status(invoke)
    assert code == ExitCode.PARTIAL
    assert report["held_deletes"] == 3
    (problem,) = report["health"]["problems"]
    assert problem.startswith("3 delete(s) held by the mass-delete guard")
    assert "`syncd sync --allow-mass-delete`" in problem


@pytest.mark.parametrize(("age", "degraded"), [(timedelta(hours=1), True), (timedelta(0), False)])
def test_old_unresolved_intents_make_status_degraded(
    invoke: Invoke, rows: Rows, age: timedelta, degraded: bool
) -> None:
    rows.daemon()
    rows.link("P", state="pending_create", genesys_id=None)
    rows.ledger(external_id="P", op="create", outcome="pending", at=utcnow() - age)
    code, report = status(invoke, "--pending-after", "15m")
    assert report["intents"]["pending"] == 1
    if degraded:
        assert code == ExitCode.PARTIAL
        (problem,) = report["health"]["problems"]
        assert problem.startswith("1 intent(s) unresolved for more than 15m (")
        assert "`syncd ledger --outcome pending`" in problem
    else:
        assert code == ExitCode.OK, report["health"]


def test_rejected_rows_are_shown_as_rejected_and_degrade_only_when_asked(
    invoke: Invoke, rows: Rows
) -> None:
    """A CRM row Genesys cannot take waits for the CRM, not for syncd: it is counted apart
    from failed links and leaves the status healthy unless --rejected-degrades."""
    rows.daemon(hostname=f"other-{HOST}")
    rows.link("BAD-1", genesys_id=None, state="failed", rejected_hash="h1", last_error="rejected")
    rows.link("BAD-2", state="failed", rejected_hash="h2", last_error="rejected by Genesys")
    code, report = status(invoke)
    assert code == ExitCode.OK, report["health"]
    by_state = report["links"]["by_state"]
    assert (by_state["rejected"], by_state["failed"]) == (2, 0)
    assert "0 failed, 2 rejected" in invoke("status").stdout
    code, report = status(invoke, "--rejected-degrades")
    assert code == ExitCode.PARTIAL
    assert any("2 CRM row(s) rejected" in p for p in report["health"]["problems"])
    contact = json.loads(invoke("contact", "BAD-1", "--format", "json").stdout)
    assert contact["link"]["state"] == "rejected"
    rows.link("RETRY-1", state="failed", last_error="503")  # a failure syncd retries
    code, report = status(invoke)
    assert code == ExitCode.PARTIAL
    assert report["health"]["problems"] == ["1 contact link(s) in state failed"]


def test_rows_waiting_for_a_fix_in_genesys_are_shown_blocked_and_degrade(
    invoke: Invoke, rows: Rows
) -> None:
    """A row that Genesys refused because a record it references is missing (an
    ApiEnvironmentError) is retried, but only a fix in Genesys helps: it is counted apart as
    ``blocked`` and makes the status degraded, saying where to look."""
    rows.daemon(hostname=f"other-{HOST}")
    error = "POST /externalcontacts/contacts -> 400: ... [fix in Genesys: the division]"
    rows.link("WAIT-1", genesys_id=None, state="failed", last_error=error)
    code, report = status(invoke)
    assert code == ExitCode.PARTIAL
    by_state = report["links"]["by_state"]
    assert (by_state["blocked"], by_state["failed"], by_state["rejected"]) == (1, 0, 0)
    (problem,) = report["health"]["problems"]
    assert problem.startswith("1 CRM row(s) blocked: each waits for a fix in Genesys")
    assert "0 failed, 0 rejected, 1 blocked" in invoke("status").stdout
    contact = json.loads(invoke("contact", "WAIT-1", "--format", "json").stdout)
    assert contact["link"]["state"] == "blocked"


def test_a_missed_nightly_full_reconcile_makes_status_degraded(invoke: Invoke, rows: Rows) -> None:
    """The daemon was down at 03:00: the full reconcile due then never started."""
    rows.daemon("d")
    rows.run(kind="full", started_at=utcnow() - timedelta(days=2))
    rows.run(kind="incremental", started_at=utcnow() - timedelta(seconds=30))
    code, report = status(invoke)
    assert code == ExitCode.PARTIAL, report["health"]
    (problem,) = report["health"]["problems"]
    assert problem.startswith("the full run due at ")
    assert "has not started (overdue by" in problem
    assert "`syncd resync --full`" in problem
    assert list(report["overdue"]) == ["full"]
    due = report["overdue"]["full"]  # ISO in JSON, to the minute in the problem's words
    assert problem.startswith(f"the full run due at {due[:10]} {due[11:16]}Z"), (due, problem)
    # A day of slack (and more) says the same schedule is not overdue yet.
    code, relaxed = status(invoke, "--overdue-after", "72h")
    assert code == ExitCode.OK
    assert relaxed["overdue"] == {}


def test_incremental_runs_that_stopped_are_overdue(invoke: Invoke, rows: Rows) -> None:
    rows.daemon("d")
    rows.run(kind="full", started_at=utcnow() - timedelta(hours=1))
    code, report = status(invoke, "--overdue-after", "20m")
    assert code == ExitCode.PARTIAL
    assert any(p.startswith("the incremental run due at") for p in report["health"]["problems"])
    # While a run is in progress the others wait for it: nothing is overdue then.
    assert status(invoke, "--overdue-after", "2h")[0] == ExitCode.OK
