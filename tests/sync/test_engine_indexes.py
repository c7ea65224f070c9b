"""An incremental run costs what its changes cost: no statement scans the mirror or the links.

Every statement the engine sends during an incremental run is replayed through SQLite's
``EXPLAIN QUERY PLAN``; a ``SCAN`` of ``crm_contacts`` or ``contact_links`` (a full table or
full index scan) fails the test.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from syncd.store.db import Database
from tests.sync.conftest import Harness, person


def _live_row_probe(statement: str) -> bool:
    """The guard's "is the mirror empty?" probe stops at the first live row (LIMIT 1): it
    runs only when deletes are planned, and reads one row unless the mirror is all
    tombstones, which is exactly the case the guard exists for."""
    return "crm_contacts.deleted = 0" in statement and "LIMIT" in statement


def test_incremental_run_uses_only_keyed_queries(sqlite_db: Database, emulator_app: Any) -> None:
    h = Harness(sqlite_db, emulator_app)
    h.upsert(*(person(f"I-{i:03}") for i in range(60)))
    h.run()
    h.upsert(person("I-001", first="Changed"), person("I-999"))
    h.tombstone("I-002")
    h.em.set_faults(write_error_rate=1.0, error_statuses=[503])
    h.upsert(person("I-003", first="Fails"))
    h.run()  # leaves a failed row, so the due-failed query runs too
    h.em.set_faults(write_error_rate=0.0)
    h.upsert(person("I-004", first="Again"))
    h.tombstone("I-005")

    statements: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    event.listen(sqlite_db.engine, "before_cursor_execute", capture)
    try:
        h.run()
    finally:
        event.remove(sqlite_db.engine, "before_cursor_execute", capture)

    scans = []
    with sqlite_db.engine.connect() as conn:
        for statement, params in statements:
            if not statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
                continue
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            for row in plan:
                detail = str(row[-1])
                if detail.startswith("SCAN") and any(
                    t in detail for t in ("crm_contacts", "contact_links")
                ):
                    if _live_row_probe(statement):
                        continue
                    scans.append((detail, statement))
        conn.execute(sa.text("SELECT 1"))
    assert len(statements) > 20
    assert scans == []
