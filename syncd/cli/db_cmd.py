"""`syncd db ...`: apply and inspect the Alembic migrations."""

from __future__ import annotations

import click

from syncd.cli.context import AppContext, pass_app
from syncd.store import migrate


@click.group()
def db() -> None:
    """Manage the database schema."""


@db.command("upgrade")
@click.argument("revision", default="head")
@pass_app
def upgrade(app: AppContext, revision: str) -> None:
    """Apply migrations up to REVISION (default: head). Safe to run twice."""
    database = app.database()
    before = migrate.current_revision(database)
    migrate.upgrade(database, revision)
    after = migrate.current_revision(database)
    click.echo(f"database schema: {before or 'empty'} -> {after}")


@db.command("downgrade")
@click.argument("revision")
@pass_app
def downgrade(app: AppContext, revision: str) -> None:
    """Revert migrations down to REVISION ('base' drops every syncd table)."""
    database = app.database()
    migrate.downgrade(database, revision)
    click.echo(f"database schema: {migrate.current_revision(database) or 'empty'}")


@db.command("current")
@pass_app
def current(app: AppContext) -> None:
    """Print the schema revision of the database and whether it is up to date."""
    database = app.database()
    rev = migrate.current_revision(database)
    head = migrate.head_revision()
    state = "up to date" if rev == head else f"behind (head is {head})"
    click.echo(f"{rev or 'empty'}: {state}")
