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

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from syncd.errors import ApiError, ApiNotFoundError, DatabaseError
from syncd.genesys.api import ContactsApi
from syncd.logs import get_logger
from syncd.store import changes, links
from syncd.store import runs as run_store
from syncd.store.db import Database
from syncd.store.snapshot import Snapshot, scratch_snapshot
from syncd.sync import guards
from syncd.sync.diff import Absent, RemoteView, Wanted
from syncd.sync.executor import Executor, Hooks, PlanEntry, Stop
from syncd.sync.options import EngineOptions
from syncd.sync.plan import (
    Item,
    canonical_remote,
    load_items,
    observe_snapshot,
    remote_from_snapshot,
    snapshot_row,
)
from syncd.sync.resolve import Resolver

log = get_logger("syncd.sync")

EXIT_OK, EXIT_PARTIAL, EXIT_HELD = 0, 1, 3  # same values as syncd.daemon.runner

Kind = Literal["incremental", "full", "targeted"]
COUNTERS = ("created", "updated", "deleted", "adopted", "unchanged", "failed", "held", "rejected")
# Waits between attempts to record a run's outcome while the database is unavailable (~30 s).
FINISH_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


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

    @property
    def exit_code(self) -> int:
        if self.status == "succeeded":
            return EXIT_OK
        if self.status == "held":
            return EXIT_HELD
        return EXIT_PARTIAL


class Progress(Protocol):
    def phase(self, name: str, total: int | None) -> None: ...

    def advance(self, n: int) -> None: ...


class _NoProgress:
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


