"""Read-only queries behind the operators' commands (`syncd ledger`, `runs`, `contact`, `status`).

What the status report means for health is decided in :mod:`syncd.store.health`. Everything
here reads through a caller's connection (``with db.read() as conn``) and returns
plain dicts, so the CLI, the daemon's health endpoint and the benchmark share one query path.

Ledger queries (keyset pages over an index) are in :mod:`syncd.store.ledger_query`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from syncd.errors import ApiEnvironmentError
from syncd.store import ledger as ledger_store
from syncd.store.leases import db_now, local_process_gone
from syncd.store.ledger_query import LedgerFilter, count_ledger, iter_ledger, match
from syncd.store.runs import DEAD_RUN_ERROR, tell_truth
from syncd.store.schema import (
    LINK_STATES,
    RUN_KINDS,
    contact_links,
    crm_contacts,
    daemon_status,
    ledger,
    organization_links,
    sync_requests,
    sync_runs,
)

RUN_COUNTERS = (
    "created",
    "updated",
    "deleted",
    "unchanged",
    "adopted",
    "failed",
    "held",
    "rejected",
)


# --- runs -------------------------------------------------------------------------------------


def _run_dict(row: RowMapping) -> dict[str, Any]:
    run = dict(row)
    started, finished = run["started_at"], run["finished_at"]
    run["duration_seconds"] = (finished - started).total_seconds() if finished else None
    return run


def list_runs(
    conn: Connection,
    *,
    limit: int | None = 20,
    kinds: Sequence[str] = (),
    statuses: Sequence[str] = (),
    before: tuple[datetime, int] | None = None,
) -> list[dict[str, Any]]:
    """The newest runs first (``ix_sync_runs_started_at``); ``before`` (started_at, id) pages.

    ``statuses`` filter on the status shown, not the one stored: a ``running`` row left by a
    dead process shows, and is found, as ``interrupted`` (so it is read, then filtered here).
    """
    c = sync_runs.c
    stmt = sa.select(sync_runs).order_by(c.started_at.desc(), c.id.desc())
    if before is not None:
        stmt = stmt.where(sa.tuple_(c.started_at, c.id) < sa.tuple_(*before))
    if kinds:
        stmt = stmt.where(match(c.kind, kinds))
    stored = set(statuses)
    if "interrupted" in stored or "running" in stored:
        stored |= {"running", "interrupted"}
    if statuses:
        stmt = stmt.where(match(c.status, sorted(stored)))
    if limit and stored == set(statuses):
        stmt = stmt.limit(limit)
    runs = tell_truth(conn, [_run_dict(row) for row in conn.execute(stmt).mappings()])
    if statuses:
        runs = [run for run in runs if run["status"] in statuses]
    return runs[:limit] if limit else runs


def get_run(conn: Connection, run_id: int) -> dict[str, Any] | None:
    row = conn.execute(sa.select(sync_runs).where(sync_runs.c.id == run_id)).mappings().first()
    return tell_truth(conn, [_run_dict(row)])[0] if row is not None else None


def run_error_groups(conn: Connection, run_id: int) -> list[dict[str, Any]]:
    """The run's ledger errors, one group per distinct (HTTP status, message), biggest first."""
    c = ledger.c
    count = sa.func.count().label("n")
    stmt = (
        sa.select(c.http_status, c.error, count, sa.func.min(c.external_id).label("example"))
        .where(c.run_id == run_id, c.error.is_not(None))
        .group_by(c.http_status, c.error)
        .order_by(count.desc(), c.error)
    )
    return [
        {
            "error": r.error,
            "http_status": r.http_status,
            "count": int(r.n),
            "example_external_id": r.example,
        }
        for r in conn.execute(stmt)
    ]


def run_ledger_summary(conn: Connection, run_id: int) -> dict[str, int]:
    """``{"op/outcome": count}`` for one run (``ix_ledger_run_id_at``)."""
    c = ledger.c
    stmt = (
        sa.select(c.op, c.outcome, sa.func.count())
        .where(c.run_id == run_id)
        .group_by(c.op, c.outcome)
        .order_by(c.op, c.outcome)
    )
    return {f"{op}/{outcome}": int(n) for op, outcome, n in conn.execute(stmt)}


# --- one contact ------------------------------------------------------------------------------


