"""`syncd sync`: one sync run in the foreground, under the same single-writer lock as the daemon
(a dry run, which writes nothing, takes no lock and works beside a running daemon).

Exit codes: 0 every row succeeded; 1 some rows failed or were rejected, or intents were left
unresolved (or the run failed or was interrupted); 2 usage or configuration error, or the lock
is held; 3 deletes are held by the mass-delete guard, whether this run held them or an earlier
one did (re-run with ``--allow-mass-delete`` once you have checked them).
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from syncd.cli.context import AppContext, pass_app
from syncd.logs import notice
from syncd.store import migrate
from syncd.sync.runs import EngineExecutor, PlanEntry, RunReport
from syncd.sync.seam import RunRequest

PLAN_PRINT_LIMIT = 10_000
_SUMMARY = (
    ("created", "created"),
    ("updated", "updated"),
    ("deleted", "deleted"),
    ("adopted", "adopted"),
    ("unchanged", "unchanged"),
    ("failed", "failed"),
    ("held", "held"),
    ("rejected", "rejected"),
)


class _Bar:
    """The engine's progress callbacks drawn as a rich progress bar (terminals only)."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("starting", total=None)

    def phase(self, name: str, total: int | None) -> None:
        self.progress.update(self.task, description=name, total=total, completed=0)

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)


@contextmanager
def _progress(enabled: bool) -> Iterator[_Bar | None]:
    if not enabled:
        yield None
        return
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with progress:
        yield _Bar(progress)


@contextmanager
def _stop_on_interrupt() -> Iterator[threading.Event]:
    """First Ctrl-C: stop taking new rows and finish in-flight writes; second: abort."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        notice("syncd: stopping after the writes in flight (Ctrl-C again to abort)")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _fields(fields: dict[str, Any] | None) -> str:
    if not fields:
        return ""
    return "; ".join(f"{name}: {_show(old)} → {_show(new)}" for name, (old, new) in fields.items())


def _show(value: Any) -> str:
    if value is None or value == []:
        return "∅"
    if isinstance(value, list):
        return ", ".join(
            f"{v.get('number')} ({v.get('type')})" if isinstance(v, dict) else str(v) for v in value
        )
    if isinstance(value, dict):
        return " / ".join(str(v) for v in value.values() if v)
    return str(value)


def format_plan_entry(entry: PlanEntry) -> str:
    who = entry.external_id or "(no externalId)"
    if entry.genesys_id:
        who += f" [{entry.genesys_id}]"
    parts = [f"{entry.op:<9} {who}"]
    if details := _fields(entry.fields):
        parts.append(details)
    if entry.note:
        parts.append(f"({entry.note})")
    return "  ".join(parts)


def _summary(report: RunReport, console: Console, dry_run: bool) -> None:
    title = f"sync {report.kind}" + (" (dry run: nothing changed)" if dry_run else "")
    if report.run_id is not None:
        title += f" — run {report.run_id}"
    table = Table(title=title, show_header=True)
    table.add_column("", style="bold")
    table.add_column("count", justify="right")
    for label, key in _SUMMARY:
        table.add_row(label, str(report.counts[key]))
    if report.counts["unresolved"]:
        table.add_row("unresolved intents", str(report.counts["unresolved"]))
    if report.counts["duplicates"] or report.counts["orphans"]:
        table.add_row("duplicates reported", str(report.counts["duplicates"]))
        table.add_row("orphans reported", str(report.counts["orphans"]))
    table.add_row("API calls", str(report.api_calls))
    table.add_row("429s", str(report.rate_limited))
    table.add_row("duration", f"{report.duration_s:.1f}s")
    table.add_row("status", report.status)
    console.print(table)
    if report.error:
        console.print(f"error: {report.error}")
    if report.counts["held"] and not dry_run:
        console.print(
            f"{report.counts['held']} delete(s) are held by the mass-delete guard: check them "
            "(`syncd ledger --outcome held`), then run `syncd sync --allow-mass-delete`"
        )
    elif report.status == "held":
        console.print(
            "deletes would be held by the mass-delete guard: check them "
            "(`syncd ledger --outcome held`), then re-run with --allow-mass-delete"
        )


@click.command("sync")
@click.option("--full", is_flag=True, help="Full reconcile: list every Genesys contact.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing at all.")
@click.option(
    "--external-id",
    "external_ids",
    multiple=True,
    metavar="ID",
    help="Sync only these externalIds (repeatable).",
)
@click.option(
    "--allow-mass-delete",
    is_flag=True,
    help="Release deletes the mass-delete guard holds (after checking them).",
)
@pass_app
def sync(
    app: AppContext,
    full: bool,
    dry_run: bool,
    external_ids: tuple[str, ...],
    allow_mass_delete: bool,
) -> None:
    """Run one sync now, in the foreground (exit 0 ok, 1 rows failed or intents unresolved,
    2 error, 3 deletes held)."""
    if full and external_ids:
        raise click.UsageError("--full and --external-id cannot be combined")
    kind = "targeted" if external_ids else "full" if full else "incremental"
    settings = app.settings
    db = app.database()
    migrate.check_schema(db)
    executor = EngineExecutor(settings, db)
    out = Console(highlight=False, soft_wrap=True)
    plan: list[PlanEntry] = []
    request = RunRequest(kind, tuple(external_ids), allow_mass_delete)  # type: ignore[arg-type]
    with _stop_on_interrupt() as stop, _progress(sys.stderr.isatty()) as bar:
        report = executor.run(
            request,
            trigger="manual",
            stop=stop,
            dry_run=dry_run,
            progress=bar,
            on_plan=plan.append if dry_run else None,
        )
    if dry_run:
        shown = [e for e in plan if e.op not in ("orphan", "duplicate")]
        out.print(f"plan ({len(shown)} changes):" if shown else "plan: nothing to change")
        for entry in shown[:PLAN_PRINT_LIMIT]:
            out.print(format_plan_entry(entry), markup=False)
        if len(shown) > PLAN_PRINT_LIMIT:
            out.print(f"... and {len(shown) - PLAN_PRINT_LIMIT} more")
    _summary(report, out, dry_run)
    click.get_current_context().exit(report.exit_code)
