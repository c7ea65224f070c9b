"""`syncd run` as a real subprocess (with the test executor) on a temporary SQLite database."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.exit_codes import ExitCode
from syncd.store import leases, requests
from syncd.store.schema import sync_runs
from tests.daemon.conftest import Harness, assert_no_overlap, eventually, wait_request, write_config

pytestmark = pytest.mark.slow


def _count(h: Harness, **match: object) -> list[dict[str, Any]]:
    return [r for r in h.runs() if all(r[k] == v for k, v in match.items())]


def test_scheduled_runs_happen_and_never_overlap(harness: Harness) -> None:
    write_config(harness.config, harness.url, incremental_every="1s")
    daemon = harness.start(SYNCD_TEST_RUN_SECONDS="0.3")
    daemon.wait_for("daemon.started")
    eventually(lambda: len(_count(harness, trigger="schedule")) >= 3, 20, "three scheduled runs")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    runs = harness.runs()
    # The first run is a full reconcile: no full reconcile ever succeeded on this database, and
    # an incremental run (which does not list Genesys) could duplicate contacts made by hand.
    assert (runs[0]["trigger"], runs[0]["kind"]) == ("startup", "full")
    assert {r["kind"] for r in runs[1:]} == {"incremental"}
    assert all(r["status"] in ("succeeded", "interrupted") for r in runs)
    assert_no_overlap(runs)
    finished = daemon.events("daemon.run.finished")
    assert all(e.get("run_id") and e.get("job") in ("incremental", "full") for e in finished)


def test_resync_wait_returns_the_runs_exit_code(harness: Harness) -> None:
    daemon = harness.start()
    daemon.wait_for("daemon.started")
    t0 = time.monotonic()
    result = harness.syncd("resync", "--wait", "--external-id", "exit=3")
    elapsed = time.monotonic() - t0
    assert result.returncode == 3, result.stdout + result.stderr
    assert "request #1 queued: targeted run for 1 contact(s)" in result.stdout
    assert "request #1: done, run #" in result.stdout
    assert elapsed < 10
    db = harness.database()
    try:
        req = requests.get(db, 1)
    finally:
        db.dispose()
    assert req is not None
    assert req.status == "done"
    assert req.exit_code == 3
    assert req.run_id is not None
    assert req.claimed_at is not None
    assert (req.claimed_at - req.requested_at).total_seconds() < 2  # picked up within ~1 poll
    run = next(r for r in harness.runs() if r["id"] == req.run_id)
    assert (run["kind"], run["trigger"], run["status"]) == ("targeted", "manual", "held")
    pickup = daemon.wait_for("daemon.run.started", request_id=1)
    assert pickup["trigger"] == "manual"


def test_a_run_that_raises_is_logged_and_the_daemon_goes_on(harness: Harness) -> None:
    daemon = harness.start()
    daemon.wait_for("daemon.started")
    result = harness.syncd("resync", "--wait", "--external-id", "raise")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed" in result.stdout
    failed = daemon.wait_for("daemon.run.failed")
    assert "the fake executor was told to raise" in failed["exception"]
    result = harness.syncd("resync", "--wait", "--full")
    assert result.returncode == 0, result.stdout + result.stderr
    assert daemon.proc.poll() is None


def test_resync_wait_without_a_daemon_says_so_and_queues_nothing(harness: Harness) -> None:
    t0 = time.monotonic()
    result = harness.syncd("resync", "--wait")
    assert time.monotonic() - t0 < 15
    assert result.returncode == ExitCode.NO_DAEMON
    assert "no syncd daemon has ever run against this database" in result.stderr
    assert "nothing was queued" in result.stderr
    db = harness.database()
    try:
        assert requests.get(db, 1) is None
        # Without --wait the request is queued, with a warning, for the next daemon.
        result = harness.syncd("resync", "--full")
        assert result.returncode == 0
        assert "request #1 queued: full run" in result.stdout
        assert "the request runs when a daemon starts" in result.stderr
        assert requests.pending_count(db) == 1
    finally:
        db.dispose()


def test_resync_wait_gives_up_when_the_daemon_dies(harness: Harness) -> None:
    daemon = harness.start(SYNCD_DAEMON_RUN_ON_START="false")
    daemon.wait_for("daemon.started")
    daemon.proc.kill()  # kill -9: the heartbeat goes stale
    daemon.wait_exit()
    t0 = time.monotonic()
    result = harness.syncd("resync", "--wait", timeout=30)
    assert result.returncode == ExitCode.NO_DAEMON
    assert time.monotonic() - t0 < 15
    assert "no syncd daemon is running" in result.stdout + result.stderr


def test_sigterm_mid_run_exits_0_and_the_next_start_finishes(harness: Harness) -> None:
    daemon = harness.start(SYNCD_DAEMON_RUN_ON_START="false")
    daemon.wait_for("daemon.started")
    assert harness.syncd("resync", "--external-id", "sleep-once=60").returncode == 0
    eventually(lambda: _count(harness, status="running"), 15, "the run to start")
    t0 = time.monotonic()
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(20) == 0
    assert time.monotonic() - t0 < 10
    (run,) = harness.runs()
    assert run["status"] == "interrupted"
    assert run["error"].startswith("stop requested")  # the stop event reached the executor
    db = harness.database()
    try:
        req = requests.get(db, 1)
        assert req is not None
        assert req.status == "pending"  # unfinished work is queued again, not lost
        assert req.run_id == run["id"]
        daemon.wait_for("daemon.stopped", exit_code=0)
        # The next start finishes the request.
        again = harness.start(SYNCD_DAEMON_RUN_ON_START="false")
        again.wait_for("daemon.started")
        done = wait_request(db, 1, "done", timeout=20)
        assert done.exit_code == 0
        assert done.run_id != run["id"]
    finally:
        db.dispose()
    assert_no_overlap(harness.runs())


def test_sighup_reloads_and_survives_a_bad_file(harness: Harness) -> None:
    daemon = harness.start(SYNCD_DAEMON_RUN_ON_START="false")
    daemon.wait_for("daemon.started")
    assert not _count(harness, trigger="schedule")
    write_config(harness.config, harness.url, incremental_every="1s")
    daemon.signal(signal.SIGHUP)
    applied = daemon.wait_for("daemon.reload.applied")
    assert applied["changed"] == ["sync.incremental_every"]
    assert applied["rescheduled"] == ["incremental"]
    assert len(daemon.events("fake.executor.created")) == 2  # rebuilt from the new settings
    eventually(lambda: len(_count(harness, trigger="schedule")) >= 2, 15, "runs at the new pace")

    harness.config.write_text("[sync\nincremental_every = 'soon'\n", encoding="utf-8")
    daemon.signal(signal.SIGHUP)
    rejected = daemon.wait_for("daemon.reload.rejected")
    assert "is not valid TOML" in rejected["error"]
    before = len(_count(harness, trigger="schedule"))
    eventually(lambda: len(_count(harness, trigger="schedule")) >= before + 2, 15, "old pace kept")

    write_config(harness.config, harness.url, incremental_every="0")  # valid TOML, bad value
    daemon.signal(signal.SIGHUP)
    eventually(lambda: len(daemon.events("daemon.reload.rejected")) == 2, 10, "second rejection")
    assert "sync.incremental_every" in daemon.events("daemon.reload.rejected")[-1]["error"]
    assert daemon.proc.poll() is None
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0


def test_refuses_an_old_schema_and_upgrades_when_configured(harness: Harness) -> None:
    empty = harness.tmp / "empty.db"
    write_config(harness.config, f"sqlite:///{empty}")
    result = harness.syncd("run", timeout=30)
    assert result.returncode == 2
    assert "run `syncd db upgrade` first" in result.stderr
    write_config(harness.config, f"sqlite:///{empty}", auto_upgrade=True)
    daemon = harness.start()
    upgraded = daemon.wait_for("daemon.schema.upgraded")
    assert upgraded["revision_from"] is None
    daemon.wait_for("daemon.started")


def test_second_daemon_on_sqlite_waits_as_standby(harness: Harness) -> None:
    write_config(harness.config, harness.url, incremental_every="1s")
    first = harness.start("first")
    first.wait_for("daemon.leader.elected")
    second = harness.start("second")
    standby = second.wait_for("daemon.standby")
    assert standby["leader"].startswith("daemon@")
    assert "waiting as standby" in standby["detail"]
    eventually(lambda: len(_count(harness, trigger="schedule")) >= 2, 15, "leader runs")
    leader_id = first.wait_for("daemon.starting")["instance_id"]
    assert {r["instance_id"] for r in harness.runs()} == {leader_id}
    # A clean stop releases the leadership: the standby takes over at its next heartbeat.
    first.signal(signal.SIGTERM)
    assert first.wait_exit() == 0
    # Measured by the first daemon itself: the process can take a while to exit after it has
    # released the lease, and the standby need not wait for that.
    asked_to_stop = datetime.fromisoformat(first.wait_for("daemon.stop.requested")["timestamp"])
    second.wait_for("daemon.leader.elected", timeout=10)
    second_id = second.wait_for("daemon.starting")["instance_id"]
    eventually(lambda: _count(harness, instance_id=second_id), 15, "runs by the new leader")
    assert all(
        r["started_at"] >= asked_to_stop.replace(microsecond=0)
        for r in _count(harness, instance_id=second_id)
    )
    assert_no_overlap(harness.runs())


def test_a_foreground_sync_holding_the_lock_defers_the_daemons_runs(harness: Harness) -> None:
    """Invariant 7 across processes: the daemon waits for the "sync" lease, then runs."""
    db = harness.database()
    try:
        foreground = leases.acquire(db, "sync", "sync@operator:1", timedelta(seconds=60))
        assert foreground is not None
        daemon = harness.start(SYNCD_DAEMON_RUN_ON_START="false")
        daemon.wait_for("daemon.started")
        assert harness.syncd("resync").returncode == 0
        deferred = daemon.wait_for("daemon.run.deferred")
        assert "held by sync@operator:1" in deferred["reason"]
        assert harness.runs() == []  # nothing ran while the foreground sync held the lock
        leases.release(db, foreground)
        done = wait_request(db, 1, "done")
        assert done.exit_code == 0
    finally:
        db.dispose()
    assert len(daemon.events("daemon.run.deferred")) == 1  # said once, then retried quietly


@pytest.mark.parametrize("status", ["succeeded", "partial", "held"])
def test_startup_run_is_incremental_once_a_full_reconcile_succeeded(
    harness: Harness, status: str
) -> None:
    """A full reconcile that ended "partial" (some rows failed) or "held" listed Genesys to
    the end too. Chaos suite: with 5% of writes failing no full run ever "succeeded", so every
    restart of the daemon listed the whole org again before doing any other work."""
    from datetime import UTC, datetime

    from syncd.store.db import open_database
    from syncd.store.schema import sync_runs

    write_config(harness.config, harness.url, incremental_every="1h")
    db = open_database(harness.url)
    try:
        with db.write() as conn:
            conn.execute(
                sync_runs.insert().values(
                    kind="full",
                    trigger="schedule",
                    status=status,
                    started_at=datetime.now(UTC),
                    finished_at=datetime.now(UTC),
                )
            )
    finally:
        db.dispose()
    daemon = harness.start(SYNCD_TEST_RUN_SECONDS="0.1")
    daemon.wait_for("daemon.started")
    eventually(lambda: len(_count(harness, trigger="startup")) == 1, 20, "the startup run")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
    (startup,) = _count(harness, trigger="startup")
    assert startup["kind"] == "incremental"


def _ran_full(harness: Harness, started_at: datetime) -> None:
    db = harness.database()
    try:
        with db.write() as conn:
            conn.execute(
                sa.insert(sync_runs).values(
                    kind="full",
                    trigger="schedule",
                    status="succeeded",
                    started_at=started_at,
                    finished_at=started_at + timedelta(minutes=3),
                )
            )
    finally:
        db.dispose()


@pytest.mark.parametrize("missed", [True, False], ids=["missed", "on-time"])
def test_a_full_reconcile_missed_while_down_is_caught_up_at_start(
    harness: Harness, missed: bool
) -> None:
    """The last full reconcile started two days ago: the nightly one was missed, so the
    daemon starts with one; a full reconcile a minute ago leaves it to the schedule."""
    write_config(harness.config, harness.url, incremental_every="1h")
    ago = timedelta(days=2) if missed else timedelta(minutes=1)
    _ran_full(harness, datetime.now(UTC) - ago)
    daemon = harness.start(SYNCD_TEST_RUN_SECONDS="0.1")
    daemon.wait_for("daemon.run.finished")
    startup = [r for r in harness.runs() if r["trigger"] == "startup"]
    assert [r["kind"] for r in startup] == (["full"] if missed else ["incremental"])
    assert bool(daemon.events("daemon.full.catching_up")) is missed
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0
