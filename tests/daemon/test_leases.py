"""Named leases on both backends: the locks behind invariant 7 (one writer)."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.errors import LockHeldError
from syncd.store import leases
from syncd.store.db import Database

ROOT = Path(__file__).resolve().parents[2]
TTL = timedelta(seconds=10)
RACERS = 5
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def test_acquire_free_lease(db: Database) -> None:
    lease = leases.acquire(db, "sync", "a", TTL, now=T0)
    assert lease is not None
    assert lease.holder == "a"
    assert lease.fencing_token == 1
    assert lease.acquired_at == T0
    assert lease.expires_at == T0 + TTL


def test_held_lease_is_refused(db: Database) -> None:
    assert leases.acquire(db, "sync", "a", TTL, now=T0)
    assert leases.acquire(db, "sync", "b", TTL, now=T0 + timedelta(seconds=5)) is None


def test_reacquire_by_holder_keeps_token(db: Database) -> None:
    first = leases.acquire(db, "sync", "a", TTL, now=T0)
    again = leases.acquire(db, "sync", "a", TTL, now=T0 + timedelta(seconds=5))
    assert first
    assert again
    assert again.fencing_token == first.fencing_token
    assert again.acquired_at == T0
    assert again.expires_at == T0 + timedelta(seconds=5) + TTL


def test_expired_lease_is_taken_over_with_a_new_token(db: Database) -> None:
    old = leases.acquire(db, "sync", "a", TTL, now=T0)
    assert old
    new = leases.acquire(db, "sync", "b", TTL, now=T0 + TTL)
    assert new is not None
    assert new.fencing_token == old.fencing_token + 1
    # The deposed holder learns it on its next renewal, and cannot release the new lease.
    assert leases.renew(db, old, now=T0 + TTL) is False
    assert old.lost.is_set()
    leases.release(db, old)
    info = leases.current(db, "sync")
    assert info
    assert info.holder == "b"


def test_renew_extends_and_keeps_others_out(db: Database) -> None:
    lease = leases.acquire(db, "sync", "a", TTL, now=T0)
    assert lease
    assert leases.renew(db, lease, now=T0 + timedelta(seconds=8))
    assert lease.expires_at == T0 + timedelta(seconds=18)
    assert leases.acquire(db, "sync", "b", TTL, now=T0 + timedelta(seconds=12)) is None
    assert leases.acquire(db, "sync", "b", TTL, now=T0 + timedelta(seconds=18)) is not None


def test_renew_after_expiry_succeeds_when_nobody_took_it(db: Database) -> None:
    lease = leases.acquire(db, "sync", "a", TTL, now=T0)
    assert lease
    assert leases.renew(db, lease, now=T0 + timedelta(seconds=30))
    assert not lease.lost.is_set()


def test_release_frees_and_next_holder_gets_a_new_token(db: Database) -> None:
    lease = leases.acquire(db, "sync", "a", TTL, now=T0)
    assert lease
    leases.release(db, lease)
    assert lease.lost.is_set()
    info = leases.current(db, "sync")
    assert info
    assert info.holder is None
    assert not info.is_held(T0)
    nxt = leases.acquire(db, "sync", "b", TTL, now=T0 + timedelta(seconds=1))
    assert nxt
    assert nxt.fencing_token == lease.fencing_token + 1


def test_leases_are_independent_by_name(db: Database) -> None:
    assert leases.acquire(db, "sync", "a", TTL, now=T0)
    assert leases.acquire(db, "leader", "b", TTL, now=T0)
    assert leases.current(db, "nothing") is None


def test_real_clock_is_used_without_now(db: Database) -> None:
    lease = leases.acquire(db, "sync", "a", timedelta(seconds=30))
    assert lease
    remaining = lease.expires_at - datetime.now(UTC)
    assert timedelta(seconds=25) < remaining <= timedelta(seconds=31)
    assert leases.renew(db, lease)


def test_hold_raises_a_clear_message_when_taken(db: Database) -> None:
    with leases.hold(db, "sync", "daemon@host:1", TTL) as lease:
        assert lease.fencing_token == 1
        with (
            pytest.raises(LockHeldError, match=r"held by daemon@host:1 since .* until ") as info,
            leases.hold(db, "sync", "sync@host:2", TTL),
        ):
            pass  # pragma: no cover
        assert "sync run is already in progress" in str(info.value)
    # Released on exit: the next holder gets it at once.
    with leases.hold(db, "sync", "sync@host:2", TTL) as lease:
        assert lease.fencing_token == 2


def test_hold_releases_when_the_block_raises(db: Database) -> None:
    with pytest.raises(RuntimeError), leases.hold(db, "sync", "a", TTL):
        raise RuntimeError("boom")
    info = leases.current(db, "sync")
    assert info
    assert info.holder is None


def test_hold_renews_in_the_background(db: Database) -> None:
    ttl = timedelta(seconds=1)
    with leases.hold(db, "sync", "a", ttl, renew_every=timedelta(seconds=0.2)) as lease:
        first_expiry = lease.expires_at
        deadline = time.monotonic() + 5
        while lease.expires_at == first_expiry and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lease.expires_at > first_expiry
        time.sleep(1.2)  # longer than the TTL: still ours because it was renewed
        assert leases.acquire(db, "sync", "b", ttl) is None
        assert not lease.lost.is_set()


def test_background_renewal_notices_a_takeover(db: Database) -> None:
    ttl = timedelta(seconds=30)
    with leases.hold(db, "sync", "a", ttl, renew_every=timedelta(seconds=0.1)) as lease:
        # Simulate a long pause: another process takes the lease after it "expired".
        assert leases.acquire(db, "sync", "b", ttl, now=datetime.now(UTC) + timedelta(hours=1))
        assert lease.lost.wait(5)
    info = leases.current(db, "sync")
    assert info
    assert info.holder == "b"  # our release did not free someone else's lease


def test_holder_id_is_readable() -> None:
    holder = leases.holder_id("daemon", "abc")
    assert holder.startswith("daemon@")
    assert holder.endswith("/abc")


def test_is_valid_fences_a_write(db: Database) -> None:
    import sqlalchemy as sa

    lease = leases.acquire(db, "sync", "a", TTL)
    assert lease
    with db.read() as conn:
        assert conn.execute(sa.select(leases.is_valid(conn, lease))).scalar_one()
    leases.release(db, lease)
    with db.read() as conn:
        assert not conn.execute(sa.select(leases.is_valid(conn, lease))).scalar_one()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sync", "fresh"])
def test_processes_racing_for_a_lease_exactly_one_wins(
    db: Database, database_url: str, name: str
) -> None:
    """Several processes released at the same instant: exactly one gets the lease."""
    if name == "sync":  # the row exists already (released): the UPDATE path races
        first = leases.acquire(db, name, "setup", TTL)
        assert first
        leases.release(db, first)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.daemon._lease_race", database_url, name, f"p{i}"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(RACERS)
    ]
    for p in procs:  # everyone connected and waiting at the start line
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    results = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs), results
    winners = [r for r in results if r.startswith("won")]
    assert len(winners) == 1, results
    assert results.count("lost") == RACERS - 1
    info = leases.current(db, name)
    assert info
    assert info.holder is not None
    assert winners[0] == f"won {info.fencing_token}"
