"""The mirror repository used by the importer, below the CLI."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from syncd.store.db import Database
from syncd.store.mirror import MirrorImport, MirrorRow, TombstonePlan, mirror_counts
from syncd.store.schema import crm_contacts, mirror_changes


def row(external_id: str, **kw: str | None) -> MirrorRow:
    values: dict[str, str | None] = {"first_name": "Ann", "last_name": "Lee", "email": None}
    values.update(kw)
    return MirrorRow(
        external_id=external_id,
        first_name=values["first_name"],
        last_name=values["last_name"],
        email=values["email"],
        phone_numbers=[],
        organization_id=None,
        organization_name=None,
    )


def test_batches_classify_and_only_changed_rows_are_written(db: Database) -> None:
    with MirrorImport(db) as mirror:
        first = mirror.apply_batch([row("a"), row("b")], [("a", 1), ("b", 2)])
        again = mirror.apply_batch(
            [row("a"), row("b", email="b@x.io")], [("a", 3), ("b", 4), ("c", 5)]
        )
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    assert (again.inserted, again.updated, again.unchanged) == (0, 1, 1)
    assert again.repeats == [(3, "a", 1), (4, "b", 2)]
    with db.read() as conn:
        ops = conn.execute(sa.select(mirror_changes.c.external_id, mirror_changes.c.op)).all()
    assert sorted(ops) == [("a", "I"), ("b", "I"), ("b", "U")]


def test_junk_written_by_an_etl_job_is_overwritten_not_fatal(db: Database) -> None:
    with db.write() as conn:
        if db.dialect == "sqlite":  # JSONB cannot hold it; SQLite's JSON is plain text
            conn.exec_driver_sql(
                "INSERT INTO crm_contacts (external_id, first_name, last_name, phone_numbers, "
                "deleted) VALUES ('a', 'Ann', 'Lee', 'not json', 0)"
            )
        else:
            conn.execute(
                crm_contacts.insert().values(
                    external_id="a", first_name="Ann", last_name="Lee", phone_numbers=None
                )
            )
    with MirrorImport(db) as mirror:
        outcome = mirror.apply_batch([row("a")], [("a", 1)])
    assert outcome.updated == 1
    with db.read() as conn:
        stored = conn.execute(sa.select(crm_contacts.c.phone_numbers)).scalar_one()
    assert stored == []


def test_tombstones_are_rolled_back_when_a_concurrent_insert_breaks_the_guard(
    db: Database,
) -> None:
    """Count, guard and UPDATE share one transaction; a late row re-asks the guard."""
    if db.dialect == "sqlite":
        pytest.skip("SQLite's write lock (BEGIN IMMEDIATE) excludes the concurrent insert")
    with db.write() as conn:
        conn.execute(crm_contacts.insert(), [{"external_id": f"x{i}"} for i in range(4)])
    asked: list[TombstonePlan] = []

    def hold(plan: TombstonePlan) -> str | None:
        asked.append(plan)
        if len(asked) == 1:
            with db.write() as other:  # commits while the tombstone pass is counting
                other.execute(crm_contacts.insert().values(external_id="late"))
            return None
        return "too many" if plan.missing > 4 else None

    with MirrorImport(db) as mirror:
        outcome = mirror.tombstone_missing(hold)
    assert [p.missing for p in asked] == [4, 5]
    assert outcome.held_reason == "too many"
    assert outcome.tombstoned == 0
    assert mirror_counts(db).tombstoned == 0


def test_dry_run_tombstone_pass_counts_without_writing(db: Database) -> None:
    with db.write() as conn:
        conn.execute(crm_contacts.insert(), [{"external_id": f"x{i}"} for i in range(3)])
    with MirrorImport(db, dry_run=True) as mirror:
        mirror.apply_batch([row("x0"), row("new")], [("x0", 1), ("new", 2)])
        outcome = mirror.tombstone_missing(lambda plan: None)
    assert outcome.plan == TombstonePlan(missing=2, live=3)
    assert outcome.tombstoned == 0
    counts = mirror_counts(db)
    assert (counts.live, counts.tombstoned) == (3, 0)
