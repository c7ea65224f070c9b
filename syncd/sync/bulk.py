"""Bulk writes with the intent protocol (invariants 1 and 2 hold for batches).

When the client has bulk endpoints (``api.supports_bulk``, the externalcontacts profile), the
creates, updates (and drift repairs) and deletes of one executor batch are sent in chunks of
``api.bulk_batch_size`` instead of one call each. Per chunk:

1. one transaction: a ``pending`` ledger row and the ``pending_*`` link state for **every**
   entity of the chunk;
2. one bulk call (the client splits it further on a 413; it raises no ``ApiError``);
3. each entity settled from its own :class:`~syncd.genesys.api.BulkItemResult`: ``ok`` →
   synced / deleted; ``failed`` → rejected (a non-retryable 400, the API's message) or
   backed off (anything else) on its own; ``unknown`` (creates only) → the row stays
   ``pending_create`` and is resolved by lookup at the next run's start, exactly like a
   single create whose outcome is unknown. An update whose contact is gone (404) is
   re-created with a single POST, as with PATCH.

A crash between (1) and (3) leaves every entity of the chunk pending; the next run resolves
each one on its own (:mod:`syncd.sync.resolve`). Groups smaller than :data:`MIN_BULK`
entities, adoptions, re-creations and dry runs use the single-call path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from syncd.errors import ApiError, ApiNotFoundError, ApiValidationError
from syncd.genesys.api import BulkContactsApi, BulkItemResult
from syncd.logs import get_logger
from syncd.store import changes, ledger, links
from syncd.store.links import Link
from syncd.sync import diff as d
from syncd.sync.canonical import changed_fields, content_hash
from syncd.sync.executor import _delete_fields, _message, _synced

if TYPE_CHECKING:
    from syncd.sync.executor import Executor
    from syncd.sync.plan import Item

log = get_logger("syncd.sync")

# Below this many entities of one kind, single calls cost as much (a bulk update even costs
# one more request: the client reads the batch before writing it).
MIN_BULK = 2

Kind = str  # "create" | "update" | "delete"


@dataclass(slots=True)
class _Entity:
    item: Item
    action: d.Create | d.Update | d.Drift | d.Delete
    op: str
    intent: int = 0

    @property
    def link(self) -> Link:
        assert self.item.link is not None
        return self.item.link


def bulk_api(api: object) -> BulkContactsApi | None:
    """The client as a bulk API when its wire profile has bulk endpoints, else None."""
    if getattr(api, "supports_bulk", False) is True:
        return cast(BulkContactsApi, api)
    return None


def _kind(action: d.Action) -> Kind | None:
    if isinstance(action, d.Create):
        return "create"
    if isinstance(action, d.Update | d.Drift) and action.changes:
        return "update"
    if isinstance(action, d.Delete):
        return "delete"
    return None


class BulkWriter:
    """Sends one executor batch's writes in bulk chunks (see the module docstring)."""

    def __init__(self, executor: Executor, api: BulkContactsApi) -> None:
        self.ex, self.api = executor, api

    def plan(
        self, writes: Sequence[tuple[Item, d.Decision]]
    ) -> tuple[list[tuple[Item, d.Decision]], list[Awaitable[None]]]:
        """Split ``writes`` into the ones left to single calls and the bulk chunk jobs."""
        groups: dict[Kind, list[_Entity]] = {"create": [], "update": [], "delete": []}
        singles: list[tuple[Item, d.Decision]] = []
        for item, decision in writes:
            action = decision.action
            kind = _kind(action)
            if kind is None:
                singles.append((item, decision))
                continue
            op = "drift" if isinstance(action, d.Drift) else kind
            groups[kind].append(_Entity(item, cast(Any, action), op))
        jobs: list[Awaitable[None]] = []
        size = max(1, self.api.bulk_batch_size)
        for kind, entities in groups.items():
            if len(entities) < MIN_BULK:
                singles.extend((e.item, d.Decision(e.action)) for e in entities)
                continue
            for start in range(0, len(entities), size):
                jobs.append(self._guarded(kind, entities[start : start + size]))
        return singles, jobs

    async def _guarded(self, kind: Kind, chunk: list[_Entity]) -> None:
        ex = self.ex
        async with ex._gate:
            if ex.halted():
                ex.tally["skipped"] += len(chunk)
                return
            try:
                await self._chunk(kind, chunk)
            finally:
                if ex.on_done:
                    ex.on_done(len(chunk))

    # -- the protocol ------------------------------------------------------------------------

    async def _chunk(self, kind: Kind, chunk: list[_Entity]) -> None:
        ex = self.ex
        self._intents(kind, chunk)
        for e in chunk:
            ex.hooks.after_intent(e.item.external_id, e.op)
        if kind == "create":
            results = await self.api.bulk_create([cast(d.Create, e.action).contact for e in chunk])
        elif kind == "update":
            results = await self.api.bulk_update(
                [(e.link.genesys_id or "", cast(d.Update, e.action).contact) for e in chunk]
            )
        else:
            results = await self.api.bulk_delete([e.link.genesys_id or "" for e in chunk])
        if len(results) != len(chunk):  # a client bug: settle nothing, resolve next run
            raise ApiError(f"bulk {kind}: {len(results)} results for {len(chunk)} entities")
        for e, r in zip(chunk, results, strict=True):
            if r.ok:
                ex.hooks.after_write(e.item.external_id, e.op)
        self._settle_ok(kind, [(e, r) for e, r in zip(chunk, results, strict=True) if r.ok])
        recreate: list[_Entity] = []
        for e, r in zip(chunk, results, strict=True):
            if r.outcome == "unknown":
                self._unknown(e, r)
            elif r.outcome == "failed" and self._failed(kind, e, r):
                recreate.append(e)
        for e in recreate:  # the contact was deleted in Genesys: a single POST, as for PATCH
            action = cast(d.Update, e.action)
            fields = changed_fields(None, action.contact)
            await ex._create(e.item, action.contact, fields, "recreate", action.genesys_id)

    def _intents(self, kind: Kind, chunk: list[_Entity]) -> None:
        ex = self.ex
        now = ex.clock()
        with ex.db.write() as conn:
            for e in chunk:
                ext = e.item.external_id
                if kind == "create":
                    fields: dict[str, Any] | None = cast(d.Create, e.action).changes
                    gid = None
                    link = Link(ext, "pending_create", origin="created").evolve(
                        next_attempt_at=now + ex.options.create_grace
                    )
                elif kind == "update":
                    action = cast(d.Update, e.action)
                    fields, gid = action.changes, action.genesys_id
                    link = e.link.evolve(state="pending_update")
                else:
                    # Invariant 3: only what is ours (a link holding this very id) is deleted.
                    gid = cast(d.Delete, e.action).genesys_id
                    assert e.link.genesys_id == gid
                    fields = _delete_fields(e.link)
                    link = e.link.evolve(state="pending_delete")
                e.intent = ledger.append(
                    conn,
                    ex._entry(e.op, "pending", external_id=ext, genesys_id=gid, fields=fields),
                )
                links.save_link(conn, link)

    def _settle_ok(self, kind: Kind, done: list[tuple[_Entity, BulkItemResult]]) -> None:
        if not done:
            return
        ex = self.ex
        with ex.db.write() as conn:
            for e, r in done:
                ext = e.item.external_id
                gone = "already gone" if kind == "delete" and r.status == 404 else None
                ledger.settle(
                    conn,
                    e.intent,
                    outcome="ok",
                    genesys_id=r.genesys_id if kind == "create" else None,
                    http_status=r.status,
                    error=gone,
                    correlation_id=r.correlation_id,
                )
                if kind == "create":
                    contact = cast(d.Create, e.action).contact
                    base = Link(ext, "pending_create", origin="created")
                    links.save_link(conn, _synced(base.evolve(genesys_id=r.genesys_id), contact))
                elif kind == "update":
                    links.save_link(conn, _synced(e.link, cast(d.Update, e.action).contact))
                else:
                    links.delete_link(conn, ext)
                changes.consume(conn, e.item.change_ids)
        counter = {"create": "created", "update": "updated", "delete": "deleted"}[kind]
        for _ in done:
            ex._succeeded(counter)

    def _unknown(self, e: _Entity, r: BulkItemResult) -> None:
        """A create that may have been applied: stays pending_create, resolved by lookup."""
        ex = self.ex
        message = _message(r.error) if r.error else "outcome unknown"
        ex.tally["failed"] += 1
        with ex.db.write() as conn:
            ledger.note(conn, e.intent, error=message)
            changes.consume(conn, e.item.change_ids)
        log.warning("sync.create.outcome_unknown", external_id=e.item.external_id, error=message)

    def _failed(self, kind: Kind, e: _Entity, r: BulkItemResult) -> bool:
        """Settle one failed entity; True when it must be re-created (update of a 404)."""
        ex = self.ex
        error = r.error or ApiError("the bulk request failed for this entity", status=r.status)
        base = Link(e.item.external_id, "failed") if kind == "create" else e.link
        if kind == "update" and isinstance(error, ApiNotFoundError):
            with ex.db.write() as conn:
                ledger.settle(
                    conn,
                    e.intent,
                    outcome="failed",
                    http_status=404,
                    error="the contact was deleted in Genesys; re-creating it",
                    correlation_id=error.correlation_id or r.correlation_id,
                )
            return True
        if kind != "delete" and isinstance(error, ApiValidationError) and not r.retryable:
            contact = cast(d.Create, e.action).contact
            ex._rejected(e.item, e.intent, error, base, content_hash(contact))
        else:
            ex._failed(e.item, e.intent, error, base)
        return False
