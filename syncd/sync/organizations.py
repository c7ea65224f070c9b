"""Organization records before the contacts that reference them (externalcontacts).

In Genesys a contact references an ExternalOrganization record by its Genesys id, and the
record must exist first. Before a batch is diffed, :class:`OrganizationStage` makes sure every
organization the batch names is linked to a record (``organization_links``):

- linked: nothing to do, unless the CRM calls it something else now. Then it is renamed:
  one read and one PUT of the record, however many contacts it has (the name is the
  record's, not part of a contact: ``ContentRules.organizations_as_records``);
- not linked: the keyed identifier lookup (the CRM's id as an ExternalId in syncd's
  source). Found: linked (``org_link``), renamed if need be. Not found: created once
  (``org_create``), through the intent protocol: the ledger row and a ``pending_create``
  link are committed before the POST, so a crash or a lost answer leaves a create that is
  looked up again, never blindly re-sent. It is sent again only when the lookup still finds
  nothing after the grace period (the contacts' ``create_grace``; ``landing_window`` when
  the lookup is declared consistent with writes).

A contact whose organization has no record yet is not sent: it backs off with
:class:`~syncd.errors.OrganizationPendingError`, which says why, and is retried. Each
organization is decided once per run, so batches that disagree on a name cannot flip it.
Organizations are never deleted by syncd.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from syncd.errors import (
    ApiEnvironmentError,
    ApiError,
    ApiNotFoundError,
    OrganizationPendingError,
    OutcomeUnknownError,
)
from syncd.genesys.api import ContactsApi, OrganizationRecord, OrganizationsApi
from syncd.logs import get_logger
from syncd.store import ledger, organizations
from syncd.store.db import Database
from syncd.store.ledger import Entry
from syncd.store.organizations import OrganizationLink
from syncd.sync.diff import Wanted
from syncd.sync.options import EngineOptions
from syncd.sync.plan import Item

__all__ = ["OrganizationStage", "organization_stage", "wanted_organizations"]

log = get_logger("syncd.sync")

NOT_APPLIED = "not applied: no record claims the organization; creating it again"


def organization_stage(
    db: Database,
    api: ContactsApi,
    options: EngineOptions,
    run_id: int | None,
    clock: Callable[[], datetime],
    *,
    began_at: datetime,
    dry_run: bool,
) -> OrganizationStage | None:
    """A run's stage, its links loaded; None when the profile embeds organizations."""
    if api.organizations is None:
        return None
    stage = OrganizationStage(
        db,
        api.organizations,
        options,
        run_id=run_id,
        clock=clock,
        began_at=began_at,
        lookup_proves_absence=api.lookup_proves_absence,
        dry_run=dry_run,
    )
    stage.load()
    return stage


def wanted_organizations(items: Sequence[Item]) -> dict[str, str | None]:
    """The organizations a batch names, each with the name its first row gives it."""
    wanted: dict[str, str | None] = {}
    for item in items:
        desired = item.desired
        if not isinstance(desired, Wanted) or desired.contact.organization is None:
            continue
        org_id = desired.contact.organization.id
        if org_id is not None:
            wanted.setdefault(org_id, desired.organization_name)
    return wanted