@dataclass
class ContactReport:
    """Everything syncd knows about one external id."""

    external_id: str
    mirror: dict[str, Any] | None
    link: dict[str, Any] | None
    ledger: list[dict[str, Any]] = field(default_factory=list)
    ledger_total: int = 0
    # externalcontacts: the organization record the contact's organization is linked to (or,
    # for the id of an organization itself, its own link)
    organization: dict[str, Any] | None = None

    @property
    def found(self) -> bool:
        known = (self.mirror, self.link, self.organization)
        return any(x is not None for x in known) or self.ledger_total > 0


def contact_report(conn: Connection, external_id: str, *, limit: int | None = 100) -> ContactReport:
    mirror = (
        conn.execute(sa.select(crm_contacts).where(crm_contacts.c.external_id == external_id))
        .mappings()
        .first()
    )
    link = (
        conn.execute(sa.select(contact_links).where(contact_links.c.external_id == external_id))
        .mappings()
        .first()
    )
    flt = LedgerFilter(external_ids=(external_id,))
    org_id = mirror["organization_id"] if mirror is not None else None
    organization = (
        conn.execute(
            sa.select(organization_links).where(
                organization_links.c.organization_id == (org_id or external_id)
            )
        )
        .mappings()
        .first()
    )
    return ContactReport(
        external_id=external_id,
        mirror=dict(mirror) if mirror is not None else None,
        link=(
            {
                **link,
                "state": shown_state(
                    link["state"], link["rejected_hash"] is not None, _blocked(link["last_error"])
                ),
            }
            if link is not None
            else None
        ),
        ledger=list(iter_ledger(conn, flt, limit=limit)),
        ledger_total=count_ledger(conn, flt),
        organization=dict(organization) if organization is not None else None,
    )


def external_id_for_genesys_id(conn: Connection, genesys_id: str) -> str | None:
    """The external id linked to (or last ledgered with) a Genesys id: a hint for typos."""
    found = conn.execute(
        sa.select(contact_links.c.external_id).where(contact_links.c.genesys_id == genesys_id)
    ).scalar()
    if found is None:
        found = conn.execute(
            sa.select(ledger.c.external_id)
            .where(ledger.c.genesys_id == genesys_id, ledger.c.external_id.is_not(None))
            .limit(1)
        ).scalar()
    return str(found) if found is not None else None


# --- status -----------------------------------------------------------------------------------


def daemon_instances(conn: Connection) -> list[dict[str, Any]]:
    stmt = sa.select(daemon_status).order_by(daemon_status.c.heartbeat_at.desc())
    return [dict(row) for row in conn.execute(stmt).mappings()]


def latest_run(conn: Connection) -> dict[str, Any] | None:
    c = sync_runs.c
    row = (
        conn.execute(sa.select(sync_runs).order_by(c.started_at.desc(), c.id.desc()).limit(1))
        .mappings()
        .first()
    )
    return tell_truth(conn, [_run_dict(row)])[0] if row is not None else None


