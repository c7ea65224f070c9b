"""What a run reads from Genesys besides its pending intents: the full listing streamed into
``remote_snapshot``, the targets of a targeted run, and the lookups that keep an incremental
run from creating a contact the last listing saw.

Every function fills :attr:`syncd.sync.plan.Item.view` (what Genesys showed) for the diff;
none of them writes to Genesys or changes a link.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from syncd.errors import ApiError, ApiNotFoundError
from syncd.genesys.api import ContactsApi
from syncd.logs import get_logger
from syncd.model import RemoteContact
from syncd.store import links
from syncd.store.db import Database
from syncd.store.snapshot import Snapshot, scratch_snapshot
from syncd.sync.context import Stop
from syncd.sync.diff import RemoteView, Wanted
from syncd.sync.options import EngineOptions
from syncd.sync.plan import Item, canonical_remote, load_items, snapshot_row

log = get_logger("syncd.sync")


@contextmanager
def listing_snapshot(db: Database, *, dry_run: bool) -> Iterator[Snapshot]:
    """The snapshot a full reconcile lists into: the main database's, emptied first, or a
    scratch file for a dry run (which changes no state)."""
    if dry_run:
        with scratch_snapshot() as snap:
            yield snap
    else:
        snap = Snapshot(db)
        snap.clear()
        yield snap


@dataclass(frozen=True, slots=True)
class Listing:
    """How a full listing went. ``stable``: it reached the end, and every page reported the
    same ``total`` as the number of distinct contacts listed (none came or went meanwhile),
    or the profile reports no total. ``began_at``: when its first page was asked for."""

    complete: bool
    stable: bool
    began_at: datetime


async def list_into(
    api: ContactsApi,
    snapshot: Snapshot,
    options: EngineOptions,
    *,
    run_id: int | None,
    halt: Stop,
    on_page: Callable[[int], None],
    began_at: datetime,
) -> Listing:
    """Stream the whole listing into ``snapshot`` (``on_page`` gets each page's count).

    Contacts Genesys made itself (not Curated) that claim no externalId of ours are left out:
    they are nobody's orphans and nothing to adopt. They are counted, so the listing's
    ``total`` still checks its completeness (a scan's cursor lists each contact once).
    """
    token: str | None = None
    seen: set[str] = set()
    totals: set[int] = set()
    not_curated = 0
    while True:
        if halt.is_set():
            return Listing(complete=False, stable=False, began_at=began_at)
        page = await api.list_page(token, options.page_size)
        kept = [rc for rc in page.contacts if rc.curated or rc.contact.external_id]
        not_curated += len(page.contacts) - len(kept)
        snapshot.add_page(run_id or 0, [snapshot_row(rc, options.content_rules) for rc in kept])
        on_page(len(page.contacts))
        if page.total is not None:
            totals.add(page.total)
        if page.next_token is None:
            listed = snapshot.count() + not_curated
            stable = len(totals) <= 1 and all(listed == t for t in totals)
            if not stable:
                log.info("sync.list.unstable", totals=sorted(totals), listed=listed)
            if not_curated:
                log.info("sync.list.not_curated", left_out=not_curated)
            return Listing(complete=True, stable=stable, began_at=began_at)
        if page.next_token in seen:
            raise ApiError(f"the listing repeated page token {page.next_token!r}")
        seen.add(page.next_token)
        token = page.next_token


async def _bounded(limit: int, jobs: Sequence[Awaitable[None]]) -> None:
    """Await ``jobs``, at most ``limit`` at a time."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[None]) -> None:
        async with gate:
            await job

    await asyncio.gather(*(one(job) for job in jobs))


def _unclaimed(db: Database, hits: Sequence[RemoteContact]) -> list[RemoteContact]:
    """The contacts of ``hits`` that no link owns."""
    with db.read() as conn:
        claimed = links.links_by_genesys_id(conn, [h.genesys_id for h in hits])
    return [h for h in hits if h.genesys_id not in claimed]


async def observe_listed_unlinked(
    db: Database, api: ContactsApi, options: EngineOptions, items: list[Item]
) -> list[Item]:
    """Look up, before creating it, an externalId the last listing saw on a contact that
    no link claims (an incremental run does not list, so it would create a duplicate);
    every new externalId when the listing covers one division only (``scans_every_contact``).

    That happens when the CRM restores or re-inserts a row after a full reconcile
    reported a pre-existing contact with its externalId as an orphan: the contact must be
    adopted, not doubled (invariant 1). The last listing (``remote_snapshot``) is read by
    its externalId index, and only the externalIds it names cost a search (plus a GET
    per unclaimed hit: search lags behind deletions), so the run's cost still follows the
    changes. An item whose lookup fails is left for the next run (its change rows stay,
    a failed row stays due): it is dropped from the returned items.
    """
    partial = not api.scans_every_contact  # a listing of one division sees no others
    candidates = [
        i
        for i in items
        if isinstance(i.desired, Wanted)
        and (not i.view.observed or (partial and not i.view.others))
        and (i.link is None or (i.link.genesys_id is None and i.link.state == "failed"))
    ]
    if not candidates:
        return items
    if partial:
        hinted = candidates
    else:
        listed = Snapshot(db).by_external_ids([i.external_id for i in candidates])
        if not listed:
            return items
        with db.read() as conn:
            claimed = links.links_by_genesys_id(
                conn, [r.genesys_id for rows in listed.values() for r in rows]
            )
        hinted = [
            i
            for i in candidates
            if any(r.genesys_id not in claimed for r in listed.get(i.external_id, ()))
        ]
    unobserved: set[str] = set()

    async def look(item: Item) -> None:
        found = []
        try:
            for hit in _unclaimed(db, await api.find_by_external_id(item.external_id)):
                # Search lags: a contact deleted a moment ago (by this very run, when
                # the CRM tombstoned and restored the row) may still be found. A read
                # by id is up to date.
                try:
                    current = await api.get(hit.genesys_id)
                except ApiNotFoundError:
                    continue
                if current.contact.external_id == item.external_id:
                    found.append(current)
        except ApiError as exc:
            unobserved.add(item.external_id)
            log.warning("sync.lookup.failed", external_id=item.external_id, error=str(exc))
            return
        others = tuple(canonical_remote(rc, options.content_rules) for rc in found)
        item.view = RemoteView(observed=True, others=others)

    await _bounded(options.max_in_flight, [look(i) for i in hinted])
    return [i for i in items if i.external_id not in unobserved]


async def observe_targets(
    db: Database, api: ContactsApi, options: EngineOptions, external_ids: Sequence[str]
) -> list[Item]:
    """The items of a targeted run: GET the linked contact (404 or a merge confirms it is
    gone; the writer then tells which), search
    by externalId for unlinked ones. A target that cannot be observed stays unobserved."""
    unique = list(dict.fromkeys(e.strip() for e in external_ids if e.strip()))
    items = load_items(db, unique, options.content_rules)
    rules = options.content_rules

    async def observe(item: Item) -> None:
        gid = item.link.genesys_id if item.link else None
        try:
            if gid:
                try:
                    found = await api.get(gid)
                except ApiNotFoundError:  # deleted, or merged into another (ContactMergedError)
                    item.view = RemoteView(observed=True, confirmed_missing=True)
                else:
                    item.view = RemoteView(observed=True, linked=canonical_remote(found, rules))
                return
            hits = _unclaimed(db, await api.find_by_external_id(item.external_id))
            others = tuple(canonical_remote(h, rules) for h in hits)
            item.view = RemoteView(observed=True, others=others)
        except ApiError as exc:
            log.warning(
                "sync.targeted.observe_failed", external_id=item.external_id, error=str(exc)
            )

    await asyncio.gather(*(observe(i) for i in items))
    return items
