"""Alembic, driven from code: ``syncd db upgrade`` works from a wheel as well as a checkout.

The wheel carries the top-level ``migrations/`` folder as ``syncd/_migrations``; a checkout
(or an editable install) uses ``migrations/`` beside the package.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from alembic.script.revision import RevisionError

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


def known_revisions() -> list[str]:
    """Every revision this syncd knows, newest first."""
    script = ScriptDirectory.from_config(alembic_config_for_scripts())
    return [rev.revision for rev in script.walk_revisions()]


def revisions_to_revert(current: str | None, target: str) -> list[str]:
    """The revisions ``syncd db downgrade TARGET`` would revert from ``current``, newest first.

    ``target`` is what Alembic accepts: a revision id (or a unique prefix), ``base``, ``head``
    or a relative step ``-N``. Empty: nothing to revert. An unknown target is a
    :class:`SchemaError` that lists the known revisions.
    """
    if current is None:
        return []
    script = ScriptDirectory.from_config(alembic_config_for_scripts())
    try:
        if target.startswith("-") and target[1:].isdigit():
            steps, reverted = int(target[1:]), list[str]()
            rev: Script | None = script.get_revision(current)
            while rev is not None and len(reverted) < steps:
                reverted.append(rev.revision)
                down = rev.down_revision
                rev = script.get_revision(down) if isinstance(down, str) else None
            if len(reverted) < steps:
                raise RevisionError(f"{target} goes below base from {current}")
            return reverted
        return [rev.revision for rev in script.iterate_revisions(current, target)]
    except RevisionError as exc:
        raise SchemaError(
            f"cannot downgrade to {target!r} from schema revision {current}: {exc}; known "
            f"revisions (newest first): {', '.join(known_revisions())}, or base"
        ) from None


def check_schema(db: Database) -> None:
    """Refuse to work on a database whose schema is not the one this syncd was built for."""
    current = current_revision(db)
    head = head_revision()
    if current == head:
        return
    known = set(known_revisions())
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
