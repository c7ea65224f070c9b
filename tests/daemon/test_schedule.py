"""When runs are due (``syncd.daemon.schedule``): fixed instants, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncd.config import SyncSettings
from syncd.daemon.schedule import missed_full, overdue_runs

NIGHTLY = SyncSettings(full_reconcile_cron="0 3 * * *", incremental_every=timedelta(minutes=1))
NOW = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def test_a_full_reconcile_missed_while_the_daemon_was_down() -> None:
    # The first scheduled time after the last start, however many were missed since.
    assert missed_full(NIGHTLY, NOW - timedelta(days=1, hours=8), NOW) == datetime(
        2026, 12, 2, 3, 0, tzinfo=UTC
    )
    assert missed_full(NIGHTLY, NOW - timedelta(hours=8), NOW) == datetime(
        2026, 12, 3, 3, 0, tzinfo=UTC
    )


def test_the_nightly_run_that_started_on_time_is_not_missed() -> None:
    on_time = datetime(2026, 12, 3, 3, 0, 0, 300_000, tzinfo=UTC)
    assert missed_full(NIGHTLY, on_time, NOW) is None
    assert missed_full(NIGHTLY, on_time, datetime(2026, 12, 4, 2, 59, tzinfo=UTC)) is None


def test_no_full_reconcile_ever_is_not_a_missed_one() -> None:
    assert missed_full(NIGHTLY, None, NOW) is None


def test_overdue_kinds_with_when_they_were_due() -> None:
    started = {"full": NOW - timedelta(days=2), "incremental": NOW - timedelta(minutes=40)}
    overdue = overdue_runs(NIGHTLY, started, NOW, timedelta(minutes=15))
    assert overdue == {
        "full": datetime(2026, 12, 2, 3, 0, tzinfo=UTC),
        "incremental": NOW - timedelta(minutes=39),
    }
    fresh = {"full": NOW - timedelta(hours=6), "incremental": NOW - timedelta(seconds=20)}
    assert overdue_runs(NIGHTLY, fresh, NOW, timedelta(minutes=15)) == {}
    # A full reconcile is also an incremental run's worth of changes.
    assert overdue_runs(NIGHTLY, {"full": NOW - timedelta(minutes=1)}, NOW, timedelta(0)) == {}
