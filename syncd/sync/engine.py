"""The engine: the three kinds of run over one database and one Genesys org.

- *incremental*: pending ``mirror_changes`` (consumed by id, never by watermark) plus failed
  rows that are due; no listing call; every query is keyed, so the cost follows the changes.
- *full*: list every Genesys contact page by page into ``remote_snapshot``, then diff
  mirror x links x snapshot in keyed batches (mirror rows, then links without a mirror row,
  then listed externalIds nobody knows, then listed contacts without an externalId).
- *targeted*: the given externalIds only (GET the linked contact, search for the others).

Every run first resolves pending intents, then takes the delete guard's verdict once, then
works batch by batch. A dry run does all the reading (Genesys included) and changes no state:
no run row, no ledger, no links, the change log untouched, the snapshot in a scratch file.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from syncd.errors import ApiAuthError, ApiError, DatabaseError
from syncd.exit_codes import ExitCode
from syncd.genesys.api import TOKEN_ROUTE, ContactsApi
from syncd.logs import get_logger
from syncd.store import changes, links
from syncd.store.db import Database
from syncd.store.snapshot import Snapshot
from syncd.sync import guards
from syncd.sync.bulk import BulkWriter, bulk_api
from syncd.sync.context import AnyStop, NoProgress, PlanEntry, Progress, Stop, WriteContext
from syncd.sync.diff import Absent, RemoteView
from syncd.sync.executor import Executor
from syncd.sync.local import LocalDecisions
from syncd.sync.observe import (
    Listing,
    list_into,
    listing_snapshot,
    observe_listed_unlinked,
    observe_targets,
)
from syncd.sync.options import EngineOptions
from syncd.sync.organizations import OrganizationStage, organization_stage
from syncd.sync.outcomes import Hooks, IntentProtocol
from syncd.sync.plan import Item, load_items, observe_snapshot, remote_from_snapshot
from syncd.sync.resolve import Resolver, plan_pending
from syncd.sync.run_record import (
    COUNTERS,
    Meter,
    account,
    close_run,
    final_status,
    open_run,
    standing,
)
from syncd.sync.single import SingleWriter

log = get_logger("syncd.sync")

Kind = Literal["incremental", "full", "targeted"]


@dataclass(frozen=True, slots=True)
class RunSpec:
    kind: Kind = "incremental"
    external_ids: tuple[str, ...] = ()
    allow_mass_delete: bool = False
    dry_run: bool = False


@dataclass(slots=True)
class RunReport:
    kind: str
    run_id: int | None = None
    status: str = "running"
    error: str | None = None
    counts: Counter[str] = field(default_factory=Counter)
    api_calls: int = 0
    rate_limited: int = 0
    listed: int = 0
    duration_s: float = 0.0
    guard: str | None = None
    login_failed: bool = False  # no call could authenticate: the daemon backs off

    @property
    def exit_code(self) -> ExitCode:
        if self.status == "succeeded":
            return ExitCode.OK
        if self.status == "held":
            return ExitCode.HELD
        return ExitCode.PARTIAL


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Engine:
    """One database, one Genesys org: performs runs (the caller holds the sync lease)."""

    def __init__(
        self,
        db: Database,
        api: ContactsApi,
        options: EngineOptions,
        *,
        hooks: Hooks | None = None,
        clock: Callable[[], datetime] = _utcnow,
        progress: Progress | None = None,
        on_plan: Callable[[PlanEntry], None] | None = None,
        instance_id: str | None = None,
    ) -> None:
        if api.organizations is not None:  # contacts then reference records by id only
            options = replace(options, organizations_as_records=True)
        self.db, self.api, self.options = db, api, options
        self._organizations: OrganizationStage | None = None
        self.hooks, self.clock = hooks, clock
        self.progress = progress or NoProgress()
        self.on_plan = on_plan
        self.instance_id = instance_id

    async def run(
        self,
        spec: RunSpec,
        *,
        trigger: str = "manual",
        stop: Stop | None = None,
        started: Callable[[int], None] | None = None,
    ) -> RunReport:
        report = RunReport(kind=spec.kind)
        began, began_at = time.monotonic(), self.clock()
        meter = Meter(self.api)
        halt = AnyStop(stop)
        if not spec.dry_run:
            report.run_id = open_run(
                self.db, kind=spec.kind, trigger=trigger, instance_id=self.instance_id
            )
            if started:
                started(report.run_id)
        log.info(
            "sync.run.started",
            run_id=report.run_id,
            kind=spec.kind,
            trigger=trigger,
            dry_run=spec.dry_run,
        )
        try:
            executor = await self._work(spec, report, halt, began_at)
            note = account(
                report.counts,
                None if executor.aborted else standing(self.db),
                released=spec.allow_mass_delete,
                dry_run=spec.dry_run,
            )
            report.status = final_status(
                report.counts, aborted=bool(executor.aborted), interrupted=halt.is_set()
            )
            report.error = executor.aborted or note
            report.login_failed = executor.login_failed
        except (ApiError, DatabaseError) as exc:
            report.status, report.error = "failed", str(exc)
            report.login_failed = isinstance(exc, ApiAuthError) or (
                isinstance(exc, ApiError) and exc.route == TOKEN_ROUTE
            )
            log.error("sync.run.failed", run_id=report.run_id, error=str(exc))
        except Exception as exc:
            report.status, report.error = "failed", f"{type(exc).__name__}: {exc}"
            await self._finish(report, meter, began, spec)
            raise
        await self._finish(report, meter, began, spec)
        return report

    async def _finish(self, report: RunReport, meter: Meter, began: float, spec: RunSpec) -> None:
        report.api_calls, report.rate_limited = meter.delta()
        report.duration_s = time.monotonic() - began
        if report.run_id is not None and not spec.dry_run:
            counters = {k: report.counts[k] for k in COUNTERS}
            counters.update(api_calls=report.api_calls, rate_limited=report.rate_limited)
            await close_run(
                self.db, report.run_id, status=report.status, error=report.error, counters=counters
            )
        log.info(
            "sync.run.finished",
            run_id=report.run_id,
            kind=report.kind,
            status=report.status,
            api_calls=report.api_calls,
            rate_limited=report.rate_limited,
            duration_s=round(report.duration_s, 3),
            **{k: report.counts[k] for k in COUNTERS},
        )

    # -- the work ----------------------------------------------------------------------------

    def _executor(
        self, spec: RunSpec, report: RunReport, halt: AnyStop, verdict: guards.Verdict
    ) -> Executor:
        """The run's writers over one shared context: bulk chunks when the client has bulk
        endpoints (never in a dry run), single calls for the rest."""
        ctx = WriteContext(
            self.db,
            self.options,
            run_id=report.run_id,
            clock=self.clock,
            stop=halt,
            tally=report.counts,
            dry_run=spec.dry_run,
            on_plan=self.on_plan,
            on_done=self.progress.advance,
            on_row_failed=self._organizations.row_failed if self._organizations else None,
        )
        intents = IntentProtocol(ctx, self.hooks)
        local = LocalDecisions(ctx, verdict)
        single = SingleWriter(ctx, intents, self.api, local)
        api = None if spec.dry_run else bulk_api(self.api)
        bulk = BulkWriter(ctx, intents, api, single) if api is not None else None
        return Executor(
            ctx,
            self.api,
            verdict,
            local,
            single,
            bulk=bulk,
            ignore_backoff=spec.kind == "targeted",
            organizations=self._organizations,
        )

    async def _work(
        self, spec: RunSpec, report: RunReport, halt: AnyStop, began_at: datetime
    ) -> Executor:
        resolved: list[tuple[str, RemoteView]] = []
        resolver: Resolver | None = None
        self._organizations = organization_stage(
            self.db,
            self.api,
            self.options,
            report.run_id,
            self.clock,
            began_at=began_at,
            dry_run=spec.dry_run,
        )
        # A full reconcile settles pending creates by its listing, when the listing can prove.
        by_listing = spec.kind == "full" and self.api.listing_proves_absence
        if spec.dry_run:
            if self.on_plan is not None:
                plan_pending(self.db, self.on_plan)
        else:
            self.progress.phase("resolving pending intents", None)
            resolver = Resolver(
                self.db,
                self.api,
                self.options,
                run_id=report.run_id,
                clock=self.clock,
                tally=report.counts,
            )
            resolved = await resolver.resolve_all(began_at, halt, defer_creates=by_listing)
        # The externalIds whose intents were just resolved are diffed again at once, against
        # what the resolution observed (_redo), and before anything else observes Genesys:
        # a view taken before their write would see the old content and send it again.
        if spec.kind == "full":
            executor = self._executor(spec, report, halt, self._verdict(spec))
            await self._redo(executor, resolved)
            if self._organizations is not None:  # so that the listing reads every reference
                await self._organizations.settle_all()
            with listing_snapshot(self.db, dry_run=spec.dry_run) as snapshot:
                if resolver is not None and by_listing:
                    self.progress.phase("waiting for earlier writes to land", None)
                    await resolver.await_landing(began_at, halt)
                listing = await self._list(snapshot, report, halt)
                if listing.complete:
                    if resolver is not None and by_listing:
                        await resolver.settle_creates(snapshot, listing, began_at)
                    await self._full(executor, snapshot)
                return executor
        if spec.kind == "targeted":
            redone = {ext for ext, _view in resolved}
            wanted = {e.strip() for e in spec.external_ids}
            items = await observe_targets(
                self.db,
                self.api,
                self.options,
                [e for e in spec.external_ids if e.strip() not in redone],
            )
            also = load_items(self.db, sorted(redone & wanted), self.options.content_rules)
            planned = sum(
                1
                for i in (*items, *also)
                if isinstance(i.desired, Absent) and i.link and i.link.genesys_id
            )
            executor = self._executor(spec, report, halt, self._verdict(spec, planned))
            await self._redo(executor, resolved)
            self.progress.phase("syncing", len(items))
            await executor.execute(items)
            return executor
        executor = self._executor(spec, report, halt, self._verdict(spec))
        await self._redo(executor, resolved)
        await self._incremental(executor, spec)
        return executor

    def _verdict(self, spec: RunSpec, targeted: int = 0) -> guards.Verdict:
        return guards.run_verdict(
            self.db,
            spec.kind,
            self.options.limits,
            allow_mass_delete=spec.allow_mass_delete,
            targeted=targeted,
        )

    async def _redo(self, executor: Executor, resolved: Sequence[tuple[str, RemoteView]]) -> None:
        """Diff the externalIds whose pending intents were just resolved."""
        if not resolved:
            return
        views = dict(resolved)
        items = load_items(self.db, list(views), self.options.content_rules)
        for item in items:
            item.view = views[item.external_id]
        await executor.execute(items)

    async def _incremental(self, executor: Executor, spec: RunSpec) -> None:
        with self.db.read() as conn:
            total = changes.count_pending(conn)
        self.progress.phase("syncing changes", total)
        after_id = 0
        while not executor.halted():
            with self.db.read() as conn:
                batch = changes.read_changes(conn, after_id=after_id, limit=self.options.batch_size)
            if not batch:
                break
            after_id = batch[-1].id
            ids: dict[str, list[int]] = {}
            for change in batch:
                ids.setdefault(change.external_id, []).append(change.id)
            items = load_items(self.db, list(ids), self.options.content_rules)
            for item in items:
                item.change_ids = ids[item.external_id]
            await executor.execute(await self._observe_listed_unlinked(items))
        self.progress.phase("retrying failed rows", None)
        await self._by_keys(
            executor,
            lambda conn, after: links.due_failed_keys(
                conn, self.clock(), after=after, limit=self.options.batch_size
            ),
            lookup_unlinked=True,
        )
        if spec.allow_mass_delete:
            await self._by_keys(
                executor,
                lambda conn, after: links.keys_in_states(
                    conn, ("held",), after=after, limit=self.options.batch_size
                ),
            )

    async def _by_keys(
        self,
        executor: Executor,
        page: Callable[[Any, str | None], list[str]],
        snapshot: Snapshot | None = None,
        *,
        lookup_unlinked: bool = False,
    ) -> None:
        """Execute the items of every page of keys; a full reconcile's (``snapshot``) carry
        the pending changes they cover (:func:`~syncd.sync.plan.load_items`)."""
        after: str | None = None
        while not executor.halted():
            with self.db.read() as conn:
                keys = page(conn, after)
            if not keys:
                return
            after = keys[-1]
            items = load_items(
                self.db, keys, self.options.content_rules, with_changes=snapshot is not None
            )
            if snapshot is not None:
                observe_snapshot(self.db, snapshot, items)
            if lookup_unlinked or (snapshot is not None and not self.api.scans_every_contact):
                items = await self._observe_listed_unlinked(items)
            await executor.execute(items)

    async def _observe_listed_unlinked(self, items: list[Item]) -> list[Item]:
        return await observe_listed_unlinked(self.db, self.api, self.options, items)

    # -- full reconcile --------------------------------------------------------------------------

    async def _list(self, snapshot: Snapshot, report: RunReport, halt: AnyStop) -> Listing:
        """Stream the whole listing into the snapshot."""
        self.progress.phase("listing Genesys contacts", None)

        def on_page(rows: int) -> None:
            report.listed += rows
            self.progress.advance(rows)

        return await list_into(
            self.api,
            snapshot,
            self.options,
            run_id=report.run_id,
            halt=halt,
            on_page=on_page,
            began_at=self.clock(),
        )

    async def _full(self, executor: Executor, snapshot: Snapshot) -> None:
        size = self.options.batch_size
        with self.db.read() as conn:
            total = changes.count_mirror(conn)
        self.progress.phase("reconciling", total)
        await self._by_keys(
            executor,
            lambda conn, after: changes.mirror_keys(conn, after=after, limit=size),
            snapshot,
        )
        await self._by_keys(
            executor,
            lambda conn, after: links.keys_without_mirror_row(conn, after=after, limit=size),
            snapshot,
        )
        # Listed externalIds that neither the mirror nor a link knows: orphans.
        after: str | None = None
        while not executor.halted():
            keys = snapshot.external_id_keys(after=after, limit=size)
            if not keys:
                break
            after = keys[-1]
            with self.db.read() as conn:
                unknown = changes.unknown_external_ids(conn, keys)
            items = [Item(ext, Absent(), None) for ext in unknown]
            if items:
                observe_snapshot(self.db, snapshot, items)
                await executor.execute(items)
        after = None
        while not executor.halted():
            rows = snapshot.without_external_id(after=after, limit=size)
            if not rows:
                break
            after = rows[-1].genesys_id
            with self.db.read() as conn:
                claimed = links.links_by_genesys_id(conn, [r.genesys_id for r in rows])
            executor.report_orphans(
                [remote_from_snapshot(r) for r in rows if r.genesys_id not in claimed]
            )