class OrganizationStage:
    """Links, creates and renames the organization records a run's contacts reference."""

    def __init__(
        self,
        db: Database,
        api: OrganizationsApi,
        options: EngineOptions,
        *,
        run_id: int | None,
        clock: Callable[[], datetime],
        began_at: datetime,
        lookup_proves_absence: bool = False,
        dry_run: bool = False,
    ) -> None:
        self.db, self.api, self.options = db, api, options
        self.run_id, self.clock, self.dry_run = run_id, clock, dry_run
        self.began_at = began_at
        self.lookup_proves_absence = lookup_proves_absence
        self._links: dict[str, OrganizationLink] = {}
        self._decided: set[str] = set()
        self._why: dict[str, str] = {}

    def load(self) -> None:
        """Read the links and hand the linked records to the profile's directory (before
        anything is read back, so references translate to the CRM's ids)."""
        with self.db.read() as conn:
            self._links = organizations.all_links(conn)
        for link in self._links.values():
            if link.state == "synced" and link.genesys_id is not None:
                self.api.directory.bind(link.organization_id, link.genesys_id)

    def pending(self, organization_id: str) -> OrganizationPendingError | None:
        """Why a contact naming this organization cannot be sent yet (None: it can)."""
        if self.dry_run:
            return None
        link = self._links.get(organization_id)
        if link is not None and link.state == "synced":
            return None
        return OrganizationPendingError(organization_id, self._why.get(organization_id, ""))

    def row_failed(self, item: Item, error: ApiError) -> None:
        """A contact write that Genesys refused because the record it references does not
        exist (deleted by hand): the link is dropped, so that the next run looks the
        organization up and, not finding it, creates it again; the contact backs off."""
        desired = item.desired
        org = desired.contact.organization if isinstance(desired, Wanted) else None
        if not isinstance(error, ApiEnvironmentError) or isinstance(
            error, OrganizationPendingError
        ):
            return
        if org is None or org.id is None or error.cause != ApiEnvironmentError.ORGANIZATION:
            return
        link = self._links.get(org.id)
        if link is None or link.state != "synced":
            return
        stale = link.evolve(state="pending_create", genesys_id=None, intent_at=None)
        with self.db.write() as conn:
            organizations.save(conn, stale)
        self._links[org.id] = stale
        self._why[org.id] = "Genesys answered that its record does not exist"
        log.warning(
            "sync.organization.record_missing", organization_id=org.id, genesys_id=link.genesys_id
        )

    async def settle_all(self) -> None:
        """Every organization the live mirror names (a full run, before its listing)."""
        with self.db.read() as conn:
            wanted = organizations.wanted_names(conn)
        await self.settle(wanted)

    async def settle(self, wanted: Mapping[str, str | None]) -> None:
        todo = [(org_id, name) for org_id, name in wanted.items() if org_id not in self._decided]
        self._decided.update(org_id for org_id, _ in todo)
        if not todo or self.dry_run:
            return
        gate = asyncio.Semaphore(self.options.max_in_flight)

        async def one(org_id: str, name: str | None) -> None:
            async with gate:
                await self._settle_one(org_id, name)

        await asyncio.gather(*(one(org_id, name) for org_id, name in todo))

    async def _settle_one(self, org_id: str, name: str | None) -> None:
        link = self._links.get(org_id)
        if link is not None and link.state == "synced":
            if name is not None and name != link.name:
                await self._rename(link, name)
            return
        try:
            found = await self.api.find(org_id)
        except ApiError as exc:
            self._why[org_id] = f"its lookup failed: {exc.message}"
            log.warning(
                "sync.organization.lookup_failed", organization_id=org_id, error=exc.message
            )
            return
        if found is not None:
            await self._found(
                org_id, found, name, after_create=link is not None and link.intent_at is not None
            )
        elif link is not None and not self._create_due(link):
            self._why[org_id] = (
                "its create is unconfirmed; it is looked up again before any new one"
            )
        elif not name:
            self._why[org_id] = "the CRM gives it no name, which Genesys needs to create it"
        else:
            await self._create(org_id, name)

    def _create_due(self, link: OrganizationLink) -> bool:
        """Whether a lookup that finds nothing now proves an unconfirmed create absent: with
        a consistent lookup, once a create of an earlier run has surely landed (that run
        ended before this one began, plus ``landing_window``); else after the grace period."""
        if link.intent_at is None:
            return True
        if self.lookup_proves_absence:
            landed = self.began_at + self.options.landing_window
            return link.intent_at < self.began_at and self.clock() >= landed
        return self.clock() >= link.intent_at + self.options.create_grace

    async def _landing(self, link: OrganizationLink) -> bool:
        """Wait (at most ``landing_window``) until an earlier run's unconfirmed create has
        surely landed, when a consistent lookup will then prove it; whether it waited."""
        if not self.lookup_proves_absence or link.intent_at is None:
            return False
        if link.intent_at >= self.began_at:  # this run's own: it may still be in flight
            return False
        left = (self.began_at + self.options.landing_window - self.clock()).total_seconds()
        if left <= 0:
            return False
        log.info("sync.organization.awaiting_landing", organization_id=link.organization_id)
        await asyncio.sleep(left)
        return True

    async def _found(
        self, org_id: str, record: OrganizationRecord, name: str | None, *, after_create: bool
    ) -> None:
        """Link a record the lookup found: syncd's own unconfirmed create (its intent is
        settled ``ok``), or one that was there before (``org_link``)."""
        origin = "created" if after_create else "found"
        link = OrganizationLink(org_id, "synced", origin, record.genesys_id, record.name)
        with self.db.write() as conn:
            intent = ledger.latest_pending(conn, org_id, op="org_create") if after_create else None
            if intent is not None:
                ledger.settle(
                    conn,
                    intent.id,
                    outcome="ok",
                    genesys_id=record.genesys_id,
                    error="confirmed later: found by the identifier lookup",
                )
            else:
                ledger.append(conn, self._entry("org_link", "ok", record))
            organizations.save(conn, link)
        self._linked(link)
        if name is not None and name != record.name:
            await self._rename(link, name)

    async def _create(self, org_id: str, name: str) -> None:
        now = self.clock()
        intent = OrganizationLink(org_id, "pending_create", "created", name=name, intent_at=now)
        with self.db.write() as conn:  # the intent, committed before the call
            earlier = ledger.latest_pending(conn, org_id, op="org_create")
            if earlier is not None:  # an unconfirmed create that the lookup proved absent
                ledger.settle(conn, earlier.id, outcome="failed", error=NOT_APPLIED)
            row = ledger.append(
                conn,
                Entry(
                    "org_create",
                    "pending",
                    external_id=org_id,
                    fields={"name": [None, name]},
                    run_id=self.run_id,
                    at=now,
                ),
            )
            organizations.save(conn, intent)
        self._links[org_id] = intent
        try:
            record = await self.api.create(org_id, name)
        except OutcomeUnknownError as exc:
            self._why[org_id] = "its create's outcome is unknown; it is looked up again first"
            with self.db.write() as conn:
                ledger.note(conn, row, error=exc.message)
            log.warning("sync.organization.create_unknown", organization_id=org_id)
            return
        except ApiError as exc:  # not applied: the next run looks it up and creates it again
            self._why[org_id] = f"its create failed: {exc.message}"
            with self.db.write() as conn:
                ledger.settle(
                    conn, row, outcome="failed", http_status=exc.status, error=exc.message
                )
                organizations.save(conn, intent.evolve(intent_at=None))
            self._links[org_id] = intent.evolve(intent_at=None)
            return
        link = OrganizationLink(org_id, "synced", "created", record.genesys_id, record.name)
        with self.db.write() as conn:
            ledger.settle(conn, row, outcome="ok", genesys_id=record.genesys_id, http_status=200)
            organizations.save(conn, link)
        self._linked(link)
        log.info("sync.organization.created", organization_id=org_id, genesys_id=record.genesys_id)

    async def _rename(self, link: OrganizationLink, name: str) -> None:
        assert link.genesys_id is not None
        with self.db.write() as conn:
            row = ledger.append(
                conn,
                Entry(
                    "org_rename",
                    "pending",
                    external_id=link.organization_id,
                    genesys_id=link.genesys_id,
                    fields={"name": [link.name, name]},
                    run_id=self.run_id,
                    at=self.clock(),
                ),
            )
        try:
            await self.api.rename(link.genesys_id, name)
        except ApiNotFoundError as exc:  # deleted in Genesys: found or created again next run
            self._why[link.organization_id] = "its record was deleted in Genesys"
            stale = link.evolve(state="pending_create", genesys_id=None, intent_at=None)
            with self.db.write() as conn:
                ledger.settle(conn, row, outcome="failed", http_status=404, error=exc.message)
                organizations.save(conn, stale)
            self._links[link.organization_id] = stale
            return
        except ApiError as exc:  # the reference still holds: contacts are sent anyway
            with self.db.write() as conn:
                ledger.settle(
                    conn, row, outcome="failed", http_status=exc.status, error=exc.message
                )
            return
        renamed = link.evolve(name=name)
        with self.db.write() as conn:
            ledger.settle(conn, row, outcome="ok", http_status=200)
            organizations.save(conn, renamed)
        self._links[link.organization_id] = renamed

    def _linked(self, link: OrganizationLink) -> None:
        assert link.genesys_id is not None
        self._links[link.organization_id] = link
        self._why.pop(link.organization_id, None)
        self.api.directory.bind(link.organization_id, link.genesys_id)

    def _entry(self, op: str, outcome: str, record: OrganizationRecord) -> Entry:
        return Entry(
            op,
            outcome,
            external_id=record.external_id,
            genesys_id=record.genesys_id,
            fields={"name": [None, record.name]},
            run_id=self.run_id,
            at=self.clock(),
        )
