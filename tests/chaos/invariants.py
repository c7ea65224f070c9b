"""The end-of-chaos checks: what the database, the ledger and the emulator must agree on.

Each check returns a list of problems (empty: it holds) rather than asserting at the first
one, so a failing chaos run reports everything that went wrong at once, with the seed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from syncd.genesys.profiles import get_profile
from syncd.genesys.profiles.externalcontacts import ExternalContactsProfile
from syncd.store import changes, organizations
from syncd.store.db import Database
from syncd.store.schema import contact_links, crm_contacts, ledger, mirror_changes
from syncd.sync.canonical import ContentRules
from syncd.sync.diff import Remote, Wanted
from syncd.sync.plan import canonical_remote, desired_from_row

REGION = "US"
CREATE_OPS = frozenset({"create", "recreate"})
UPDATE_OPS = frozenset({"update", "drift"})
WRITE_OPS = CREATE_OPS | UPDATE_OPS | {"delete"}
# The emulator's timestamps have millisecond precision: a write is compared with its intent
# to within one millisecond.
STAMP_TOLERANCE = timedelta(milliseconds=1)


@dataclass
class Observed:
    """Everything the checks read, taken once the system is quiet."""

    mirror: dict[str, Wanted]  # live, valid mirror rows, normalized
    other_mirror: int  # tombstoned (or unsendable) mirror rows
    links: dict[str, dict[str, Any]]
    ledger: list[dict[str, Any]]
    pending_changes: int
    contacts: list[dict[str, Any]]
    writes: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    profile: str = "reference"  # the wire profile the contacts are stored in
    # externalcontacts: syncd's organization links (CRM id -> record id), what the live
    # mirror calls each organization, and the emulator's organization records.
    organization_links: dict[str, str] = field(default_factory=dict)
    organization_names: dict[str, str | None] = field(default_factory=dict)
    organizations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def rules(self) -> ContentRules:
        return ContentRules(REGION, organizations_as_records=self.profile == "externalcontacts")


def observe(db: Database, emulator: Any) -> Observed:
    with db.read() as conn:
        keys = [r[0] for r in conn.execute(sa.select(crm_contacts.c.external_id))]
        rows = changes.load_mirror(conn, keys)
        link_rows = [dict(r._mapping) for r in conn.execute(sa.select(contact_links))]
        ledger_rows = [
            dict(r._mapping) for r in conn.execute(sa.select(ledger).order_by(ledger.c.id))
        ]
        pending = int(
            conn.execute(sa.select(sa.func.count()).select_from(mirror_changes)).scalar_one()
        )
        org_links = {
            org_id: link.genesys_id
            for org_id, link in organizations.all_links(conn).items()
            if link.state == "synced" and link.genesys_id
        }
        org_names = organizations.wanted_names(conn)
    profile = emulator.config.profile
    rules = ContentRules(REGION, organizations_as_records=profile == "externalcontacts")
    mirror: dict[str, Wanted] = {}
    for ext, row in rows.items():
        desired = desired_from_row(row, rules)
        if isinstance(desired, Wanted):
            mirror[ext] = desired
    return Observed(
        mirror=mirror,
        other_mirror=len(rows) - len(mirror),
        links={r["external_id"]: r for r in link_rows},
        ledger=ledger_rows,
        pending_changes=pending,
        contacts=emulator.contacts(),
        writes=emulator.writes(),
        requests=emulator.requests(),
        profile=profile,
        organization_links=org_links,
        organization_names=org_names,
        organizations=emulator.organizations() if profile == "externalcontacts" else [],
    )


def remote_view(contacts: Iterable[dict[str, Any]], obs: Observed) -> list[Remote]:
    """The emulator's store in canonical form (as the engine reads a listing). In the
    externalcontacts profile the externalId is the entry of syncd's ExternalSource: the
    source most entries name (syncd's is the only one these tests create); organization
    references read back through syncd's organization links."""
    docs = list(contacts)
    profile = get_profile(obs.profile)
    if isinstance(profile, ExternalContactsProfile):
        profile.bind_source(_our_source(docs))
        for org_id, genesys_id in obs.organization_links.items():
            profile.organizations.bind(org_id, genesys_id)
    return [canonical_remote(profile.parse_contact(doc), obs.rules) for doc in docs]


def _our_source(docs: Iterable[dict[str, Any]]) -> str:
    sources = Counter(
        str(item["externalSource"]["id"]) for doc in docs for item in doc.get("externalIds") or ()
    )
    return sources.most_common(1)[0][0] if sources else "none"


def external_ids(obs: Observed) -> list[str]:
    """The externalId of each stored contact that has one (syncd's source), in store order."""
    ids = [r.contact.external_id for r in remote_view(obs.contacts, obs)]
    return [ext for ext in ids if ext]


def _some(items: Iterable[Any], n: int = 8) -> str:
    items = list(items)
    more = f" (and {len(items) - n} more)" if len(items) > n else ""
    return ", ".join(str(i) for i in items[:n]) + more


# -- the checks ----------------------------------------------------------------------------------


def no_duplicates(obs: Observed) -> list[str]:
    """Invariant 1: no externalId appears twice in Genesys."""
    counts = Counter(external_ids(obs))
    dupes = sorted(ext for ext, n in counts.items() if n > 1)
    return [f"externalIds held by several contacts: {_some(dupes)}"] if dupes else []


def foreign_untouched(obs: Observed, foreign: dict[str, dict[str, Any]]) -> list[str]:
    """Invariant 3: contacts syncd does not own are exactly as seeded, and never written."""
    problems = []
    now = {c["id"]: c for c in obs.contacts}
    missing = sorted(set(foreign) - set(now))
    changed = sorted(gid for gid in foreign if gid in now and now[gid] != foreign[gid])
    written = sorted({w["id"] for w in obs.writes if w["id"] in foreign})
    if missing:
        problems.append(f"foreign contacts deleted: {_some(missing)}")
    if changed:
        problems.append(f"foreign contacts changed: {_some(changed)}")
    if written:
        problems.append(f"foreign contacts written to: {_some(written)}")
    return problems


def genesys_equals_mirror(obs: Observed, foreign: dict[str, dict[str, Any]]) -> list[str]:
    """Genesys holds exactly the live mirror, compared in canonical form (invariant 5's form)."""
    ours = [c for c in obs.contacts if c["id"] not in foreign]
    remote: dict[str, Remote] = {}
    for r in remote_view(ours, obs):
        remote[r.contact.external_id] = r
    problems = []
    missing = sorted(set(obs.mirror) - set(remote))
    extra = sorted(set(remote) - set(obs.mirror))
    differ = sorted(
        ext for ext in set(obs.mirror) & set(remote) if obs.mirror[ext].hash != remote[ext].hash
    )
    if missing:
        problems.append(f"{len(missing)} mirror contacts missing in Genesys: {_some(missing)}")
    if extra:
        problems.append(f"{len(extra)} Genesys contacts not in the live mirror: {_some(extra)}")
    for ext in differ[:5]:
        problems.append(
            f"{ext} differs: mirror {obs.mirror[ext].contact.content()} "
            f"!= Genesys {remote[ext].contact.content()}"
        )
    if len(differ) > 5:
        problems.append(f"... {len(differ)} contacts differ in all")
    return problems


def state_settled(obs: Observed, foreign: dict[str, dict[str, Any]]) -> list[str]:
    """Links, change log and ledger at rest: every link synced to what Genesys holds, nothing
    pending (invariant 2: every intent resolved), nothing rejected (all content is valid)."""
    problems = []
    by_ext = {r.contact.external_id: r for r in remote_view(obs.contacts, obs)}
    not_synced = sorted(e for e, link in obs.links.items() if link["state"] != "synced")
    if not_synced:
        states = Counter(obs.links[e]["state"] for e in not_synced)
        problems.append(f"links not synced ({dict(states)}): {_some(not_synced)}")
    unlinked = sorted(set(obs.mirror) - set(obs.links))
    if unlinked:
        problems.append(f"live mirror rows without a link: {_some(unlinked)}")
    stale = sorted(set(obs.links) - set(obs.mirror))
    if stale:
        problems.append(f"links left for contacts no longer in the live mirror: {_some(stale)}")
    wrong = sorted(
        ext
        for ext, link in obs.links.items()
        if ext in obs.mirror
        and (
            link["synced_hash"] != obs.mirror[ext].hash
            or ext not in by_ext
            or by_ext[ext].genesys_id != link["genesys_id"]
        )
    )
    if wrong:
        problems.append(f"links whose id or hash disagree with Genesys: {_some(wrong)}")
    if any(link["genesys_id"] in foreign for link in obs.links.values()):
        problems.append("a link claims a foreign contact")
    if obs.pending_changes:
        problems.append(f"{obs.pending_changes} mirror changes never consumed")
    pending = [r for r in obs.ledger if r["outcome"] == "pending"]
    if pending:
        problems.append(
            f"{len(pending)} ledger intents still pending: "
            f"{_some((r['op'], r['external_id']) for r in pending)}"
        )
    rejected = [r for r in obs.ledger if r["outcome"] == "rejected"]
    if rejected:
        problems.append(
            f"valid rows rejected: {_some((r['external_id'], r['error']) for r in rejected)}"
        )
    return problems


def no_churn(obs: Observed) -> list[str]:
    """Nobody edits Genesys by hand in these tests: a "drift" repair means syncd lost track of
    what it wrote, and wrote it again (invariant 5: an unchanged contact costs nothing)."""
    problems = []
    drift = [r["external_id"] for r in obs.ledger if r["op"] == "drift"]
    if drift:
        problems.append(f"drift repairs without any hand edit: {_some(drift)}")
    # Nor does anybody delete syncd's contacts: a re-creation, or an update answered 404,
    # means syncd wrote to (or adopted) a contact it had deleted itself.
    recreated = [r["external_id"] for r in obs.ledger if r["op"] == "recreate"]
    if recreated:
        problems.append(f"re-created without any hand delete: {_some(recreated)}")
    gone = [
        r["external_id"]
        for r in obs.ledger
        if r["op"] in UPDATE_OPS and r["outcome"] == "failed" and r["http_status"] == 404
    ]
    if gone:
        problems.append(f"updates of contacts already deleted: {_some(gone)}")
    return problems


def _stamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _write_kind(op: str) -> str:
    """The kind of an emulator write-log entry: a PATCH (``update``) and a PUT (``replace``)
    are both updates."""
    return "update" if op in ("update", "replace") else op


def unanswered_writes(obs: Observed) -> Counter[tuple[str, str]]:
    """Per (kind of write, contact id), the writes the emulator applied in a request whose
    answer it dropped (a PATCH or PUT, or one entity of a bulk request alike)."""
    dropped = {r["request"] for r in obs.requests if r["status"] == 0 and r["request"]}
    return Counter((_write_kind(w["op"]), w["id"]) for w in obs.writes if w["request"] in dropped)


def ledger_matches_writes(obs: Observed) -> list[str]:
    """Every write the emulator applied has a ledger row, written before it, with its outcome;
    and the ledger's ``ok`` rows add up to the write log. See the chaos test's docstring for
    why each equality is exact or bounded."""
    problems = []
    ok = [r for r in obs.ledger if r["outcome"] == "ok" and r["op"] in WRITE_OPS]
    applied: dict[str, Counter[str]] = {op: Counter() for op in ("create", "update", "delete")}
    for w in obs.writes:
        applied[_write_kind(w["op"])][w["id"]] += 1
    recorded = {
        "create": Counter(r["genesys_id"] for r in ok if r["op"] in CREATE_OPS),
        "update": Counter(r["genesys_id"] for r in ok if r["op"] in UPDATE_OPS),
        "delete": Counter(r["genesys_id"] for r in ok if r["op"] == "delete"),
    }
    # Creates and deletes: exactly one ok ledger row per applied write, and the reverse.
    for op in ("create", "delete"):
        if applied[op] != recorded[op]:
            only_w = sorted((applied[op] - recorded[op]).elements())
            only_l = sorted((recorded[op] - applied[op]).elements())
            problems.append(
                f"{op}: the write log and the ledger's ok rows differ: applied without an ok row "
                f"{_some(only_w)}; ok rows without an applied write {_some(only_l)}"
            )
        twice = sorted(gid for gid, n in applied[op].items() if n > 1)
        if twice:
            problems.append(f"{op} applied twice to the same contact: {_some(twice)}")
    # Updates: an update whose acknowledgement was lost (a PATCH, a PUT, or an entity of a
    # bulk update) is re-sent (it is idempotent), so one ok row may stand for the unanswered
    # write plus its re-send; never more, never fewer.
    unanswered = unanswered_writes(obs)
    for gid in sorted(set(applied["update"]) | set(recorded["update"])):
        n_applied, n_ok = applied["update"][gid], recorded["update"][gid]
        lost = unanswered["update", gid]
        if not n_ok <= n_applied <= n_ok + lost:
            problems.append(
                f"update of {gid}: {n_applied} applied, {n_ok} ok ledger rows, "
                f"{lost} applied without an answer"
            )
    # Creates applied without an answer are resolved later, by looking the contact up.
    lost_creates = sum(n for (kind, _), n in unanswered.items() if kind == "create")
    confirmed = sum(
        1 for r in ok if r["op"] in CREATE_OPS and "confirmed later" in (r["error"] or "")
    )
    if confirmed < lost_creates:
        problems.append(
            f"{lost_creates} creates were applied without an answer but only {confirmed} ok "
            "create rows were confirmed later"
        )
    # Intent before effect (invariant 2): each applied write has a ledger row for that
    # contact and kind of op, stamped no later than the write.
    rows_by_gid: dict[tuple[str, str], list[datetime]] = {}
    for r in obs.ledger:
        if r["op"] in WRITE_OPS and r["genesys_id"]:
            kind = "create" if r["op"] in CREATE_OPS else r["op"]
            kind = "update" if kind in UPDATE_OPS else kind
            rows_by_gid.setdefault((kind, r["genesys_id"]), []).append(_stamp(r["at"]))
    late = []
    for w in obs.writes:
        kind = _write_kind(w["op"])
        stamps = rows_by_gid.get((kind, w["id"]), [])
        if not any(s <= _stamp(w["at"]) + STAMP_TOLERANCE for s in stamps):
            late.append(f"{w['op']} {w['id']} at {w['at']}")
    if late:
        problems.append(f"applied writes without an earlier ledger intent: {_some(late)}")
    return problems


def organizations_match(obs: Observed) -> list[str]:
    """externalcontacts: one record per CRM organization (no duplicates), each organization
    the live mirror names linked to the record that claims it, named as the CRM names it,
    and created at most once."""
    if obs.profile != "externalcontacts":
        return []
    source = _our_source(obs.contacts)
    claims: dict[str, list[str]] = {}
    for record in obs.organizations:
        for item in record.get("externalIds") or ():
            if str(item["externalSource"]["id"]) == source:
                claims.setdefault(item["value"], []).append(record["id"])
    problems = [
        f"organization {org_id} has {len(ids)} records: {_some(ids)}"
        for org_id, ids in sorted(claims.items())
        if len(ids) > 1
    ]
    names = {record["id"]: record.get("name") for record in obs.organizations}
    for org_id, name in sorted(obs.organization_names.items()):
        genesys_id = obs.organization_links.get(org_id)
        if genesys_id is None:
            problems.append(f"organization {org_id} is named in the mirror but not linked")
        elif genesys_id not in claims.get(org_id, ()):
            problems.append(
                f"organization {org_id} is linked to {genesys_id}, which does not claim it"
            )
        elif name and names.get(genesys_id) != name:
            problems.append(
                f"organization {org_id} is {names.get(genesys_id)!r} in Genesys, "
                f"{name!r} in the CRM"
            )
    created = Counter(
        r["external_id"] for r in obs.ledger if r["op"] == "org_create" and r["outcome"] == "ok"
    )
    problems += [f"organization {o} was created {n} times" for o, n in created.items() if n > 1]
    return problems


def summary(obs: Observed) -> dict[str, Any]:
    """Figures for the test's report."""
    return {
        "mirror_live": len(obs.mirror),
        "mirror_other": obs.other_mirror,
        "genesys_contacts": len(obs.contacts),
        "writes_applied": dict(Counter(w["op"] for w in obs.writes)),
        "ledger": dict(Counter(f"{r['op']}/{r['outcome']}" for r in obs.ledger)),
        "lost_acks": sum(1 for r in obs.requests if r["status"] == 0),
        "api_requests": len(obs.requests),
        "5xx_answers": sum(1 for r in obs.requests if 500 <= r["status"] < 600),
        "organization_records": len(obs.organizations),
    }


def unowned(
    obs: Observed, foreign: dict[str, dict[str, Any]], preexisting: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The contacts syncd must not have touched: the foreign ones, and those that existed
    before syncd with a CRM externalId but were never adopted (their mirror row was
    tombstoned or deleted before any run looked)."""
    adopted = {r["genesys_id"] for r in obs.ledger if r["op"] == "adopt"}
    return {**foreign, **{g: doc for g, doc in preexisting.items() if g not in adopted}}


def check_all(
    obs: Observed, foreign: dict[str, dict[str, Any]], preexisting: dict[str, dict[str, Any]]
) -> list[str]:
    foreign = unowned(obs, foreign, preexisting)
    return [
        *no_duplicates(obs),
        *foreign_untouched(obs, foreign),
        *genesys_equals_mirror(obs, foreign),
        *state_settled(obs, foreign),
        *no_churn(obs),
        *ledger_matches_writes(obs),
        *organizations_match(obs),
    ]
