"""The database fails under a running `syncd run`: the run fails or pauses cleanly, the
next run completes, and no ledger or link row is lost (intents stay pending, then resolve).

- SQLite: a second process holds ``BEGIN IMMEDIATE`` for longer than the busy timeout
  (``[database] busy_timeout = "1s"``) while the daemon PATCHes a wave of changes.
- PostgreSQL: a database of its own (created and dropped by the test, so the shared server
  and the other tests using it are never disturbed) refuses connections for a few seconds
  and every backend of the daemon is terminated (``pg_terminate_backend``), as a restart
  would; twice, a second apart.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from syncd.store.schema import crm_contacts, sync_runs
from tests.chaos.harness import (
    ROOT,
    World,
    chaos_seed,
    chaos_size,
    eventually,
    own_postgres_database,
    wait_settled,
    world,
)
from tests.chaos.invariants import (
    genesys_equals_mirror,
    ledger_matches_writes,
    no_duplicates,
    observe,
    state_settled,
)
from tests.chaos.workload import contact, external_id
from tests.conftest import require_postgres

SIZE = chaos_size()
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(SIZE.deadline * 6)]
N = 200 if SIZE.name == "reduced" else 1000

ENGINE = {
    "SYNCD_ENGINE_SYNC_LEASE_TTL": "3s",
    "SYNCD_ENGINE_SYNC_LEASE_RENEW": "0.5s",
    "SYNCD_ENGINE_BACKOFF_BASE": "1s",
    "SYNCD_ENGINE_BACKOFF_MAX": "5s",
    "SYNCD_ENGINE_LOOKUP_DELAY": "0.3s",
    "SYNCD_ENGINE_CREATE_GRACE": "3s",
}

# A second writer: takes SQLite's write lock, says so, holds it, then lets go.
LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


def _setup(w: World, rng: random.Random, *, busy_timeout: str = "30s") -> None:
    w.write_config(incremental_every="2s", max_in_flight=4, busy_timeout=busy_timeout)
    rows = [contact(rng, external_id(i)) for i in range(N)]
    with w.database().write() as conn:
        conn.execute(sa.insert(crm_contacts), rows)
    w.emulator.faults(latency_ms=40, jitter_ms=20, lost_ack_rate=0.02, seed=rng.randrange(1000))


def _wave(w: World, tag: str) -> int:
    before = len(w.emulator.writes())
    with w.database().write() as conn:
        conn.execute(
            sa.update(crm_contacts).values(last_name=crm_contacts.c.external_id + f"-{tag}")
        )
    return before


def _updates_since(w: World, before: int) -> int:
    return sum(1 for wr in w.emulator.writes()[before:] if wr["op"] == "update")


def _runs_after(w: World, run_id: int) -> list[dict[str, object]]:
    with w.database().read() as conn:
        rows = conn.execute(sa.select(sync_runs).where(sync_runs.c.id > run_id)).all()
    return [dict(r._mapping) for r in rows]


def _last_run_id(w: World) -> int:
    with w.database().read() as conn:
        return int(conn.execute(sa.select(sa.func.max(sync_runs.c.id))).scalar_one() or 0)


def _check(w: World, first_run: int, wave: int) -> list[dict[str, object]]:
    """Everything after the fault: every row of the wave in Genesys once, the books balance,
    and no run left looking as if it were still going."""
    assert _updates_since(w, wave) >= N  # (re-sent PATCHes after lost acks may add some)
    obs = observe(w.database(), w.emulator)
    problems = [
        *no_duplicates(obs),
        *genesys_equals_mirror(obs, {}),
        *state_settled(obs, {}),
        *ledger_matches_writes(obs),
    ]
    assert not problems, "\n".join(problems)
    runs = _runs_after(w, first_run)
    assert all(r["status"] != "running" for r in runs), runs
    return runs


def test_sqlite_locked_by_another_writer_mid_run(tmp_path: Path) -> None:
    seed = chaos_seed("sqlite locked")
    rng = random.Random(seed)
    with world(tmp_path, seed=seed, engine_env=ENGINE) as w:
        _setup(w, rng, busy_timeout="1s")
        daemon = w.start_daemon("locked")
        wait_settled(w.database(), daemon, SIZE.deadline)
        for attempt in range(3):  # three locks, each in the middle of a wave
            last = _last_run_id(w)
            wave = _wave(w, f"w{attempt}")
            eventually(lambda: _updates_since(w, wave) >= N // 5, SIZE.deadline, "the wave")  # noqa: B023
            holder = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    LOCK_HOLDER,
                    str(tmp_path / "syncd.db"),
                    ("3", "12", "1.5")[attempt],
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
            w.children.append(holder)
            try:
                assert holder.stdout is not None
                assert holder.stdout.readline().strip() == "locked"
                assert holder.wait(timeout=30) == 0
            finally:
                if holder.poll() is None:
                    holder.kill()
                    holder.wait(timeout=10)
                if holder.stdout is not None:
                    holder.stdout.close()
                w.children.remove(holder)
            wait_settled(w.database(), daemon, SIZE.deadline)
            runs = _check(w, last, wave)
            failed = [r for r in runs if r["status"] == "failed"]
            for run in failed:  # a run that failed says why, in words
                assert "database is locked" in str(run["error"]), run
            print(
                f"[chaos] sqlite lock {attempt + 1}: runs {[(r['id'], r['status']) for r in runs]}"
            )
        assert daemon.alive()
        assert daemon.terminate() == 0


def _outage(admin: sa.Engine, name: str, seconds: float) -> int:
    """Refuse connections to ``name`` and cut the ones open; back after ``seconds``."""
    with admin.connect() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            killed = conn.exec_driver_sql(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            ).scalar_one()
            time.sleep(seconds)  # the length of the outage is the point
        finally:
            conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    return int(killed)


def test_postgres_unavailable_mid_run(tmp_path: Path) -> None:
    base = require_postgres()
    seed = chaos_seed("postgres unavailable")
    rng = random.Random(seed)
    with own_postgres_database(base) as (url, admin):
        name = make_url(url).database
        assert name is not None
        with world(tmp_path, seed=seed, db_url=url, engine_env=ENGINE) as w:
            _setup(w, rng)
            daemon = w.start_daemon("postgres")
            wait_settled(w.database(), daemon, SIZE.deadline)
            for attempt in range(2):
                last = _last_run_id(w)
                wave = _wave(w, f"w{attempt}")
                eventually(lambda: _updates_since(w, wave) >= N // 5, SIZE.deadline, "the wave")  # noqa: B023
                w.database().dispose()  # the test's own connections go too
                killed = _outage(admin, name, 3)
                assert killed >= 1
                wait_settled(w.database(), daemon, SIZE.deadline)
                runs = _check(w, last, wave)
                print(
                    f"[chaos] postgres outage {attempt + 1}: {killed} backends cut; runs "
                    f"{[(r['id'], r['status'], r['error']) for r in runs]}"
                )
            assert daemon.alive()
            assert daemon.terminate() == 0
