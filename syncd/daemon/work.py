"""The queue of scheduled runs, between the scheduler thread and the one worker thread.

Scheduler jobs only enqueue; the worker executes. A job therefore never blocks the scheduler
and never hits APScheduler's ``max_instances`` limit (which would drop the run with a
warning). A tick for a kind that is already queued is merged into it: a run delayed behind a
long one is coalesced, never dropped and never stacked.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from syncd.store.requests import SyncRequest
from syncd.sync.seam import RunKind, RunRequest, Trigger


@dataclass(frozen=True)
class WorkItem:
    """One run to perform: from the schedule, from start-up, or a claimed manual request."""

    request: RunRequest
    trigger: Trigger
    claimed: SyncRequest | None = None
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def kind(self) -> RunKind:
        return self.request.kind

    @classmethod
    def from_request(cls, req: SyncRequest) -> WorkItem:
        kind: RunKind = req.kind  # type: ignore[assignment]  # checked by the table
        run = RunRequest(kind, req.external_ids, req.allow_mass_delete, request_id=req.id)
        return cls(run, "manual", claimed=req)


class RunQueue:
    """At most one queued scheduled run per kind, in arrival order. Thread-safe."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: dict[str, WorkItem] = {}

    def put(self, kind: RunKind, trigger: Trigger) -> bool:
        """Queue a run; ``False`` when merged into one of the same kind already waiting."""
        with self._cond:
            if kind in self._items:
                return False
            self._items[kind] = WorkItem(RunRequest(kind), trigger)
            self._cond.notify_all()
            return True

    def pop(self) -> WorkItem | None:
        with self._cond:
            if not self._items:
                return None
            kind = next(iter(self._items))
            return self._items.pop(kind)

    def discard(self, kind: RunKind) -> None:
        with self._cond:
            self._items.pop(kind, None)

    def clear(self) -> None:
        with self._cond:
            self._items.clear()

    def wait(self, timeout: float) -> None:
        """Sleep until something is queued, :meth:`wake` is called, or ``timeout`` passes."""
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def kinds(self) -> list[str]:
        with self._cond:
            return list(self._items)

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
