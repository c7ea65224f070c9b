"""Applying decisions to Genesys with the intent protocol (invariants 1, 2, 3 and 6).

For every remote write: (1) commit the intent, a ledger row with ``outcome='pending'`` plus the
link state ``pending_create`` / ``pending_update`` / ``pending_delete``; (2) call the API;
(3) commit the outcome (ledger row settled, new link state) together with the deletion of the
change-log rows it answers. A crash between (1) and (3) leaves a pending intent that the next
run resolves before new work (:mod:`syncd.sync.resolve`). A create whose outcome is unknown
is never re-sent: it stays ``pending_create``.

Writes run concurrently (at most ``max_in_flight``); decisions that need no call are committed
in one transaction per batch. A failing row is recorded and backs off on its own; it never
stops the run, except for failures that will fail every row (authentication, a service that
keeps answering "unavailable"), which end the run as failed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.engine import Connection

from syncd.errors import (
    ApiAuthError,
    ApiError,
    ApiNotFoundError,
    ApiRateLimitedError,
    ApiUnavailableError,
    ApiValidationError,
    OutcomeUnknownError,
)
from syncd.genesys.api import ContactsApi
from syncd.genesys.auth import TOKEN_ROUTE
from syncd.logs import get_logger
from syncd.model import Contact
from syncd.store import changes, ledger, links
from syncd.store.db import Database
from syncd.store.ledger import Entry
from syncd.store.links import Link
from syncd.sync import diff as d
from syncd.sync.canonical import changed_fields, content_hash
from syncd.sync.guards import Verdict
from syncd.sync.options import EngineOptions
from syncd.sync.plan import Item, canonical_remote

log = get_logger("syncd.sync")

Clock = Callable[[], datetime]


class Hooks:
    """Test seams between the protocol's steps (a crash is simulated by raising from one)."""

    def after_intent(self, external_id: str, op: str) -> None:
        """The intent is committed; the API call has not been made."""

    def after_write(self, external_id: str, op: str) -> None:
        """The API call succeeded; its outcome is not committed yet."""


