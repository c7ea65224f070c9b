"""Ledger entries for people: one table row per entry, or stacked lines on narrow terminals.

A field-level change is shown as ``field: old → new`` (``∅`` = no value), long values cut
with ``…``. A Genesys id alone is 36 characters, so on a terminal too narrow for the table
(measured, not guessed) each entry becomes a header line with its changes indented below,
every line cut to the terminal width, like ``git log``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import click

from syncd.cli.formatting import (
    NULL_DISPLAY,
    Column,
    display,
    natural_width,
    print_table,
    short_time,
    terminal_width,
    truncate,
)

VALUE_WIDTH = 40
NONE_VALUE = "∅"
DETAILS_MIN_WIDTH = 30


def plain_value(value: Any) -> str:
    """A value as people read it: lists joined by ``, ``, a dict's values by spaces.

    ``[{"type": "work", "e164": "+14155550100"}]`` reads ``work +14155550100``; anything
    nested deeper stays JSON. Exact values are in ``--format json``.
    """
    if value is None:
        return NONE_VALUE
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return ", ".join(plain_value(v) for v in value) if value else "[]"
    if isinstance(value, Mapping) and all(
        isinstance(v, str | int | float | bool) or v is None for v in value.values()
    ):
        return " ".join(str(v) for v in value.values() if v is not None) or "{}"
    return display(value, 10_000)


def change_pair(old: Any, new: Any, width: int = VALUE_WIDTH) -> tuple[str, str]:
    """Both sides cut to ``width``; when they share a long prefix, cut where they differ."""
    a, b = plain_value(old), plain_value(new)
    if len(a) <= width and len(b) <= width:
        return a, b
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    skip = max(common - 6, 0) if common > width // 2 else 0
    if skip:
        a, b = "…" + a[skip:], "…" + b[skip:]
    return truncate(a, width), truncate(b, width)


def format_changes(fields: Any) -> list[str]:
    """``{field: [old, new]}`` as one ``field: old → new`` line per field."""
    if not fields:
        return []
    if not isinstance(fields, Mapping):
        return [display(fields, VALUE_WIDTH * 2)]
    lines = []
    for name, change in fields.items():
        if isinstance(change, list | tuple) and len(change) == 2:
            old, new = change_pair(change[0], change[1])
            lines.append(f"{name}: {old} → {new}")
        else:
            lines.append(f"{name}: {truncate(plain_value(change), VALUE_WIDTH * 2)}")
    return lines


def _details(row: Mapping[str, Any]) -> list[str]:
    lines = format_changes(row.get("fields"))
    if row.get("error"):
        lines.append("error: " + display(str(row["error"]), 120))
    return lines


def _outcome(row: Mapping[str, Any]) -> str:
    status = row.get("http_status")
    return f"{row['outcome']} {status}" if status is not None else str(row["outcome"])


def _text(value: Any) -> str:
    return NULL_DISPLAY if value is None else str(value)


LEDGER_COLUMNS = (
    Column("at", "at (UTC)", _text, no_wrap=True),
    Column("run", "run", _text, justify="right", no_wrap=True),
    Column("op", "op", _text, no_wrap=True),
    Column("outcome", "outcome", _text, no_wrap=True),
    Column("external_id", "external id", _text, no_wrap=True),
    Column("genesys_id", "genesys id", _text, no_wrap=True),
    Column("details", "changes / error", _text, ratio=1),
)


def table_row(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "at": short_time(row["at"]),
        "run": row.get("run_id"),
        "op": row["op"],
        "outcome": _outcome(row),
        "external_id": row.get("external_id"),
        "genesys_id": row.get("genesys_id"),
        "details": "\n".join(_details(row)) or NULL_DISPLAY,
    }


def _cut(line: str, width: int) -> str:
    return line if len(line) <= width else line[: max(width - 1, 0)] + "…"


def stacked_lines(row: Mapping[str, Any], width: int) -> list[str]:
    """One entry as a header line (split in two if needed) plus indented details."""
    op, outcome, external_id = row["op"], _outcome(row), _text(row.get("external_id"))
    head = f"{short_time(row['at'])}  {op:<9} {outcome:<11} {external_id}"
    where = []
    if row.get("run_id") is not None:
        where.append(f"run {row['run_id']}")
    if row.get("genesys_id"):
        where.append(f"genesys {row['genesys_id']}")
    tail = "  ".join(where)
    lines = [f"{head}  {tail}"] if len(head) + 2 + len(tail) <= width else [head, "    " + tail]
    lines += ["    " + d for d in _details(row)]
    return [_cut(line.rstrip(), width) for line in lines if line.strip()]


def print_ledger(entries: Sequence[Mapping[str, Any]], *, title: str | None = None) -> None:
    """Render entries as a table if it fits the terminal, else stacked."""
    width = terminal_width()
    rows = [table_row(e) for e in entries]
    fixed = natural_width(rows, LEDGER_COLUMNS[:-1])
    if fixed + 2 + DETAILS_MIN_WIDTH <= width:
        print_table(rows, LEDGER_COLUMNS, title=title)
        return
    if title:
        click.echo(title)
    for entry in entries:
        click.echo("\n".join(stacked_lines(entry, width)))
