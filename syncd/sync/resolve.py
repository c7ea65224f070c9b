"""Resolving pending intents left by a crash or an unknown outcome, before any new work.

- ``pending_create``: look the contact up by externalId (search lags, so retry a few times
  within the run). Found: link it, the intent is settled ``ok``. Not found: defer; only after
  ``absent_checks`` runs *and* the grace period is the create considered never applied and
  sent again. Never re-created blindly (invariant 1). Where the lookup proves absence (the
  externalcontacts identifier lookup, declared consistent), one lookup asked after the
  create could have landed settles it either way, in any kind of run.

  A full reconcile in a profile whose listing proves absence settles them by the listing
  instead (:meth:`Resolver.settle_creates`), with no search: found there, linked; absent from
  a complete, stable listing that began ``landing_window`` after the intent's run ended (the
  last moment its request could have been in flight), never applied, and created again in
  the same run. The run waits for that moment when it is near (:meth:`await_landing`).
- ``pending_update``: GET the contact; the intent is ``ok`` if Genesys holds its new values,
  else ``failed`` ("not applied"), and the row is diffed again against what the GET showed.
- ``pending_delete``: GET; a 404 means it was applied, otherwise it is diffed again.

Each resolved externalId comes back as ``(external_id, view)`` for the run to re-process
with what was just observed. Intents are settled with :func:`syncd.sync.outcomes.settle`, like
the outcomes learnt at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from syncd.errors import ApiError, ApiNotFoundError
from syncd.genesys.api import ContactsApi
from syncd.logs import get_logger
from syncd.model import RemoteContact
from syncd.store import ledger, links
from syncd.store.db import Database
from syncd.store.links import PENDING_STATES, Link
from syncd.store.snapshot import Snapshot, SnapshotRow
from syncd.sync.context import PlanEntry, Stop
from syncd.sync.diff import Remote, RemoteView
from syncd.sync.observe import Listing
from syncd.sync.options import EngineOptions
from syncd.sync.outcomes import Removed, settle, synced_link
from syncd.sync.plan import canonical_remote, remote_from_snapshot

log = get_logger("syncd.sync")

_NOT_APPLIED = "not applied (interrupted before the write); diffed again"

Resolved = tuple[str, RemoteView]


def plan_pending(db: Database, on_plan: Callable[[PlanEntry], None]) -> None:
    """A dry run lists the pending intents a real run would resolve first."""
    with db.read() as conn:
        keys = links.keys_in_states(conn, PENDING_STATES, limit=10_000)
        found = links.get_links(conn, keys)
    for key in keys:
        link = found[key]
        note = f"{link.state} intent would be resolved first"
        on_plan(PlanEntry("resolve", key, link.genesys_id, note=note))


class Resolver:
    def __init__(
        self,
        db: Database,
        api: ContactsApi,
        options: EngineOptions,
        *,
        run_id: int | None,
        clock: Callable[[], datetime],
        tally: Counter[str],
    ) -> None:
        self.db, self.api, self.options = db, api, options
        self.run_id, self.clock, self.tally = run_id, clock, tally
        # Set when lookups prove absence: when this run began, and each earlier run's
        # landing deadline (_landing_deadlines).
        self._deadlines: tuple[datetime, dict[int | None, datetime]] | None = None

    async def resolve_all(
        self, run_began: datetime, halt: Stop, *, defer_creates: bool = False
    ) -> list[Resolved]:
        """Resolve every pending link (``defer_creates``: all but the creates, which the
        listing will settle); returns the externalIds to diff again. Where a lookup proves
        absence, the run first waits for the earlier creates to land, then asks once each."""
        out: list[Resolved] = []
        states = tuple(s for s in PENDING_STATES if not (defer_creates and s == "pending_create"))
        if self.api.lookup_proves_absence and "pending_create" in states:
            await self.await_landing(run_began, halt)
            if halt.is_set():
                return out
            self._deadlines = (run_began, self._landing_deadlines(run_began))
        async for found in self._pages(states):
            await self._each(found, self._resolve, out)
        return out

    async def _pages(self, states: tuple[str, ...]) -> AsyncIterator[list[Link]]:
        after: str | None = None
        while True:
            with self.db.read() as conn:
                keys = links.keys_in_states(conn, states, after=after)
                found = links.get_links(conn, keys)
            if not keys:
                return
            after = keys[-1]
            yield [found[k] for k in keys if k in found]

    async def _each(
        self,
        batch: list[Link],
        resolve: Callable[[Link], Awaitable[Resolved | None]],
        out: list[Resolved],
    ) -> None:
        gate = asyncio.Semaphore(self.options.max_in_flight)

        async def one(link: Link) -> None:
            async with gate:
                try:
                    resolved = await resolve(link)
                except ApiError as exc:
                    self.tally["failed"] += 1
                    log.warning(
                        "sync.intent.unresolved",
                        external_id=link.external_id,
                        state=link.state,
                        error=str(exc),
                    )
                    return
                if resolved is not None:
                    out.append(resolved)

        await asyncio.gather(*(one(link) for link in batch))

    # -- proof of absence by a full listing ----------------------------------------------------

    def _landing_deadlines(self, run_began: datetime) -> dict[int | None, datetime]:
        """For each earlier run that left create intents: when its requests have surely
        landed. It ended by ``run_began`` (we hold the sync lease it held), or earlier when
        its end is recorded; a request lands within ``landing_window`` of its last moment
        in flight."""
        with self.db.read() as conn:
            ended = ledger.unsettled_create_runs(conn)
        window = self.options.landing_window
        return {
            run: min(end or run_began, run_began) + window
            for run, end in ended.items()
            if run is None or run != self.run_id
        }

    def _intent_deadline(
        self, external_id: str, run_began: datetime, deadlines: dict[int | None, datetime]
    ) -> tuple[ledger.Row | None, datetime]:
        """``external_id``'s pending create intent, and when it has surely landed (no
        intent, or one without a run: ``landing_window`` after this run began)."""
        with self.db.read() as conn:
            intent = ledger.latest_pending(conn, external_id)
        run = intent.run_id if intent else None
        return intent, deadlines.get(run, run_began + self.options.landing_window)

    async def await_landing(self, run_began: datetime, halt: Stop) -> None:
        """Wait (at most ``landing_window``) until the creates left by earlier runs have
        surely landed, so that the listing that follows can prove them absent."""
        deadlines = self._landing_deadlines(run_began)
        if not deadlines:
            return
        last = max(deadlines.values())
        logged = False
        while not halt.is_set():
            left = (last - self.clock()).total_seconds()
            if left <= 0:
                return
            if not logged:
                log.info("sync.intent.awaiting_landing", seconds=round(left, 1))
                logged = True
            await asyncio.sleep(min(left, 0.5))

    async def settle_creates(
        self, snapshot: Snapshot, listing: Listing, run_began: datetime
    ) -> None:
        """Settle the pending creates by a complete listing (an unstable one: by lookups)."""
        deadlines = self._landing_deadlines(run_began)

        async def by_listing(link: Link) -> Resolved | None:
            if not listing.stable:
                return await self._create(link)
            intent, deadline = self._intent_deadline(link.external_id, run_began, deadlines)
            if intent is not None and intent.run_id == self.run_id:
                self.tally["waiting"] += 1  # sent by this run: it may still land
                return None
            rows = snapshot.by_external_ids([link.external_id]).get(link.external_id, [])
            found = self._unclaimed_listed(link.external_id, rows)
            proof = None
            if listing.began_at >= deadline:
                proof = (
                    "not applied: absent from the complete listing that began at "
                    f"{listing.began_at:%Y-%m-%d %H:%M:%S}Z, after the request could have "
                    "landed; creating it again"
                )
            return self._settle_create(link, found, proof=proof)

        async for batch in self._pages(("pending_create",)):
            await self._each(batch, by_listing, [])

    def _unclaimed_listed(self, external_id: str, rows: list[SnapshotRow]) -> list[Remote]:
        with self.db.read() as conn:
            claimed = links.links_by_genesys_id(conn, [r.genesys_id for r in rows])
        return [
            remote_from_snapshot(r)
            for r in rows
            if r.genesys_id not in claimed or claimed[r.genesys_id].external_id == external_id
        ]

    async def _resolve(self, link: Link) -> Resolved | None:
        if link.state == "pending_create":
            return await self._create(link)
        if link.state == "pending_update":
            return await self._update(link)
        return await self._delete(link)

    async def _lookup(self, external_id: str) -> list[Remote]:
        delay = self.options.lookup_delay.total_seconds()
        for attempt in range(max(1, self.options.lookup_attempts)):
            if attempt and delay:
                await asyncio.sleep(delay)
            found = await self.api.find_by_external_id(external_id)
            if found:
                return self._unclaimed(external_id, found)
        return []

    def _unclaimed(self, external_id: str, found: list[RemoteContact]) -> list[Remote]:
        """Drop contacts another link already owns; oldest first."""
        ordered = sorted(
            found, key=lambda r: (r.date_created is None, r.date_created, r.genesys_id)
        )
        with self.db.read() as conn:
            claimed = links.links_by_genesys_id(conn, [r.genesys_id for r in ordered])
        return [
            canonical_remote(r, self.options.content_rules)
            for r in ordered
            if r.genesys_id not in claimed or claimed[r.genesys_id].external_id == external_id
        ]

    def _pending_intent(self, external_id: str) -> int | None:
        """The ledger row of the link's unsettled intent (None: a crash left none)."""
        with self.db.read() as conn:
            intent = ledger.latest_pending(conn, external_id)
        return intent.id if intent else None

    async def _create(self, link: Link) -> Resolved | None:
        if self._deadlines is not None:
            return await self._create_by_lookup(link, *self._deadlines)
        return self._settle_create(link, await self._lookup(link.external_id), proof=None)

    async def _create_by_lookup(
        self, link: Link, run_began: datetime, deadlines: dict[int | None, datetime]
    ) -> Resolved | None:
        """One consistent lookup: found, linked; nothing, asked after the create could have
        landed, proves it was never applied (anything else waits as after a search)."""
        ext = link.external_id
        _intent, deadline = self._intent_deadline(ext, run_began, deadlines)
        asked_at = self.clock()
        found = await self.api.find_by_external_id(ext)
        proof = None
        if not found and asked_at >= deadline:
            proof = (
                f"not applied: the identifier lookup at {asked_at:%Y-%m-%d %H:%M:%S}Z, after "
                "the request could have landed, found no contact claiming it; creating it again"
            )
        return self._settle_create(link, self._unclaimed(ext, found), proof=proof)

    def _settle_create(
        self, link: Link, found: list[Remote], *, proof: str | None
    ) -> Resolved | None:
        """Found: linked. Not found: created again when ``proof`` says it was never applied,
        or after ``absent_checks`` runs and the grace period; else it waits."""
        ext = link.external_id
        now = self.clock()
        intent = self._pending_intent(ext)
        if found:
            pick, rest = found[0], tuple(found[1:])
            linked = synced_link(link.evolve(genesys_id=pick.genesys_id), pick.contact, pick.hash)
            with self.db.write() as conn:
                settle(
                    conn,
                    intent,
                    "ok",
                    linked,
                    genesys_id=pick.genesys_id,
                    error="outcome confirmed later: found by externalId",
                )
            self.tally["created"] += 1
            log.info("sync.intent.resolved", external_id=ext, op="create", applied=True)
            return ext, RemoteView(observed=True, linked=pick, others=rest)
        checks = link.attempts + 1
        grace_over = link.next_attempt_at is None or now >= link.next_attempt_at
        if proof is not None or (checks >= self.options.absent_checks and grace_over):
            again = link.evolve(
                state="failed",
                genesys_id=None,
                attempts=0,
                next_attempt_at=None,
                last_error="create not applied; re-sent",
            )
            with self.db.write() as conn:
                settle(
                    conn,
                    intent,
                    "failed",
                    again,
                    error=proof
                    or (
                        f"not applied: not found by externalId in {checks} checks over the "
                        "grace period; creating it again"
                    ),
                )
            log.info(
                "sync.intent.resolved",
                external_id=ext,
                op="create",
                applied=False,
                proven=proof is not None,
            )
            return ext, RemoteView(observed=True)
        with self.db.write() as conn:
            links.save_link(
                conn,
                link.evolve(
                    attempts=checks,
                    last_error="create outcome unknown; not found by externalId yet (search lags)",
                ),
            )
        self.tally["waiting"] += 1
        return None

    async def _update(self, link: Link) -> Resolved | None:
        ext, gid = link.external_id, link.genesys_id
        assert gid is not None
        with self.db.read() as conn:
            intent = ledger.latest_pending(conn, ext)
        try:
            found = await self.api.get(gid)
        except ApiNotFoundError:
            with self.db.write() as conn:
                settle(
                    conn,
                    intent.id if intent else None,
                    "failed",
                    link.evolve(state="synced"),
                    http_status=404,
                    error="the contact was deleted in Genesys",
                )
            return ext, RemoteView(observed=True, linked=None, confirmed_missing=True)
        remote = canonical_remote(found, self.options.content_rules)
        content = remote.contact.content()
        wanted = (intent.fields or {}) if intent else {}
        applied = bool(wanted) and all(content.get(f) == v[1] for f, v in wanted.items())
        if applied:
            link = link.evolve(synced_content=content, synced_hash=remote.hash)
        with self.db.write() as conn:
            settle(
                conn,
                intent.id if intent else None,
                "ok" if applied else "failed",
                link.evolve(state="synced"),
                error="outcome confirmed later by GET" if applied else _NOT_APPLIED,
            )
        return ext, RemoteView(observed=True, linked=remote)

    async def _delete(self, link: Link) -> Resolved | None:
        ext, gid = link.external_id, link.genesys_id
        assert gid is not None
        intent = self._pending_intent(ext)
        try:
            found = await self.api.get(gid)
        except ApiNotFoundError:
            with self.db.write() as conn:
                settle(
                    conn,
                    intent,
                    "ok",
                    Removed(ext),
                    http_status=404,
                    error="outcome confirmed later: the contact is gone",
                )
            self.tally["deleted"] += 1
            return None
        with self.db.write() as conn:
            settle(conn, intent, "failed", link.evolve(state="synced"), error=_NOT_APPLIED)
        remote = canonical_remote(found, self.options.content_rules)
        return ext, RemoteView(observed=True, linked=remote)
