"""Engine test harness: the real emulator in-process, the real client over ASGI, a real database.

The mirror is written with plain SQL (the ETL contract); hand edits in Genesys go through the
API with a second client, as a person in the Genesys UI would, and are remembered so that
tests can tell syncd's writes from a human's in the emulator's write log.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from starlette.applications import Starlette

from syncd.cli import cli
from syncd.emulator import Clock, EmulatorConfig
from syncd.genesys.client import GenesysClient
from syncd.genesys.retry import RetryPolicy
from syncd.model import Contact, Organization, Phone
from syncd.store.db import Database
from syncd.store.schema import (
    contact_links,
    crm_contacts,
    ledger,
    mirror_changes,
    remote_snapshot,
    sync_runs,
)
from syncd.sync.context import PlanEntry
from syncd.sync.guards import DeleteLimits
from syncd.sync.import_formats import CSV_COLUMNS
from syncd.sync.options import EngineOptions
from syncd.sync.outcomes import Hooks
from syncd.sync.runs import Engine, RunReport, RunSpec
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    asgi_transport,
    client_settings,
    state_of,
)
from tests.support.emulator import emulator_app as build_emulator_app  # fixture: emulator_app

FAST_OPTIONS = EngineOptions(
    limits=DeleteLimits(max_count=1000, max_percent=100.0),
    batch_size=7,  # small, so that batching and keyset paging are exercised
    page_size=100,
    lookup_attempts=2,
    lookup_delay=timedelta(0),
    create_grace=timedelta(0),
    landing_window=timedelta(0),  # a test's earlier run is over: its requests have landed
    backoff_base=timedelta(seconds=60),
)


class VirtualTime:
    """Monotonic time that sleeping advances at once: the client's backoff, pauses and
    breaker cost no wall time in tests (the emulator keeps real time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset

    async def sleep(self, seconds: float) -> None:
        self.offset += max(0.0, seconds)
        await asyncio.sleep(0)


PROFILES = ("reference", "externalcontacts")

# Routes of the request log, per wire profile (``Harness.route``).
ROUTES: dict[str, dict[str, tuple[str, str]]] = {
    "reference": {
        "list": ("GET", "/api/v2/contacts"),
        "lookup": ("GET", "/api/v2/contacts/search"),
        "get": ("GET", "/api/v2/contacts/{contactId}"),
        "create": ("POST", "/api/v2/contacts"),
        "patch": ("PATCH", "/api/v2/contacts/{contactId}"),
        "delete": ("DELETE", "/api/v2/contacts/{contactId}"),
    },
    "externalcontacts": {
        # Listing is the scan endpoint (limit = EngineOptions.page_size, 100 here).
        "list": ("GET", "/api/v2/externalcontacts/scan/contacts"),
        "lookup": ("POST", "/api/v2/externalcontacts/identifierlookup/contacts"),
        "get": ("GET", "/api/v2/externalcontacts/contacts/{contactId}"),
        "unresolved": ("GET", "/api/v2/externalcontacts/contacts/{contactId}/unresolved"),
        "create": ("POST", "/api/v2/externalcontacts/contacts"),
        "patch": ("PATCH", "/api/v2/externalcontacts/contacts/{contactId}"),
        "delete": ("DELETE", "/api/v2/externalcontacts/contacts/{contactId}"),
        "sources": ("GET", "/api/v2/externalcontacts/externalsources"),
        "create_source": ("POST", "/api/v2/externalcontacts/externalsources"),
        "bulk_add": ("POST", "/api/v2/externalcontacts/bulk/contacts/add"),
        "bulk_update": ("POST", "/api/v2/externalcontacts/bulk/contacts/update"),
        "bulk_remove": ("POST", "/api/v2/externalcontacts/bulk/contacts/remove"),
        "bulk_read": ("POST", "/api/v2/externalcontacts/bulk/contacts"),
        "org_lookup": ("POST", "/api/v2/externalcontacts/identifierlookup/organizations"),
        "org_create": ("POST", "/api/v2/externalcontacts/organizations"),
        "org_get": ("GET", "/api/v2/externalcontacts/organizations/{externalOrganizationId}"),
        "org_put": ("PUT", "/api/v2/externalcontacts/organizations/{externalOrganizationId}"),
    },
}
# externalcontacts phone slots and the canonical type each holds (the default mapping).
SLOTS = (
    ("workPhone", "WORK"),
    ("cellPhone", "MOBILE"),
    ("homePhone", "HOME"),
    ("otherPhone", "OTHER"),
)


def make_client(app: Starlette, **overrides: Any) -> GenesysClient:
    """syncd's client on ``app`` (its credentials and profile), with no socket and on
    :class:`VirtualTime`."""
    clock = VirtualTime()
    return GenesysClient.from_settings(
        client_settings(app, requests_per_minute=100_000, max_in_flight=8, **overrides),
        transport=asgi_transport(app),
        retry=RetryPolicy.testing(max_attempts=3),
        clock=clock,
        sleep=clock.sleep,
    )


class CrashError(BaseException):
    """A simulated process death: not an Exception, so nothing in the engine catches it."""


@dataclass
class CrashAt(Hooks):
    """Raise :class:`CrashError` at one step of the intent protocol for one op."""

    step: str  # "after_intent" | "after_write"
    op: str | None = None
    external_id: str | None = None
    fired: int = 0

    def _maybe(self, step: str, external_id: str, op: str) -> None:
        if step != self.step or self.fired:
            return
        if self.op not in (None, op) or self.external_id not in (None, external_id):
            return
        self.fired += 1
        raise CrashError(f"crash {step} {op} {external_id}")

    def after_intent(self, external_id: str, op: str) -> None:
        self._maybe("after_intent", external_id, op)

    def after_write(self, external_id: str, op: str) -> None:
        self._maybe("after_write", external_id, op)


def person(ext: str, first: str = "Ada", last: str = "Lovelace", **extra: Any) -> dict[str, Any]:
    """Mirror row values for ``crm_contacts``."""
    row: dict[str, Any] = {
        "external_id": ext,
        "first_name": first,
        "last_name": last,
        "email": f"{ext.lower()}@example.com",
        "phone_numbers": [{"number": "+1 415 555 0100", "type": "WORK"}],
        "organization_id": None,
        "organization_name": None,
        "deleted": False,
    }
    row.update(extra)
    return row


@dataclass
class Harness:
    db: Database
    app: Starlette
    options: EngineOptions = FAST_OPTIONS
    hand_writes: list[dict[str, Any]] = field(default_factory=list)
    plan: list[PlanEntry] = field(default_factory=list)
    # Settings of syncd's client for runs (e.g. ``bulk_batch_size``), and an optional
    # wrapper around it (a test double that alters some answers).
    client_overrides: dict[str, Any] = field(default_factory=dict)
    wrap: Callable[[GenesysClient], Any] | None = None

    @property
    def em(self) -> Any:
        return state_of(self.app)

    # -- the CRM mirror (plain SQL, as an ETL job would) ----------------------------------

    def upsert(self, *rows: dict[str, Any]) -> None:
        with self.db.write() as conn:
            for row in rows:
                values = {k: v for k, v in row.items() if k != "external_id"}
                values.setdefault("deleted", False)
                found = conn.execute(
                    sa.update(crm_contacts)
                    .where(crm_contacts.c.external_id == row["external_id"])
                    .values(**values)
                )
                if found.rowcount == 0:
                    conn.execute(sa.insert(crm_contacts).values(**row))

    def tombstone(self, *exts: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                sa.update(crm_contacts)
                .where(crm_contacts.c.external_id.in_(exts))
                .values(deleted=True)
            )

    def remove_rows(self, *exts: str) -> None:
        with self.db.write() as conn:
            conn.execute(sa.delete(crm_contacts).where(crm_contacts.c.external_id.in_(exts)))

    # -- runs --------------------------------------------------------------------------------

    def run(
        self,
        kind: str = "incremental",
        *,
        hooks: Hooks | None = None,
        stop: Any = None,
        options: EngineOptions | None = None,
        clock: Callable[[], datetime] | None = None,
        **spec: Any,
    ) -> RunReport:
        async def go() -> RunReport:
            client = make_client(self.app, **self.client_overrides)
            try:
                engine = Engine(
                    self.db,
                    self.wrap(client) if self.wrap else client,
                    options or self.options,
                    hooks=hooks,
                    on_plan=self.plan.append,
                    clock=clock or (lambda: datetime.now(UTC)),
                )
                return await engine.run(RunSpec(kind=kind, **spec), stop=stop)  # type: ignore[arg-type]
            finally:
                await client.aclose()

        self.plan.clear()
        return asyncio.run(go())

    # -- hand edits in Genesys (through the API, like a person would) --------------------

    def _by_hand(self, action: Callable[[GenesysClient], Any]) -> Any:
        """A person's edit: applied reliably (faults paused), remembered as not syncd's."""
        knobs = ("error_rate", "write_error_rate", "lost_ack_rate")
        saved = {k: v for k, v in self.em.fault_settings().items() if k in knobs}
        self.em.set_faults(**dict.fromkeys(knobs, 0.0))
        try:
            return self._by_hand_unfaulted(action)
        finally:
            self.em.set_faults(**saved)

    def _by_hand_unfaulted(self, action: Callable[[GenesysClient], Any]) -> Any:
        before = len(self.em.write_log())

        async def go() -> Any:
            client = make_client(self.app)
            try:
                return await action(client)
            finally:
                await client.aclose()

        result = asyncio.run(go())
        self.hand_writes.extend(self.em.write_log()[before:])
        return result

    def hand_edit(self, gid: str, **fields: Any) -> None:
        current = self.remote_by_id()[gid]
        contact = _replace_contact(current, fields)

        async def go(client: GenesysClient) -> Any:
            return await client.patch(gid, dict.fromkeys(fields), contact=contact)

        self._by_hand(go)

    def hand_delete(self, gid: str) -> None:
        self._by_hand(lambda client: client.delete(gid))

    def hand_create(self, ext: str, first: str = "Hand", last: str = "Made") -> str:
        contact = Contact(external_id=ext, first_name=first, last_name=last)
        result = self._by_hand(lambda client: client.create(contact))
        return str(result.genesys_id)

    # -- looking --------------------------------------------------------------------------

    @property
    def profile(self) -> str:
        return str(state_of(self.app).config.profile)

    def route(self, kind: str) -> tuple[str, str]:
        """``(method, route)`` of one kind of call in this profile's request log."""
        return ROUTES[self.profile][kind]

    def calls(self, start: int = 0) -> list[tuple[str, str]]:
        """API calls in the request log since ``start`` (token requests left out)."""
        return [
            (r["method"], r["route"])
            for r in self.em.request_log()[start:]
            if "/oauth" not in r["path"]
        ]

    def setup_calls(self, *, created: bool = False) -> list[tuple[str, str]]:
        """The calls a fresh client makes before its first contact call: none in the
        reference; one source lookup in externalcontacts (plus the source's creation on the
        very first run against an empty org)."""
        if self.profile == "reference":
            return []
        return [self.route("sources")] + ([self.route("create_source")] if created else [])

    def raw_remote(self) -> list[dict[str, Any]]:
        """The emulator's store in the profile's own JSON."""
        return list(self.em.contacts())

    def remote(self) -> list[dict[str, Any]]:
        """Every remote contact in one profile-neutral shape (the reference's JSON: ``id``,
        ``externalId``, ``firstName``, ``lastName``, ``email``, ``phoneNumbers`` as
        ``[{number, type}]``, ``externalOrganization``), read independently of the client."""
        return [self._neutral(doc) for doc in self.raw_remote()]

    def _neutral(self, doc: dict[str, Any]) -> dict[str, Any]:
        if self.profile == "reference":
            return doc
        sources = self.em.profile.sources
        ext = None
        for item in doc.get("externalIds") or ():
            source = sources.get(item["externalSource"]["id"]) or {}
            if str(source.get("name", "")).casefold() == "syncd":
                ext = item["value"]
        phones = [
            {"number": doc[slot].get("e164") or doc[slot]["display"], "type": kind}
            for slot, kind in SLOTS
            if doc.get(slot)
        ]
        out: dict[str, Any] = {"id": doc["id"], "externalId": ext}
        for key in ("firstName", "lastName"):
            if doc.get(key) is not None:
                out[key] = doc[key]
        if doc.get("workEmail") is not None:
            out["email"] = doc["workEmail"]
        if phones:
            out["phoneNumbers"] = phones
        if doc.get("externalOrganization"):
            out["externalOrganization"] = doc["externalOrganization"]
        return out

    def remote_by_id(self) -> dict[str, dict[str, Any]]:
        return {c["id"]: c for c in self.remote()}

    def remote_by_ext(self) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for c in self.remote():
            out.setdefault(c.get("externalId") or "", []).append(c)
        return out

    def seed_remote(self, *contacts: Contact) -> list[str]:
        """Contacts that exist in Genesys before syncd (seeded, no request), in the profile's
        JSON; returns their ids."""
        docs: list[dict[str, Any]] = []
        for c in contacts:
            doc: dict[str, Any] = {"firstName": c.first_name, "lastName": c.last_name}
            if self.profile == "reference":
                doc.update(externalId=c.external_id or None, email=c.email)
                doc["phoneNumbers"] = [
                    {"number": p.number, "type": p.type} for p in c.phone_numbers
                ]
            else:
                slots = {kind: slot for slot, kind in SLOTS}
                if c.external_id:
                    source = {"id": "syncd-source", "name": "syncd"}
                    doc["externalIds"] = [{"externalSource": source, "value": c.external_id}]
                if c.email:
                    doc["workEmail"] = c.email
                for p in c.phone_numbers:
                    doc[slots[p.type]] = {"display": p.number}
            docs.append({k: v for k, v in doc.items() if v not in (None, [])})
        return [d["id"] for d in self.em.seed_contacts(docs)]

    def syncd_writes(self) -> list[dict[str, Any]]:
        """Writes the emulator applied that were not made by hand."""
        hand = {(w["op"], w["id"], w["at"]) for w in self.hand_writes}
        return [w for w in self.em.write_log() if (w["op"], w["id"], w["at"]) not in hand]

    def api_writes(self) -> list[dict[str, Any]]:
        """Requests that write contacts (token requests, source setup and bulk reads left
        out)."""
        skip = (
            ROUTES["externalcontacts"]["create_source"],
            ROUTES["externalcontacts"]["bulk_read"],
        )
        return [
            r
            for r in self.em.request_log()
            if r["method"] in ("POST", "PATCH", "PUT", "DELETE")
            and "/oauth" not in r["path"]
            and (r["method"], r["route"]) not in skip
        ]

    def ledger(self, **where: Any) -> list[dict[str, Any]]:
        q = sa.select(ledger).order_by(ledger.c.id)
        for k, v in where.items():
            q = q.where(ledger.c[k] == v)
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def links(self) -> dict[str, dict[str, Any]]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(contact_links))
            return {r.external_id: dict(r._mapping) for r in rows}

    def changes(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            q = sa.select(mirror_changes).order_by(mirror_changes.c.id)
            return [dict(r._mapping) for r in conn.execute(q)]

    def runs(self) -> list[dict[str, Any]]:
        with self.db.read() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(sync_runs))]

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every table syncd's engine may touch, for before/after comparisons."""
        tables = (crm_contacts, mirror_changes, contact_links, ledger, sync_runs, remote_snapshot)
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self.db.read() as conn:
            for t in tables:
                rows = conn.execute(sa.select(t)).all()
                out[t.name] = sorted(
                    tuple(json.dumps(v, default=str, sort_keys=True) for v in r) for r in rows
                )
        return out


