"""`syncd mirror import`: load a CRM export (CSV or JSON Lines) into the mirror.

Exit codes: 0 every row imported; 1 some rows rejected (the others went in); 2 usage,
configuration or unreadable file (nothing imported); 3 a snapshot's tombstones were held by
the delete guard (the rows themselves went in). Errors are raised as click exceptions so the
exit code is the same under ``syncd`` and under ``click.testing.CliRunner``.
"""

from __future__ import annotations

import csv
import gzip
import re
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, Any, TextIO, cast

import click

from syncd.cli.context import AppContext, pass_app
from syncd.errors import UserError
from syncd.exit_codes import ExitCode
from syncd.logs import keep_verbatim, notice
from syncd.store import migrate
from syncd.store.mirror import mirror_counts
from syncd.sync.import_formats import ENCODINGS, Format
from syncd.sync.importer import (
    DEFAULT_BATCH_SIZE,
    Duplicate,
    ImportFileError,
    ImportOptions,
    ImportReport,
    Rejection,
    import_mirror,
)

_EXTENSIONS: dict[str, Format] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
# What a file's bytes must not send to the operator's terminal: C0/C1 controls (ANSI escape
# sequences), line and paragraph separators, bidirectional overrides, lone surrogates.
_UNPRINTABLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def printable(text: str) -> str:
    """``text`` with every character that could steer a terminal shown as an escape."""
    return _UNPRINTABLE.sub(lambda m: ascii(m.group())[1:-1], text)


class CommandFailed(click.ClickException):
    """An error the operator can fix: one line on stderr, ``USAGE``, no traceback.

    ``multiline`` keeps the line breaks of a message syncd wrote itself (a configuration
    error lists one problem per line); text from a file never gets them.
    """

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, multiline: bool = False) -> None:
        super().__init__(message)
        self.multiline = multiline

    def show(self, file: IO[Any] | None = None) -> None:
        message = self.format_message()
        lines = message.split("\n") if self.multiline else [message]
        notice("\n".join(printable(line) for line in lines), "error")


@click.group()
def mirror() -> None:
    """The CRM mirror: the contacts syncd makes Genesys hold."""


def infer_format(path: str, explicit: str | None) -> Format:
    """The --format given, else the one the file name's extension says (``.gz`` allowed)."""
    if explicit is not None:
        return "jsonl" if explicit == "jsonl" else "csv"
    if path == "-":
        raise CommandFailed("reading standard input needs --format csv or --format jsonl")
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    fmt = _EXTENSIONS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise CommandFailed(
            f"cannot tell the format of {path} from its name (expected .csv, .jsonl or "
            ".ndjson, optionally .gz): pass --format csv or --format jsonl"
        )
    return fmt


@contextmanager
def open_source(path: str) -> Iterator[IO[bytes]]:
    """The file as bytes (``-`` is standard input; ``.gz`` is decompressed on the fly)."""
    if path == "-":
        yield sys.stdin.buffer
        return
    try:
        raw = Path(path).open("rb")  # noqa: SIM115 (closed below; errors here are the user's)
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror or exc}") from None
    with raw:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield cast(IO[bytes], unzipped)
        else:
            yield raw


class _RejectSink:
    """Shows the first rejections and repeats on stderr; writes all rejections to --rejects."""

    def __init__(self, show: int, rejects: TextIO | None) -> None:
        self.show = show
        self.shown = 0
        self.repeats_shown = 0
        self._writer = csv.writer(rejects) if rejects is not None else None
        if self._writer is not None:
            self._writer.writerow(["line", "externalId", "reason"])

    def reject(self, rejection: Rejection) -> None:
        if self._writer is not None:
            self._writer.writerow(
                [rejection.line, rejection.external_id or "", "; ".join(rejection.reasons)]
            )
        if self.shown < self.show:
            self.shown += 1
            who = f" ({rejection.external_id})" if rejection.external_id else ""
            line = f"rejected: line {rejection.line}{who}: {'; '.join(rejection.reasons)}"
            notice(printable(line))

    def duplicate(self, dup: Duplicate) -> None:
        if self.repeats_shown < self.show:
            self.repeats_shown += 1
            notice(
                printable(
                    f"line {dup.line}: externalId {dup.external_id} already appeared on "
                    f"line {dup.first_line}; the last occurrence wins"
                ),
                "warning",
            )


def _progress(report: ImportReport) -> None:
    click.echo(
        f"\r  {report.rows_read:,} rows read ({report.rows_per_second:,.0f} rows/s)",
        err=True,
        nl=False,
    )


