"""Alembic environment: runs on the connection of a syncd Database (SQLite or PostgreSQL)."""

from __future__ import annotations

from alembic import context

from syncd.store.db import Database, open_database
from syncd.store.schema import metadata

config = context.config


def _database() -> Database:
    db = config.attributes.get("syncd_database")
    if isinstance(db, Database):
        return db
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("run migrations through `syncd db upgrade` (no database configured)")
    return open_database(url)


def run_migrations_online() -> None:
    db = _database()
    with db.engine.connect() as connection:
        connection.execution_options(syncd_write=True)
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=True,
            compare_type=True,
            compare_server_default=False,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise RuntimeError("offline (SQL script) migrations are not supported; use `syncd db upgrade`")
run_migrations_online()