class Stop(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class PlanEntry:
    """One line of a plan (dry run) or of a report: what was (or would be) done."""

    op: str
    external_id: str | None
    genesys_id: str | None = None
    fields: dict[str, Any] | None = None
    note: str | None = None


def _delete_fields(link: Link) -> dict[str, Any] | None:
    content = link.synced_content or {}
    return {k: [v, None] for k, v in content.items() if v not in (None, [])} or None


class Executor:
    """Applies the diff's decisions for batches of :class:`~syncd.sync.plan.Item`."""

    def __init__(
        self,
        db: Database,
        api: ContactsApi,
        options: EngineOptions,
        *,
        run_id: int | None,
        verdict: Verdict,
        clock: Clock,
        stop: Stop,
        tally: Counter[str],
        hooks: Hooks | None = None,
        dry_run: bool = False,
        ignore_backoff: bool = False,
        on_plan: Callable[[PlanEntry], None] | None = None,
        on_done: Callable[[int], None] | None = None,
    ) -> None:
        self.db, self.api, self.options = db, api, options
        self.run_id, self.verdict, self.clock, self.stop = run_id, verdict, clock, stop
        self.tally, self.hooks, self.dry_run = tally, hooks or Hooks(), dry_run
        self.ignore_backoff = ignore_backoff
        self.on_plan, self.on_done = on_plan, on_done
        self.aborted: str | None = None
        self._unavailable_streak = 0
        self._gate = asyncio.Semaphore(options.max_in_flight)

    # -- entry points ------------------------------------------------------------------------

    def halted(self) -> bool:
        return self.aborted is not None or self.stop.is_set()

    async def execute(self, items: Sequence[Item]) -> None:
        """Decide and apply one batch; returns when every started write has its outcome."""
        now = self.clock()
        local: list[tuple[Item, d.Decision]] = []
        reports: list[Entry] = []
        writes: list[tuple[Item, d.Decision]] = []
        for item in items:
            decision = d.diff(
                item.desired, item.link, item.view, now=now, ignore_backoff=self.ignore_backoff
            )
            decision = self._representable(item, decision)
            is_write = isinstance(decision.action, d.WRITES)
            if isinstance(decision.action, d.Delete) and not self.verdict.allowed:
                is_write = False
            (writes if is_write else local).append((item, decision))
            reports.extend(self._reports(item, decision))
        self._plan_or_append(reports)
        self._commit_local(local)
        from syncd.sync import bulk as _bulk  # imports this module

        jobs: list[Awaitable[None]] = []
        api = None if self.dry_run else _bulk.bulk_api(self.api)
        if api is not None:  # creates, updates, deletes in bulk chunks (syncd.sync.bulk)
            writes, jobs = _bulk.BulkWriter(self, api).plan(writes)
        await self.run_bounded([*jobs, *(self._guarded_write(i, dec) for i, dec in writes)])

    def _representable(self, item: Item, decision: d.Decision) -> d.Decision:
        """A contact the wire profile cannot express (two WORK phones for externalcontacts'
        one workPhone slot) is rejected here, with a ledger row and no call, like a 400: it
        waits until its content changes."""
        action = decision.action
        check = getattr(self.api, "representation_problem", None)
        sends = d.Create | d.Update | d.Drift | d.Adopt | d.Recreate
        if check is None or not isinstance(action, sends) or not isinstance(item.desired, d.Wanted):
            return decision
        problem = check(action.contact)
        if problem is None:
            return decision
        reject = d.Reject((f"cannot be represented: {problem}",), item.desired.hash)
        return replace(decision, action=reject)

    async def run_bounded(self, jobs: Sequence[Awaitable[None]]) -> None:
        """Run ``jobs`` with at most ``max_in_flight`` at a time; a crash cancels the rest."""
        tasks = [asyncio.ensure_future(job) for job in jobs]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _guarded_write(self, item: Item, decision: d.Decision) -> None:
        async with self._gate:
            if self.halted():
                self.tally["skipped"] += 1
                return
            try:
                await self._write(item, decision.action)
            finally:
                if self.on_done:
                    self.on_done(1)

    # -- decisions without a call -------------------------------------------------------------

    def _entry(self, op: str, outcome: str, **kw: Any) -> Entry:
        return Entry(op=op, outcome=outcome, run_id=self.run_id, at=self.clock(), **kw)

    def _reports(self, item: Item, decision: d.Decision) -> list[Entry]:
        entries: list[Entry] = []
        for remote in decision.duplicates:
            self.tally["duplicates"] += 1
            entries.append(
                self._entry(
                    "duplicate",
                    "reported",
                    external_id=item.external_id,
                    genesys_id=remote.genesys_id,
                    error="another Genesys contact carries this externalId; left untouched",
                )
            )
        for remote in decision.orphans:
            self.tally["orphans"] += 1
            entries.append(
                self._entry(
                    "orphan",
                    "reported",
                    external_id=item.external_id or None,
                    genesys_id=remote.genesys_id,
                    error="not in the CRM mirror and not created by syncd; left untouched",
                )
            )
        return entries

    def report_orphans(self, remotes: Sequence[d.Remote]) -> None:
        """Listed contacts without any externalId (full reconcile)."""
        item = Item("", d.Absent(), None)
        self._plan_or_append(self._reports(item, d.Decision(d.Nothing(), orphans=tuple(remotes))))

    def _plan_or_append(self, entries: Sequence[Entry]) -> None:
        if not entries:
            return
        if self.dry_run:
            for e in entries:
                self._plan(e.op, e.external_id, e.genesys_id, e.fields, e.error)
            return
        with self.db.write() as conn:
            ledger.append_many(conn, entries)

    def _plan(
        self,
        op: str,
        ext: str | None,
        gid: str | None = None,
        fields: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> None:
        if self.on_plan:
            self.on_plan(PlanEntry(op, ext, gid, fields, note))

    def _commit_local(self, pairs: Sequence[tuple[Item, d.Decision]]) -> None:
        if not pairs:
            return
        if self.dry_run:
            for item, decision in pairs:
                self._local(None, item, decision.action)
        else:
            with self.db.write() as conn:
                for item, decision in pairs:
                    self._local(conn, item, decision.action)
                    changes.consume(conn, item.change_ids)
        if self.on_done:
            self.on_done(len(pairs))

    def _local(self, conn: Connection | None, item: Item, action: d.Action) -> None:
        ext, link = item.external_id, item.link
        if isinstance(action, d.Unchanged):
            self.tally["unchanged"] += 1
            if conn is not None and link is not None and _needs_refresh(link, action.hash):
                links.save_link(conn, _synced(link, action.contact, action.hash))
        elif isinstance(action, d.Wait):
            self.tally["waiting"] += 1
        elif isinstance(action, d.Reject):
            self.tally["rejected"] += 1
            reason = "; ".join(action.reasons)
            self._plan("reject", ext, link.genesys_id if link else None, note=reason)
            if conn is not None:
                ledger.append(
                    conn,
                    self._entry(
                        "reject",
                        "rejected",
                        external_id=ext,
                        genesys_id=link.genesys_id if link else None,
                        error=reason,
                    ),
                )
                base = link or Link(ext, "failed")
                links.save_link(
                    conn,
                    base.evolve(
                        state="failed",
                        rejected_hash=action.raw_hash,
                        next_attempt_at=None,
                        attempts=0,
                        last_error=f"rejected locally: {reason}",
                    ),
                )
        elif isinstance(action, d.Forget):
            if conn is not None:
                links.delete_link(conn, ext)
        elif isinstance(action, d.Delete):  # held by the guard
            assert link is not None
            self.tally["held"] += 1
            fields = _delete_fields(link)
            self._plan("delete", ext, action.genesys_id, fields, f"held: {self.verdict.reason}")
            if conn is not None:
                ledger.append(
                    conn,
                    self._entry(
                        "delete",
                        "held",
                        external_id=ext,
                        genesys_id=action.genesys_id,
                        fields=fields,
                        error=self.verdict.reason,
                    ),
                )
                links.save_link(conn, link.evolve(state="held", last_error=self.verdict.reason))

    # -- writes --------------------------------------------------------------------------------

    async def _write(self, item: Item, action: d.Action) -> None:
        try:
            if isinstance(action, d.Create):
                await self._create(item, action.contact, action.changes, "create")
            elif isinstance(action, d.Update | d.Drift):
                op = "drift" if isinstance(action, d.Drift) else "update"
                await self._patch(item, action.genesys_id, action.contact, action.changes, op)
            elif isinstance(action, d.Delete):
                await self._delete(item, action.genesys_id)
            elif isinstance(action, d.Adopt):
                await self._adopt(item, action)
            elif isinstance(action, d.Recreate):
                await self._recreate(item, action)
        except ApiError as exc:  # a read made on the way (confirming GET)
            self._failed(item, None, exc, item.link or Link(item.external_id, "failed"))

    async def _create(
        self,
        item: Item,
        contact: Contact,
        fields: dict[str, Any],
        op: str,
        old_gid: str | None = None,
    ) -> None:
        ext = item.external_id
        if self.dry_run:
            self.tally["created"] += 1
            self._plan(op, ext, old_gid, fields)
            return
        now = self.clock()
        base = Link(ext, "pending_create", origin="created")
        with self.db.write() as conn:
            intent = ledger.append(
                conn,
                self._entry(
                    op,
                    "pending",
                    external_id=ext,
                    genesys_id=old_gid,
                    fields=fields,
                    error=f"re-creating {old_gid}, deleted in Genesys" if old_gid else None,
                ),
            )
            links.save_link(conn, base.evolve(next_attempt_at=now + self.options.create_grace))
        self.hooks.after_intent(ext, op)
        try:
            result = await self.api.create(contact)
        except OutcomeUnknownError as exc:
            self.tally["failed"] += 1
            with self.db.write() as conn:  # stays pending: resolved by lookup, never re-sent
                ledger.note(conn, intent, error=_message(exc))
                changes.consume(conn, item.change_ids)
            log.warning("sync.create.outcome_unknown", external_id=ext, error=_message(exc))
            return
        except ApiValidationError as exc:
            digest = content_hash(contact)
            self._rejected(item, intent, exc, Link(ext, "failed"), digest)
            return
        except ApiError as exc:
            self._failed(item, intent, exc, Link(ext, "failed"))
            return
        self.hooks.after_write(ext, op)
        with self.db.write() as conn:
            ledger.settle(
                conn,
                intent,
                outcome="ok",
                genesys_id=result.genesys_id,
                http_status=result.status,
                correlation_id=result.correlation_id,
            )
            synced = _synced(base.evolve(genesys_id=result.genesys_id), contact)
            links.save_link(conn, synced)
            changes.consume(conn, item.change_ids)
        self._succeeded("created")

    async def _patch(
        self, item: Item, gid: str, contact: Contact, fields: dict[str, Any], op: str
    ) -> None:
        ext, link = item.external_id, item.link
        assert link is not None
        if not fields:  # equal content under another representation: record, no call
            self._commit_local([(item, d.Decision(d.Unchanged(contact, content_hash(contact))))])
            return
        if self.dry_run:
            self.tally["updated"] += 1
            self._plan(op, ext, gid, fields)
            return
        with self.db.write() as conn:
            intent = ledger.append(
                conn,
                self._entry(
                    op,
                    "pending",
                    external_id=ext,
                    genesys_id=gid,
                    fields=fields,
                ),
            )
            links.save_link(conn, link.evolve(state="pending_update"))
        self.hooks.after_intent(ext, op)
        try:
            result = await self.api.patch(
                gid, {f: new for f, (_old, new) in fields.items()}, contact=contact
            )
        except ApiNotFoundError as exc:
            with self.db.write() as conn:
                ledger.settle(
                    conn,
                    intent,
                    outcome="failed",
                    http_status=404,
                    error="the contact was deleted in Genesys; re-creating it",
                    correlation_id=exc.correlation_id,
                )
            await self._create(item, contact, changed_fields(None, contact), "recreate", gid)
            return
        except ApiValidationError as exc:
            self._rejected(item, intent, exc, link, content_hash(contact))
            return
        except ApiError as exc:
            self._failed(item, intent, exc, link)
            return
        self.hooks.after_write(ext, op)
        with self.db.write() as conn:
            ledger.settle(
                conn,
                intent,
                outcome="ok",
                http_status=result.status,
                correlation_id=result.correlation_id,
            )
            links.save_link(conn, _synced(link, contact))
            changes.consume(conn, item.change_ids)
        self._succeeded("updated")

    async def _delete(self, item: Item, gid: str) -> None:
        ext, link = item.external_id, item.link
        # Invariant 3: only what is ours (a link that holds this very id) is ever deleted.
        assert link is not None
        assert link.genesys_id == gid
        fields = _delete_fields(link)
        if self.dry_run:
            self.tally["deleted"] += 1
            self._plan("delete", ext, gid, fields)
            return
        with self.db.write() as conn:
            intent = ledger.append(
                conn,
                self._entry(
                    "delete",
                    "pending",
                    external_id=ext,
                    genesys_id=gid,
                    fields=fields,
                ),
            )
            links.save_link(conn, link.evolve(state="pending_delete"))
        self.hooks.after_intent(ext, "delete")
        try:
            result = await self.api.delete(gid)
        except ApiError as exc:
            self._failed(item, intent, exc, link)
            return
        self.hooks.after_write(ext, "delete")
        with self.db.write() as conn:
            gone = "already gone" if result.status == 404 else None
            ledger.settle(
                conn,
                intent,
                outcome="ok",
                http_status=result.status,
                error=gone,
                correlation_id=result.correlation_id,
            )
            links.delete_link(conn, ext)
            changes.consume(conn, item.change_ids)
        self._succeeded("deleted")

    async def _adopt(self, item: Item, action: d.Adopt) -> None:
        """Link an existing contact (no write), then PATCH what differs from the CRM."""
        ext, remote = item.external_id, action.remote
        self.tally["adopted"] += 1
        self._plan("adopt", ext, remote.genesys_id, action.changes or None)
        if self.dry_run:
            if action.changes:
                self.tally["updated"] += 1
            return
        adopted = Link(ext, "synced", genesys_id=remote.genesys_id, origin="adopted")
        adopted = _synced(adopted, remote.contact, remote.hash)
        if item.link is not None and item.link.genesys_id not in (None, remote.genesys_id):
            adopted = adopted.evolve(origin=item.link.origin)
        with self.db.write() as conn:
            ledger.append(
                conn,
                self._entry(
                    "adopt",
                    "ok",
                    external_id=ext,
                    genesys_id=remote.genesys_id,
                    error="linked to an existing Genesys contact with this externalId",
                ),
            )
            links.save_link(conn, adopted)
            if not action.changes:
                changes.consume(conn, item.change_ids)
        if action.changes:
            await self._patch(
                replace(item, link=adopted),
                remote.genesys_id,
                action.contact,
                action.changes,
                "update",
            )

    async def _recreate(self, item: Item, action: d.Recreate) -> None:
        """A linked contact missing from the listing: confirm with a GET before re-creating
        (pages shift while they are read; a contact may just have moved)."""
        if not action.confirmed:
            try:
                found = await self.api.get(action.genesys_id)
            except ApiNotFoundError:
                pass
            else:
                remote = canonical_remote(found, self.options.default_region)
                view = replace(item.view, observed=True, linked=remote)
                again = replace(item, view=view)
                decision = d.diff(
                    again.desired, again.link, view, now=self.clock(), ignore_backoff=True
                )
                if isinstance(decision.action, d.WRITES) and not isinstance(
                    decision.action, d.Recreate
                ):
                    await self._write(again, decision.action)
                else:
                    self._commit_local([(again, decision)])
                return
        await self._create(item, action.contact, action.changes, "recreate", action.genesys_id)

    # -- outcomes ------------------------------------------------------------------------------

    def _succeeded(self, counter: str) -> None:
        self.tally[counter] += 1
        self._unavailable_streak = 0

    def _rejected(self, item: Item, intent: int, exc: ApiError, base: Link, digest: str) -> None:
        """400: the content cannot succeed; wait until the mirror changes it."""
        self.tally["rejected"] += 1
        message = _message(exc)
        with self.db.write() as conn:
            ledger.settle(
                conn,
                intent,
                outcome="rejected",
                http_status=exc.status or 400,
                error=message,
                correlation_id=exc.correlation_id,
            )
            links.save_link(
                conn,
                base.evolve(
                    state="failed",
                    rejected_hash=digest,
                    next_attempt_at=None,
                    attempts=0,
                    last_error=f"rejected by Genesys: {message}",
                ),
            )
            changes.consume(conn, item.change_ids)

    def _failed(self, item: Item, intent: int | None, exc: ApiError, base: Link) -> None:
        """A transient or unexpected failure: back off this row only."""
        self.tally["failed"] += 1
        message = _message(exc)
        attempts = (item.link.attempts if item.link else 0) + 1
        retry_at = self.clock() + self.options.backoff(attempts)
        with self.db.write() as conn:
            if intent is not None:
                ledger.settle(
                    conn,
                    intent,
                    outcome="failed",
                    http_status=exc.status,
                    error=message,
                    correlation_id=exc.correlation_id,
                )
            links.save_link(
                conn,
                base.evolve(
                    state="failed",
                    attempts=attempts,
                    next_attempt_at=retry_at,
                    last_error=message,
                ),
            )
            changes.consume(conn, item.change_ids)
        log.info(
            "sync.row.failed",
            external_id=item.external_id,
            error=message,
            retry_at=retry_at.isoformat(),
        )
        if isinstance(exc, ApiAuthError):
            self.aborted = f"authentication failed: {message}"
        elif isinstance(exc, ApiUnavailableError) and exc.route == TOKEN_ROUTE:
            # No token, no call: every row would fail the same way (nothing was sent).
            self.aborted = f"the Genesys login service is unavailable: {message}"
        elif isinstance(exc, ApiUnavailableError | ApiRateLimitedError):
            self._unavailable_streak += 1
            if self._unavailable_streak >= self.options.max_consecutive_unavailable:
                self.aborted = (
                    f"Genesys kept failing ({self._unavailable_streak} rows in a row): {message}"
                )


def _message(exc: ApiError) -> str:
    status = f"HTTP {exc.status}: " if exc.status else ""
    return f"{status}{exc.message}"[:2000]


def _synced(link: Link, contact: Contact, digest: str | None = None) -> Link:
    return link.evolve(
        state="synced",
        synced_content=contact.content(),
        synced_hash=digest or content_hash(contact),
        rejected_hash=None,
        attempts=0,
        next_attempt_at=None,
        last_error=None,
    )


def _needs_refresh(link: Link, digest: str) -> bool:
    return (
        link.state != "synced"
        or link.synced_hash != digest
        or link.rejected_hash is not None
        or link.attempts != 0
        or link.last_error is not None
    )