def _replace_contact(doc: dict[str, Any], fields: dict[str, Any]) -> Contact:
    org = doc.get("externalOrganization")
    contact = Contact(
        external_id=doc.get("externalId") or "",
        first_name=doc.get("firstName"),
        last_name=doc.get("lastName"),
        email=doc.get("email"),
        phone_numbers=tuple(
            Phone(p["number"], p.get("type") or "WORK") for p in doc.get("phoneNumbers") or ()
        ),
        organization=Organization(org.get("id"), org.get("name")) if org else None,
    )
    return replace(contact, **fields)


def cli_in(
    db: Database, tmp_path: Path, *args: str, profile: str = "reference", sync: str = ""
) -> Result:
    """`syncd ARGS` through the CLI, configured on ``db`` with ``[genesys] profile`` and the
    extra ``[sync]`` lines ``sync`` (dummy credentials: for commands that call no Genesys)."""
    url = db.url.render_as_string(hide_password=False)
    config = tmp_path / "syncd.toml"
    config.write_text(
        f"[database]\nurl = {json.dumps(url)}\n"
        f"[genesys]\nclient_id = 'x'\nclient_secret = 'y'\nprofile = '{profile}'\n"
        + (f"[sync]\n{sync}\n" if sync else ""),
        encoding="utf-8",
    )
    config.chmod(0o600)
    return CliRunner().invoke(cli, ["--config", str(config), *args], catch_exceptions=False)