def last_finished_runs(conn: Connection) -> dict[str, dict[str, Any] | None]:
    """Per kind, the newest run that is over; dry runs are left out (they change nothing)."""
    c = sync_runs.c
    result: dict[str, dict[str, Any] | None] = {}
    for kind in RUN_KINDS:
        row = (
            conn.execute(
                sa.select(sync_runs)
                .where(c.kind == kind, c.dry_run.is_(sa.false()), c.status != "running")
                .order_by(c.started_at.desc(), c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        result[kind] = _run_dict(row) if row is not None else None
    return result


def request_counts(conn: Connection) -> dict[str, Any]:
    c = sync_requests.c
    rows = conn.execute(
        sa.select(c.status, sa.func.count(), sa.func.min(c.requested_at))
        .where(c.status.in_(("pending", "running")))
        .group_by(c.status)
    ).all()
    by_status = {status: (int(n), oldest) for status, n, oldest in rows}
    pending, oldest_pending = by_status.get("pending", (0, None))
    return {
        "pending": pending,
        "running": by_status.get("running", (0, None))[0],
        "oldest_pending_at": oldest_pending,
    }


REJECTED = "rejected"
"""The state reported for a ``failed`` link whose CRM row was rejected (``rejected_hash``
set): it waits for the CRM to change the row, not for a retry, so it is no failure of syncd."""


BLOCKED = "blocked"
"""The state reported for a ``failed`` link whose last error needs a fix on Genesys' side
(an organization record, a division, syncd's external source: ``ApiEnvironmentError``): it
is retried, but only that fix makes it succeed."""


def shown_state(state: str, rejected: bool, blocked: bool = False) -> str:
    """A link's state as operators see it: ``rejected`` and ``blocked`` apart from
    ``failed`` (``rejected``: the link holds the hash of the content Genesys or syncd
    refused; ``blocked``: its last error says what to fix in Genesys)."""
    if state != "failed":
        return state
    return REJECTED if rejected else BLOCKED if blocked else state


def _blocked(error: str | None) -> bool:
    return error is not None and f"[{ApiEnvironmentError.MARK}:" in error


def link_counts(conn: Connection) -> dict[str, int]:
    """Links per shown state (:func:`shown_state`), every one present (zero when empty)."""
    c = contact_links.c
    counts = dict.fromkeys((*LINK_STATES, REJECTED, BLOCKED), 0)
    rejected = c.rejected_hash.is_not(None)
    blocked = sa.func.coalesce(c.last_error.like(f"%[{ApiEnvironmentError.MARK}:%"), False)
    query = sa.select(c.state, rejected, blocked, sa.func.count()).group_by(
        c.state, rejected, blocked
    )
    for state, was_rejected, was_blocked, n in conn.execute(query):
        counts[shown_state(str(state), bool(was_rejected), bool(was_blocked))] += int(n)
    return counts


def mirror_counts(conn: Connection) -> dict[str, int]:
    c = crm_contacts.c
    counts = {"live": 0, "tombstoned": 0}
    for deleted, n in conn.execute(sa.select(c.deleted, sa.func.count()).group_by(c.deleted)):
        counts["tombstoned" if deleted else "live"] += int(n)
    return counts


@dataclass
class StatusReport:
    """A snapshot of the daemon, the runs and the sync state, for `syncd status`."""

    checked_at: datetime
    stale_after: timedelta
    instances: list[dict[str, Any]]
    current_run: dict[str, Any] | None
    last_runs: dict[str, dict[str, Any] | None]
    requests: dict[str, Any]
    links: dict[str, int]
    mirror: dict[str, int]
    intents: dict[str, Any] = field(default_factory=dict)
    pending_after: timedelta = timedelta(minutes=15)
    abandoned_run: dict[str, Any] | None = None
    """The newest ``running`` row when its process is gone (shown as interrupted)."""

    def __post_init__(self) -> None:
        for inst in self.instances:
            age = (self.checked_at - inst["heartbeat_at"]).total_seconds()
            inst["heartbeat_age_seconds"] = age
            # An instance of this host whose process is gone is dead whatever its last
            # heartbeat said (kill -9): it is not running and leads nothing.
            gone = inst["state"] != "stopped" and local_process_gone(
                inst.get("hostname"), inst.get("pid")
            )
            inst["process_gone"] = gone
            inst["alive"] = (
                age <= self.stale_after.total_seconds() and inst["state"] != "stopped" and not gone
            )

    @property
    def live_instances(self) -> list[dict[str, Any]]:
        return [i for i in self.instances if i["alive"]]

    @property
    def leader(self) -> dict[str, Any] | None:
        return next((i for i in self.live_instances if i["is_leader"]), None)

    @property
    def scheduler(self) -> dict[str, Any] | None:
        """Whose schedule to show: the live leader, else the freshest instance."""
        return self.leader or (self.instances[0] if self.instances else None)


def status_report(
    conn: Connection,
    *,
    stale_after: timedelta,
    now: datetime | None = None,
    pending_after: timedelta = timedelta(minutes=15),
) -> StatusReport:
    """Everything `syncd status` shows, aged by the database's clock unless ``now`` is given.

    Heartbeats are written with :func:`syncd.store.leases.db_now`, so they are aged with it
    too: a skewed clock on the operator's host cannot make a live daemon look dead.
    """
    checked_at = now if now is not None else db_now(conn)
    latest = latest_run(conn)
    abandoned = latest is not None and latest["error"] == DEAD_RUN_ERROR
    return StatusReport(
        checked_at=checked_at,
        stale_after=stale_after,
        instances=daemon_instances(conn),
        current_run=latest if latest is not None and latest["status"] == "running" else None,
        last_runs=last_finished_runs(conn),
        requests=request_counts(conn),
        links=link_counts(conn),
        mirror=mirror_counts(conn),
        intents=ledger_store.pending_summary(conn, checked_at - pending_after),
        pending_after=pending_after,
        abandoned_run=latest if abandoned else None,
    )
