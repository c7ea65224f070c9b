"""Convergence in one run: 8 SIGKILLs of running `syncd sync` processes against a faulty
emulator, then one fault-free `syncd sync --full` must leave nothing missing or doubled.

Creates whose outcome the kills and the lost answers left unknown are settled by that one
full run: found in its listing (linked), or proven absent by it (sent again). The grace
period of the lookup path is the production one (10 minutes), so a test that passes cannot
be leaning on it. Reference profile: its listing proves absence (docs/engine.md).
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.store.db import Database
from syncd.store.schema import ledger, sync_runs
from tests.chaos.harness import (
    FAST_ENGINE,
    World,
    chaos_seed,
    chaos_size,
    eventually,
    own_postgres_database,
    world,
)
from tests.chaos.invariants import check_all, observe, summary
from tests.chaos.workload import contact, external_id, write_jsonl
from tests.conftest import require_postgres
from tests.support.emulator import NO_FAULTS

SIZE = chaos_size()
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(SIZE.deadline * 6)]

KILLS = 8
# 5% of writes answered 503 (not applied: the client retries), 3% of applied writes never
# answered (the outcome of a create is then unknown), latency with jitter, a lagging search.
FAULTS: dict[str, Any] = {
    "write_error_rate": 0.05,
    "error_statuses": [503],
    "lost_ack_rate": 0.03,
    "latency_ms": 5,
    "jitter_ms": 40,
    "search_lag_ms": 300,
}


CONTACTS = SIZE.contacts * 8 // 3  # 800 reduced: every kill lands in a run with work
ENGINE = {**FAST_ENGINE, "SYNCD_ENGINE_CREATE_GRACE": "10m"}


def _start(w: World, rng: random.Random, tmp: Path) -> dict[str, dict[str, Any]]:
    mirror = {external_id(i): contact(rng, external_id(i)) for i in range(CONTACTS)}
    first = write_jsonl(tmp / "crm-0.jsonl", list(mirror.values()))
    assert w.syncd("mirror", "import", str(first)).returncode == 0
    return mirror


def _unknown_creates(db: Database) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    ledger.c.outcome == "pending", ledger.c.op.in_(("create", "recreate"))
                )
            ).scalar_one()
        )


def _books_balance(w: World, seed: int, **figures: Any) -> None:
    """Every chaos check, and the newest full run ``succeeded``."""
    db = w.database()
    obs = observe(db, w.emulator)
    problems = check_all(obs, {}, {})
    with db.read() as conn:
        last = conn.execute(
            sa.select(sync_runs).where(sync_runs.c.kind == "full").order_by(sync_runs.c.id.desc())
        ).first()
    assert last is not None
    assert last.status == "succeeded", last.error
    report = {
        "seed": seed,
        **figures,
        "full_sync": f"created {last.created}, updated {last.updated}, api {last.api_calls}",
        **summary(obs),
    }
    print("[chaos] " + "\n[chaos] ".join(f"{k}: {v}" for k, v in report.items()))
    assert not problems, f"seed {seed}:\n" + "\n".join(problems)


def test_sigkilled_syncs_then_one_full_sync_converges(tmp_path: Path) -> None:
    seed = chaos_seed("converge in one full sync")
    rng = random.Random(seed)
    with world(tmp_path, seed=seed, engine_env=ENGINE) as w:
        mirror = _start(w, rng, tmp_path)
        w.emulator.faults(**FAULTS, seed=seed)
        killed = 0
        for n in range(KILLS * 3):
            if killed == KILLS:
                break
            if n:  # the CRM moves on between runs: some edits, some new rows
                for ext in rng.sample(sorted(mirror), 40):
                    mirror[ext] = contact(rng, ext)
                for i in range(len(mirror), len(mirror) + 20):
                    mirror[external_id(i)] = contact(rng, external_id(i))
                edits = write_jsonl(tmp_path / f"crm-{n}.jsonl", list(mirror.values()))
                assert w.syncd("mirror", "import", str(edits)).returncode == 0
            before = _ledger_rows(w.database())
            sync = w.start(f"sync-{n}", "sync", *(["--full"] if n % 3 == 2 else []))
            sync.wait_for("sync.run.started", timeout=SIZE.deadline)
            # Once it writes (or has finished), at a random instant: mid-write, most times.
            eventually(
                lambda: _ledger_rows(w.database()) > before + 4 or not sync.alive(),  # noqa: B023
                SIZE.deadline,
                "the sync's first writes",
                every=0.02,
            )
            time.sleep(rng.uniform(0, 0.6))  # the random instant of the crash
            if sync.alive():
                killed += 1
            sync.kill()
        assert killed == KILLS, f"only {killed} syncs were still running when killed"
        unknown = _unknown_creates(w.database())
        # ~3% of some hundreds of creates lost their answer: zero would mean the faults are off
        assert unknown > 0, "no create outcome was left unknown: the test proves nothing"
        w.emulator.faults(**NO_FAULTS)
        full = w.syncd("sync", "--full", timeout=SIZE.deadline)
        assert full.returncode == 0, full.stdout + full.stderr[-4000:]
        _books_balance(w, seed, kills=killed, unknown_creates_before_the_full_sync=unknown)


@pytest.mark.postgres
def test_postgres_leader_killed_then_the_standby_converges_in_one_full_run(
    tmp_path: Path,
) -> None:
    """Two daemons on one PostgreSQL database; the leader is SIGKILLed while it creates, the
    standby takes over, and one full reconcile it runs (``resync --full``) converges."""
    base = require_postgres()
    seed = chaos_seed("postgres leader kill -9, then one full run")
    rng = random.Random(seed)
    with (
        own_postgres_database(base) as (url, _admin),
        world(tmp_path, seed=seed, db_url=url, engine_env=ENGINE) as w,
    ):
        _start(w, rng, tmp_path)
        w.emulator.faults(**FAULTS, seed=seed)
        leader = w.start_daemon("leader")
        leader.wait_for("daemon.leader.elected", timeout=SIZE.deadline)
        standby = w.start_daemon("standby")
        standby.wait_for("daemon.standby", timeout=SIZE.deadline)
        db = w.database()
        eventually(lambda: _ledger_rows(db) >= CONTACTS // 4, SIZE.deadline, "creates under way")
        leader.kill()  # mid-run: creates in flight
        standby.wait_for("daemon.leader.elected", timeout=SIZE.deadline)
        unknown = _unknown_creates(db)
        w.emulator.faults(**NO_FAULTS)
        full = w.syncd("resync", "--full", "--wait", "--timeout", str(SIZE.deadline))
        assert full.returncode == 0, full.stdout + full.stderr[-4000:] + standby.tail()
        assert standby.alive(), standby.tail()
        _books_balance(w, seed, unknown_creates_at_the_kill=unknown)
        assert standby.terminate() == 0, standby.tail()


def _ledger_rows(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar_one())