def import_csv(
    db: Database, tmp_path: Path, rows: Sequence[dict[str, str]], *, profile: str, sync: str = ""
) -> tuple[Result, set[str]]:
    """`syncd mirror import` of ``rows`` (CSV) through the CLI (see :func:`cli_in`); its
    result and the externalIds now stored."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = tmp_path / "crm.csv"
    data.write_text(out.getvalue(), encoding="utf-8")
    result = cli_in(db, tmp_path, "mirror", "import", str(data), profile=profile, sync=sync)
    with db.read() as conn:
        stored = {r[0] for r in conn.execute(sa.select(crm_contacts.c.external_id))}
    return result, stored


def single_calls(client: Any) -> Any:
    """``Harness.wrap``: syncd's client without its bulk endpoints (one call per contact)."""

    class Single:
        supports_bulk = False

        def __getattr__(self, name: str) -> Any:
            return getattr(client, name)

    return Single()


def creates(h: Harness, ext: str) -> list[dict[str, object]]:
    """The creates the emulator applied for ``ext`` (a second one is a duplicate)."""
    return [w for w in h.em.write_log() if w["op"] == "create" and w["externalId"] == ext]


def crash_after_intent(h: Harness, ext: str) -> None:
    """A run that dies after writing ``ext``'s create intent, before sending it."""
    with pytest.raises(CrashError):
        h.run(hooks=CrashAt("after_intent", op="create", external_id=ext))
    assert h.links()[ext]["state"] == "pending_create"


def make_app(profile: str = "reference", *, clock: Clock | None = None, **config: Any) -> Starlette:
    """The emulator; ``clock`` (a :class:`~syncd.emulator.ManualClock`) lets a test move its
    time (search lag, token expiry) instead of sleeping."""
    return build_emulator_app(
        EmulatorConfig(
            requests_per_minute=1_000_000,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            profile=profile,
            **config,
        ),
        clock=clock,
    )


@pytest.fixture(params=PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    """Each engine test runs against both wire profiles."""
    return str(request.param)


@pytest.fixture
def emulator_app(profile: str) -> Starlette:
    return make_app(profile)


@pytest.fixture
def h(db: Database, emulator_app: Starlette) -> Harness:
    return Harness(db, emulator_app)
