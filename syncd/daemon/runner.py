"""The seam between the daemon and the sync engine: what a run is asked, and what it answers.

The daemon decides *when* a run happens and *which* one (schedule, manual request, start-up);
the engine decides *how*. The engine provides a :class:`RunExecutor` through a factory,
``syncd.sync.runs:create_executor`` by default. ``$SYNCD_EXECUTOR=module:callable`` (or the
hidden ``syncd run --executor``) names another factory: a testing hook, not a plug-in API.

Contract for an executor (the engine's side of invariant 7):

- ``execute`` performs one run synchronously in the calling thread and holds the ``"sync"``
  lease (:func:`syncd.store.leases.hold`) for its whole duration, exactly like a foreground
  ``syncd sync``. If the lease is taken it raises :class:`~syncd.errors.LockHeldError` before
  doing anything; the daemon then retries the same work later.
- It calls ``started(run_id)`` once the ``sync_runs`` row exists, so the daemon can link a
  manual request to its run and log with the run id while the run is still going.
- When ``stop`` is set it stops starting new work, finishes what is in flight before
  ``stop.deadline`` (a ``time.monotonic()`` value), leaves unfinished rows pending and returns
  an outcome with status ``"interrupted"``. Rows that failed are not exceptions: they give
  status ``"partial"`` and exit code 1. An exception means the run itself failed.
"""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from syncd.errors import UserError

if TYPE_CHECKING:
    from syncd.config import Settings
    from syncd.store.db import Database

RunKind = Literal["incremental", "full", "targeted"]
Trigger = Literal["schedule", "manual", "startup"]

EXIT_OK = 0
"""The run succeeded."""
EXIT_PARTIAL = 1
"""The run completed but some rows failed (or the run itself failed)."""
EXIT_HELD = 3
"""Deletes were held by the mass-delete guard (invariant 4): an operator must allow them."""

EXECUTOR_ENV = "SYNCD_EXECUTOR"
DEFAULT_EXECUTOR_FACTORY = "syncd.sync.runs:create_executor"


@dataclass(frozen=True)
class RunRequest:
    """What to run. ``request_id`` links a manual request (``sync_requests.id``)."""

    kind: RunKind
    external_ids: tuple[str, ...] = ()
    allow_mass_delete: bool = False
    request_id: int | None = None


@dataclass(frozen=True)
class RunOutcome:
    """What a run did. ``status`` is a ``sync_runs.status`` value."""

    run_id: int | None
    status: str
    exit_code: int
    error: str | None = None


class StopEvent(threading.Event):
    """A stop request with a deadline: set when the daemon shuts down (SIGTERM, SIGINT)."""

    def __init__(self) -> None:
        super().__init__()
        self.deadline: float | None = None

    def stop(self, grace: float) -> None:
        """Ask the run to stop, finishing in-flight work within ``grace`` seconds."""
        if not self.is_set():
            self.deadline = time.monotonic() + grace
        self.set()

    def remaining(self) -> float | None:
        """Seconds left before the deadline (never negative), ``None`` while not stopping."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


@runtime_checkable
class RunExecutor(Protocol):
    """Performs runs (see the module docstring for the contract)."""

    def execute(
        self,
        request: RunRequest,
        *,
        trigger: Trigger,
        stop: StopEvent,
        started: Callable[[int], None],
    ) -> RunOutcome: ...


class ExecutorFactory(Protocol):
    """Builds an executor for one configuration; called again after a reload (SIGHUP).

    ``instance_id`` identifies the daemon instance (``daemon_status.instance_id``; write it
    to ``sync_runs.instance_id``).
    An executor that has a ``close()`` method gets it called when it is replaced or at exit.
    """

    def __call__(self, *, settings: Settings, db: Database, instance_id: str) -> RunExecutor: ...


def load_factory(spec: str | None = None) -> ExecutorFactory:
    """Import the factory named ``module:callable`` (default: env, then the engine's)."""
    spec = spec or os.environ.get(EXECUTOR_ENV) or DEFAULT_EXECUTOR_FACTORY
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UserError(f"executor factory must be 'module:callable' (got {spec!r})")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name != missing and not module_name.startswith(missing + "."):
            raise  # the factory's module exists but one of its imports is broken
        raise UserError(_missing(spec, f"module {module_name!r} not found")) from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UserError(_missing(spec, f"{module_name} has no callable {attr!r}"))
    return factory  # type: ignore[no-any-return]


def _missing(spec: str, why: str) -> str:
    if spec == DEFAULT_EXECUTOR_FACTORY:
        return (
            f"the sync engine is not available in this installation ({why}); "
            "`syncd run` needs syncd.sync.runs:create_executor"
        )
    return f"cannot load the executor factory {spec!r}: {why}"


def close_executor(executor: RunExecutor | None) -> None:
    """Call ``executor.close()`` when it has one."""
    close = getattr(executor, "close", None)
    if callable(close):
        close()
