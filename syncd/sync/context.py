"""What every writer of one run shares: the in-flight gate, the tally, the stop, the plan.

The single-call writer (:mod:`syncd.sync.single`), the bulk writer (:mod:`syncd.sync.bulk`)
and the decisions made without a call (:mod:`syncd.sync.local`) all count, stop and report
through one :class:`WriteContext`, so that ``max_in_flight`` bounds their writes together and
a failure that will fail every row stops all of them.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from syncd.errors import ApiAuthError, ApiError, ApiRateLimitedError, ApiUnavailableError
from syncd.genesys.api import TOKEN_ROUTE
from syncd.store.db import Database
from syncd.store.ledger import Entry
from syncd.sync.options import EngineOptions
from syncd.sync.plan import Item

Clock = Callable[[], datetime]


class Stop(Protocol):
    def is_set(self) -> bool: ...


class Progress(Protocol):
    """Where a run reports its phases and rows done (the CLI's progress bar)."""

    def phase(self, name: str, total: int | None) -> None: ...

    def advance(self, n: int) -> None: ...


class NoProgress:
    def phase(self, name: str, total: int | None) -> None:
        pass

    def advance(self, n: int) -> None:
        pass


class AnyStop:
    """Stop when any of the given events is set (the daemon's stop, a lost lease)."""

    def __init__(self, *events: Stop | None) -> None:
        self.events = [e for e in events if e is not None]

    def is_set(self) -> bool:
        return any(e.is_set() for e in self.events)


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """One line of a plan (dry run) or of a report: what was (or would be) done."""

    op: str
    external_id: str | None
    genesys_id: str | None = None
    fields: dict[str, Any] | None = None
    note: str | None = None


class WriteContext:
    """One run's shared state for the writers (see the module docstring)."""

    def __init__(
        self,
        db: Database,
        options: EngineOptions,
        *,
        run_id: int | None,
        clock: Clock,
        stop: Stop,
        tally: Counter[str],
        dry_run: bool = False,
        on_plan: Callable[[PlanEntry], None] | None = None,
        on_done: Callable[[int], None] | None = None,
        on_row_failed: Callable[[Item, ApiError], None] | None = None,
    ) -> None:
        self.db, self.options, self.run_id = db, options, run_id
        self.clock, self.stop, self.tally, self.dry_run = clock, stop, tally, dry_run
        self.on_plan, self.on_done = on_plan, on_done
        # Told of each row that backs off (the organization stage learns of a lost record).
        self.on_row_failed = on_row_failed
        self.aborted: str | None = None
        self.login_failed = False  # aborted because no call can authenticate
        self._unavailable_streak = 0
        self._gate = asyncio.Semaphore(options.max_in_flight)

    def halted(self) -> bool:
        """No new write may start: the run was stopped or aborted."""
        return self.aborted is not None or self.stop.is_set()

    def entry(self, op: str, outcome: str, **kw: Any) -> Entry:
        """A ledger row of this run, stamped now."""
        return Entry(op=op, outcome=outcome, run_id=self.run_id, at=self.clock(), **kw)

    def plan(
        self,
        op: str,
        external_id: str | None,
        genesys_id: str | None = None,
        fields: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> None:
        if self.on_plan:
            self.on_plan(PlanEntry(op, external_id, genesys_id, fields, note))

    def done(self, rows: int) -> None:
        """``rows`` rows have their outcome (progress)."""
        if self.on_done:
            self.on_done(rows)

    async def in_flight(self, rows: int, write: Callable[[], Awaitable[None]]) -> None:
        """Run ``write`` (covering ``rows`` rows) under the ``max_in_flight`` gate, unless the
        run is halted by the time its turn comes (the rows are then counted ``skipped``)."""
        async with self._gate:
            if self.halted():
                self.tally["skipped"] += rows
                return
            try:
                await write()
            finally:
                self.done(rows)

    @staticmethod
    async def run_all(jobs: Sequence[Awaitable[None]]) -> None:
        """Run ``jobs`` concurrently; a crash in one cancels the others."""
        tasks = [asyncio.ensure_future(job) for job in jobs]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def succeeded(self, counter: str) -> None:
        self.tally[counter] += 1
        self._unavailable_streak = 0

    def abort_if_hopeless(self, exc: ApiError, message: str) -> None:
        """After a row's failure: abort the run when every further row would fail too."""
        if isinstance(exc, ApiAuthError):
            self.aborted, self.login_failed = f"authentication failed: {message}", True
        elif isinstance(exc, ApiUnavailableError) and exc.route == TOKEN_ROUTE:
            # No token, no call: every row would fail the same way (nothing was sent).
            self.aborted = f"the Genesys login service is unavailable: {message}"
            self.login_failed = True
        elif isinstance(exc, ApiUnavailableError | ApiRateLimitedError):
            self._unavailable_streak += 1
            if self._unavailable_streak >= self.options.max_consecutive_unavailable:
                self.aborted = (
                    f"Genesys kept failing ({self._unavailable_streak} rows in a row): {message}"
                )
