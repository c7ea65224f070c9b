"""Leader election in-process, on both backends, on a test clock (no waiting)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from syncd.daemon.leader import Leadership
from syncd.store import leases
from syncd.store.db import Database

TTL = timedelta(seconds=2)


class Changes(list[bool]):
    def __call__(self, leader: bool) -> None:
        self.append(leader)


class Clock:
    """One test time for both clocks a Leadership reads: local monotonic and lease time."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.start = datetime.now(UTC)

    def monotonic(self) -> float:
        return self.elapsed

    def lease_now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def advance(self, seconds: float) -> None:
        self.elapsed += seconds


def _pair(db: Database, clock: Clock) -> tuple[Leadership, Changes, Leadership, Changes]:
    ca, cb = Changes(), Changes()
    a, b = (
        Leadership(db, name, TTL, on_change=c, clock=clock.monotonic, lease_now=clock.lease_now)
        for name, c in (("a", ca), ("b", cb))
    )
    return a, ca, b, cb


def test_exactly_one_leads_and_a_release_hands_over(db: Database) -> None:
    a, ca, b, cb = _pair(db, Clock())
    a.tick()
    b.tick()
    assert (a.is_leader, b.is_leader) == (True, False)
    a.tick()  # renewal keeps it
    b.tick()
    assert (ca, cb) == ([True], [])
    a.release()
    assert not a.is_leader
    b.tick()
    assert b.is_leader
    assert cb == [True]
    lease = b.lease
    assert lease is not None
    assert lease.fencing_token == 2


def test_a_silent_leader_is_replaced_after_its_ttl(db: Database) -> None:
    clock = Clock()
    a, _ca, b, _cb = _pair(db, clock)
    a.tick()
    b.tick()
    assert not b.is_leader
    clock.advance(1.8)  # a stops renewing (paused, killed, partitioned) for 90 % of the TTL
    assert not a.is_leader  # it stops believing it leads before others can take over
    b.tick()
    assert not b.is_leader  # ... and the lease has not expired for the others yet
    clock.advance(0.5)  # past the TTL
    b.tick()
    assert b.is_leader


def test_a_deposed_leader_notices_on_its_next_renewal(db: Database) -> None:
    clock = Clock()
    a, ca, _b, _cb = _pair(db, clock)
    a.tick()
    # b takes over as if a's lease had expired long ago (a was paused).
    later = clock.lease_now() + timedelta(hours=1)
    assert leases.acquire(db, "leader", "b", TTL, now=later)
    a.tick()
    assert not a.is_leader
    assert ca == [True, False]


def test_check_expiry_steps_down_without_the_database(db: Database) -> None:
    clock = Clock()
    a, ca, _b, _cb = _pair(db, clock)
    a.tick()
    clock.advance(1.0)
    a.check_expiry()
    assert ca == [True]  # still inside 90 % of its TTL
    clock.advance(1.0)  # renewals failed for too long
    a.check_expiry()
    assert ca == [True, False]
    assert a.lease is None
