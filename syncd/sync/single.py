"""Writes of one contact per call (invariants 1, 2 and 3), through the intent protocol.

Creates, PATCHes and deletes; adoptions (link an existing contact, then PATCH what differs)
and re-creations (a linked contact missing from the listing, confirmed by a GET first). What
an answer means, and the state it leaves, is :mod:`syncd.sync.outcomes`'s business.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from syncd.errors import ApiConflictError, ApiError, ApiNotFoundError
from syncd.genesys.api import ContactsApi
from syncd.model import Contact
from syncd.store import changes, ledger, links
from syncd.store.links import Link
from syncd.sync import diff as d
from syncd.sync.canonical import changed_fields, content_hash
from syncd.sync.context import WriteContext
from syncd.sync.local import LocalDecisions
from syncd.sync.outcomes import Intent, IntentProtocol, synced_link
from syncd.sync.plan import Item, canonical_remote


class SingleWriter:
    """Applies one write decision with single API calls."""

    def __init__(
        self,
        ctx: WriteContext,
        intents: IntentProtocol,
        api: ContactsApi,
        local: LocalDecisions,
    ) -> None:
        self.ctx, self.intents, self.api, self.local = ctx, intents, api, local

    async def write(self, item: Item, action: d.Action) -> None:
        """Apply ``action`` (one of :data:`syncd.sync.diff.WRITES`) for ``item``."""
        try:
            if isinstance(action, d.Create):
                await self.create(item, action.contact, action.changes)
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
            self.intents.back_off(item, exc, item.link or Link(item.external_id, "failed"))

    async def create(
        self,
        item: Item,
        contact: Contact,
        fields: dict[str, Any],
        op: str = "create",
        replaces: str | None = None,
    ) -> None:
        """POST ``contact``; ``replaces`` is the linked contact deleted in Genesys, for a
        ``recreate``. Never re-sent when its outcome is unknown."""
        if self.ctx.dry_run:
            self.ctx.tally["created"] += 1
            self.ctx.plan(op, item.external_id, replaces, fields)
            return
        intent = Intent.create(item, contact, fields, op, replaces)
        self.intents.begin([intent])
        try:
            result = await self.api.create(contact)
        except ApiError as exc:
            self.intents.failed(intent, exc)
            return
        self.intents.applied([(intent, result)])

    async def recreate_gone(self, item: Item, genesys_id: str, contact: Contact) -> None:
        """The linked contact is gone from Genesys (404 on a write, or missing and confirmed).
        A merge leaves a surviving contact: that one is re-linked (ledger ``relink``) and
        brought up to date, never duplicated; only a contact no merge explains is POSTed
        again."""
        try:
            survivor = await self.api.merged_into(genesys_id)
            found = None if survivor is None else await self.api.get(survivor)
        except ApiError as exc:  # cannot tell a merge from a deletion now: try again later
            self.intents.back_off(item, exc, item.link or Link(item.external_id, "failed"))
            return
        if found is not None:
            with self.ctx.db.read() as conn:
                holder = links.links_by_genesys_id(conn, [found.genesys_id]).get(found.genesys_id)
            if holder is not None and holder.external_id != item.external_id:
                # Genesys merged the contacts of two CRM rows: one contact cannot follow both
                conflict = ApiConflictError(
                    f"Genesys merged contact {genesys_id} into {found.genesys_id}, which is "
                    f"linked to externalId {holder.external_id!r}: one Genesys contact cannot "
                    "follow two CRM rows; merge the rows in the CRM, or undo the merge in Genesys"
                )
                self.intents.back_off(item, conflict, item.link or Link(item.external_id, "failed"))
                return
            remote = canonical_remote(found, self.ctx.options.content_rules)
            changes = changed_fields(remote.contact, contact)
            await self._adopt(item, d.Adopt(remote, contact, changes), merged_from=genesys_id)
            return
        await self.create(item, contact, changed_fields(None, contact), "recreate", genesys_id)

    async def _patch(
        self, item: Item, gid: str, contact: Contact, fields: dict[str, Any], op: str
    ) -> None:
        if not fields:  # equal content under another representation: record, no call
            self.local.commit([(item, d.Decision(d.Unchanged(contact, content_hash(contact))))])
            return
        if self.ctx.dry_run:
            self.ctx.tally["updated"] += 1
            self.ctx.plan(op, item.external_id, gid, fields)
            return
        intent = Intent.update(item, gid, contact, fields, op)
        self.intents.begin([intent])
        try:
            result = await self.api.patch(
                gid, {f: new for f, (_old, new) in fields.items()}, contact=contact
            )
        except ApiError as exc:
            if self.intents.failed(intent, exc) == "recreate":
                await self.recreate_gone(item, gid, contact)
            return
        self.intents.applied([(intent, result)])

    async def _delete(self, item: Item, gid: str) -> None:
        intent = Intent.delete(item, gid)
        if self.ctx.dry_run:
            self.ctx.tally["deleted"] += 1
            self.ctx.plan("delete", item.external_id, gid, intent.fields)
            return
        self.intents.begin([intent])
        try:
            result = await self.api.delete(gid)
        except ApiError as exc:
            self.intents.failed(intent, exc)
            return
        self.intents.applied([(intent, result)])

    async def _adopt(self, item: Item, action: d.Adopt, *, merged_from: str | None = None) -> None:
        """Link an existing contact (no write), then PATCH what differs from the CRM.

        Over a link to another contact it is a ``relink``: the linked contact is gone and
        this one carries the externalId (``merged_from``: Genesys merged that one into it).
        """
        ctx, ext, remote = self.ctx, item.external_id, action.remote
        previous = item.link.genesys_id if item.link is not None else None
        relink = previous not in (None, remote.genesys_id)
        op = "relink" if relink else "adopt"
        ctx.tally["adopted"] += 1  # a relink adopts the surviving contact: counted alike
        ctx.plan(op, ext, remote.genesys_id, action.changes or None)
        if ctx.dry_run:
            if action.changes:
                ctx.tally["updated"] += 1
            return
        adopted = Link(ext, "synced", genesys_id=remote.genesys_id, origin="adopted")
        adopted = synced_link(adopted, remote.contact, remote.hash)
        if item.link is not None and relink:
            adopted = adopted.evolve(origin=item.link.origin)
        if merged_from is not None:
            why = f"the linked contact {merged_from} was merged into this one in Genesys"
        elif relink:
            why = f"the linked contact {previous} is gone; this one carries the externalId"
        else:
            why = "linked to an existing Genesys contact with this externalId"
        if remote.outside_division is not None:
            why += (
                f"; it lives in division {remote.outside_division}, not genesys.division_id: "
                "left there (a division is fixed at creation)"
            )
        with ctx.db.write() as conn:
            ledger.append(
                conn,
                ctx.entry(op, "ok", external_id=ext, genesys_id=remote.genesys_id, error=why),
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
                remote = canonical_remote(found, self.ctx.options.content_rules)
                view = replace(item.view, observed=True, linked=remote)
                again = replace(item, view=view)
                decision = d.diff(
                    again.desired, again.link, view, now=self.ctx.clock(), ignore_backoff=True
                )
                if isinstance(decision.action, d.WRITES) and not isinstance(
                    decision.action, d.Recreate
                ):
                    await self.write(again, decision.action)
                else:
                    self.local.commit([(again, decision)])
                return
        await self.recreate_gone(item, action.genesys_id, action.contact)
