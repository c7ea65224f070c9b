"""Chaos: a real `syncd run` killed with SIGKILL over and over, against a faulty emulator,
while the CRM mirror keeps changing under it; then the books must balance.

One test, two sizes (``SYNCD_CHAOS_SIZE``, see ``docs/chaos.md``); the seed is printed at the
start and ``SYNCD_CHAOS_SEED`` replays it. The seed drives the mirror's content and edits, the
kill moments and the emulator's fault streams; process scheduling is not seeded, so a replay
takes the same decisions at roughly, not exactly, the same instants.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.store.db import Database
from syncd.store.schema import sync_runs
from tests.chaos.harness import (
    Size,
    World,
    chaos_seed,
    chaos_size,
    wait_settled,
    world,
)
from tests.chaos.invariants import check_all, observe, summary
from tests.chaos.workload import MirrorWriter, contact, external_id, write_jsonl
from tests.support.emulator import NO_FAULTS

SIZE = chaos_size()
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(SIZE.deadline * 10)]

# The faults: 5% of writes answered 500/502/503 (a 500 or 502 after a POST leaves
# its outcome unknown), 2% of applied writes never acknowledged, latency with jitter, search
# lagging behind the store; plus 1% of reads failing, which the client retries.
CHAOS_FAULTS: dict[str, Any] = {
    "write_error_rate": 0.05,
    "error_rate": 0.01,
    "error_statuses": [500, 502, 503],
    "lost_ack_rate": 0.02,
    "latency_ms": 5,
    "jitter_ms": 40,
    "search_lag_ms": 300,
}


def _seed_genesys(
    w: World, rng: random.Random, size: Size, mirror: list[dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Contacts that exist before syncd: foreign ones (no externalId, or one the CRM does not
    have), which must never be touched, and some of the mirror's, which are adopted unless
    the CRM deletes them first (then they are not syncd's either). Returns both, by id."""
    docs: list[dict[str, Any]] = []
    for i in range(size.foreign):
        docs.append({"firstName": "Walk", "lastName": f"In-{i}", "email": f"walkin{i}@example.org"})
        docs.append(
            {
                "firstName": "Partner",
                "lastName": f"P-{i}",
                "externalId": f"FOREIGN-{i:04}",
                "phoneNumbers": [{"number": "+14155550199", "type": "WORK"}],
            }
        )
    for row in rng.sample(mirror, size.preexisting):
        docs.append(
            {
                "firstName": row["first_name"],
                "lastName": "Before-Syncd",  # adopted, then PATCHed to the CRM's value
                "externalId": row["external_id"],
            }
        )
    w.emulator.seed(docs)
    stored = w.emulator.contacts()
    ours = {c["id"]: c for c in stored if str(c.get("externalId", "")).startswith("CRM-")}
    return {c["id"]: c for c in stored if c["id"] not in ours}, ours


def _kill_repeatedly(w: World, rng: random.Random, size: Size) -> list[str]:
    """Start the daemon and SIGKILL it at a random moment, ``size.kills`` times."""
    moments = []
    for n in range(size.kills):
        daemon = w.start_daemon("chaos")
        if rng.random() < 0.15:  # during start-up, leader election or the wait for the lease
            daemon.wait_for("daemon.started", timeout=size.deadline)
            delay, where = rng.uniform(0, 1.0), "after start-up"
        else:  # during a run (resolving, listing, writing) or between two runs
            runs = rng.choice([1, 1, 2, 3, 5])
            daemon.wait_for("sync.run.started", timeout=size.deadline, count=runs)
            delay, where = rng.uniform(0, size.max_kill_delay), f"after run {runs} started"
        time.sleep(delay)  # the random instant of the crash is the point of the test
        daemon.kill()
        moments.append(f"kill {n + 1}: {delay:.2f}s {where}")
    return moments


def _runs(db: Database) -> dict[str, int]:
    with db.read() as conn:
        rows = conn.execute(
            sa.select(sync_runs.c.kind, sync_runs.c.status, sa.func.count()).group_by(
                sync_runs.c.kind, sync_runs.c.status
            )
        ).all()
    return {f"{kind}/{status}": int(n) for kind, status, n in rows}


