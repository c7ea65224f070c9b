"""`syncd run`: the daemon's lifecycle, from start-up checks to a clean exit.

Threads: the main thread handles signals, the systemd watchdog and STATUS lines; the
APScheduler thread fires jobs (run ticks, heartbeat, watchdog tick); one worker performs runs.

Start-up: schema check (or upgrade), executor, status row, first leader election, scheduler,
worker, then READY=1. SIGTERM/SIGINT: STOPPING=1, no new work, the run in flight is asked to
stop within ``stop_timeout``, leadership released, ``ExitCode.OK``. SIGHUP: reload the
configuration; an invalid file (or an executor that cannot be built from it) keeps the old
configuration.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from syncd import __version__
from syncd.config import Settings
from syncd.daemon.leader import Leadership
from syncd.daemon.metrics import Metrics
from syncd.daemon.schedule import missed_full
from syncd.daemon.scheduler import FULL, INCREMENTAL, Scheduler
from syncd.daemon.sdnotify import Notifier
from syncd.daemon.settings import DaemonSettings, daemon_settings, metrics_settings
from syncd.daemon.signals import Signals
from syncd.daemon.work import RunQueue
from syncd.daemon.worker import Worker
from syncd.errors import SyncdError
from syncd.exit_codes import ExitCode
from syncd.logs import get_logger
from syncd.store import migrate, requests, status
from syncd.store import runs as run_store
from syncd.store.db import Database
from syncd.store.leases import holder_id
from syncd.store.retention import prune_ledger
from syncd.sync.seam import ExecutorFactory

_log = get_logger("syncd.daemon")
_PRUNE_AFTER = timedelta(days=7)


class Daemon:
    """One daemon instance. :meth:`run` blocks until stopped and returns the exit code."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        factory: ExecutorFactory,
        reload_settings: Callable[[], Settings],
        apply_logging: Callable[[Settings], None] = lambda _s: None,
        notifier: Notifier | None = None,
        install_signals: bool = True,
    ) -> None:
        self.settings = settings
        self.options: DaemonSettings = daemon_settings(settings)
        self.db, self.factory = db, factory
        self._reload_settings, self._apply_logging = reload_settings, apply_logging
        self.notifier = notifier or Notifier()
        self.signals = Signals()
        self._install_signals = install_signals
        self.instance_id = uuid.uuid4().hex
        self.queue = RunQueue()
        self.scheduler = Scheduler()
        self.metrics = Metrics(instance_id=self.instance_id, version=__version__)
        self.leadership = Leadership(
            db,
            holder_id("daemon", self.instance_id[:8]),
            self.options.leader_ttl,
            on_change=self._leadership_changed,
        )
        self.worker: Worker | None = None
        self.stopping = False
        self._registered = False
        self._sent_status: str | None = None
        self._next_ping = 0.0
        self._watchdog_warned = False

    # -- lifecycle -------------------------------------------------------------------------

    def run(self) -> ExitCode:
        if self._install_signals:
            self.signals.install()
        try:
            self._start()
            code = self._loop()
        except BaseException:
            self.notifier.stopping("start-up failed")
            self._teardown()
            raise
        return self._stop(code)

    def _start(self) -> None:
        url = self.db.url.render_as_string(hide_password=True)
        _log.info(
            "daemon.starting",
            instance_id=self.instance_id,
            version=__version__,
            pid=os.getpid(),
            database=url,
        )
        self._prepare_schema()
        executor = self.factory(settings=self.settings, db=self.db, instance_id=self.instance_id)
        self._registered = True
        status.register(
            self.db,
            instance_id=self.instance_id,
            hostname=socket.gethostname(),
            pid=os.getpid(),
            version=__version__,
        )
        address = metrics_settings(self.settings).address
        if address:
            self.metrics.serve(address, self.db)
        opts = self.options
        self.worker = Worker(
            db=self.db,
            queue=self.queue,
            instance_id=self.instance_id,
            executor=executor,
            is_leader=lambda: self.leadership.is_leader,
            fence=lambda: self.leadership.lease,
            poll_every=opts.poll_every.total_seconds(),
            retry_every=max(1.0, opts.poll_every.total_seconds()),
            login_backoff=(
                opts.login_backoff.total_seconds(),
                opts.login_backoff_max.total_seconds(),
            ),
            metrics=self.metrics,
            on_change=self._write_status_quietly,
        )
        self.leadership.tick()  # the first election, before anything is scheduled
        self.worker.start()
        interval = self.notifier.watchdog_interval
        self.scheduler.start(
            self.settings.sync,
            enqueue=self._enqueue,
            heartbeat=self._heartbeat,
            heartbeat_every=opts.heartbeat_every,
            tick_every=max(0.2, min(5.0, interval / 2)) if interval else None,
            prune=self._prune_ledger,
        )
        self._write_status_quietly()
        _log.info(
            "daemon.started",
            leader=self.leadership.is_leader,
            next_incremental=_iso(self.scheduler.next_run(INCREMENTAL)),
            next_full=_iso(self.scheduler.next_run(FULL)),
        )
        self.notifier.ready(self.status_line())
        self._sent_status = self.status_line()

    def _prepare_schema(self) -> None:
        if self.settings.database.auto_upgrade:
            before = migrate.current_revision(self.db)
            migrate.upgrade(self.db)
            after = migrate.current_revision(self.db)
            if before != after:
                _log.info("daemon.schema.upgraded", revision_from=before, revision_to=after)
        migrate.check_schema(self.db)

    def _loop(self) -> ExitCode:
        while True:
            wait = min(1.0, self.notifier.watchdog_interval or 1.0)
            for sig in self.signals.wait(wait):
                if sig in (signal.SIGTERM, signal.SIGINT):
                    _log.info("daemon.stop.requested", signal=signal.Signals(sig).name)
                    return ExitCode.OK
                if sig == signal.SIGHUP:
                    self.reload()
            self.leadership.check_expiry()
            assert self.worker is not None
            if not self.worker.is_alive():
                _log.critical("daemon.worker.died")
                return ExitCode.PARTIAL
            if not self.scheduler.thread_alive():
                _log.critical("daemon.scheduler.died")
                return ExitCode.PARTIAL
            self._watchdog()
            self._push_status()

    def _stop(self, code: ExitCode) -> ExitCode:
        self.stopping = True
        grace = self.options.stop_timeout.total_seconds()
        self.notifier.stopping(
            "stopping: finishing the run in flight" if self._running() else "stopping"
        )
        worker = self.worker
        assert worker is not None
        worker.stop(grace)
        self._write_status_quietly()
        worker.join(grace + 5)
        if worker.is_alive():
            _log.error(
                "daemon.stop.timeout",
                seconds=grace + 5,
                detail="the run did not stop in time; it is resolved at the next start",
            )
            code = code or ExitCode.PARTIAL
            if worker.current is not None and worker.current.claimed is not None:
                self._quietly(
                    requests.requeue,
                    self.db,
                    worker.current.claimed.id,
                    reason="requeued: the daemon stopped",
                )
        else:
            self._quietly(worker.release_work)
            self._quietly(worker.close)
        self._teardown()
        _log.info("daemon.stopped", exit_code=code)
        return code

    def _teardown(self) -> None:
        self.scheduler.shutdown()
        self.leadership.release()
        if self._registered:
            self._registered = False  # no heartbeat may rewrite the row after this
            self._quietly(status.mark_stopped, self.db, self.instance_id)
        self.metrics.close()
        self.notifier.close()
        self.signals.close()

    def request_stop(self) -> None:
        """Stop as on SIGTERM (from another thread)."""
        self.signals.send(signal.SIGTERM)

    # -- jobs (scheduler threads) ------------------------------------------------------------

    def _enqueue(self, kind: str) -> None:
        if not self.leadership.is_leader or self.stopping:
            _log.debug("daemon.schedule.skipped", job=kind, reason="not leader")
            return
        if self.queue.put(kind, "schedule"):  # type: ignore[arg-type]
            _log.debug("daemon.run.queued", job=kind)
        else:
            _log.info(
                "daemon.run.coalesced",
                job=kind,
                detail="a run of this kind is already waiting; the ticks are merged",
            )

    def _heartbeat(self) -> None:
        if not self.stopping:
            self.leadership.tick()
        self._write_status_quietly()

    def _leadership_changed(self, leader: bool) -> None:
        self.metrics.leader.set(int(leader))
        if not leader:
            # No new work. A run in flight is not interrupted: it holds the "sync" lease, so
            # the new leader cannot overlap it, and a slow database (a long SQLite write
            # transaction delaying our renewal) must not abort good work.
            self.queue.clear()
            return
        orphans = self._quietly(requests.requeue_orphans, self.db, keep=self.instance_id)
        if orphans:
            _log.info("daemon.requests.requeued", request_ids=orphans)
        self._quietly(status.prune, self.db, _PRUNE_AFTER)
        if self.options.run_on_start and not self.stopping:
            # Until one full reconcile has listed Genesys to the end, an incremental run could
            # create a contact that already exists in Genesys (it does not list); start with a
            # full one. One that ended "partial" (a row failed) or "held" did list everything:
            # requiring "succeeded" made every restart list the whole org again while one row
            # kept failing.
            reconciled = self._quietly(self._full_reconcile_done)
            missed = self._quietly(self._missed_full)
            if missed is not None:
                # The daemon was down (or not leading) when the cron fired: catch up now.
                _log.info("daemon.full.catching_up", due_at=_iso(missed))
            full = not reconciled or missed is not None
            self.queue.put("full" if full else "incremental", "startup")

    def _full_reconcile_done(self) -> bool:
        with self.db.read() as conn:
            return run_store.has_succeeded(conn, "full", run_store.COMPLETED_STATUSES)

    def _missed_full(self) -> datetime | None:
        with self.db.read() as conn:
            started = run_store.last_started(conn).get("full")
        return missed_full(self.settings.sync, started, datetime.now(UTC))

    def _prune_ledger(self) -> None:
        """The daily retention job (leader only): ``[ledger] retention_days``."""
        retention = self.settings.ledger.retention
        if retention is None or not self.leadership.is_leader or self.stopping:
            return
        result = self._quietly(
            prune_ledger, self.db, retention, self.settings.ledger.prune_batch_size
        )
        if result is not None:
            _log.info(
                "daemon.ledger.pruned",
                deleted=result.deleted,
                runs_deleted=result.runs_deleted,
                cutoff=result.cutoff,
            )

    # -- status ------------------------------------------------------------------------------

    def _running(self) -> bool:
        return self.worker is not None and self.worker.current is not None

    def state(self) -> str:
        if self.stopping:
            return "stopping"
        if self._running():
            return "running"
        return "idle" if self.leadership.is_leader else "standby"

    def _write_status_quietly(self) -> None:
        if not self._registered:
            return
        leader = self.leadership.is_leader
        self._quietly(
            status.heartbeat,
            self.db,
            self.instance_id,
            is_leader=leader,
            state=self.state(),
            next_incremental_at=self.scheduler.next_run(INCREMENTAL) if leader else None,
            next_full_at=self.scheduler.next_run(FULL) if leader else None,
            current_run_id=self.worker.current_run_id if self.worker else None,
        )

    def status_line(self) -> str:
        """One line for systemctl status: role, activity, last run, next runs."""
        role = "leader" if self.leadership.is_leader else "standby"
        if role == "standby" and not self._running():
            return f"standby{'; stopping' if self.stopping else ''}"
        parts = [self.state()]
        worker = self.worker
        if worker is not None and worker.current is not None:
            run = f" run #{worker.current_run_id}" if worker.current_run_id else ""
            parts[0] = f"running {worker.current.kind}{run} ({worker.current.trigger})"
        if worker is not None and worker.last_run is not None:
            parts.append(worker.last_run.describe())
        nxt = self.scheduler.next_run(INCREMENTAL)
        if nxt is not None and not self.stopping:
            parts.append(f"next incremental {nxt:%H:%M:%SZ}")
        return f"{role}; " + "; ".join(parts)

    def _push_status(self) -> None:
        line = self.status_line()
        if line != self._sent_status:
            self._sent_status = line
            self.notifier.status(line)

    def _watchdog(self) -> None:
        interval = self.notifier.watchdog_interval
        now = time.monotonic()
        if interval is None or now < self._next_ping:
            return
        assert self.worker is not None
        if self.scheduler.alive() and self.worker.is_alive():
            self.notifier.watchdog()
            self._next_ping = now + interval
            self._watchdog_warned = False
        elif not self._watchdog_warned:
            self._watchdog_warned = True
            _log.error("daemon.watchdog.withheld", detail="the scheduler stopped dispatching jobs")

    # -- reload ------------------------------------------------------------------------------

    def reload(self) -> bool:
        """Re-read the configuration; keep the running one if the new one is unusable."""
        self.notifier.reloading()
        try:
            ok = self._reload()
        finally:
            self.notifier.ready(self.status_line())
        return ok

    def _reload(self) -> bool:
        try:
            new = self._reload_settings()
            options = daemon_settings(new)
            executor = self.factory(settings=new, db=self.db, instance_id=self.instance_id)
        except SyncdError as exc:
            _log.error(
                "daemon.reload.rejected", error=str(exc), detail="the configuration in use is kept"
            )
            return False
        except Exception as exc:
            _log.exception(
                "daemon.reload.rejected", error=repr(exc), detail="the configuration in use is kept"
            )
            return False
        old, self.settings = self.settings, new
        changed = _changed_keys(old, new) + _changed_keys(self.options, options, "daemon")
        if old.database.url != new.database.url:
            _log.warning(
                "daemon.reload.restart_needed",
                key="database.url",
                detail="the daemon keeps its database until restarted",
            )
        metrics_old, metrics_new = metrics_settings(old), metrics_settings(new)
        if metrics_old != metrics_new:
            _log.warning("daemon.reload.restart_needed", key="metrics.listen")
        self._apply_logging(new)
        assert self.worker is not None
        self.worker.replace_executor(executor)
        rescheduled = self.scheduler.reschedule(old.sync, new.sync)
        if options.heartbeat_every != self.options.heartbeat_every:
            self.scheduler.reschedule_heartbeat(options.heartbeat_every)
        self.leadership.ttl = options.leader_ttl
        self.worker.poll_every = options.poll_every.total_seconds()
        self.options = options
        _log.info(
            "daemon.reload.applied",
            changed=changed,
            rescheduled=rescheduled,
            next_incremental=_iso(self.scheduler.next_run(INCREMENTAL)),
            next_full=_iso(self.scheduler.next_run(FULL)),
        )
        return True

    @staticmethod
    def _quietly(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Status bookkeeping must not take the daemon down: log and go on."""
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            _log.warning("daemon.bookkeeping_failed", step=func.__name__, error=str(exc))
            return None


def _flatten(data: Any, prefix: str) -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: data}


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted names of the settings that differ (names only: values may be secrets)."""
    a, b = _flatten(old.model_dump(), prefix), _flatten(new.model_dump(), prefix)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None
