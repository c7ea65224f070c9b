"""`syncd ledger`: query the ledger of every change; `syncd ledger prune`: apply retention."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from typing import Any

import click

from syncd.cli.context import AppContext, pass_app
from syncd.cli.formatting import ALL_FORMATS, Column, emit, format_option, iso_z, write_object
from syncd.cli.ops_common import DURATION, WHEN, friendly_errors, open_database, pipe_safe
from syncd.cli.ops_ledger_view import print_ledger
from syncd.config import LedgerSettings
from syncd.logs import notice
from syncd.store.ledger import OPS, OUTCOMES
from syncd.store.ledger_query import LEDGER_FIELDS, LedgerFilter, iter_ledger
from syncd.store.retention import DEFAULT_BATCH_SIZE, prune_ledger

DEFAULT_LIMIT = 100
LEDGER_COLUMNS = tuple(Column(name, name) for name in LEDGER_FIELDS)


def ledger_settings(app: AppContext) -> LedgerSettings:
    """The ``[ledger]`` section of the configuration (no Genesys secret needed)."""
    return app.local_settings.ledger


# The values the engine writes (syncd.store.reports, the one list): a typo is a usage error
# that names them, not an empty answer.
OP_CHOICE = click.Choice(OPS, case_sensitive=False)
OUTCOME_CHOICE = click.Choice(OUTCOMES, case_sensitive=False)


@click.group("ledger", invoke_without_command=True)
@click.option(
    "--since",
    type=WHEN,
    metavar="WHEN",
    help="Entries at or after WHEN: a duration ago (2h, 7d) or an ISO-8601 time "
    "(UTC unless it has an offset).",
)
@click.option("--until", type=WHEN, metavar="WHEN", help="Entries before WHEN (same forms).")
@click.option(
    "--external-id",
    "external_ids",
    multiple=True,
    metavar="ID",
    help="Only this CRM external id (repeatable).",
)
@click.option(
    "--genesys-id",
    "genesys_ids",
    multiple=True,
    metavar="ID",
    help="Only this Genesys contact id (repeatable).",
)
@click.option(
    "--op",
    "ops",
    multiple=True,
    type=OP_CHOICE,
    metavar="OP",
    help=f"Only this operation (repeatable): {', '.join(OPS)}.",
)
@click.option(
    "--outcome",
    "outcomes",
    multiple=True,
    type=OUTCOME_CHOICE,
    metavar="OUTCOME",
    help=f"Only this outcome (repeatable): {', '.join(OUTCOMES)}.",
)
@click.option("--run", "run_id", type=int, metavar="RUN_ID", help="Only entries of this run.")
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    metavar="N",
    default=DEFAULT_LIMIT,
    show_default=True,
    help="At most this many entries; 0 = no limit (streamed).",
)
@click.option(
    "--oldest-first",
    "--reverse",
    "oldest_first",
    is_flag=True,
    help="Chronological order: the oldest matching entries first.",
)
@format_option(ALL_FORMATS)
@click.pass_context
@friendly_errors
def ledger_cmd(
    ctx: click.Context,
    since: datetime | None,
    until: datetime | None,
    external_ids: tuple[str, ...],
    genesys_ids: tuple[str, ...],
    ops: tuple[str, ...],
    outcomes: tuple[str, ...],
    run_id: int | None,
    limit: int,
    oldest_first: bool,
    fmt: str,
) -> None:
    """Show ledger entries, newest first: every change syncd attempted or observed.

    \b
    Examples:
      syncd ledger --external-id CRM-1042
      syncd ledger --since 12h --op delete
      syncd ledger --run 17 --outcome failed --format json
      syncd ledger --since 2026-05-01 --limit 0 --format jsonl | jq .
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(AppContext)
    assert app is not None
    flt = LedgerFilter(
        since=since,
        until=until,
        external_ids=external_ids,
        genesys_ids=genesys_ids,
        ops=ops,
        outcomes=outcomes,
        run_id=run_id,
        oldest_first=oldest_first,
    )
    db = open_database(app)
    with db.read() as conn, pipe_safe():
        if fmt != "table":
            emit(iter_ledger(conn, flt, limit=limit or None), fmt, columns=LEDGER_COLUMNS)
            return
        rows = list(iter_ledger(conn, flt, limit=limit + 1 if limit else None))
        more = bool(limit) and len(rows) > limit
        rows = rows[:limit] if limit else rows
        if not rows:
            notice("no ledger entries match")
            return
        print_ledger(rows)
        if more:
            sys.stdout.flush()
            which = "oldest" if oldest_first else "newest"
            notice(f"showing the {which} {limit} entries; --limit N or --limit 0 for more")


@ledger_cmd.command("prune")
@click.option(
    "--older-than",
    type=DURATION,
    metavar="DURATION",
    help="Delete entries older than this (default: [ledger] retention_days, else 90d).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    default=None,
    help=f"Rows deleted per transaction (default {DEFAULT_BATCH_SIZE}).",
)
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
@format_option(("table", "json"), default="table")
@pass_app
@friendly_errors
def prune_cmd(
    app: AppContext, older_than: timedelta | None, batch_size: int | None, dry_run: bool, fmt: str
) -> None:
    """Delete old ledger entries in batches; entries still `pending` are always kept."""
    settings = ledger_settings(app)
    if older_than is None:
        if settings.retention is None:
            notice(
                "ledger retention is off ([ledger] retention_days = 0); pass "
                "--older-than to prune anyway"
            )
            return
        older_than = settings.retention
    db = open_database(app)
    result = prune_ledger(db, older_than, batch_size or settings.prune_batch_size, dry_run=dry_run)
    if fmt == "json":
        payload: dict[str, Any] = {
            "cutoff": iso_z(result.cutoff),
            "deleted": result.deleted,
            "pending_kept": result.pending_kept,
            "batches": result.batches,
            "dry_run": result.dry_run,
            "runs_deleted": result.runs_deleted,
        }
        write_object(payload)
        return
    verb = "would delete" if dry_run else "deleted"
    click.echo(
        f"{verb} {result.deleted} ledger entries older than {iso_z(result.cutoff)}"
        + (f" in {result.batches} batches" if not dry_run else "")
    )
    if result.runs_deleted:
        click.echo(f"{verb} {result.runs_deleted} runs older than that with no entries left")
    if result.pending_kept:
        click.echo(f"kept {result.pending_kept} older entries still pending (unresolved writes)")
