"""A run's row in ``sync_runs``: opened at the start, closed with its outcome and counters.

Closing retries while the database is briefly unavailable: a run that failed *because* the
database was locked or unreachable must still say so, or it would stay ``running`` until
the next run called it "interrupted", and its counters and its error would be lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from syncd.errors import DatabaseError
from syncd.genesys.api import ApiMetrics, ContactsApi
from syncd.logs import get_logger
from syncd.store import runs as run_store
from syncd.store.db import Database

log = get_logger("syncd.sync")

COUNTERS = ("created", "updated", "deleted", "adopted", "unchanged", "failed", "held", "rejected")
# Waits between attempts to record a run's outcome while the database is unavailable (~30 s).
FINISH_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


def open_run(db: Database, *, kind: str, trigger: str, instance_id: str | None) -> int:
    """Mark runs left ``running`` by a dead process ``interrupted``, then start this one."""
    with db.write() as conn:
        stale = run_store.interrupt_stale(conn)
        run_id = run_store.start_run(conn, kind=kind, trigger=trigger, instance_id=instance_id)
    if stale:
        log.warning("sync.run.stale_interrupted", run_ids=stale)
    return run_id


async def close_run(
    db: Database, run_id: int, *, status: str, error: str | None, counters: Mapping[str, int]
) -> None:
    """Write the run's outcome, retrying while the database is briefly unavailable."""
    for delay in (*FINISH_RETRY_DELAYS, None):
        try:
            with db.write() as conn:
                run_store.finish_run(conn, run_id, status=status, counters=counters, error=error)
            return
        except DatabaseError as exc:
            if delay is None:
                raise
            log.warning("sync.run.finish_retry", run_id=run_id, error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)


class Meter:
    """The client's requests and 429s during one run (its counters span its whole life)."""

    def __init__(self, api: ContactsApi) -> None:
        self._metrics: ApiMetrics = api.metrics
        self._start = self._read()

    def _read(self) -> tuple[int, int]:
        return (int(self._metrics.requests), int(self._metrics.rate_limited))

    def delta(self) -> tuple[int, int]:
        """``(requests, rate_limited)`` since the meter was made."""
        now = self._read()
        return now[0] - self._start[0], now[1] - self._start[1]
