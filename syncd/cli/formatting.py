"""Render rows as a terminal table, JSON, JSON lines or CSV, the same way in every command.

Rows are plain mappings. Machine formats are streamed row by row, so a command can pipe a
ledger of millions of rows without holding it in memory. Datetimes are always ISO-8601 UTC
with a ``Z`` suffix; in CSV, nested values (dicts, lists) are JSON strings and ``None`` is an
empty cell, so ``csv.DictReader`` plus ``json.loads`` gets the data back.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TextIO, TypeVar

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

OutputFormat = Literal["table", "json", "jsonl", "csv"]
ALL_FORMATS: tuple[OutputFormat, ...] = ("table", "json", "jsonl", "csv")
NULL_DISPLAY = "-"

F = TypeVar("F", bound=Callable[..., Any])


def format_option(choices: Sequence[str] = ALL_FORMATS, default: str = "table") -> Callable[[F], F]:
    """The ``--format`` option, stored as ``fmt``."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help="Output format: a table for people, the others for pipes.",
    )


def iso_z(value: datetime) -> str:
    """ISO-8601 in UTC with a ``Z`` suffix (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def short_time(value: datetime | None) -> str:
    """Seconds-precision UTC time for tables: ``2026-05-01 12:00:03Z``."""
    if value is None:
        return NULL_DISPLAY
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def human_duration(delta: timedelta | float | None) -> str:
    """``45s``, ``3m05s``, ``2h10m``, ``4d3h``: short and sortable by eye."""
    if delta is None:
        return NULL_DISPLAY
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 10:
        return f"{sign}{seconds:.1f}s"
    s = int(seconds)
    if s < 60:
        return f"{sign}{s}s"
    if s < 3600:
        return f"{sign}{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{sign}{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{sign}{s // 86400}d{(s % 86400) // 3600}h"


def jsonable(value: Any) -> Any:
    """Convert a value to what ``json.dumps`` accepts, with syncd's datetime convention."""
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    return str(value)


def dumps(value: Any, *, indent: int | None = None) -> str:
    return json.dumps(jsonable(value), ensure_ascii=False, indent=indent)


def plural(count: int, noun: str = "entry", nouns: str = "entries") -> str:
    """``1 entry``, ``3 entries``."""
    return f"{count} {noun if count == 1 else nouns}"


def truncate(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` characters, ending with an ellipsis when cut."""
    text = " ".join(text.split()) if "\n" in text or "\t" in text else text
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def display(value: Any, width: int = 60) -> str:
    """A compact single-line rendering of one value for a table cell."""
    if value is None:
        return NULL_DISPLAY
    if isinstance(value, datetime):
        return short_time(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return truncate(value, width)
    return truncate(dumps(value), width)


def stdout() -> TextIO:
    """The current stdout (looked up at call time so that test runners can capture it)."""
    return sys.stdout


def write_json(rows: Iterable[Mapping[str, Any]], out: TextIO | None = None) -> int:
    """Stream a JSON array, one object per line; returns the number of rows written."""
    out = out or stdout()
    count = 0
    out.write("[")
    for row in rows:
        out.write(",\n" if count else "\n")
        out.write(dumps(row))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_object(value: Mapping[str, Any], out: TextIO | None = None) -> None:
    """One JSON object, indented: the ``--format json`` of single-record commands."""
    (out or stdout()).write(dumps(value, indent=2) + "\n")


def write_jsonl(rows: Iterable[Mapping[str, Any]], out: TextIO | None = None) -> int:
    """One JSON object per line, written as rows arrive (never all held in memory)."""
    out = out or stdout()
    count = 0
    for row in rows:
        out.write(dumps(row) + "\n")
        count += 1
    return count


def csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping | list | tuple):
        return dumps(value)
    if isinstance(value, datetime):
        return iso_z(value)
    return str(jsonable(value))


def write_csv(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], out: TextIO | None = None
) -> int:
    """A header plus one line per row; nested values as JSON, ``None`` as an empty cell."""
    out = out or stdout()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in columns])
        count += 1
    return count


@dataclass(frozen=True)
class Column:
    """A table column: the row key, its heading and how a cell is rendered."""

    key: str
    heading: str
    render: Callable[[Any], str] = display
    justify: Literal["left", "right", "center"] = "left"
    no_wrap: bool = False
    max_width: int | None = None
    ratio: int | None = None


def natural_width(rows: Sequence[Mapping[str, Any]], columns: Sequence[Column]) -> int:
    """The width of a table whose cells are never wrapped (two spaces between columns)."""
    widths = [
        max(
            [len(col.heading)]
            + [len(line) for r in rows for line in col.render(r.get(col.key)).splitlines()]
        )
        for col in columns
    ]
    return sum(widths) + 2 * (len(widths) - 1)


def terminal_width() -> int:
    """The terminal's width (``$COLUMNS`` when not a terminal, else 80)."""
    return console().width


def console(out: TextIO | None = None) -> Console:
    """A rich console on stdout; colours only on a terminal, never markup from data."""
    return Console(file=out or stdout(), highlight=False, soft_wrap=False)


def build_table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], title: str | None = None
) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        expand=False,
        pad_edge=False,
        box=None,
        header_style="bold",
    )
    for col in columns:
        table.add_column(
            col.heading,
            justify=col.justify,
            no_wrap=col.no_wrap,
            max_width=col.max_width,
            ratio=col.ratio,
            overflow="fold",
        )
    for row in rows:
        table.add_row(*(Text(col.render(row.get(col.key))) for col in columns))
    return table


def print_table(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    title: str | None = None,
    out: TextIO | None = None,
) -> None:
    print_renderable(build_table(rows, columns, title), out)


def print_renderable(renderable: Any, out: TextIO | None = None) -> None:
    """Print through rich, without the trailing spaces it pads the last column with."""
    con = console(out)
    with con.capture() as captured:
        con.print(renderable)
    text = "\n".join(line.rstrip() for line in captured.get().splitlines())
    (out or stdout()).write(text + "\n")


def print_key_values(
    pairs: Iterable[tuple[str, Any]], *, title: str | None = None, out: TextIO | None = None
) -> None:
    """A two-column ``key  value`` block, for one record (a run, a link, the daemon)."""
    table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
    table.add_column("key", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for key, value in pairs:
        table.add_row(key, value if isinstance(value, Text) else Text(display(value, 200)))
    print_renderable(table, out)


def emit(
    rows: Iterable[Mapping[str, Any]],
    fmt: str,
    *,
    columns: Sequence[Column],
    csv_columns: Sequence[str] | None = None,
    title: str | None = None,
) -> int:
    """Write ``rows`` in ``fmt``; ``csv_columns`` defaults to the table's keys."""
    if fmt == "json":
        return write_json(rows)
    if fmt == "jsonl":
        return write_jsonl(rows)
    if fmt == "csv":
        return write_csv(rows, csv_columns or [c.key for c in columns])
    materialized = list(rows)
    print_table(materialized, columns, title=title)
    return len(materialized)
