"""The delete guard (invariant 4): held deletes, the ledger's account of them, and release."""

from __future__ import annotations

from dataclasses import replace

import pytest

from syncd.sync.guards import DeleteLimits, check_deletes
from tests.sync.conftest import Harness, person


def _setup(h: Harness, n: int = 10) -> None:
    h.upsert(*(person(f"G-{i:02}") for i in range(n)))
    h.run()


def _assert_held(h: Harness, report: object, exts: set[str], n: int = 10) -> None:
    assert report.status == "held"  # type: ignore[attr-defined]
    assert report.exit_code == 3  # type: ignore[attr-defined]
    assert len(h.remote_by_ext()) == n  # nothing deleted
    assert [w for w in h.em.write_log() if w["op"] == "delete"] == []
    held = h.ledger(op="delete")
    assert {r["external_id"] for r in held} == exts
    assert {r["outcome"] for r in held} == {"held"}
    assert all(r["fields"]["first_name"] == ["Ada", None] for r in held)
    assert {h.links()[e]["state"] for e in exts} == {"held"}


@pytest.mark.parametrize("kind", ["incremental", "full"])
def test_count_guard_holds_then_releases(h: Harness, kind: str) -> None:
    _setup(h)
    h.options = replace(h.options, limits=DeleteLimits(max_count=2, max_percent=100))
    h.tombstone("G-01", "G-02", "G-03")
    report = h.run(kind)
    _assert_held(h, report, {"G-01", "G-02", "G-03"})
    assert "max_delete_count" in h.ledger(op="delete")[0]["error"]
    # A later run without permission still deletes nothing, even a small extra delete.
    h.tombstone("G-04")
    report = h.run()
    assert report.status == "held"
    assert len(h.remote_by_ext()) == 10
    report = h.run(kind, allow_mass_delete=True)
    assert report.status == "succeeded", report
    assert report.counts["deleted"] == 4
    assert len(h.remote_by_ext()) == 6


def test_percent_guard_holds(h: Harness) -> None:
    _setup(h)
    h.options = replace(h.options, limits=DeleteLimits(max_count=100, max_percent=20))
    h.tombstone("G-01", "G-02", "G-03")
    report = h.run()
    _assert_held(h, report, {"G-01", "G-02", "G-03"})
    assert "max_delete_percent" in h.ledger(op="delete")[0]["error"]
    h.tombstone("G-04")
    h.run(allow_mass_delete=True)
    assert len(h.remote_by_ext()) == 6


@pytest.mark.parametrize("how", ["tombstone", "truncate"])
def test_empty_mirror_holds_every_delete(h: Harness, how: str) -> None:
    _setup(h, 3)  # limits allow 3 deletes by count and percent: only emptiness holds them
    exts = {"G-00", "G-01", "G-02"}
    if how == "tombstone":
        h.tombstone(*exts)
    else:
        h.remove_rows(*exts)
    report = h.run()
    _assert_held(h, report, exts, n=3)
    assert "no live contact" in h.ledger(op="delete")[0]["error"]
    report = h.run("full")
    assert report.status == "held"
    report = h.run(allow_mass_delete=True)
    assert report.counts["deleted"] == 3
    assert h.remote() == []


def test_a_restored_row_releases_its_held_link_without_a_call(h: Harness) -> None:
    _setup(h, 3)
    h.tombstone("G-00", "G-01", "G-02")
    h.run()
    h.upsert(person("G-01"))
    before = len(h.api_writes())
    report = h.run()
    assert report.counts["unchanged"] == 1
    assert h.api_writes()[before:] == []
    assert h.links()["G-01"]["state"] == "synced"


def test_guard_verdicts() -> None:
    limits = DeleteLimits(max_count=5, max_percent=10)
    assert check_deletes(0, 0, live_mirror=False, limits=limits).allowed
    assert check_deletes(5, 50, live_mirror=True, limits=limits).allowed
    assert not check_deletes(6, 1000, live_mirror=True, limits=limits).allowed
    assert not check_deletes(5, 49, live_mirror=True, limits=limits).allowed
    assert not check_deletes(1, 1000, live_mirror=False, limits=limits).allowed
    assert check_deletes(6, 10, live_mirror=False, limits=limits, allow_mass_delete=True).allowed
