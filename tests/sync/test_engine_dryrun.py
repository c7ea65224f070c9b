"""A dry run reads what it likes and changes no state at all (invariant 6)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from syncd.sync.guards import DeleteLimits
from tests.sync.conftest import CrashAt, CrashError, Harness, person


def _busy_state(h: Harness) -> None:
    """Links, a ledger, runs, a snapshot, pending changes, a pending intent, hand edits."""
    h.upsert(*(person(f"D-{i}") for i in range(6)))
    h.run()
    h.run("full")
    h.upsert(person("D-4", first="Crash"))
    with pytest.raises(CrashError):
        h.run(hooks=CrashAt("after_intent", op="update", external_id="D-4"))
    h.upsert(person("D-0", first="Renamed"), person("NEW-1"), person("BAD-1", last_name=None))
    h.tombstone("D-1")
    h.hand_edit(h.links()["D-2"]["genesys_id"], first_name="Hand")
    h.hand_delete(h.links()["D-3"]["genesys_id"])


@pytest.mark.parametrize("kind", ["incremental", "full", "targeted"])
def test_dry_run_changes_no_state(h: Harness, kind: str) -> None:
    _busy_state(h)
    before_db = h.dump()
    before_remote = h.remote()
    writes = len(h.em.write_log())
    ids = ("D-0", "D-1", "D-2", "D-3", "NEW-1", "BAD-1") if kind == "targeted" else ()
    report = h.run(kind, dry_run=True, external_ids=ids)
    assert report.run_id is None
    assert h.dump() == before_db
    assert h.remote() == before_remote
    assert len(h.em.write_log()) == writes
    plan = {(p.op, p.external_id) for p in h.plan}
    assert ("update", "D-0") in plan
    assert ("create", "NEW-1") in plan
    assert ("delete", "D-1") in plan
    assert ("reject", "BAD-1") in plan
    if kind != "targeted":
        assert ("resolve", "D-4") in plan
    if kind != "incremental":
        assert ("drift", "D-2") in plan
        assert ("recreate", "D-3") in plan
    [update] = [p for p in h.plan if p.op == "update" and p.external_id == "D-0"]
    assert update.fields == {"first_name": ["Ada", "Renamed"]}


def test_dry_run_shows_held_deletes_without_holding_them(h: Harness) -> None:
    h.upsert(*(person(f"H-{i}") for i in range(4)))
    h.run()
    h.tombstone("H-0", "H-1", "H-2")
    h.options = replace(h.options, limits=DeleteLimits(max_count=1, max_percent=100))
    before = h.dump()
    report = h.run(dry_run=True)
    assert report.status == "held"
    assert h.dump() == before
    held = [p for p in h.plan if p.op == "delete"]
    assert len(held) == 3
    assert all(p.note and p.note.startswith("held") for p in held)
