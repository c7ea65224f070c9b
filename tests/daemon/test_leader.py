"""Leader election in-process, on both backends."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from syncd.daemon.leader import Leadership
from syncd.store import leases
from syncd.store.db import Database

TTL = timedelta(seconds=2)


class Changes(list[bool]):
    def __call__(self, leader: bool) -> None:
        self.append(leader)


def _pair(db: Database) -> tuple[Leadership, Changes, Leadership, Changes]:
    ca, cb = Changes(), Changes()
    return Leadership(db, "a", TTL, on_change=ca), ca, Leadership(db, "b", TTL, on_change=cb), cb


def test_exactly_one_leads_and_a_release_hands_over(db: Database) -> None:
    a, ca, b, cb = _pair(db)
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
    a, _ca, b, _cb = _pair(db)
    a.tick()
    b.tick()
    assert not b.is_leader
    time.sleep(TTL.total_seconds() + 0.1)  # a stops renewing (paused, killed, partitioned)
    assert not a.is_leader  # it stops believing it leads before others can take over
    b.tick()
    assert b.is_leader


def test_a_deposed_leader_notices_on_its_next_renewal(db: Database) -> None:
    a, ca, _b, _cb = _pair(db)
    a.tick()
    # b takes over as if a's lease had expired long ago (a was paused).
    assert leases.acquire(db, "leader", "b", TTL, now=datetime.now(UTC) + timedelta(hours=1))
    a.tick()
    assert not a.is_leader
    assert ca == [True, False]


def test_check_expiry_steps_down_without_the_database(db: Database) -> None:
    a, ca, _b, _cb = _pair(db)
    a.tick()
    a._valid_until = time.monotonic() - 1  # renewals failed for too long
    a.check_expiry()
    assert ca == [True, False]
    assert a.lease is None
