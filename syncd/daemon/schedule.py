"""When runs are due: the schedule's triggers, and the questions asked of them.

The scheduler (:mod:`syncd.daemon.scheduler`) fires these triggers; the daemon asks at
start-up whether a full reconcile was missed while it was down (it then runs one at once),
and `syncd status` asks which scheduled runs are overdue. One home, so that all three read
the configuration the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from syncd.config import SyncSettings

__all__ = ["full_trigger", "incremental_trigger", "missed_full", "overdue_runs"]


def incremental_trigger(sync: SyncSettings) -> IntervalTrigger:
    return IntervalTrigger(seconds=sync.incremental_every.total_seconds(), timezone=UTC)


def full_trigger(sync: SyncSettings) -> CronTrigger:
    return CronTrigger.from_crontab(sync.full_reconcile_cron, timezone=UTC)


def missed_full(
    sync: SyncSettings, last_started: datetime | None, now: datetime
) -> datetime | None:
    """The first scheduled full reconcile after the last one started, if it is already past
    (the daemon was down or not leading then); None when none was missed, or when no full
    reconcile ever ran (the daemon starts with one anyway)."""
    if last_started is None:
        return None
    fire = full_trigger(sync).get_next_fire_time(None, last_started + timedelta(seconds=1))
    return fire.astimezone(UTC) if fire is not None and fire <= now else None


def overdue_runs(
    sync: SyncSettings,
    last_started: Mapping[str, datetime],
    now: datetime,
    grace: timedelta,
) -> dict[str, datetime]:
    """Kinds of scheduled run that should have started more than ``grace`` ago and did not,
    each with when it was due. A full reconcile also counts as an incremental run."""
    overdue: dict[str, datetime] = {}
    full_due = missed_full(sync, last_started.get("full"), now)
    if full_due is not None and now - full_due > grace:
        overdue["full"] = full_due
    latest = [last_started[k] for k in ("incremental", "full") if k in last_started]
    if latest:
        due = max(latest) + sync.incremental_every
        if now - due > grace:
            overdue["incremental"] = due
    return overdue