class _Metered:
    """Counts calls for clients that keep no metrics of their own."""

    def __init__(self, api: ContactsApi) -> None:
        metrics = getattr(api, "metrics", None)
        self._metrics = metrics if hasattr(metrics, "requests") else None
        self._start = self._read()

    def _read(self) -> tuple[int, int]:
        if self._metrics is None:
            return (0, 0)
        return (int(self._metrics.requests), int(getattr(self._metrics, "rate_limited", 0)))

    def delta(self) -> tuple[int, int]:
        now = self._read()
        return now[0] - self._start[0], now[1] - self._start[1]


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
        self.db, self.api, self.options = db, api, options
        self.hooks, self.clock = hooks, clock
        self.progress = progress or _NoProgress()
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
        began = time.monotonic()
        meter = _Metered(self.api)
        halt = AnyStop(stop)
        if not spec.dry_run:
            with self.db.write() as conn:
                stale = run_store.interrupt_stale(conn)
                report.run_id = run_store.start_run(
                    conn, kind=spec.kind, trigger=trigger, instance_id=self.instance_id
                )
            if stale:
                log.warning("sync.run.stale_interrupted", run_ids=stale)
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
            executor = await self._work(spec, report, halt)
            report.status = self._status(report, executor, halt)
            if executor.aborted:
                report.error = executor.aborted
        except (ApiError, DatabaseError) as exc:
            report.status, report.error = "failed", str(exc)
            log.error("sync.run.failed", run_id=report.run_id, error=str(exc))
        except Exception as exc:
            report.status, report.error = "failed", f"{type(exc).__name__}: {exc}"
            await self._finish(report, meter, began, spec)
            raise
        await self._finish(report, meter, began, spec)
        return report

    async def _finish(
        self, report: RunReport, meter: _Metered, began: float, spec: RunSpec
    ) -> None:
        report.api_calls, report.rate_limited = meter.delta()
        report.duration_s = time.monotonic() - began
        if report.run_id is not None and not spec.dry_run:
            counters = {k: report.counts[k] for k in COUNTERS}
            counters.update(api_calls=report.api_calls, rate_limited=report.rate_limited)
            await self._record_finish(report, counters)
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

    async def _record_finish(self, report: RunReport, counters: dict[str, int]) -> None:
        """Write the run's outcome, retrying while the database is briefly unavailable.

        A run that failed *because* the database was locked or unreachable would otherwise
        fail to say so as well, and stay ``running`` until the next run called it
        "interrupted"; its counters and its error would be lost.
        """
        assert report.run_id is not None
        for delay in (*FINISH_RETRY_DELAYS, None):
            try:
                with self.db.write() as conn:
                    run_store.finish_run(
                        conn,
                        report.run_id,
                        status=report.status,
                        counters=counters,
                        error=report.error,
                    )
                return
            except DatabaseError as exc:
                if delay is None:
                    raise
                log.warning(
                    "sync.run.finish_retry", run_id=report.run_id, error=str(exc), retry_in=delay
                )
                await asyncio.sleep(delay)

    @staticmethod
    def _status(report: RunReport, executor: Executor, halt: AnyStop) -> str:
        c = report.counts
        if executor.aborted:
            return "failed"
        if halt.is_set():
            return "interrupted"
        if c["held"]:
            return "held"
        if c["failed"] or c["rejected"]:
            return "partial"
        return "succeeded"

    # -- the work ----------------------------------------------------------------------------

    def _executor(
        self, spec: RunSpec, report: RunReport, halt: AnyStop, verdict: guards.Verdict
    ) -> Executor:
        return Executor(
            self.db,
            self.api,
            self.options,
            run_id=report.run_id,
            verdict=verdict,
            clock=self.clock,
            stop=halt,
            tally=report.counts,
            hooks=self.hooks,
            dry_run=spec.dry_run,
            ignore_backoff=spec.kind == "targeted",
            on_plan=self.on_plan,
            on_done=self.progress.advance,
        )

    async def _work(self, spec: RunSpec, report: RunReport, halt: AnyStop) -> Executor:
        resolved: list[tuple[str, RemoteView]] = []
        if spec.dry_run:
            self._plan_pending()
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
            resolved = await resolver.resolve_all()
        # The externalIds whose intents were just resolved are diffed again at once, against
        # what the resolution observed (_redo), and before anything else observes Genesys:
        # a view taken before their write would see the old content and send it again.
        if spec.kind == "full":
            executor = self._executor(spec, report, halt, self._verdict(spec))
            await self._redo(executor, resolved)
            with self._snapshot(spec) as snapshot:
                if await self._list(snapshot, report, halt):
                    await self._full(executor, snapshot)
                return executor
        if spec.kind == "targeted":
            redone = {ext for ext, _view in resolved}
            wanted = {e.strip() for e in spec.external_ids}
            items = await self._observe_targets(
                [e for e in spec.external_ids if e.strip() not in redone]
            )
            also = load_items(self.db, sorted(redone & wanted), self.options.default_region)
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
        with self.db.read() as conn:
            if spec.kind == "full":
                planned = links.count_linked_without_live_mirror(conn)
            elif spec.kind == "targeted":
                planned = targeted
            else:
                planned = changes.count_change_deletes(conn) + links.count_in_state(conn, "held")
            if planned == 0:
                return guards.ALLOWED
            linked = links.count_linked(conn)
            live = changes.live_mirror_exists(conn)
        verdict = guards.check_deletes(
            planned,
            linked,
            live_mirror=live,
            limits=self.options.limits,
            allow_mass_delete=spec.allow_mass_delete,
        )
        if not verdict.allowed:
            log.warning("sync.guard.held", planned=planned, linked=linked, reason=verdict.reason)
        return verdict

    def _plan_pending(self) -> None:
        if self.on_plan is None:
            return
        with self.db.read() as conn:
            keys = links.keys_in_states(conn, links.PENDING_STATES, limit=10_000)
            found = links.get_links(conn, keys)
        for key in keys:
            link = found[key]
            self.on_plan(
                PlanEntry(
                    "resolve",
                    key,
                    link.genesys_id,
                    note=f"{link.state} intent would be resolved first",
                )
            )

    async def _redo(self, executor: Executor, resolved: Sequence[tuple[str, RemoteView]]) -> None:
        """Diff the externalIds whose pending intents were just resolved."""
        if not resolved:
            return
        views = dict(resolved)
        items = load_items(self.db, list(views), self.options.default_region)
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
            items = load_items(self.db, list(ids), self.options.default_region)
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
        after: str | None = None
        while not executor.halted():
            with self.db.read() as conn:
                keys = page(conn, after)
            if not keys:
                return
            after = keys[-1]
            items = load_items(self.db, keys, self.options.default_region)
            if snapshot is not None:
                observe_snapshot(self.db, snapshot, items)
            if lookup_unlinked:
                items = await self._observe_listed_unlinked(items)
            await executor.execute(items)

    async def _observe_listed_unlinked(self, items: list[Item]) -> list[Item]:
        """Look up, before creating it, an externalId the last listing saw on a contact that
        no link claims (an incremental run does not list, so it would create a duplicate).

        That happens when the CRM restores or re-inserts a row after a full reconcile
        reported a pre-existing contact with its externalId as an orphan: the contact must be
        adopted, not doubled (invariant 1). The last listing (``remote_snapshot``) is read by
        its externalId index, and only the externalIds it names cost a search (plus a GET
        per unclaimed hit: search lags behind deletions), so the run's cost still follows the
        changes. An item whose lookup fails is left for the next run (its change rows stay,
        a failed row stays due).
        """
        candidates = [
            i
            for i in items
            if isinstance(i.desired, Wanted)
            and not i.view.observed
            and (i.link is None or (i.link.genesys_id is None and i.link.state == "failed"))
        ]
        if not candidates:
            return items
        listed = Snapshot(self.db).by_external_ids([i.external_id for i in candidates])
        if not listed:
            return items
        with self.db.read() as conn:
            claimed = links.links_by_genesys_id(
                conn, [r.genesys_id for rows in listed.values() for r in rows]
            )
        hinted = [
            i
            for i in candidates
            if any(r.genesys_id not in claimed for r in listed.get(i.external_id, ()))
        ]
        unobserved: set[str] = set()
        region = self.options.default_region

        async def look(item: Item) -> None:
            found = []
            try:
                hits = await self.api.find_by_external_id(item.external_id)
                with self.db.read() as conn:
                    taken = links.links_by_genesys_id(conn, [h.genesys_id for h in hits])
                for hit in hits:
                    if hit.genesys_id in taken:
                        continue
                    # Search lags: a contact deleted a moment ago (by this very run, when
                    # the CRM tombstoned and restored the row) may still be found. A read
                    # by id is up to date.
                    try:
                        current = await self.api.get(hit.genesys_id)
                    except ApiNotFoundError:
                        continue
                    if current.contact.external_id == item.external_id:
                        found.append(current)
            except ApiError as exc:
                unobserved.add(item.external_id)
                log.warning("sync.lookup.failed", external_id=item.external_id, error=str(exc))
                return
            others = tuple(canonical_remote(rc, region) for rc in found)
            item.view = RemoteView(observed=True, others=others)

        gate = asyncio.Semaphore(self.options.max_in_flight)

        async def bounded(item: Item) -> None:
            async with gate:
                await look(item)

        await asyncio.gather(*(bounded(i) for i in hinted))
        return [i for i in items if i.external_id not in unobserved]

    # -- full reconcile --------------------------------------------------------------------------

    @contextmanager
    def _snapshot(self, spec: RunSpec) -> Iterator[Snapshot]:
        if spec.dry_run:
            with scratch_snapshot() as snap:
                yield snap
        else:
            snap = Snapshot(self.db)
            snap.clear()
            yield snap

    async def _list(self, snapshot: Snapshot, report: RunReport, halt: AnyStop) -> bool:
        """Stream the whole listing into the snapshot; False when stopped before the end."""
        token: str | None = None
        seen: set[str] = set()
        self.progress.phase("listing Genesys contacts", None)
        while True:
            if halt.is_set():
                return False
            page = await self.api.list_page(token, self.options.page_size)
            rows = [snapshot_row(rc, self.options.default_region) for rc in page.contacts]
            snapshot.add_page(report.run_id or 0, rows)
            report.listed += len(rows)
            self.progress.advance(len(rows))
            if page.next_token is None:
                return True
            if page.next_token in seen:
                raise ApiError(f"the listing repeated page token {page.next_token!r}")
            seen.add(page.next_token)
            token = page.next_token

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

    # -- targeted ----------------------------------------------------------------------------

    async def _observe_targets(self, external_ids: Sequence[str]) -> list[Item]:
        unique = list(dict.fromkeys(e.strip() for e in external_ids if e.strip()))
        items = load_items(self.db, unique, self.options.default_region)
        region = self.options.default_region

        async def observe(item: Item) -> None:
            gid = item.link.genesys_id if item.link else None
            try:
                if gid:
                    try:
                        found = await self.api.get(gid)
                    except Exception as exc:
                        if not isinstance(exc, ApiError) or exc.status != 404:
                            raise
                        item.view = RemoteView(observed=True, confirmed_missing=True)
                    else:
                        item.view = RemoteView(
                            observed=True, linked=canonical_remote(found, region)
                        )
                    return
                hits = await self.api.find_by_external_id(item.external_id)
                with self.db.read() as conn:
                    claimed = links.links_by_genesys_id(conn, [h.genesys_id for h in hits])
                others = tuple(
                    canonical_remote(h, region) for h in hits if h.genesys_id not in claimed
                )
                item.view = RemoteView(observed=True, others=others)
            except ApiError as exc:
                log.warning(
                    "sync.targeted.observe_failed", external_id=item.external_id, error=str(exc)
                )

        await asyncio.gather(*(observe(i) for i in items))
        return items
