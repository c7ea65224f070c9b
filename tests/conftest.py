"""Shared fixtures: a fresh database per test, on SQLite and (when available) PostgreSQL.

PostgreSQL tests read the server URL from ``SYNCD_TEST_POSTGRES_URL`` (``.ci/run`` sets it);
without it they skip with a visible reason. Each PostgreSQL test gets its own schema, so
tests never see each other's rows, and the teardown drops it.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from syncd.logs import forget_secrets
from syncd.store import migrate
from syncd.store.db import Database, open_database

POSTGRES_ENV = "SYNCD_TEST_POSTGRES_URL"
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def postgres_url() -> str | None:
    return os.environ.get(POSTGRES_ENV) or None


def require_postgres() -> str:
    url = postgres_url()
    if not url:
        if os.environ.get("SYNCD_TEST_REQUIRE_POSTGRES"):
            pytest.fail(f"{POSTGRES_ENV} is not set but SYNCD_TEST_REQUIRE_POSTGRES is (CI)")
        pytest.skip(f"PostgreSQL tests need {POSTGRES_ENV} (set by .ci/run)")
    return url


@functools.cache
def _admin_engine(base: str) -> sa.Engine:
    """One engine per server for creating and dropping test schemas (a connect costs ~50 ms)."""
    return sa.create_engine(make_url(base).set(drivername="postgresql+psycopg"))


def _postgres_schema_url(base: str) -> tuple[str, str]:
    """Create a throwaway schema and return (url with search_path, schema name)."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with _admin_engine(base).begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).set(drivername="postgresql+psycopg")
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), schema


def _drop_postgres_schema(base: str, schema: str) -> None:
    with _admin_engine(base).begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# The migrated database, made once per session by Alembic itself and then copied into each
# test's database: the SQLite file's pages (the backup API), PostgreSQL's recorded statements
# (replayed in order, in one transaction). Every test starts from exactly Alembic's schema at
# a fraction of the cost (migrating a fresh PostgreSQL schema takes ~0.2 s; 350 tests do).
_MIGRATED_SQLITE: dict[str, Path] = {}
_MIGRATION_STATEMENTS: list[tuple[str, Any]] = []


def _migrate_to_head(db: Database, tmp_root: Path) -> None:
    if db.engine.dialect.name == "sqlite":
        template = _MIGRATED_SQLITE.get("head")
        if template is None:
            template = tmp_root / "migrated-template.db"
            made = open_database(f"sqlite:///{template}")
            migrate.upgrade(made)
            made.dispose()
            _MIGRATED_SQLITE["head"] = template
        source = sqlite3.connect(template)
        try:
            with db.engine.connect() as conn:
                target = conn.connection.driver_connection
                assert isinstance(target, sqlite3.Connection)
                source.backup(target)
        finally:
            source.close()
        return
    if _MIGRATION_STATEMENTS:
        with db.engine.begin() as conn:
            for statement, parameters in _MIGRATION_STATEMENTS:
                conn.exec_driver_sql(statement, parameters)
        return

    def record(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not statement.lstrip().lower().startswith("select"):  # Alembic's own look-ups
            recorded.append((statement, parameters))

    recorded: list[tuple[str, Any]] = []
    sa.event.listen(db.engine, "before_cursor_execute", record)
    try:
        migrate.upgrade(db)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", record)
    _MIGRATION_STATEMENTS.extend(recorded)


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database URL (no schema) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'syncd.db'}"
        return
    base = require_postgres()
    url, schema = _postgres_schema_url(base)
    try:
        yield url
    finally:
        _drop_postgres_schema(base, schema)


@pytest.fixture
def empty_db(database_url: str) -> Iterator[Database]:
    db = open_database(database_url)
    try:
        yield db
    finally:
        db.dispose()


@pytest.fixture
def db(empty_db: Database, tmp_path_factory: pytest.TempPathFactory) -> Database:
    """A database migrated to head, on each backend."""
    _migrate_to_head(empty_db, tmp_path_factory.getbasetemp())
    return empty_db


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A migrated SQLite database only (for tests that are about SQLite itself)."""
    database = open_database(f"sqlite:///{tmp_path / 'syncd.db'}")
    migrate.upgrade(database)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture(autouse=True)
def _isolate_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test inherits the developer's syncd configuration or a registered secret."""
    for name in ("SYNCD_CONFIG", "SYNCD_GENESYS_CLIENT_SECRET", "CREDENTIALS_DIRECTORY"):
        monkeypatch.delenv(name, raising=False)
    yield
    forget_secrets()
