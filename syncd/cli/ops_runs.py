"""`syncd runs` (recent sync runs) and `syncd runs show RUN_ID` (one run, its ledger, errors).

A run that did not finish (killed: still ``running`` with its process gone, or marked
``interrupted`` by a later run) never recorded its counters: they are derived from its ledger
rows (``counters_from`` = ``ledger``), and those the ledger cannot tell (unchanged, API calls,
429s) are shown as unknown, never as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import click
from rich.text import Text

from syncd.cli.context import AppContext, pass_app
from syncd.cli.formatting import (
    ALL_FORMATS,
    NULL_DISPLAY,
    Column,
    display,
    emit,
    format_option,
    human_duration,
    natural_width,
    plural,
    print_key_values,
    print_table,
    short_time,
    terminal_width,
    write_object,
)
from syncd.cli.ops_common import (
    fail,
    friendly_errors,
    open_database,
    pipe_safe,
    utcnow,
)
from syncd.cli.ops_ledger_view import print_ledger
from syncd.exit_codes import ExitCode
from syncd.logs import notice
from syncd.store.ledger_query import LedgerFilter, iter_ledger
from syncd.store.reports import (
    RUN_COUNTERS,
    get_run,
    list_runs,
    run_error_groups,
    run_ledger_summary,
)
from syncd.store.schema import RUN_KINDS, RUN_STATUSES

RUN_FIELDS = (
    "id",
    "kind",
    "trigger",
    "dry_run",
    "status",
    "started_at",
    "finished_at",
    "duration_seconds",
    *RUN_COUNTERS,
    "api_calls",
    "rate_limited",
    "instance_id",
    "error",
    "counters_from",
    "unresolved",
)


def _duration(run: Mapping[str, Any], now: datetime) -> str:
    if run["duration_seconds"] is not None:
        return human_duration(run["duration_seconds"])
    return human_duration(now - run["started_at"]) + "…" if run["status"] == "running" else "-"


SHORT_NAMES = {
    "created": "new",
    "updated": "upd",
    "deleted": "del",
    "unchanged": "same",
    "adopted": "adopt",
    "failed": "fail",
    "held": "held",
    "rejected": "rej",
    "api_calls": "calls",
    "rate_limited": "429s",
    "unresolved": "pending",
}


def run_summary(run: Mapping[str, Any]) -> str:
    """The non-zero counters in one line: ``new 2, upd 1, fail 3; calls 7, 429s 2``; for a
    run that did not finish: ``new 820, pending 3 (from the ledger); calls unknown``."""
    keys = (*RUN_COUNTERS, "unresolved")
    changes = ", ".join(f"{SHORT_NAMES[k]} {run[k]}" for k in keys if run.get(k))
    if run.get("counters_from") == "ledger":
        return f"{changes or 'no changes'} (from the ledger); calls unknown"
    calls = ", ".join(f"{SHORT_NAMES[k]} {run[k]}" for k in ("api_calls", "rate_limited") if run[k])
    return "; ".join(part for part in (changes or "no changes", calls) if part)


def run_display(run: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    row = dict(run)
    row["kind"] = f"{run['kind']} (dry)" if run["dry_run"] else run["kind"]
    row["started_at"] = short_time(run["started_at"])
    row["started_short"] = run["started_at"].strftime("%m-%d %H:%M")
    row["duration"] = _duration(run, now)
    row["summary"] = (
        f"{run['folded']} runs, nothing to do" if run.get("folded") else run_summary(run)
    )
    return row


def _num(value: Any) -> str:
    return NULL_DISPLAY if value is None else str(value)


def _plain(value: Any) -> str:
    return display(value, 60)


RUNS_TABLE = (
    Column("id", "run", _num, justify="right", no_wrap=True),
    Column("kind", "kind", _plain, no_wrap=True),
    Column("trigger", "trigger", _plain, no_wrap=True),
    Column("status", "status", _plain, no_wrap=True),
    Column("started_at", "started (UTC)", _plain, no_wrap=True),
    Column("duration", "took", _plain, justify="right", no_wrap=True),
    Column("created", "new", _num, justify="right"),
    Column("updated", "upd", _num, justify="right"),
    Column("deleted", "del", _num, justify="right"),
    Column("unchanged", "same", _num, justify="right"),
    Column("adopted", "adopt", _num, justify="right"),
    Column("failed", "fail", _num, justify="right"),
    Column("held", "held", _num, justify="right"),
    Column("rejected", "rej", _num, justify="right"),
    Column("api_calls", "calls", _num, justify="right"),
    Column("rate_limited", "429s", _num, justify="right"),
)
# For terminals too narrow for RUNS_TABLE: the non-zero counters in one column.
RUNS_COMPACT = (
    Column("id", "run", _num, justify="right", no_wrap=True),
    Column("kind", "kind", _plain, no_wrap=True),
    Column("status", "status", _plain, no_wrap=True),
    Column("started_short", "started", _plain, no_wrap=True),
    Column("duration", "took", _plain, justify="right", no_wrap=True),
    Column("summary", "counters", _plain, ratio=1),
)


@click.group("runs", invoke_without_command=True)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    metavar="N",
    default=20,
    show_default=True,
    help="At most this many runs, newest first; 0 = all.",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(RUN_KINDS),
    help="Only runs of this kind (repeatable).",
)
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(RUN_STATUSES),
    help="Only runs with this status (repeatable).",
)
@click.option(
    "--expand",
    is_flag=True,
    help="Show every run; by default the table folds consecutive runs that found nothing.",
)
@format_option(ALL_FORMATS)
@click.pass_context
@friendly_errors
def runs_cmd(
    ctx: click.Context,
    limit: int,
    kinds: tuple[str, ...],
    statuses: tuple[str, ...],
    expand: bool,
    fmt: str,
) -> None:
    """List sync runs, newest first, with their counters.

    Table columns: new = created, upd = updated, del = deleted, same = unchanged,
    adopt = adopted, fail = failed, rej = rejected (400 from the API), calls = API calls,
    429s = rate-limited responses. See `syncd runs show RUN_ID` for one run's details.
    In the table, consecutive incremental runs that succeeded with nothing to do (no
    change, no call) show as one line with their count (`--expand`: one line each);
    JSON, JSONL and CSV always list every run, and `--limit` counts lines of the table.
    """
    if ctx.invoked_subcommand is not None:
        return
    app = ctx.find_object(AppContext)
    assert app is not None
    db = open_database(app)
    with db.read() as conn:
        if fmt == "table" and not expand:
            runs = _folded(conn, limit, kinds, statuses)
        else:
            runs = list_runs(conn, limit=limit or None, kinds=kinds, statuses=statuses)
    with pipe_safe():
        if fmt != "table":
            emit(
                ({k: r[k] for k in RUN_FIELDS} for r in runs),
                fmt,
                columns=RUNS_TABLE,
                csv_columns=RUN_FIELDS,
            )
        elif not runs:
            notice("no runs recorded yet")
        else:
            now = utcnow()
            rows = [run_display(r, now) for r in runs]
            wide = natural_width(rows, RUNS_TABLE) <= terminal_width()
            print_table(rows, RUNS_TABLE if wide else RUNS_COMPACT)


def is_idle(run: Mapping[str, Any]) -> bool:
    """An incremental run that succeeded with nothing to do: no change and no call."""
    return (
        run["kind"] == "incremental"
        and run["status"] == "succeeded"
        and not run["dry_run"]
        and run.get("counters_from") == "run"
        and not any(run[k] for k in (*RUN_COUNTERS, "api_calls", "rate_limited"))
    )


def _fold(group: list[dict[str, Any]]) -> dict[str, Any]:
    """Consecutive idle runs (newest first) as one table line."""
    if len(group) == 1:
        return group[0]
    newest, oldest = group[0], group[-1]
    return {
        **newest,
        "id": f"{oldest['id']}–{newest['id']}",
        "started_at": oldest["started_at"],
        "duration_seconds": None,
        "status": f"succeeded ×{len(group)}",
        "folded": len(group),
    }


def _folded(
    conn: Any, limit: int, kinds: tuple[str, ...], statuses: tuple[str, ...]
) -> list[dict[str, Any]]:
    """``limit`` table lines (0: all), idle runs folded, read page by page."""
    lines: list[dict[str, Any]] = []
    group: list[dict[str, Any]] = []
    before: tuple[datetime, int] | None = None
    while not limit or len(lines) < limit or group:  # a fold is counted whole
        page = list_runs(conn, limit=500, kinds=kinds, statuses=statuses, before=before)
        for run in page:
            if is_idle(run):
                group.append(run)
                continue
            if group:
                lines.append(_fold(group))
                group = []
            lines.append(run)
        if len(page) < 500:
            break
        last = page[-1]
        before = (last["started_at"], last["id"])
    if group:
        lines.append(_fold(group))
    return lines[:limit] if limit else lines


def _counters_line(run: Mapping[str, Any]) -> str:
    line = ", ".join(f"{name} {_num(run[name])}" for name in RUN_COUNTERS)
    if run.get("unresolved"):
        line += f", unresolved intents {run['unresolved']}"
    if run.get("counters_from") == "ledger":
        line += " (from its ledger rows: the run did not record them)"
    return line


def _calls_line(run: Mapping[str, Any]) -> str:
    if run["api_calls"] is None:
        return "unknown (the run did not record them)"
    return f"{run['api_calls']} ({run['rate_limited']} answered 429)"


ERRORS_TABLE = (
    Column("count", "count", _num, justify="right", no_wrap=True),
    Column("http_status", "http", _num, no_wrap=True),
    Column("error", "error", lambda v: display(v, 200), ratio=4),
    Column("example_external_id", "e.g. external id", _plain, ratio=1),
)


@runs_cmd.command("show")
@click.argument("run_id", type=int)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    metavar="N",
    default=100,
    show_default=True,
    help="At most this many of the run's ledger entries; 0 = all.",
)
@format_option(("table", "json"))
@pass_app
@friendly_errors
def show_cmd(app: AppContext, run_id: int, limit: int, fmt: str) -> None:
    """One run: counters, its ledger entries, and its errors grouped by reason.

    Exit status: 0 shown, 6 no such run, 2 usage or configuration error.
    """
    db = open_database(app)
    flt = LedgerFilter(run_id=run_id, oldest_first=True)
    with db.read() as conn:
        run = get_run(conn, run_id)
        if run is None:
            message = f"no run with id {run_id}; `syncd runs` lists the recent runs"
            raise fail(message, ExitCode.NOT_FOUND)
        errors = run_error_groups(conn, run_id)
        summary = run_ledger_summary(conn, run_id)
        total = sum(summary.values())
        entries = list(iter_ledger(conn, flt, limit=limit or None))
    with pipe_safe():
        if fmt == "json":
            payload = {k: run[k] for k in RUN_FIELDS}
            payload.update(
                ledger_summary=summary, errors=errors, ledger_total=total, ledger=entries
            )
            write_object(payload)
            return
        _print_run(run, summary, errors, entries, total)


def _print_run(
    run: Mapping[str, Any],
    summary: Mapping[str, int],
    errors: list[dict[str, Any]],
    entries: list[dict[str, Any]],
    total: int,
) -> None:
    now = utcnow()
    print_key_values(
        [
            ("kind", f"{run['kind']} (dry run)" if run["dry_run"] else run["kind"]),
            ("trigger", run["trigger"]),
            ("status", run["status"]),
            ("instance", run["instance_id"]),
            ("started", run["started_at"]),
            ("finished", run["finished_at"]),
            ("duration", _duration(run, now)),
            ("counters", _counters_line(run)),
            ("API calls", _calls_line(run)),
            ("error", run["error"]),
            ("ledger", Text(", ".join(f"{k} {v}" for k, v in summary.items()) or "no entries")),
        ],
        title=f"Run {run['id']}",
    )
    if errors:
        click.echo()
        print_table(errors, ERRORS_TABLE, title="Errors by reason")
    if entries:
        click.echo()
        shown = f"first {len(entries)} of {total}" if len(entries) < total else plural(total)
        print_ledger(entries, title=f"Ledger entries ({shown}, oldest first)")
        if len(entries) < total:
            notice(f"more: syncd ledger --run {run['id']} --oldest-first --limit 0")
