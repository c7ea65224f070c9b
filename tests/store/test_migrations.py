"""Migrations: empty → head → base → head on each backend, and no drift from the models."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from syncd.store import migrate
from syncd.store.db import Database
from syncd.store.schema import crm_contacts, metadata, mirror_changes

TABLES = {t.name for t in metadata.sorted_tables}


def _tables(db: Database) -> set[str]:
    with db.engine.connect() as conn:
        return set(sa.inspect(conn).get_table_names()) - {"alembic_version"}


def _pending_diff(db: Database) -> list[object]:
    with db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, metadata))


def test_upgrade_downgrade_upgrade(empty_db: Database) -> None:
    assert migrate.current_revision(empty_db) is None
    migrate.upgrade(empty_db)
    assert migrate.current_revision(empty_db) == migrate.head_revision()
    assert _tables(empty_db) == TABLES
    migrate.downgrade(empty_db, "base")
    assert migrate.current_revision(empty_db) is None
    assert _tables(empty_db) == set()
    migrate.upgrade(empty_db)
    assert _tables(empty_db) == TABLES
    migrate.check_schema(empty_db)


def test_migrated_schema_equals_models(db: Database) -> None:
    assert _pending_diff(db) == []


def test_upgrade_is_idempotent(db: Database) -> None:
    migrate.upgrade(db)
    assert migrate.current_revision(db) == migrate.head_revision()


def test_check_schema_refuses_empty_database(empty_db: Database) -> None:
    import pytest

    from syncd.errors import SchemaError

    with pytest.raises(SchemaError, match="syncd db upgrade"):
        migrate.check_schema(empty_db)


def _changes(db: Database) -> list[tuple[str, str]]:
    with db.read() as conn:
        rows = conn.execute(
            sa.select(mirror_changes.c.external_id, mirror_changes.c.op).order_by(
                mirror_changes.c.id
            )
        )
        return [(r.external_id, r.op) for r in rows]


def test_triggers_log_every_mirror_write(db: Database) -> None:
    """Plain SQL writes to the mirror (as an ETL job does) land in the change log."""
    with db.write() as conn:
        conn.execute(
            crm_contacts.insert(),
            [
                {
                    "external_id": "a",
                    "first_name": "A",
                    "last_name": "X",
                    "phone_numbers": [{"number": "+12025550143", "type": "WORK"}],
                },
                {"external_id": "b", "first_name": "B", "last_name": "Y", "phone_numbers": None},
            ],
        )
    assert _changes(db) == [("a", "I"), ("b", "I")]
    with db.write() as conn:
        # No content change: not logged (only updated_at moves).
        conn.execute(
            crm_contacts.update()
            .where(crm_contacts.c.external_id == "a")
            .values(first_name="A", updated_at=datetime.now(UTC))
        )
        conn.execute(
            crm_contacts.update()
            .where(crm_contacts.c.external_id == "a")
            .values(phone_numbers=[{"number": "+12025550144", "type": "WORK"}])
        )
        conn.execute(
            crm_contacts.update().where(crm_contacts.c.external_id == "b").values(deleted=True)
        )
        conn.execute(
            crm_contacts.update().where(crm_contacts.c.external_id == "b").values(external_id="c")
        )
        conn.execute(crm_contacts.delete().where(crm_contacts.c.external_id == "c"))
    assert _changes(db)[2:] == [("a", "U"), ("b", "U"), ("b", "D"), ("c", "U"), ("c", "D")]


def test_raw_sql_writes_are_logged(db: Database) -> None:
    """The ETL contract: a plain INSERT with only the required columns works."""
    with db.write() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO crm_contacts (external_id, first_name, last_name, email) "
                "VALUES ('etl-1', 'Eve', 'Tl', 'eve@example.com')"
            )
        )
    assert _changes(db) == [("etl-1", "I")]
    with db.read() as conn:
        row = conn.execute(sa.select(crm_contacts)).one()
    assert row.deleted is False
    assert row.updated_at.tzinfo is not None
