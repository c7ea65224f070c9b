"""Alembic, driven from code: ``syncd db upgrade`` works from a wheel as well as a checkout.

The wheel carries the top-level ``migrations/`` folder as ``syncd/_migrations``; a checkout
(or an editable install) uses ``migrations/`` beside the package.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from syncd.errors import SchemaError
from syncd.store.db import Database


def migrations_dir() -> Path:
    package_dir = Path(__file__).resolve().parent.parent
    for candidate in (package_dir / "_migrations", package_dir.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise SchemaError(
        "the Alembic migrations are missing from this installation (looked for "
        "syncd/_migrations and ./migrations); reinstall syncd"
    )


def alembic_config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["syncd_database"] = db
    return cfg


def head_revision() -> str:
    script = ScriptDirectory.from_config(alembic_config_for_scripts())
    head = script.get_current_head()
    assert head is not None
    return head


def alembic_config_for_scripts() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(db: Database, revision: str = "head") -> None:
    command.upgrade(alembic_config(db), revision)


def downgrade(db: Database, revision: str = "base") -> None:
    command.downgrade(alembic_config(db), revision)


def check_schema(db: Database) -> None:
    """Refuse to work on a database whose schema is not the one this syncd was built for."""
    current = current_revision(db)
    head = head_revision()
    if current == head:
        return
    script = ScriptDirectory.from_config(alembic_config_for_scripts())
    known = {rev.revision for rev in script.walk_revisions()}
    where = db.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaError(
            f"the database at {where} has no syncd schema; run `syncd db upgrade` first"
        )
    if current not in known:
        raise SchemaError(
            f"the database at {where} is at schema revision {current}, which this syncd does "
            "not know (it was upgraded by a newer syncd); upgrade syncd"
        )
    raise SchemaError(
        f"the database at {where} is at schema revision {current} but this syncd needs "
        f"{head}; run `syncd db upgrade`"
    )
