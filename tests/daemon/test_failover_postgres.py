"""PostgreSQL: two daemons on one database, one leads; kill -9 it and the other takes over."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from syncd.store import status
from tests.daemon.conftest import Harness, assert_no_overlap, eventually, wait_request, write_config

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def test_standby_takes_over_after_kill_9_without_overlapping_runs(pg_harness: Harness) -> None:
    h = pg_harness
    write_config(h.config, h.url, incremental_every="1s")
    leader = h.start("a", SYNCD_TEST_RUN_SECONDS="0.3")
    leader.wait_for("daemon.leader.elected")
    leader_id = leader.wait_for("daemon.starting")["instance_id"]
    standby = h.start("b", SYNCD_TEST_RUN_SECONDS="0.3")
    standby.wait_for("daemon.standby")
    standby_id = standby.wait_for("daemon.starting")["instance_id"]
    eventually(lambda: len(h.runs()) >= 3, 20, "runs by the leader")
    assert {r["instance_id"] for r in h.runs()} == {leader_id}  # only the leader syncs

    db = h.database()
    try:
        live = status.live_instances(db, stale_after=timedelta(seconds=5))
        assert [(s.instance_id, s.is_leader) for s in live] == [
            (leader_id, True),
            (standby_id, False),
        ]
        # Kill the leader in the middle of a manual run (it holds the "sync" lease).
        assert h.syncd("resync", "--external-id", "sleep-once=30").returncode == 0
        eventually(lambda: wait_request(db, 1, "running").run_id, 15, "the run id")
        leader.proc.send_signal(signal.SIGKILL)
        killed_at = datetime.now(UTC)
        t0 = time.monotonic()
        leader.wait_exit()

        elected = standby.wait_for("daemon.leader.elected", timeout=30)
        failover = (_parse(elected["timestamp"]) - killed_at).total_seconds()
        assert failover < 30
        done = wait_request(db, 1, "done", timeout=30)
        first_run_by_b = min(r["started_at"] for r in h.runs() if r["instance_id"] == standby_id)
        print(
            f"\nfailover: leader elected {failover:.2f}s after kill -9, first run "
            f"{(first_run_by_b - killed_at).total_seconds():.2f}s, request done "
            f"{time.monotonic() - t0:.2f}s"
        )
        assert done.claimed_by == standby_id
    finally:
        db.dispose()
    standby.signal(signal.SIGTERM)
    assert standby.wait_exit() == 0
    runs = h.runs()
    killed = [r for r in runs if r["finished_at"] is None]
    assert [r["instance_id"] for r in killed] == [leader_id]  # the run killed mid-way
    # The new leader waited for the dead leader's "sync" lease: no run overlaps another.
    assert_no_overlap(runs, open_until=killed_at)
    assert all(r["started_at"] >= killed_at for r in runs if r["instance_id"] == standby_id)
