"""Bulk writes with the intent protocol (invariants 1 and 2 hold for batches).

When the client has bulk endpoints (``api.supports_bulk``, the externalcontacts profile), the
creates, updates (and drift repairs) and deletes of one executor batch are sent in chunks of
``api.bulk_batch_size`` instead of one call each. Per chunk:

1. one transaction: a ``pending`` ledger row and the ``pending_*`` link state for **every**
   entity of the chunk;
2. one bulk call (the client splits it further on a 413; it raises no ``ApiError``);
3. each entity settled from its own :class:`~syncd.genesys.api.BulkItemResult`, exactly as a
   single call's answer would be (:mod:`syncd.sync.outcomes`): the successes in one
   transaction; ``unknown`` (creates only) stays ``pending_create`` and is resolved by lookup
   at the next run's start; an update whose contact is gone (404) is re-created with a single
   POST, as with PATCH.

A crash between (1) and (3) leaves every entity of the chunk pending; the next run resolves
each one on its own (:mod:`syncd.sync.resolve`). Groups smaller than :data:`MIN_BULK`
entities, adoptions, re-creations and dry runs use the single-call path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import cast

from syncd.errors import ApiError
from syncd.genesys.api import BulkContactsApi, BulkItemResult, ContactsApi
from syncd.sync import diff as d
from syncd.sync.context import WriteContext
from syncd.sync.outcomes import Intent, IntentProtocol, Kind
from syncd.sync.plan import Decided, Item
from syncd.sync.single import SingleWriter

# Below this many entities of one kind, single calls cost as much (a bulk update even costs
# one more request: the client reads the batch before writing it).
MIN_BULK = 2


def bulk_api(api: ContactsApi) -> BulkContactsApi | None:
    """The client as a bulk API when its wire profile has bulk endpoints, else None."""
    if api.supports_bulk is True:
        return cast(BulkContactsApi, api)  # the protocol's promise for supports_bulk
    return None


def _bulk_intent(item: Item, action: d.Action) -> Intent | None:
    """The bulk-eligible intent of one write decision (None: single calls only)."""
    if isinstance(action, d.Create):
        return Intent.create(item, action.contact, action.changes)
    if isinstance(action, d.Update | d.Drift) and action.changes:
        op = "drift" if isinstance(action, d.Drift) else "update"
        return Intent.update(item, action.genesys_id, action.contact, action.changes, op)
    if isinstance(action, d.Delete):
        return Intent.delete(item, action.genesys_id)
    return None


class BulkWriter:
    """Sends one executor batch's writes in bulk chunks (see the module docstring)."""

    def __init__(
        self,
        ctx: WriteContext,
        intents: IntentProtocol,
        api: BulkContactsApi,
        single: SingleWriter,
    ) -> None:
        self.ctx, self.intents, self.api, self.single = ctx, intents, api, single

    def plan(self, writes: Sequence[Decided]) -> tuple[list[Decided], list[Awaitable[None]]]:
        """Split ``writes`` into the ones left to single calls and the bulk chunk jobs."""
        groups: dict[Kind, list[tuple[Intent, Decided]]] = {
            "create": [],
            "update": [],
            "delete": [],
        }
        singles: list[Decided] = []
        for item, decision in writes:
            intent = _bulk_intent(item, decision.action)
            if intent is None:
                singles.append((item, decision))
            else:
                groups[intent.kind].append((intent, (item, decision)))
        jobs: list[Awaitable[None]] = []
        size = max(1, self.api.bulk_batch_size)
        for kind, group in groups.items():
            if len(group) < MIN_BULK:
                singles.extend(write for _, write in group)
                continue
            intents = [intent for intent, _ in group]
            for start in range(0, len(intents), size):
                jobs.append(self._job(kind, intents[start : start + size]))
        return singles, jobs

    def _job(self, kind: Kind, chunk: list[Intent]) -> Awaitable[None]:
        return self.ctx.in_flight(len(chunk), lambda: self._chunk(kind, chunk))

    async def _chunk(self, kind: Kind, chunk: list[Intent]) -> None:
        self.intents.begin(chunk)
        results = await self._call(kind, chunk)
        if len(results) != len(chunk):  # a client bug: settle nothing, resolve next run
            raise ApiError(f"bulk {kind}: {len(results)} results for {len(chunk)} entities")
        pairs = list(zip(chunk, results, strict=True))
        self.intents.applied([(intent, r) for intent, r in pairs if r.ok])
        gone: list[Intent] = []
        for intent, r in pairs:
            if r.outcome == "unknown":
                self.intents.unknown(intent, r.error)
            elif r.outcome == "failed":
                error = r.error or ApiError(
                    "the bulk request failed for this entity", status=r.status
                )
                verdict = self.intents.failed(
                    intent, error, retryable=r.retryable, correlation_id=r.correlation_id
                )
                if verdict == "recreate":
                    gone.append(intent)
        for intent in gone:  # deleted in Genesys: a single POST, as for a PATCH's 404
            assert intent.genesys_id is not None
            await self.single.recreate_gone(intent.item, intent.genesys_id, intent.new_state)

    async def _call(self, kind: Kind, chunk: list[Intent]) -> list[BulkItemResult]:
        if kind == "create":
            return await self.api.bulk_create([i.new_state for i in chunk])
        if kind == "update":
            return await self.api.bulk_update(
                [(i.link.genesys_id or "", i.new_state) for i in chunk]
            )
        return await self.api.bulk_delete([i.link.genesys_id or "" for i in chunk])
