"""What the operators' commands share: time parsing, opening the database, error exits.

Errors are turned into ``syncd: error: ...`` plus an exit code *inside* the command, not only
in :func:`syncd.cli.main`, so the documented exit codes hold however the command is invoked
(console script, ``python -m syncd``, or ``CliRunner`` in the tests).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import click
from sqlalchemy.exc import OperationalError

from syncd.cli.context import AppContext
from syncd.config import parse_duration
from syncd.errors import DatabaseError, SyncdError, UserError
from syncd.exit_codes import ExitCode
from syncd.logs import notice
from syncd.store import migrate
from syncd.store.db import Database

P = ParamSpec("P")
R = TypeVar("R")


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_when(value: str, *, now: datetime | None = None) -> datetime:
    """``2h`` / ``7d`` / ``90s`` mean that long ago; otherwise ISO-8601 (naive = UTC)."""
    text = value.strip()
    try:
        return (now or utcnow()) - parse_duration(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a duration ago (such as 90s, 15m, 2h, 7d) nor an ISO-8601 "
            "time (such as 2026-05-01 or 2026-05-01T12:00:00Z)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class WhenType(click.ParamType[datetime]):
    """A click type for ``--since`` / ``--until``."""

    name = "WHEN"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class DurationType(click.ParamType[timedelta]):
    """A click type for durations such as ``120s`` or ``90d``."""

    name = "DURATION"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


WHEN = WhenType()
DURATION = DurationType()


def fail(message: str, code: ExitCode) -> click.exceptions.Exit:
    """Print ``syncd: error: message`` on stderr; return the exit to raise."""
    notice(message, "error")
    return click.exceptions.Exit(code)


def friendly_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Turn syncd errors into one line and their exit code: ``USAGE`` for a UserError,
    ``DATABASE_UNAVAILABLE`` when the database cannot be read (the same in every command),
    ``PARTIAL`` for any other syncd error."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except UserError as exc:
            raise fail(str(exc), exc.exit_code) from None
        except DatabaseError as exc:
            raise fail(str(exc), ExitCode.DATABASE_UNAVAILABLE) from None
        except SyncdError as exc:
            raise fail(str(exc), ExitCode.PARTIAL) from None

    return wrapper


def open_database(app: AppContext) -> Database:
    """The configured database, refusing (``USAGE``) one whose schema is missing or old."""
    db = app.database()
    try:
        migrate.check_schema(db)
    except OperationalError as exc:
        first = str(exc.orig or exc).strip().splitlines()[0]
        raise DatabaseError(f"cannot read the database: {first}") from exc
    return db


@contextmanager
def pipe_safe() -> Iterator[None]:
    """``syncd ledger --format jsonl | head`` ends quietly (``OK``) when the reader goes away."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        raise click.exceptions.Exit(ExitCode.OK) from None
