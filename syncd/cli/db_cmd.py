"""`syncd db ...`: apply and inspect the Alembic migrations.

``db downgrade`` destroys data (reverting a revision drops what it added, ``base`` drops every
syncd table), so it asks first: ``--yes`` on the command line, or, on a terminal, the target
revision typed back. It refuses while a daemon or a sync run uses the database.
"""

from __future__ import annotations

import sys

import click

from syncd.cli.context import AppContext, pass_app
from syncd.cli.ops_common import friendly_errors
from syncd.errors import UserError
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


def _refuse_while_in_use(app: AppContext, revision: str) -> None:
    from syncd.cli.ops_status import DEFAULT_STALE_AFTER
    from syncd.daemon.settings import daemon_settings
    from syncd.store.status import users_of_database

    # A daemon `syncd status` still calls alive blocks it, as does the daemon's own rule.
    stale_after = max(DEFAULT_STALE_AFTER, daemon_settings(app.local_settings).stale_after)
    users = users_of_database(app.database(), stale_after)
    if users:
        raise UserError(
            f"refusing `syncd db downgrade {revision}`: the database is in use by "
            + "; ".join(users)
            + ". Stop every daemon first (`systemctl stop syncd`) and let running syncs finish, "
            "then retry; a killed daemon counts as alive until its heartbeat is older than "
            f"{int(stale_after.total_seconds())}s (see `syncd status`). Nothing was changed."
        )


def _confirm(revision: str, reverted: list[str], yes: bool) -> None:
    what = (
        "drops every syncd table (the mirror, the links, the ledger, the runs) and their data"
        if revision == "base" or len(reverted) == len(migrate.known_revisions())
        else f"reverts schema revision(s) {', '.join(reverted)} and drops the data they hold"
    )
    if yes:
        return
    if not sys.stdin.isatty():
        raise UserError(
            f"`syncd db downgrade {revision}` {what}; back the database up, then rerun with "
            "--yes to confirm. Nothing was changed."
        )
    click.echo(f"`syncd db downgrade {revision}` {what}.", err=True)
    typed = click.prompt(
        f"Type the target revision ({revision}) to confirm", default="", show_default=False
    )
    if typed.strip() != revision:
        raise UserError(f"confirmation did not match (expected {revision!r}); nothing was changed")


@db.command("downgrade")
@click.argument("revision")
@click.option(
    "--yes",
    is_flag=True,
    help="Confirm without a prompt: a downgrade drops tables and the data in them.",
)
@pass_app
@friendly_errors
def downgrade(app: AppContext, revision: str, yes: bool) -> None:
    """Revert migrations down to REVISION ('base' drops every syncd table).

    Asks for --yes (or, on a terminal, REVISION typed back), and refuses while a live
    daemon or a sync run uses the database.
    """
    database = app.database()
    current = migrate.current_revision(database)
    reverted = migrate.revisions_to_revert(current, revision)
    if not reverted:
        click.echo(f"database schema: {current or 'empty'} (nothing to downgrade)")
        return
    _refuse_while_in_use(app, revision)
    _confirm(revision, reverted, yes)
    migrate.downgrade(database, revision)
    click.echo(f"database schema: {current} -> {migrate.current_revision(database) or 'empty'}")


@db.command("current")
@pass_app
def current(app: AppContext) -> None:
    """Print the schema revision of the database and whether it is up to date."""
    database = app.database()
    rev = migrate.current_revision(database)
    head = migrate.head_revision()
    state = "up to date" if rev == head else f"behind (head is {head})"
    click.echo(f"{rev or 'empty'}: {state}")
