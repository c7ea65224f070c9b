"""`syncd run` (the daemon) and `syncd resync` (ask the daemon for a run from another shell)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from syncd.cli.context import AppContext, pass_app
from syncd.config import Settings, load_settings
from syncd.exit_codes import ExitCode
from syncd.logs import configure_logging, notice

if TYPE_CHECKING:
    from syncd.store.db import Database


@click.command("run")
@pass_app
def run(app: AppContext) -> None:
    """Run the daemon: scheduled syncs, manual resyncs, systemd notifications.

    Stops cleanly on SIGTERM or SIGINT; reloads the configuration on SIGHUP.

    \b
    Exit codes: 0 stopped cleanly, 1 stopped by a failure (a dead worker or scheduler
    thread, or a run that did not stop in time), 2 configuration or schema error.
    """
    from syncd.daemon.service import Daemon
    from syncd.sync.runs import create_executor

    settings = app.settings
    factory = app.executor_factory or create_executor

    def apply_logging(new: Settings) -> None:
        configure_logging(
            level=app.log_level or new.logging.level,
            fmt=app.log_format or new.logging.format,  # type: ignore[arg-type]
            secrets=new.secrets(),
        )

    daemon = Daemon(
        settings=settings,
        db=app.database(),
        factory=factory,
        reload_settings=lambda: load_settings(app.config_path),
        apply_logging=apply_logging,
    )
    code = daemon.run()
    app.database().dispose()
    raise click.exceptions.Exit(code)


def _known_ids(db: Database, ids: list[str]) -> list[str]:
    """``ids`` that are in the mirror (tombstoned included) or linked; warns about the rest."""
    import sqlalchemy as sa

    from syncd.store.links import get_links
    from syncd.store.schema import crm_contacts

    unique = list(dict.fromkeys(ids))
    with db.read() as conn:
        in_mirror = set(
            conn.execute(
                sa.select(crm_contacts.c.external_id).where(crm_contacts.c.external_id.in_(unique))
            ).scalars()
        )
        linked = set(get_links(conn, unique))
    known = [i for i in unique if i in in_mirror or i in linked]
    unknown = [i for i in unique if i not in known]
    if unknown:
        what = "is" if len(unknown) == 1 else "are"
        notice(
            f"{', '.join(unknown)} {what} neither in the mirror nor linked to a "
            "Genesys contact (check the spelling, or `syncd mirror import` it first)"
            + ("; left out of the request" if known else ""),
            "warning",
        )
    if not known:
        from syncd.cli.ops_common import fail

        raise fail("no --external-id given is known; nothing was queued", ExitCode.USAGE)
    return known


@click.command("resync")
@click.option("--full", is_flag=True, help="A full reconcile instead of an incremental run.")
@click.option(
    "--external-id",
    "external_ids",
    metavar="ID",
    multiple=True,
    help="Resync only this contact (repeatable): a targeted run.",
)
@click.option(
    "--allow-mass-delete",
    is_flag=True,
    help="Let this run delete more than the mass-delete guard allows (invariant 4).",
)
@click.option("--wait", is_flag=True, help="Follow the request and exit with the run's code.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="With --wait: give up after this long (exit 4).",
)
@pass_app
def resync(
    app: AppContext,
    full: bool,
    external_ids: tuple[str, ...],
    allow_mass_delete: bool,
    wait: bool,
    timeout: float | None,
) -> None:
    """Ask the running daemon for a sync run now.

    An --external-id that is neither in the mirror nor linked to a Genesys contact is named
    in a warning and left out of the request; when no given id is known, nothing is queued
    (exit 2).

    \b
    Exit codes with --wait: the run's own (0 ok, 1 some rows failed or the run failed,
    3 deletes held), or 4 when no daemon is alive or the wait timed out (a request
    still pending is then cancelled). Without --wait the request stays queued until a
    daemon runs it.
    """
    from syncd.daemon import resync as client
    from syncd.daemon.settings import daemon_settings

    if full and external_ids:
        raise click.UsageError("--full and --external-id are exclusive")
    if timeout is not None and not wait:
        raise click.UsageError("--timeout only applies with --wait")
    ids = [i.strip() for i in external_ids]
    if any(not i for i in ids):
        raise click.UsageError("--external-id must not be empty")
    kind = "full" if full else "targeted" if ids else "incremental"
    db = app.database()
    if ids:
        ids = _known_ids(db, ids)
    stale_after = daemon_settings(app.local_settings).stale_after
    alive = client.live_daemons(db, stale_after)
    if wait and not alive:
        notice(
            f"syncd: {client.describe_no_daemon(db)}; nothing was queued\n"
            "start it with `systemctl start syncd` (or `syncd run`) and retry"
        )
        raise click.exceptions.Exit(ExitCode.NO_DAEMON)
    request_id = client.submit(db, kind, ids, allow_mass_delete)
    scope = f" for {len(ids)} contact(s)" if ids else ""
    click.echo(f"request #{request_id} queued: {kind} run{scope}")
    if not alive:
        notice(f"{client.describe_no_daemon(db)}; the request runs when a daemon starts", "warning")
    if not wait:
        return
    how = client.Follow(stale_after=stale_after, timeout=timeout, echo=click.echo)
    raise click.exceptions.Exit(client.follow(db, request_id, how))
