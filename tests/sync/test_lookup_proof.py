"""Proof of absence by the identifier lookup (externalcontacts), in any kind of run.

The externalcontacts profile finds an externalId with the keyed identifier lookup
(``POST /externalcontacts/identifierlookup/contacts``), never with search. Whether that lookup
sees a create at once is unconfirmed for production, so it proves absence only where the
operator declares it consistent (``genesys.identifier_lookup_consistent``). Each test runs
under both emulator variants: a consistent lookup, and one that lags writes by two seconds.
With the flag off, both variants keep the old waiting (no duplicate, whatever the lag).
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta

import pytest

from syncd.emulator import ManualClock
from syncd.store.db import Database
from tests.sync.conftest import (
    Harness,
    crash_after_intent,
    creates,
    make_app,
    person,
)

LOOKUP = ("POST", "/api/v2/externalcontacts/identifierlookup/contacts")


def _harness(db: Database, *, consistent: bool, lag_ms: float) -> tuple[Harness, ManualClock]:
    clock = ManualClock()
    h = Harness(db, make_app("externalcontacts", clock=clock))
    h.em.set_variants(identifier_lookup_lag_ms=lag_ms)
    h.client_overrides = {"identifier_lookup_consistent": consistent}
    h.options = replace(h.options, create_grace=timedelta(minutes=10))
    return h, clock


@pytest.mark.parametrize("kind", ["incremental", "full"])
def test_a_consistent_lookup_proves_an_unsent_create_absent_in_one_run(
    db: Database, kind: str
) -> None:
    h, _clock = _harness(db, consistent=True, lag_ms=0)
    h.upsert(person("K-1"))
    crash_after_intent(h, "K-1")
    start = len(h.em.request_log())
    report = h.run(kind)
    assert report.status == "succeeded", report
    assert len(creates(h, "K-1")) == 1
    assert h.links()["K-1"]["state"] == "synced"
    rows = h.ledger(external_id="K-1", op="create")
    assert [r["outcome"] for r in rows] == ["failed", "ok"]
    assert "the identifier lookup at" in rows[0]["error"]
    assert h.calls(start).count(LOOKUP) == 1  # one keyed lookup; no search
    assert ("GET", "/api/v2/externalcontacts/contacts") not in h.calls(start)


def test_a_consistent_lookup_finds_a_create_whose_answer_was_lost(db: Database) -> None:
    h, _clock = _harness(db, consistent=True, lag_ms=0)
    h.upsert(person("A-1"))
    h.em.set_faults(lost_ack_rate=1.0)
    h.run()
    h.em.set_faults(lost_ack_rate=0.0)
    report = h.run()
    assert report.status == "succeeded", report
    assert len(creates(h, "A-1")) == 1
    [intent] = h.ledger(op="create")
    assert intent["outcome"] == "ok"
    [contact] = h.remote_by_ext()["A-1"]
    assert intent["genesys_id"] == contact["id"] == h.links()["A-1"]["genesys_id"]


@pytest.mark.parametrize("lag_ms", [0, 2_000])
def test_without_the_flag_a_missing_answer_proves_nothing(db: Database, lag_ms: float) -> None:
    """Flag off: the lookup is one more check, and the create waits for ``absent_checks``
    and the grace period, consistent lookup or not."""
    h, _clock = _harness(db, consistent=False, lag_ms=lag_ms)
    h.upsert(person("W-1"))
    crash_after_intent(h, "W-1")
    for _ in range(3):
        report = h.run()
        assert report.status == "partial", report
        assert creates(h, "W-1") == []
        assert h.links()["W-1"]["state"] == "pending_create"


def test_without_the_flag_a_lagging_lookup_never_makes_a_duplicate(db: Database) -> None:
    """The create landed but its answer was lost; the lookup lags two seconds. Runs inside
    the lag see nothing and wait; once the lookup catches up, the contact is linked."""
    h, clock = _harness(db, consistent=False, lag_ms=2_000)
    h.upsert(person("L-1"))
    h.em.set_faults(lost_ack_rate=1.0)
    h.run()
    h.em.set_faults(lost_ack_rate=0.0)
    for _ in range(3):
        assert h.run().counts["created"] == 0
    assert len(creates(h, "L-1")) == 1
    clock.advance(2.1)
    report = h.run()
    assert report.status == "succeeded", report
    assert report.counts["created"] == 1
    assert len(creates(h, "L-1")) == 1
    assert h.links()["L-1"]["state"] == "synced"


def test_a_lookup_inside_the_landing_window_proves_nothing(db: Database) -> None:
    """The killed run ended when this one began: a lookup before the window is over could
    miss a request still in flight, so the run waits the window out first."""
    h, _clock = _harness(db, consistent=True, lag_ms=0)
    h.upsert(person("N-1"))
    crash_after_intent(h, "N-1")

    class StopSoon:
        def __init__(self) -> None:
            self.until = time.monotonic() + 0.2

        def is_set(self) -> bool:
            return time.monotonic() >= self.until

    options = replace(h.options, landing_window=timedelta(hours=1))
    start = len(h.em.request_log())
    report = h.run(options=options, stop=StopSoon())
    assert report.status == "interrupted", report
    assert LOOKUP not in h.calls(start)  # asked nothing while the request could land
    assert creates(h, "N-1") == []
    assert h.links()["N-1"]["state"] == "pending_create"
