"""A test double of the sync engine's executor (``python -m tests.support.daemon`` injects it).

It does what the real executor must do around a run, and nothing of a sync: it holds the
``"sync"`` lease, records a real ``sync_runs`` row (kind, trigger, instance, times, status),
reports the run id, and sleeps, honouring the stop event. Behaviour is steered per request
through pseudo external ids, so one daemon can serve every scenario of a test:

- ``sleep=SECONDS``: run that long (default ``$SYNCD_TEST_RUN_SECONDS``, else 0.2);
- ``sleep-once=SECONDS``: the same, but only on the request's first attempt (a request
  requeued after an interrupted run then finishes quickly);
- ``exit=N``: finish with exit code N (1: status partial, 3: status held);
- ``raise``: raise inside the run (the daemon must log it and go on).

``$SYNCD_TEST_SYNC_TTL`` (seconds, default 3) is the TTL of the ``"sync"`` lease.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from syncd.config import Settings
from syncd.exit_codes import ExitCode
from syncd.logs import get_logger
from syncd.store import leases
from syncd.store.db import Database
from syncd.store.schema import sync_requests, sync_runs
from syncd.sync.seam import RunOutcome, RunRequest, StopEvent, Trigger

_STATUS: dict[int, str] = {
    ExitCode.OK: "succeeded",
    ExitCode.PARTIAL: "partial",
    ExitCode.HELD: "held",
}
_log = get_logger("tests.fake_executor")


class FakeExecutor:
    def __init__(self, db: Database, instance_id: str, settings: Settings) -> None:
        self.db = db
        self.instance_id = instance_id
        self.settings = settings
        self.ttl = timedelta(seconds=float(os.environ.get("SYNCD_TEST_SYNC_TTL", "3")))
        self.closed = False
        _log.info("fake.executor.created", incremental_every=str(settings.sync.incremental_every))

    def execute(
        self,
        request: RunRequest,
        *,
        trigger: Trigger,
        stop: StopEvent,
        started: Callable[[int], None],
    ) -> RunOutcome:
        seconds = float(os.environ.get("SYNCD_TEST_RUN_SECONDS", "0.2"))
        exit_code, boom = int(ExitCode.OK), False
        for item in request.external_ids:
            key, _, value = item.partition("=")
            if key == "sleep" or (key == "sleep-once" and not self._attempted(request)):
                seconds = float(value)
            elif key == "exit":
                exit_code = int(value)
            elif key == "raise":
                boom = True
        holder = leases.holder_id("daemon", self.instance_id[:8])
        with leases.hold(self.db, "sync", holder, self.ttl, renew_every=self.ttl / 3):
            with self.db.write() as conn:
                run_id = conn.execute(
                    sync_runs.insert().values(
                        kind=request.kind,
                        trigger=trigger,
                        status="running",
                        started_at=datetime.now(UTC),
                        instance_id=self.instance_id,
                        api_calls=2,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            started(int(run_id))
            if boom:
                self._finish(run_id, "failed", "boom")
                raise RuntimeError("the fake executor was told to raise")
            stopped = stop.wait(seconds)
            if stopped:
                remaining = stop.remaining()
                self._finish(run_id, "interrupted", f"stop requested; {remaining:.1f}s left")
                return RunOutcome(int(run_id), "interrupted", ExitCode.PARTIAL)
            status = _STATUS.get(exit_code, "failed")
            self._finish(run_id, status, None)
            return RunOutcome(int(run_id), status, exit_code)

    def _attempted(self, request: RunRequest) -> bool:
        """Whether an earlier run already served this request (it was requeued)."""
        if request.request_id is None:
            return False
        with self.db.read() as conn:
            run_id = conn.execute(
                sa.select(sync_requests.c.run_id).where(sync_requests.c.id == request.request_id)
            ).scalar_one_or_none()
        return run_id is not None

    def _finish(self, run_id: int, status: str, error: str | None) -> None:
        with self.db.write() as conn:
            conn.execute(
                sync_runs.update()
                .where(sync_runs.c.id == run_id)
                .values(status=status, finished_at=datetime.now(UTC), error=error)
            )

    def close(self) -> None:
        self.closed = True


def create_executor(*, settings: Settings, db: Database, instance_id: str) -> FakeExecutor:
    return FakeExecutor(db, instance_id, settings)
