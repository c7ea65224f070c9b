"""The run seam: what a run is asked, what it answers, and who performs it.

Whoever decides *when* a run happens (the daemon's schedule, a manual request, start-up)
hands a :class:`RunRequest` to a :class:`RunExecutor`, which decides *how*. This module sits
in ``sync/`` so that the arrows point down: the daemon and the CLI import it, and the engine
never learns that a scheduler exists. ``syncd.sync.runs.create_executor`` is the engine's
:class:`ExecutorFactory`; ``syncd run`` hands it to the daemon (tests hand it a double).

Contract for an executor (the engine's side of invariant 7):

- ``execute`` performs one run synchronously in the calling thread and holds the ``"sync"``
  lease (:func:`syncd.store.leases.hold`) for its whole duration, exactly like a foreground
  ``syncd sync``. If the lease is taken it raises :class:`~syncd.errors.LockHeldError` before
  doing anything; the caller then retries the same work later.
- It calls ``started(run_id)`` once the ``sync_runs`` row exists, so the caller can link a
  manual request to its run and log with the run id while the run is still going.
- When ``stop`` is set it stops starting new work, finishes what is in flight before
  ``stop.deadline`` (a monotonic-clock value), leaves unfinished rows pending and returns an
  outcome with status ``"interrupted"``. Rows that failed are not exceptions: they give status
  ``"partial"`` and :attr:`~syncd.exit_codes.ExitCode.PARTIAL`. An exception means the run
  itself failed.
- ``close()`` is called once the executor is no longer used: replaced after a reload, or at
  exit. It releases whatever the executor keeps between runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    from syncd.config import Settings
    from syncd.store.db import Database

__all__ = [
    "ExecutorFactory",
    "RunExecutor",
    "RunKind",
    "RunOutcome",
    "RunRequest",
    "StopEvent",
    "Trigger",
]

RunKind = Literal["incremental", "full", "targeted"]
Trigger = Literal["schedule", "manual", "startup"]


@dataclass(frozen=True)
class RunRequest:
    """What to run. ``request_id`` links a manual request (``sync_requests.id``)."""

    kind: RunKind
    external_ids: tuple[str, ...] = ()
    allow_mass_delete: bool = False
    request_id: int | None = None


@dataclass(frozen=True)
class RunOutcome:
    """What a run did: ``status`` is a ``sync_runs.status``, ``exit_code`` an ``ExitCode``.
    ``login_failed``: it failed because no call could authenticate (the daemon then spaces
    its scheduled runs out instead of logging in again at every tick). ``api_calls``: the
    requests it made (None: not known)."""

    run_id: int | None
    status: str
    exit_code: int
    error: str | None = None
    login_failed: bool = False
    api_calls: int | None = None


class StopEvent(threading.Event):
    """A stop request with a deadline: set when the daemon shuts down (SIGTERM, SIGINT).

    ``clock`` is the monotonic clock the deadline is measured on (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.deadline: float | None = None
        self._clock = clock

    def stop(self, grace: float) -> None:
        """Ask the run to stop, finishing in-flight work within ``grace`` seconds."""
        if not self.is_set():
            self.deadline = self._clock() + grace
        self.set()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), ``None`` while not stopping."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - self._clock())


@runtime_checkable
class RunExecutor(Protocol):
    """Performs runs and is closed when no longer used (see the module docstring)."""

    def execute(
        self,
        request: RunRequest,
        *,
        trigger: Trigger,
        stop: StopEvent,
        started: Callable[[int], None],
    ) -> RunOutcome: ...

    def close(self) -> None: ...


class ExecutorFactory(Protocol):
    """Builds an executor for one configuration; called again after a reload (SIGHUP).

    ``instance_id`` identifies the daemon instance (``daemon_status.instance_id``); the
    executor writes it to ``sync_runs.instance_id``.
    """

    def __call__(self, *, settings: Settings, db: Database, instance_id: str) -> RunExecutor: ...
