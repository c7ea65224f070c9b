"""APScheduler 3.x set-up: when runs are due, when to heartbeat, and proof the scheduler lives.

Why ``BackgroundScheduler``: everything around it is synchronous (SQLAlchemy's sync engine,
the executor's blocking ``execute``) and the main thread must stay free for signals and the
systemd watchdog. An asyncio loop would only add a thread hop to every database call.

Every job is tiny: run jobs only put work on the :class:`~syncd.daemon.work.RunQueue`, which
one worker thread drains. All jobs use ``max_instances=1`` and ``coalesce=True`` (several
missed fire times give one run), and ``misfire_grace_time=None`` (a late job still fires,
however late: after a suspend or a stalled process the run is delayed, never dropped).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from syncd.config import SyncSettings
from syncd.daemon.schedule import full_trigger, incremental_trigger
from syncd.logs import get_logger

_log = get_logger("syncd.daemon.scheduler")

INCREMENTAL, FULL, HEARTBEAT, TICK, PRUNE = "incremental", "full", "heartbeat", "tick", "prune"
_JOB_DEFAULTS = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}


def interval(every: timedelta) -> IntervalTrigger:
    return IntervalTrigger(seconds=every.total_seconds(), timezone=UTC)


class Scheduler:
    """The daemon's jobs on one BackgroundScheduler, plus a liveness stamp for the watchdog."""

    def __init__(self) -> None:
        self.aps = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=4)},
            job_defaults=_JOB_DEFAULTS,
        )
        self.aps.add_listener(
            self._on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES
        )
        self.last_tick = time.monotonic()
        self.tick_every: float | None = None

    def start(
        self,
        sync: SyncSettings,
        *,
        enqueue: Callable[[str], None],
        heartbeat: Callable[[], None],
        heartbeat_every: timedelta,
        tick_every: float | None,
        prune: Callable[[], None] | None = None,
    ) -> None:
        """Add the jobs and start the scheduler thread."""
        self.aps.add_job(enqueue, incremental_trigger(sync), args=[INCREMENTAL], id=INCREMENTAL)
        self.aps.add_job(enqueue, full_trigger(sync), args=[FULL], id=FULL)
        self.aps.add_job(heartbeat, interval(heartbeat_every), id=HEARTBEAT)
        if prune is not None:
            # Daily ledger retention, off the run worker: its short batches interleave with runs.
            self.aps.add_job(prune, interval(timedelta(days=1)), id=PRUNE)
        if tick_every:
            self.tick_every = tick_every
            self.aps.add_job(self._tick, IntervalTrigger(seconds=tick_every, timezone=UTC), id=TICK)
        self.aps.start()

    def _tick(self) -> None:
        self.last_tick = time.monotonic()

    def thread_alive(self) -> bool:
        thread = getattr(self.aps, "_thread", None)
        return bool(self.aps.running and thread is not None and thread.is_alive())

    def alive(self) -> bool:
        """The scheduler thread runs and has dispatched the tick job recently."""
        if not self.thread_alive():
            return False
        if self.tick_every is None:
            return True
        return time.monotonic() - self.last_tick < 3 * self.tick_every + 1

    def reschedule(self, old: SyncSettings, new: SyncSettings) -> list[str]:
        """Apply changed run schedules; the names of the jobs rescheduled."""
        changed = []
        if old.incremental_every != new.incremental_every:
            self.aps.reschedule_job(INCREMENTAL, trigger=incremental_trigger(new))
            changed.append(INCREMENTAL)
        if old.full_reconcile_cron != new.full_reconcile_cron:
            self.aps.reschedule_job(FULL, trigger=full_trigger(new))
            changed.append(FULL)
        return changed

    def reschedule_heartbeat(self, every: timedelta) -> None:
        self.aps.reschedule_job(HEARTBEAT, trigger=interval(every))

    def next_run(self, job_id: str) -> datetime | None:
        job = self.aps.get_job(job_id)
        when = getattr(job, "next_run_time", None)
        return when.astimezone(UTC) if isinstance(when, datetime) else None

    def shutdown(self) -> None:
        if self.aps.running:
            self.aps.shutdown(wait=False)

    @staticmethod
    def _on_event(event: Any) -> None:
        if event.code == EVENT_JOB_ERROR:
            _log.error(
                "daemon.job.failed",
                job=event.job_id,
                error=repr(event.exception),
                traceback=event.traceback,
            )
        elif event.code == EVENT_JOB_MISSED:
            _log.warning("daemon.job.missed", job=event.job_id)
        else:
            _log.warning("daemon.job.still_running", job=event.job_id)
