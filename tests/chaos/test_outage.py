"""Outages and lost credentials in the middle of a run, against a real `syncd run`.

- A total outage (every API and token request answered 503) starts while the daemon is
  PATCHing a wave of changes: the client's breaker must keep the request count bounded, the
  daemon must recover by itself once Genesys is back, and nothing may be lost.
- A second outage starts between runs: a fresh run holds the daemon's token (one login per
  daemon life), so it meets the outage at its first API request and waits it out under the
  same bounds, without a login.
- Tokens are revoked in the middle of a run: once (the client renews and goes on, one extra
  token request), then twice in a row (a token rejected right after its renewal is an
  authentication failure: the run fails with a readable error, the next run recovers).

The outage lasts 5 minutes in the full size, 20 seconds in the reduced one.
"""

from __future__ import annotations

import json
import random
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.store.schema import crm_contacts, sync_runs
from tests.chaos.harness import (
    Daemon,
    World,
    chaos_seed,
    chaos_size,
    eventually,
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

SIZE = chaos_size()
pytestmark = [pytest.mark.chaos, pytest.mark.timeout(SIZE.outage_seconds * 4 + 600)]

# Per-row backoff scaled to the outage, as the lease and the create grace (see FAST_ENGINE).
ENGINE = {
    "SYNCD_ENGINE_SYNC_LEASE_TTL": "3s",
    "SYNCD_ENGINE_SYNC_LEASE_RENEW": "0.5s",
    "SYNCD_ENGINE_BACKOFF_BASE": "2s",
    "SYNCD_ENGINE_BACKOFF_MAX": "10s",
    "SYNCD_ENGINE_LOOKUP_DELAY": "0.3s",
    "SYNCD_ENGINE_CREATE_GRACE": "3s",
}


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _requests_between(w: World, start: float, end: float) -> list[dict[str, Any]]:
    return [r for r in w.emulator.requests() if start <= _stamp(r["at"]) <= end]


def _setup(w: World, rng: random.Random, n: int) -> tuple[Daemon, list[dict[str, Any]]]:
    """A mirror of ``n`` contacts, all synced by a running daemon."""
    w.write_config(incremental_every="5s", max_in_flight=4)
    rows = [contact(rng, external_id(i)) for i in range(n)]
    db = w.database()
    with db.write() as conn:
        conn.execute(sa.insert(crm_contacts), rows)
    w.emulator.faults(latency_ms=40, jitter_ms=20)
    daemon = w.start_daemon("outage")
    wait_settled(db, daemon, SIZE.deadline)
    return daemon, rows


def _wave(w: World, tag: str) -> int:
    """Change every contact's last name (one PATCH each); returns the write-log size before."""
    before = len(w.emulator.writes())
    with w.database().write() as conn:
        conn.execute(
            sa.update(crm_contacts).values(last_name=crm_contacts.c.external_id + f"-{tag}")
        )
    return before


def _updates_since(w: World, before: int) -> int:
    return sum(1 for wr in w.emulator.writes()[before:] if wr["op"] == "update")


def _wait_outage_over(w: World, start: float) -> float:
    """Until the emulator's outage is over; returns its end (epoch seconds)."""
    eventually(
        lambda: not w.emulator.fault_settings()["outage"],
        SIZE.outage_seconds + 30,
        "the end of the outage",
        every=0.5,
    )
    return start + SIZE.outage_seconds


def _status(w: World) -> tuple[int, dict[str, Any]]:
    result = w.syncd("status", "--format", "json", "--stale-after", "30s")
    assert result.returncode in (0, 1), result.stdout + result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return result.returncode, data


def _runs(w: World) -> list[dict[str, Any]]:
    result = w.syncd("runs", "--format", "json", "--limit", "0")
    assert result.returncode == 0, result.stderr
    runs: list[dict[str, Any]] = json.loads(result.stdout)
    return runs


def _books_balance(w: World) -> None:
    obs = observe(w.database(), w.emulator)
    problems = [
        *no_duplicates(obs),
        *genesys_equals_mirror(obs, {}),
        *state_settled(obs, {}),
        *ledger_matches_writes(obs),
    ]
    assert not problems, "\n".join(problems)


def _failed_runs(w: World, since_id: int = 0) -> list[dict[str, Any]]:
    with w.database().read() as conn:
        rows = conn.execute(
            sa.select(sync_runs)
            .where(sync_runs.c.status == "failed", sync_runs.c.id > since_id)
            .order_by(sync_runs.c.id)
        ).all()
    return [dict(r._mapping) for r in rows]


def _last_run_id(w: World) -> int:
    with w.database().read() as conn:
        return int(conn.execute(sa.select(sa.func.max(sync_runs.c.id))).scalar_one() or 0)


def _breaker_bound(seconds: float, in_flight: int) -> int:
    """Requests a run in flight may send during an outage of ``seconds``: the requests in
    flight when it starts (each fails once), then the breaker's probes, one at a time, its
    pauses doubling from 2 s to 30 s (at least 22.5 s with jitter): 5 probes to reach the
    cap, then one per 22.5 s. Nothing in it grows with the number of rows waiting."""
    return in_flight + 5 + int(seconds / 22.5) + 3


def _runs_bound(runs: int, seconds: float, in_flight: int) -> int:
    """Requests fresh runs may send during an outage: each meets it at its token request and
    fails after one fetch (5 attempts), plus the probes of a run that had its token."""
    return runs * 5 + _breaker_bound(seconds, in_flight)


def test_total_outage_mid_run_and_between_runs(tmp_path: Path) -> None:
    """Bounded requests during a total outage, recovery without help, a clear status, and
    nothing lost: every row of both waves reaches Genesys exactly once."""
    seed = chaos_seed("outage")
    rng = random.Random(seed)
    n = SIZE.outage_contacts
    with world(tmp_path, seed=seed, engine_env=ENGINE) as w:
        daemon, _rows = _setup(w, rng, n)

        # 1. Mid-run: Genesys goes away while the daemon PATCHes a wave of changes.
        first = _wave(w, "one")
        eventually(lambda: _updates_since(w, first) >= n // 5, SIZE.deadline, "the wave to start")
        start = time.time()
        w.emulator.faults(outage_seconds=SIZE.outage_seconds)
        code, status = _status(w)  # while it lasts: the run in flight, waiting
        assert status["current_run"] is not None, status
        end = _wait_outage_over(w, start)
        mid_run = len(_requests_between(w, start, end))
        recovered = wait_settled(w.database(), daemon, SIZE.deadline)
        assert _updates_since(w, first) == n  # the whole first wave, once each

        # 2. Between runs: a fresh run holds the daemon's token (one login per daemon life,
        # not one per run), so it meets the outage at its first API request, waits it out
        # under the breaker like a run in flight, and needs no login when Genesys is back.
        last = _last_run_id(w)
        tokens = _token_requests(w)
        second = _wave(w, "two")
        start = time.time()
        w.emulator.faults(outage_seconds=SIZE.outage_seconds)
        end = _wait_outage_over(w, start)
        between = len(_requests_between(w, start, end))
        runs_during = len([r for r in _runs(w) if r["id"] > last])
        recovered_2 = wait_settled(w.database(), daemon, SIZE.deadline)
        assert _updates_since(w, second) == n  # the whole second wave, once each
        assert _token_requests(w) == tokens  # the daemon's token outlived the outage

        print(
            f"[chaos] outage {SIZE.outage_seconds:g}s, {n} contacts: {mid_run} requests "
            f"during it mid-run (bound {_breaker_bound(SIZE.outage_seconds, 4)}), {between} "
            f"between runs over {runs_during} runs (bound "
            f"{_runs_bound(runs_during, SIZE.outage_seconds, 4)}); settled {recovered:.1f}s "
            f"and {recovered_2:.1f}s after it ended"
        )
        assert mid_run <= _breaker_bound(SIZE.outage_seconds, 4)
        assert between <= _runs_bound(runs_during, SIZE.outage_seconds, 4)
        _books_balance(w)
        code, status = _status(w)
        assert code == 0, status["health"]
        assert daemon.terminate() == 0


def _token_requests(w: World) -> int:
    return sum(1 for r in w.emulator.requests() if r["route"] == "/oauth/token")


def test_revoked_token_mid_run(tmp_path: Path) -> None:
    """A revoked token costs one renewal and nothing else; a token revoked again right
    after its renewal fails the run with a readable authentication error, and the next
    run recovers. Nothing is lost either way."""
    seed = chaos_seed("revoked token")
    rng = random.Random(seed)
    n = SIZE.outage_contacts
    with world(tmp_path, seed=seed, engine_env=ENGINE) as w:
        daemon, _rows = _setup(w, rng, n)

        # 1. Revoked once, mid-run: one token request more, the run goes on.
        last = _last_run_id(w)
        first = _wave(w, "one")
        eventually(lambda: _updates_since(w, first) >= n // 5, SIZE.deadline, "the wave to start")
        tokens = _token_requests(w)
        assert w.emulator.revoke() >= 1
        wait_settled(w.database(), daemon, SIZE.deadline)
        assert _token_requests(w) == tokens + 1
        assert _failed_runs(w, last) == []
        assert _updates_since(w, first) == n

        # 2. Revoked again right after the renewal: the client must not loop on tokens.
        last = _last_run_id(w)
        second = _wave(w, "two")
        eventually(lambda: _updates_since(w, second) >= n // 10, SIZE.deadline, "the wave")
        tokens = _token_requests(w)
        w.emulator.revoke()
        eventually(lambda: _token_requests(w) > tokens, SIZE.deadline, "the renewal", every=0.01)
        w.emulator.revoke()
        [failed, *_] = eventually(lambda: _failed_runs(w, last), SIZE.deadline, "a failed run")
        # Either the renewed token was refused by a request that had renewed already, or a
        # request asked for another renewal too soon: both say what happened and what to check.
        assert failed["error"].startswith("authentication failed: HTTP 401: "), failed
        assert "renewal" in failed["error"], failed
        wait_settled(w.database(), daemon, SIZE.deadline)
        assert _updates_since(w, second) == n
        failed_list = w.syncd("runs", "--status", "failed", "--format", "json")
        assert [r["error"] for r in json.loads(failed_list.stdout)] == [failed["error"]]
        _books_balance(w)
        code, status = _status(w)
        assert code == 0, status["health"]
        assert daemon.terminate() == 0
