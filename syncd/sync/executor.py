"""Applying decisions to Genesys, batch by batch (invariants 1, 2, 3 and 6).

For each batch of :class:`~syncd.sync.plan.Item`: diff every row, reject locally what the wire
profile cannot express, commit the decisions that need no call in one transaction
(:mod:`syncd.sync.local`), then hand the writes to the bulk writer when there is one
(:mod:`syncd.sync.bulk`, composed by the engine) and the rest to single calls
(:mod:`syncd.sync.single`), at most ``max_in_flight`` at a time. Every write follows the
intent protocol (:mod:`syncd.sync.outcomes`). A failing row is recorded and backs off on its
own; it never stops the run, except for failures that will fail every row (authentication, a
service that keeps answering "unavailable"), which end the run as failed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import replace
from typing import Protocol

from syncd.genesys.api import ContactsApi
from syncd.store.ledger import Entry
from syncd.store.links import Link
from syncd.sync import diff as d
from syncd.sync.context import PlanEntry, Stop, WriteContext
from syncd.sync.guards import Verdict
from syncd.sync.local import LocalDecisions
from syncd.sync.organizations import OrganizationStage, wanted_organizations
from syncd.sync.outcomes import Hooks
from syncd.sync.plan import Decided, Item
from syncd.sync.single import SingleWriter

# The writes that send a contact (a delete sends none).
SENDS = d.Create | d.Update | d.Drift | d.Adopt | d.Recreate

# Hooks, PlanEntry and Stop are part of the run API, imported from here by syncd.sync.runs.
__all__ = ["BulkPlanner", "Executor", "Hooks", "PlanEntry", "Stop"]


class BulkPlanner(Protocol):
    """Takes the writes of a batch it can send in bulk (:class:`syncd.sync.bulk.BulkWriter`)."""

    def plan(self, writes: Sequence[Decided]) -> tuple[list[Decided], list[Awaitable[None]]]:
        """The writes left to single calls, and the jobs that send the others."""
        ...


class Executor:
    """Applies the diff's decisions for batches of :class:`~syncd.sync.plan.Item`."""

    def __init__(
        self,
        ctx: WriteContext,
        api: ContactsApi,
        verdict: Verdict,
        local: LocalDecisions,
        single: SingleWriter,
        *,
        bulk: BulkPlanner | None = None,
        ignore_backoff: bool = False,
        organizations: OrganizationStage | None = None,
    ) -> None:
        self.ctx, self.api, self.verdict = ctx, api, verdict
        self.local, self.single, self.bulk = local, single, bulk
        self.ignore_backoff = ignore_backoff
        self.organizations = organizations

    @property
    def aborted(self) -> str | None:
        """Why the run must end as failed (a failure every further row would meet)."""
        return self.ctx.aborted

    @property
    def login_failed(self) -> bool:
        """Whether it was aborted because no call can authenticate (then retry slowly)."""
        return self.ctx.login_failed

    def halted(self) -> bool:
        return self.ctx.halted()

    def report_orphans(self, remotes: Sequence[d.Remote]) -> None:
        """Listed contacts without any externalId (full reconcile)."""
        self.local.report_orphans(remotes)

    async def execute(self, items: Sequence[Item]) -> None:
        """Decide and apply one batch; returns when every started write has its outcome."""
        if self.organizations is not None:  # the records first: contacts reference them
            await self.organizations.settle(wanted_organizations(items))
        now = self.ctx.clock()
        local: list[Decided] = []
        reports: list[Entry] = []
        writes: list[Decided] = []
        for item in items:
            decision = d.diff(
                item.desired, item.link, item.view, now=now, ignore_backoff=self.ignore_backoff
            )
            decision = self._representable(item, decision)
            if self._waits_for_organization(item, decision.action):
                continue
            is_write = isinstance(decision.action, d.WRITES)
            if isinstance(decision.action, d.Delete) and not self.verdict.allowed:
                is_write = False
            (writes if is_write else local).append((item, decision))
            reports.extend(self.local.reports(item, decision))
        self.local.record(reports)
        self.local.commit(local)
        jobs: list[Awaitable[None]] = []
        if self.bulk is not None:
            writes, jobs = self.bulk.plan(writes)
        await self.ctx.run_all([*jobs, *(self._single(i, dec.action) for i, dec in writes)])

    def _single(self, item: Item, action: d.Action) -> Awaitable[None]:
        return self.ctx.in_flight(1, lambda: self.single.write(item, action))

    def _waits_for_organization(self, item: Item, action: d.Action) -> bool:
        """A write of a contact whose organization has no record yet is not sent (Genesys
        would answer 400): the row backs off, saying why, and is retried."""
        if self.organizations is None or not isinstance(action, SENDS):
            return False
        org = action.contact.organization
        if org is None or org.id is None:
            return False
        error = self.organizations.pending(org.id)
        if error is None:
            return False
        self.single.intents.back_off(item, error, item.link or Link(item.external_id, "failed"))
        return True

    def _representable(self, item: Item, decision: d.Decision) -> d.Decision:
        """A contact the wire profile cannot express (two WORK phones for externalcontacts'
        one workPhone slot) is rejected here, with a ledger row and no call, like a 400: it
        waits until its content changes."""
        action = decision.action
        if not isinstance(action, SENDS) or not isinstance(item.desired, d.Wanted):
            return decision
        problem = self.api.representation_problem(action.contact)
        if problem is None:
            return decision
        reject = d.Reject((f"cannot be represented: {problem}",), item.desired.hash)
        return replace(decision, action=reject)