def test_sigkill_faults_and_mirror_churn_then_the_books_balance(tmp_path: Path) -> None:
    """After the chaos, faults off and a fault-free full reconcile, everything agrees.

    What is asserted (``tests/chaos/invariants.py``), and why each equality is exact or not:

    - **Genesys equals the mirror**: every live mirror row, normalized
      (``desired_from_row``), has exactly one Genesys contact whose canonical form
      (``normalize_remote`` through ``canonical_remote``) has the same content hash, and
      Genesys holds nothing else but the foreign contacts. No externalId appears twice.
    - **Foreign contacts untouched**: the contacts seeded without an externalId or with one
      the CRM never had are byte-for-byte as seeded, and the write log never names them.
    - **At rest**: every link ``synced`` with the mirror's hash and the Genesys id that holds
      it, no link for a contact that is not live, the change log empty, no ledger intent
      ``pending``, nothing ``rejected`` (every value written is valid).
    - **No churn**: no ``drift`` repair, no ``recreate``, no update answered 404 (nobody edits
      or deletes Genesys by hand here, so each would mean syncd lost track of its own
      writes), and the final full reconcile writes nothing: the incremental runs converged.
    - **Ledger against the emulator's write log** (``GET /__emulator/writes``, one entry per
      write the server *applied*, lost acknowledgements included):

      * *creates*: the multiset of contact ids created equals the multiset of Genesys ids on
        ledger rows ``create``/``recreate`` with outcome ``ok``, exactly. A POST is never
        re-sent (invariant 1), so one applied create is one intent; an unanswered POST (lost
        acknowledgement, 500/502, or a kill after the POST) stays pending and is settled
        ``ok`` when the lookup finds the contact ("outcome confirmed later"; there are at
        least as many of those as creates applied in a request whose answer was dropped),
        or ``failed`` ("not applied") when it was not, in which case the write log has no
        entry for it.
      * *deletes*: the same exact equality with ledger ``delete``/``ok`` rows. A re-sent
        DELETE after a lost acknowledgement answers 404, which the server does not apply
        again, and the ledger still records one ``ok`` row ("already gone").
      * *updates*: per contact, ``ok <= applied <= ok + lost`` where ``ok`` counts ledger
        ``update``/``drift`` rows with outcome ``ok`` and ``lost`` the updates of that contact
        the emulator applied without answering (a PATCH, a PUT, or an entity of a bulk
        update: the write log names the request that applied each write). Updates are
        idempotent, so the client re-sends one after a dropped connection: the server then
        applies it twice for one intent.
        An exact equality would have to know which re-sends happened before a kill; the
        bound is what can be known, and it is tight when no acknowledgement was lost.
      * *intent before effect* (invariant 2): every applied write has a ledger row for the
        same contact and kind of operation stamped no later than the write (to the
        emulator's millisecond), i.e. the intent was committed before the call.
    """
    seed = chaos_seed("kill -9 chaos")
    rng = random.Random(seed)
    began = time.monotonic()
    with world(tmp_path, seed=seed) as w:
        w.write_config(incremental_every="1s", full_cron="* * * * *")
        db = w.database()
        mirror = [contact(rng, external_id(i)) for i in range(SIZE.contacts)]
        imported = w.syncd("mirror", "import", str(write_jsonl(tmp_path / "crm.jsonl", mirror)))
        assert imported.returncode == 0, imported.stdout + imported.stderr
        foreign, preexisting = _seed_genesys(w, rng, SIZE, mirror)
        w.emulator.faults(**CHAOS_FAULTS, seed=seed)

        def run_import(path: Path, snapshot: bool) -> int:
            args = ["mirror", "import", str(path), *(["--snapshot"] if snapshot else [])]
            return w.syncd(*args).returncode

        writer = MirrorWriter(
            db,
            random.Random(rng.random()),
            {r["external_id"]: r for r in mirror},
            SIZE.contacts,
            every=SIZE.edit_every,
            import_every=SIZE.import_every,
            run_import=run_import,
            tmp=tmp_path,
        )
        writer.start()
        try:
            moments = _kill_repeatedly(w, rng, SIZE)
        finally:
            writer.stop()
        chaos_stats = w.emulator.stats()

        # Recovery: faults off, one daemon settles everything, then a full reconcile.
        w.emulator.faults(**NO_FAULTS)
        final = w.start_daemon("final")
        wait_settled(db, final, SIZE.deadline)
        full = w.syncd("resync", "--full", "--wait", "--timeout", str(SIZE.deadline))
        assert full.returncode == 0, full.stdout + full.stderr + final.tail()
        assert final.terminate() == 0, final.tail()

        obs = observe(db, w.emulator)
        problems = check_all(obs, foreign, preexisting)
        with db.read() as conn:
            last = conn.execute(
                sa.select(sync_runs)
                .where(sync_runs.c.kind == "full")
                .order_by(sync_runs.c.id.desc())
            ).first()
        assert last is not None
        assert last.status == "succeeded"
        if last.created or last.updated or last.deleted:  # the incremental runs had converged
            problems.append(
                f"the final full reconcile still wrote: created {last.created}, "
                f"updated {last.updated}, deleted {last.deleted}"
            )
        report = {
            "seed": seed,
            "size": SIZE.name,
            "kills": len(moments),
            "edits": writer.counts,
            "runs": _runs(db),
            "faults_injected": chaos_stats["faults"],
            **summary(obs),
            "seconds": round(time.monotonic() - began, 1),
        }
        print("[chaos] " + "\n[chaos] ".join([*moments, *(f"{k}: {v}" for k, v in report.items())]))
        assert not problems, f"seed {seed}:\n" + "\n".join(problems)
