"""Proof of absence: a full reconcile settles unknown creates by its listing, in one run.

A create whose outcome is unknown (a crash after the intent, a lost answer) used to wait two
runs plus a grace period for search to catch up. In a profile whose listing reads the
contacts themselves (the reference profile), a complete, stable listing that began after the
request could have landed is proof: found there, linked; absent, created again at once.
Where the listing proves nothing (externalcontacts: the scan's consistency is unconfirmed)
the waiting stays.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from syncd.genesys.api import Page
from syncd.store.db import Database
from syncd.store.snapshot import scratch_snapshot
from syncd.sync.observe import list_into
from syncd.sync.options import EngineOptions
from tests.sync.conftest import (
    Harness,
    crash_after_intent,
    creates,
    make_app,
    person,
)


def test_an_unsent_create_is_proven_absent_and_sent_in_the_same_full_run(h: Harness) -> None:
    h.upsert(person("P-1"), person("P-2"))
    crash_after_intent(h, "P-1")
    start = len(h.em.request_log())
    report = h.run("full")
    searches = [c for c in h.calls(start) if c == h.route("lookup")]
    if h.profile == "reference":
        assert report.status == "succeeded", report
        assert len(creates(h, "P-1")) == 1
        assert len(creates(h, "P-2")) == 1
        assert h.links()["P-1"]["state"] == "synced"
        rows = h.ledger(external_id="P-1", op="create")
        assert [r["outcome"] for r in rows] == ["failed", "ok"]
        assert "absent from the complete listing" in rows[0]["error"]
        assert searches == []  # the listing settled it: no lookup by search
    else:  # the scan proves nothing: the create waits for its lookups (absent_checks=2)
        assert report.status == "partial", report
        assert creates(h, "P-1") == []
        assert h.links()["P-1"]["state"] == "pending_create"
        assert searches, "the externalcontacts profile still looks it up"
        assert h.run("full").status == "succeeded"  # second check: created
        assert len(creates(h, "P-1")) == 1


def test_a_create_whose_answer_was_lost_is_found_in_the_listing(h: Harness) -> None:
    h.upsert(person("L-1"))
    h.em.set_faults(lost_ack_rate=1.0)
    h.run()
    h.em.set_faults(lost_ack_rate=0.0)
    assert h.links()["L-1"]["state"] == "pending_create"
    h.upsert(person("L-1", first="Changed"))
    start = len(h.em.request_log())
    report = h.run("full")
    assert report.status == "succeeded", report
    assert len(creates(h, "L-1")) == 1  # never sent twice
    [intent] = h.ledger(op="create")
    assert intent["outcome"] == "ok"
    [contact] = h.remote_by_ext()["L-1"]
    assert intent["genesys_id"] == contact["id"] == h.links()["L-1"]["genesys_id"]
    assert contact["firstName"] == "Changed"  # and diffed against the listing in the same run
    searched = h.route("lookup") in h.calls(start)
    assert searched is (h.profile != "reference")


def test_the_full_run_waits_for_the_landing_window_before_listing(db: Database) -> None:
    """The crashed run ended when this one began: its request could land up to the window
    later, so the listing starts after it, and then proves."""
    h = Harness(db, make_app("reference"))
    h.upsert(person("W-1"))
    crash_after_intent(h, "W-1")
    window = timedelta(seconds=0.4)
    began = time.monotonic()
    report = h.run("full", options=replace(h.options, landing_window=window))
    assert time.monotonic() - began >= window.total_seconds()
    assert report.status == "succeeded", report
    assert len(creates(h, "W-1")) == 1


def test_no_proof_for_a_listing_that_began_inside_the_window(db: Database) -> None:
    """A stop during the wait ends the run with the intent still pending (nothing sent)."""

    class StopSoon:
        def __init__(self) -> None:
            self.until = time.monotonic() + 0.2

        def is_set(self) -> bool:
            return time.monotonic() >= self.until

    h = Harness(db, make_app("reference"))
    h.upsert(person("N-1"))
    crash_after_intent(h, "N-1")
    options = replace(h.options, landing_window=timedelta(hours=1))
    report = h.run("full", options=options, stop=StopSoon())
    assert report.status == "interrupted", report
    assert creates(h, "N-1") == []
    assert h.links()["N-1"]["state"] == "pending_create"


def test_a_request_of_a_run_that_ended_long_ago_needs_no_wait(db: Database) -> None:
    """The window counts from the end the intent's run recorded, not from this run's start."""
    h = Harness(db, make_app("reference"))
    h.upsert(person("O-1"))
    h.em.set_faults(lost_ack_rate=1.0)
    h.run()  # ended normally, leaving the create unknown (and applied)
    h.em.set_faults(lost_ack_rate=0.0)
    later = datetime.now(UTC) + timedelta(hours=2)
    began = time.monotonic()
    options = replace(h.options, landing_window=timedelta(hours=1))
    report = h.run("full", options=options, clock=lambda: later)
    assert time.monotonic() - began < 30  # no hour-long wait
    assert report.status == "succeeded", report
    assert len(creates(h, "O-1")) == 1


class _ShiftingTotal:
    """A listing whose ``total`` changes between pages (a contact came meanwhile)."""

    listing_proves_absence = True

    def __init__(self, totals: list[int]) -> None:
        self.totals = totals

    async def list_page(self, token: str | None, page_size: int) -> Page:
        n = int(token or 0)
        nxt = str(n + 1) if n + 1 < len(self.totals) else None
        return Page([], nxt, self.totals[n])


@pytest.mark.parametrize(("totals", "stable"), [([0, 0], True), ([0, 1], False), ([3], False)])
def test_a_listing_is_stable_only_when_its_total_holds(totals: list[int], stable: bool) -> None:
    async def go() -> Any:
        with scratch_snapshot() as snap:
            return await list_into(
                _ShiftingTotal(totals),  # type: ignore[arg-type]
                snap,
                EngineOptions(),
                run_id=None,
                halt=type("Never", (), {"is_set": lambda self: False})(),
                on_page=lambda n: None,
                began_at=datetime.now(UTC),
            )

    listing = asyncio.run(go())
    assert listing.complete
    assert listing.stable is stable
