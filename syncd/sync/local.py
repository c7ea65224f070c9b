"""Decisions that need no call: unchanged, waiting, rejected locally, forgotten, held deletes,
and the duplicates and orphans a batch reports.

They are committed in one transaction per batch, with the deletion of the change rows they
answer; in a dry run they only go to the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

from syncd.store import changes, ledger, links
from syncd.store.ledger import Entry
from syncd.store.links import Link
from syncd.sync import diff as d
from syncd.sync.context import WriteContext
from syncd.sync.guards import Verdict
from syncd.sync.outcomes import delete_fields, needs_refresh, synced_link
from syncd.sync.plan import Decided, Item


def _seen(remote: d.Remote) -> dict[str, Any]:
    """What the reported contact held, as ``{field: [None, value]}``."""
    return {k: [None, v] for k, v in remote.contact.content().items() if v not in (None, [])}


def _reported_before(entry: Entry, last: ledger.Row | None) -> bool:
    return (
        last is not None
        and (last.op, last.outcome) == (entry.op, entry.outcome)
        and last.external_id == entry.external_id
        and last.fields == entry.fields
    )


class LocalDecisions:
    """Records the decisions of a batch that cost no API call."""

    def __init__(self, ctx: WriteContext, verdict: Verdict) -> None:
        self.ctx, self.verdict = ctx, verdict

    def reports(self, item: Item, decision: d.Decision) -> list[Entry]:
        """Ledger rows for the duplicates and orphans ``decision`` found."""
        ctx, entries = self.ctx, []
        for remote in decision.duplicates:
            ctx.tally["duplicates"] += 1
            entries.append(
                ctx.entry(
                    "duplicate",
                    "reported",
                    external_id=item.external_id,
                    genesys_id=remote.genesys_id,
                    fields=_seen(remote),
                    error="another Genesys contact carries this externalId; left untouched",
                )
            )
        for remote in decision.orphans:
            ctx.tally["orphans"] += 1
            entries.append(
                ctx.entry(
                    "orphan",
                    "reported",
                    external_id=item.external_id or None,
                    genesys_id=remote.genesys_id,
                    fields=_seen(remote),
                    error="not in the CRM mirror and not created by syncd; left untouched",
                )
            )
        return entries

    def report_orphans(self, remotes: Sequence[d.Remote]) -> None:
        """Listed contacts without any externalId (full reconcile)."""
        item = Item("", d.Absent(), None)
        self.record(self.reports(item, d.Decision(d.Nothing(), orphans=tuple(remotes))))

    def record(self, entries: Sequence[Entry]) -> None:
        """Append report rows to the ledger (a dry run plans them instead). A contact already
        reported the same way, with the same content, is not reported again: the ledger says
        when an orphan or a duplicate was first seen or changed, not every night."""
        if not entries:
            return
        if self.ctx.dry_run:
            for e in entries:
                self.ctx.plan(e.op, e.external_id, e.genesys_id, e.fields, e.error)
            return
        with self.ctx.db.write() as conn:
            ids = [e.genesys_id for e in entries if e.genesys_id]
            before = ledger.latest_by_genesys_id(conn, ids)
            fresh = [e for e in entries if not _reported_before(e, before.get(e.genesys_id or ""))]
            ledger.append_many(conn, fresh)

    def commit(self, pairs: Sequence[Decided]) -> None:
        """Apply the call-free decisions of a batch in one transaction."""
        if not pairs:
            return
        if self.ctx.dry_run:
            for item, decision in pairs:
                self._apply(None, item, decision.action)
        else:
            with self.ctx.db.write() as conn:
                for item, decision in pairs:
                    self._apply(conn, item, decision.action)
                    changes.consume(conn, item.change_ids)
        self.ctx.done(len(pairs))

    def _apply(self, conn: Connection | None, item: Item, action: d.Action) -> None:
        ctx, ext, link = self.ctx, item.external_id, item.link
        if isinstance(action, d.Unchanged):
            ctx.tally["unchanged"] += 1
            if conn is not None and link is not None and needs_refresh(link, action.hash):
                links.save_link(conn, synced_link(link, action.contact, action.hash))
        elif isinstance(action, d.Wait):
            ctx.tally["waiting"] += 1
        elif isinstance(action, d.Reject):
            self._reject(conn, item, action)
        elif isinstance(action, d.Forget):
            if conn is not None:
                links.delete_link(conn, ext)
        elif isinstance(action, d.Delete):  # held by the guard
            self._hold(conn, item, action)

    def _reject(self, conn: Connection | None, item: Item, action: d.Reject) -> None:
        """A row that cannot be sent: recorded once, then it waits until its content changes."""
        ext, link = item.external_id, item.link
        gid = link.genesys_id if link else None
        self.ctx.tally["rejected"] += 1
        reason = "; ".join(action.reasons)
        self.ctx.plan("reject", ext, gid, note=reason)
        if conn is None:
            return
        entry = self.ctx.entry("reject", "rejected", external_id=ext, genesys_id=gid, error=reason)
        ledger.append(conn, entry)
        links.save_link(
            conn,
            (link or Link(ext, "failed")).evolve(
                state="failed",
                rejected_hash=action.raw_hash,
                next_attempt_at=None,
                attempts=0,
                last_error=f"rejected locally: {reason}",
            ),
        )

    def _hold(self, conn: Connection | None, item: Item, action: d.Delete) -> None:
        """A delete the guard holds: the ledger shows it, the link waits for an operator."""
        ext, link, reason = item.external_id, item.link, self.verdict.reason
        assert link is not None
        self.ctx.tally["held"] += 1
        fields = delete_fields(link)
        self.ctx.plan("delete", ext, action.genesys_id, fields, f"held: {reason}")
        if conn is None:
            return
        entry = self.ctx.entry(
            "delete",
            "held",
            external_id=ext,
            genesys_id=action.genesys_id,
            fields=fields,
            error=reason,
        )
        ledger.append(conn, entry)
        links.save_link(conn, link.evolve(state="held", last_error=reason))
