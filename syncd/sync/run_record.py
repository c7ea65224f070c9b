"""A run's row in ``sync_runs``: opened at the start, closed with its outcome and counters.

Closing retries while the database is briefly unavailable: a run that failed *because* the
database was locked or unreachable must still say so, or it would stay ``running`` until
the next run called it "interrupted", and its counters and its error would be lost.

A run's status also says what it leaves behind (:func:`final_status`): while links are held
by the delete guard every run ends ``held`` and counts them (not only the ones it held
itself), until ``--allow-mass-delete`` releases them; a run that leaves intents unresolved
(``pending_*`` links) ends ``partial`` with their count.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from syncd.errors import DatabaseError
from syncd.genesys.api import ApiMetrics, ContactsApi
from syncd.logs import get_logger
from syncd.store import links
from syncd.store import runs as run_store
from syncd.store.db import Database

log = get_logger("syncd.sync")

COUNTERS = ("created", "updated", "deleted", "adopted", "unchanged", "failed", "held", "rejected")
# Links whose write's outcome is unknown: the next run resolves them first.
UNRESOLVED_STATES = links.PENDING_STATES
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


@dataclass(frozen=True, slots=True)
class Standing:
    """What the database holds after a run: held deletes, unresolved intents."""

    held: int
    unresolved: int


def standing(db: Database) -> Standing:
    """Counted on the state index, after the run's work."""
    with db.read() as conn:
        held = links.count_in_state(conn, "held")
        unresolved = links.count_in_states(conn, UNRESOLVED_STATES)
    return Standing(held, unresolved)


def account(
    tally: Counter[str], after: Standing | None, *, released: bool, dry_run: bool
) -> str | None:
    """Put what the run leaves behind into its ``tally``; the note for its summary, if any.

    ``held`` becomes the number of links held when the run ends (a dry run: at least those
    it would hold, or, released, only those), ``unresolved`` the intents left pending; the
    note also counts the rows ``blocked`` on a fix in Genesys.
    """
    if after is None:
        return None
    if not dry_run:
        tally["held"] = after.held
        tally["unresolved"] = after.unresolved
    elif not released:
        tally["held"] = max(tally["held"], after.held)
    notes = []
    if tally["unresolved"]:
        notes.append(
            f"{tally['unresolved']} intent(s) left unresolved (outcome unknown): the next run "
            "resolves them; `syncd ledger --outcome pending` lists them"
        )
    if tally["blocked"]:
        notes.append(
            f"{tally['blocked']} row(s) wait for a fix in Genesys (an organization record, a "
            "division, syncd's external source): `syncd status` counts them as blocked"
        )
    return "; ".join(notes) or None


def final_status(tally: Counter[str], *, aborted: bool, interrupted: bool) -> str:
    """failed > interrupted > held > partial (failed, rejected, unresolved) > succeeded."""
    if aborted:
        return "failed"
    if interrupted:
        return "interrupted"
    if tally["held"]:
        return "held"
    if tally["failed"] or tally["rejected"] or tally["unresolved"]:
        return "partial"
    return "succeeded"
