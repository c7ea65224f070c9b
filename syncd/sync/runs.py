"""The engine behind the run seam: :func:`create_executor`, which ``syncd run`` hands the daemon.

:class:`EngineExecutor` is a :class:`syncd.sync.seam.RunExecutor` backed by the engine
(:mod:`syncd.sync.engine`): it holds the single-writer ``sync`` lease for the whole run
(invariant 7; a dry run, which writes nothing, takes none), builds a Genesys client per run
and runs the engine in its own event loop. The OAuth token outlives the clients: one token
serves every run of the executor's life (the daemon's, until a reload builds a new executor)
until it is due for renewal.
``syncd sync`` uses it too, so a foreground run and the daemon exclude each other.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from syncd.config import Settings
from syncd.genesys.api import ContactsApi
from syncd.store import leases
from syncd.store.db import Database
from syncd.sync.context import AnyStop, Progress
from syncd.sync.engine import Engine, RunReport, RunSpec
from syncd.sync.executor import Hooks, PlanEntry, Stop
from syncd.sync.options import EngineOptions
from syncd.sync.seam import RunOutcome, RunRequest

if TYPE_CHECKING:
    from syncd.genesys.client import TokenCache

__all__ = ["Engine", "EngineExecutor", "PlanEntry", "RunReport", "RunSpec", "create_executor"]

# The single-writer lease of a run: EngineOptions.sync_lease_ttl (20 s by default), short so
# that after a kill -9 the next leader's first run waits at most that long; renewed well
# inside it (EngineOptions.sync_lease_renew).
SYNC_LEASE_TTL = EngineOptions().sync_lease_ttl
SYNC_LEASE_RENEW = EngineOptions().sync_lease_renew
ApiFactory = Callable[[], ContactsApi]


class EngineExecutor:
    """:class:`syncd.sync.seam.RunExecutor` backed by the engine: holds the ``sync`` lease
    for the run, builds a client per run (sharing one token cache), runs the engine in its own
    event loop."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        instance_id: str | None = None,
        api_factory: ApiFactory | None = None,
        options: EngineOptions | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.settings, self.db, self.instance_id = settings, db, instance_id
        self.options = options or EngineOptions.from_settings(settings)
        self.api_factory = api_factory or self._client
        self.hooks = hooks
        self._tokens: TokenCache | None = None  # made with the first client (httpx loads late)

    def _client(self) -> ContactsApi:
        from syncd.genesys.client import GenesysClient, TokenCache

        if self._tokens is None:
            self._tokens = TokenCache()
        return GenesysClient.from_settings(self.settings.genesys, token_cache=self._tokens)

    def execute(
        self,
        request: RunRequest,
        *,
        trigger: str,
        stop: threading.Event | None = None,
        started: Callable[[int], None] | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
        on_plan: Callable[[PlanEntry], None] | None = None,
    ) -> RunOutcome:
        report = self.run(
            request,
            trigger=trigger,
            stop=stop,
            started=started,
            dry_run=dry_run,
            progress=progress,
            on_plan=on_plan,
        )
        return RunOutcome(
            report.run_id,
            report.status,
            report.exit_code,
            report.error,
            login_failed=report.login_failed,
            api_calls=report.api_calls,
        )

    def run(
        self,
        request: RunRequest,
        *,
        trigger: str,
        stop: threading.Event | None = None,
        started: Callable[[int], None] | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
        on_plan: Callable[[PlanEntry], None] | None = None,
    ) -> RunReport:
        """Like :meth:`execute`, returning the full report (the CLI prints it)."""
        spec = RunSpec(
            kind=request.kind,
            external_ids=tuple(request.external_ids),
            allow_mass_delete=request.allow_mass_delete,
            dry_run=dry_run,
        )
        if dry_run:
            # A dry run writes nothing (invariant 6), so it needs no single-writer lease and
            # works beside a running daemon; its plan is as of the moment it reads.
            return asyncio.run(self._run(spec, trigger, AnyStop(stop), started, progress, on_plan))
        holder = leases.holder_id("sync", self.instance_id)
        ttl, renew = self.options.sync_lease_ttl, self.options.sync_lease_renew
        with leases.hold(self.db, leases.SYNC_LEASE, holder, ttl, renew_every=renew) as lease:
            return asyncio.run(
                self._run(spec, trigger, AnyStop(stop, lease.lost), started, progress, on_plan)
            )

    async def _run(
        self,
        spec: RunSpec,
        trigger: str,
        stop: Stop,
        started: Callable[[int], None] | None,
        progress: Progress | None,
        on_plan: Callable[[PlanEntry], None] | None,
    ) -> RunReport:
        api = self.api_factory()
        try:
            engine = Engine(
                self.db,
                api,
                self.options,
                hooks=self.hooks,
                progress=progress,
                on_plan=on_plan,
                instance_id=self.instance_id,
            )
            return await engine.run(spec, trigger=trigger, stop=stop, started=started)
        finally:
            await api.aclose()

    def close(self) -> None:
        """Nothing to release: the client lives for one run, the token cache is only memory."""


def create_executor(*, settings: Settings, db: Database, instance_id: str) -> EngineExecutor:
    """The engine's :class:`syncd.sync.seam.ExecutorFactory`, used by ``syncd run``."""
    return EngineExecutor(settings, db, instance_id=instance_id)
