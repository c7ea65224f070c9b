"""The one worker thread that performs runs, one at a time, for the leader.

Work comes from two places, checked in this order: manual requests claimed from the database
(an operator may be waiting) and the queue of scheduled runs. Because there is a single
worker, the daemon's own runs never overlap; the ``"sync"`` lease, held by the executor,
keeps them from overlapping a foreground ``syncd sync`` or another daemon (invariant 7).

Nothing a run does can stop the daemon: an exception is logged and recorded as a failed run,
and the worker goes on with the next item.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
import structlog

from syncd.daemon.metrics import Metrics
from syncd.daemon.work import RunQueue, WorkItem
from syncd.errors import LockHeldError
from syncd.exit_codes import ExitCode
from syncd.logs import get_logger
from syncd.store import requests
from syncd.store.db import Database
from syncd.store.leases import Lease
from syncd.store.schema import sync_runs
from syncd.sync.seam import RunExecutor, RunOutcome, StopEvent

_log = get_logger("syncd.daemon")
_COUNTERS = ("api_calls", "rate_limited", "failed", "created", "updated", "deleted")


@dataclass(frozen=True)
class LastRun:
    """The last finished run, for STATUS= lines and logs."""

    kind: str
    trigger: str
    run_id: int | None
    status: str
    exit_code: int
    finished_at: datetime

    def describe(self) -> str:
        run = f"run #{self.run_id}" if self.run_id is not None else "run"
        at = self.finished_at.strftime("%Y-%m-%d %H:%M:%SZ")
        return f"last {run} {self.kind} ({self.trigger}) {self.status}, exit {self.exit_code}, {at}"


class Worker(threading.Thread):
    """Executes :class:`WorkItem` s serially while this instance leads."""

    def __init__(
        self,
        *,
        db: Database,
        queue: RunQueue,
        instance_id: str,
        executor: RunExecutor,
        is_leader: Callable[[], bool],
        fence: Callable[[], Lease | None],
        poll_every: float,
        retry_every: float,
        login_backoff: tuple[float, float] = (30.0, 900.0),
        metrics: Metrics | None = None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__(name="syncd-worker", daemon=True)
        self.db, self.queue, self.instance_id = db, queue, instance_id
        self._executor = executor
        self._next_executor: RunExecutor | None = None
        self._is_leader, self._fence = is_leader, fence
        self.poll_every, self.retry_every = poll_every, retry_every
        self.login_backoff = login_backoff
        self._login_failures = 0
        self._scheduled_after = 0.0  # monotonic: scheduled runs wait until then (login fails)
        self.metrics, self._on_change = metrics, on_change
        self.shutdown = threading.Event()
        self._lock = threading.Lock()
        self._run_stop: StopEvent | None = None
        self._deferred: WorkItem | None = None
        self._retry_at = 0.0
        self._deferred_logged: float | None = None
        self.current: WorkItem | None = None
        self.current_run_id: int | None = None
        self.last_run: LastRun | None = None

    # -- control, from other threads ------------------------------------------------------

    def replace_executor(self, executor: RunExecutor) -> None:
        """Use ``executor`` from the next run on (the current run keeps its executor)."""
        with self._lock:
            old, self._next_executor = self._next_executor, executor
        if old is not None:
            old.close()

    def interrupt(self, grace: float) -> None:
        """Ask the run in flight (if any) to stop within ``grace`` seconds."""
        with self._lock:
            stop = self._run_stop
        if stop is not None:
            stop.stop(grace)

    def stop(self, grace: float) -> None:
        """Take no new work, and interrupt the run in flight."""
        self.shutdown.set()
        self.interrupt(grace)
        self.queue.wake()

    def release_work(self) -> None:
        """Hand back what this worker claimed but did not run (at stop or lost leadership)."""
        with self._lock:
            item, self._deferred = self._deferred, None
        if item is not None and item.claimed is not None:
            requests.requeue(self.db, item.claimed.id, reason="requeued: the daemon stopped")

    def close(self) -> None:
        with self._lock:
            executors = [self._executor, self._next_executor]
            self._next_executor = None
        for executor in executors:
            if executor is not None:
                executor.close()

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        while not self.shutdown.is_set():
            try:
                item = self._next_item()
            except Exception as exc:
                _log.warning("daemon.worker.poll_failed", error=str(exc))
                item = None
            if item is None:
                self.queue.wait(self._idle_wait())
                continue
            self._perform(item)

    def _idle_wait(self) -> float:
        if self._deferred is not None:
            return max(0.05, min(self.poll_every, self._retry_at - time.monotonic()))
        return self.poll_every

    def _next_item(self) -> WorkItem | None:
        if not self._is_leader():
            self.queue.clear()
            if self._deferred is not None:
                self.release_work()
            return None
        if self._deferred is not None:
            if time.monotonic() < self._retry_at:
                return None
            item, self._deferred = self._deferred, None
            return item
        claimed = requests.claim_next(self.db, self.instance_id, fence=self._fence())
        if claimed is not None:
            return WorkItem.from_request(claimed)
        if time.monotonic() < self._scheduled_after:
            return None  # backing off while the login fails: the ticks stay queued
        return self.queue.pop()

    def _perform(self, item: WorkItem) -> None:
        with self._lock:
            if self.shutdown.is_set():  # stop() came after this item was picked: hand it back
                self._deferred = item
                stopping = True
            else:
                stopping = False
                if self._next_executor is not None:
                    self._executor.close()
                    self._executor, self._next_executor = self._next_executor, None
                executor = self._executor
                # Created under the lock: a stop() from now on finds it and interrupts it.
                stop = self._run_stop = StopEvent()
        if stopping:
            self.release_work()
            return
        self.current, self.current_run_id = item, None
        if item.claimed is None:
            self.queue.discard(item.kind)  # ticks queued before this start are served by it
        ctx: dict[str, object] = {"job": item.kind, "trigger": item.trigger}
        if item.claimed is not None:
            ctx["request_id"] = item.claimed.id
        with structlog.contextvars.bound_contextvars(**ctx):
            self._on_change()
            try:
                self._execute(executor, item, stop)
            finally:
                structlog.contextvars.unbind_contextvars("run_id")
                with self._lock:
                    self._run_stop = None
                self.current, self.current_run_id = None, None
                self._on_change()

    def _execute(self, executor: RunExecutor, item: WorkItem, stop: StopEvent) -> None:
        ids = len(item.request.external_ids)
        _log.info("daemon.run.started", **({"external_ids": ids} if ids else {}))
        started = time.monotonic()

        def on_started(run_id: int) -> None:
            """Called by the executor: bookkeeping only, and it never raises into the run."""
            self.current_run_id = run_id
            structlog.contextvars.bind_contextvars(run_id=run_id)
            try:
                if item.claimed is not None:
                    requests.link_run(self.db, item.claimed.id, run_id)
                self._on_change()
            except Exception as exc:
                _log.warning("daemon.request.link_failed", error=str(exc))

        try:
            outcome = executor.execute(
                item.request, trigger=item.trigger, stop=stop, started=on_started
            )
        except LockHeldError as exc:
            self._defer(item, str(exc))
            return
        except Exception as exc:
            _log.exception("daemon.run.failed", error=str(exc))
            outcome = RunOutcome(self.current_run_id, "failed", ExitCode.PARTIAL, error=repr(exc))
        self._record(item, outcome, time.monotonic() - started)

    def _defer(self, item: WorkItem, why: str) -> None:
        """The sync lock is taken (a foreground `syncd sync`?): retry the same item later."""
        self._deferred = item
        if self.shutdown.is_set():
            self.release_work()
            return
        first = self._deferred_logged != item.queued_at
        self._deferred_logged = item.queued_at
        log = _log.info if first else _log.debug
        log("daemon.run.deferred", reason=why, retry_in=self.retry_every)
        self._retry_at = time.monotonic() + self.retry_every

    def _record(self, item: WorkItem, outcome: RunOutcome, duration: float) -> None:
        finished = datetime.now(UTC)
        self.last_run = LastRun(
            item.kind, item.trigger, outcome.run_id, outcome.status, outcome.exit_code, finished
        )
        level = _log.info if outcome.exit_code == ExitCode.OK else _log.warning
        level(
            "daemon.run.finished",
            run_id=outcome.run_id,
            status=outcome.status,
            exit_code=outcome.exit_code,
            seconds=round(duration, 3),
        )
        if item.claimed is not None:
            self._close_request(item, outcome)
        self._pace_logins(outcome)
        if self.metrics is not None:
            self.metrics.observe_run(
                kind=item.kind,
                trigger=item.trigger,
                status=outcome.status,
                duration=duration,
                finished_at=finished.timestamp(),
                counters=self._counters(outcome.run_id),
            )

    def _pace_logins(self, outcome: RunOutcome) -> None:
        """A run that could not log in: the next scheduled one waits, twice as long each time.
        Only a run that made calls ends the back-off (one with nothing to do never logs in)."""
        if not outcome.login_failed:
            if self._login_failures and outcome.api_calls:
                _log.info("daemon.login.recovered", failures=self._login_failures)
                self._login_failures, self._scheduled_after = 0, 0.0
            return
        self._login_failures += 1
        base, cap = self.login_backoff
        wait = min(cap, base * 2 ** (self._login_failures - 1))
        self._scheduled_after = time.monotonic() + wait
        _log.warning(
            "daemon.login.backoff",
            failures=self._login_failures,
            retry_in=round(wait, 3),
            error=outcome.error,
        )

    def _close_request(self, item: WorkItem, outcome: RunOutcome) -> None:
        assert item.claimed is not None
        try:
            if outcome.status == "interrupted":
                requests.requeue(self.db, item.claimed.id, reason="requeued: run interrupted")
                if outcome.run_id is not None:
                    requests.link_run(self.db, item.claimed.id, outcome.run_id)
                return
            status = "failed" if outcome.status == "failed" else "done"
            requests.finish(
                self.db,
                item.claimed.id,
                status=status,
                exit_code=outcome.exit_code,
                run_id=outcome.run_id,
                error=outcome.error,
            )
        except Exception as exc:
            _log.error("daemon.request.update_failed", request_id=item.claimed.id, error=str(exc))

    def _counters(self, run_id: int | None) -> dict[str, int]:
        if run_id is None:
            return {}
        try:
            with self.db.read() as conn:
                row = conn.execute(
                    sa.select(*(sync_runs.c[name] for name in _COUNTERS)).where(
                        sync_runs.c.id == run_id
                    )
                ).one_or_none()
        except Exception:
            return {}
        return {k: int(v or 0) for k, v in row._mapping.items()} if row is not None else {}