@mirror.command("import")
@click.argument("file", metavar="FILE")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl"]),
    default=None,
    help="File format (default: from the extension: .csv, .jsonl, .ndjson, + .gz).",
)
@click.option(
    "--snapshot",
    is_flag=True,
    help="The file is the whole CRM: tombstone mirror contacts missing from it.",
)
@click.option(
    "--dry-run", is_flag=True, help="Read and validate, report what would change, write nothing."
)
@click.option(
    "--allow-mass-delete",
    is_flag=True,
    help="Let a snapshot tombstone more than the delete guard allows.",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="PATH",
    help="Write every rejected row to PATH as CSV (line,externalId,reason).",
)
@click.option(
    "--show-rejects",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many rejected rows to list on stderr.",
)
@click.option(
    "--encoding",
    type=click.Choice(ENCODINGS),
    default="utf-8",
    show_default=True,
    help="Text encoding of the file.",
)
@click.option(
    "--batch-size", type=click.IntRange(1, 10_000), default=DEFAULT_BATCH_SIZE, hidden=True
)
@pass_app
@click.pass_context
def import_command(
    ctx: click.Context,
    app: AppContext,
    file: str,
    fmt: str | None,
    snapshot: bool,
    dry_run: bool,
    allow_mass_delete: bool,
    rejects_path: str | None,
    show_rejects: int,
    encoding: str,
    batch_size: int,
) -> None:
    """Upsert the contacts of FILE (CSV or JSON Lines; - for stdin) into the mirror.

    Bad rows are listed with their line number and skipped; the others go in. Exit codes:
    0 all rows imported, 1 some rejected, 2 usage/config error or unreadable file,
    3 snapshot tombstones held by the delete guard.
    """
    if allow_mass_delete and not snapshot:
        raise CommandFailed("--allow-mass-delete only applies to a --snapshot import")
    keep_verbatim(file)  # the names of the operator's files are printed as given
    keep_verbatim(rejects_path)
    file_format = infer_format(file, fmt)
    try:
        settings = app.local_settings  # an import never calls Genesys: no secret needed
        db = app.database()
        migrate.check_schema(db)
        options = ImportOptions(
            fmt=file_format,
            snapshot=snapshot,
            dry_run=dry_run,
            allow_mass_delete=allow_mass_delete,
            default_region=settings.genesys.default_phone_region,
            profile=settings.genesys.profile,
            phone_policy=settings.sync.phone_policy,
            max_delete_count=settings.sync.max_delete_count,
            max_delete_percent=settings.sync.max_delete_percent,
            encoding=encoding,
            batch_size=batch_size,
        )
        with ExitStack() as stack:
            rejects: TextIO | None = None
            if rejects_path is not None:
                try:
                    rejects = stack.enter_context(
                        open(
                            rejects_path,
                            "w",
                            newline="",
                            encoding="utf-8",
                            errors="backslashreplace",
                        )
                    )
                except OSError as exc:
                    raise CommandFailed(
                        f"cannot write {rejects_path}: {exc.strerror or exc}"
                    ) from None
            sink = _RejectSink(show_rejects, rejects)
            stream = stack.enter_context(open_source(file))
            tty = sys.stderr.isatty()
            try:
                report = import_mirror(
                    db,
                    stream,
                    options,
                    on_reject=sink.reject,
                    on_duplicate=sink.duplicate,
                    on_progress=_progress if tty else None,
                )
            except (OSError, EOFError) as exc:
                raise CommandFailed(
                    f"I/O error while importing {file}: {exc}; the rows before it were imported "
                    "(importing is idempotent: fix the file and run again)"
                ) from None
            finally:
                if tty:
                    click.echo("", err=True)
        if report.rejected > sink.shown:
            more = report.rejected - sink.shown
            hint = (
                f" (all are in {rejects_path})"
                if rejects_path
                else " (--rejects PATH lists them all)"
            )
            notice(f"... and {more:,} more rejected rows{hint}")
        _print_summary(file, file_format, report)
        if not dry_run:
            counts = mirror_counts(db)
            click.echo(
                f"mirror now holds {counts.live:,} live and {counts.tombstoned:,} tombstoned "
                f"contacts; {counts.pending_changes:,} changes wait for the next sync"
            )
        if report.held_reason is not None:
            _print_held(report)
    except ImportFileError as exc:
        raise CommandFailed(f"{file}: {exc}") from None
    except CommandFailed:
        raise
    except UserError as exc:
        raise CommandFailed(str(exc), multiline=True) from None
    ctx.exit(report.exit_code)


def _print_summary(file: str, fmt: str, report: ImportReport) -> None:
    source = "standard input" if file == "-" else file
    title = f"import of {source} ({fmt}{', snapshot' if report.snapshot else ''})"
    if report.dry_run:
        title += ": DRY RUN, nothing was written; the counts are what an import would do"
    lines = [
        title,
        f"  rows read   {report.rows_read:>12,}",
        f"  inserted    {report.inserted:>12,}",
        f"  updated     {report.updated:>12,}"
        + (f"   ({report.revived:,} un-deleted)" if report.revived else ""),
        f"  unchanged   {report.unchanged:>12,}",
        f"  rejected    {report.rejected:>12,}",
    ]
    if report.duplicates:
        lines.append(f"  duplicates  {report.duplicates:>12,}   (the last occurrence won)")
    if report.snapshot:
        held = report.held_reason is not None
        tombstoned = report.missing if report.dry_run and not held else report.tombstoned
        note = f"   (HELD: {report.missing:,} missing from the file)" if held else ""
        lines.append(f"  tombstoned  {tombstoned:>12,}{note}")
    lines.append(f"  time        {report.seconds:>11.1f}s   ({report.rows_per_second:,.0f} rows/s)")
    click.echo("\n".join(lines))


def _print_held(report: ImportReport) -> None:
    verb = "would NOT be tombstoned" if report.dry_run else "were NOT tombstoned"
    notice(
        f"syncd: snapshot held: {report.missing:,} live contacts missing from the file "
        f"{verb}: {report.held_reason}.\n"
        "Check that the file is the complete CRM export. To tombstone them anyway, run the "
        "same import again with --allow-mass-delete."
    )
