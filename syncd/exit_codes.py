"""Every exit status of every ``syncd`` command: one number, one meaning.

It sits below every layer (``errors.py`` needs it for ``UserError``) so that the engine, the
daemon and the CLI all answer with the same numbers. README.md has the operators' table;
``tests/test_exit_codes.py`` holds that table against this enum.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["ExitCode"]


class ExitCode(IntEnum):
    """Process exit statuses. The docstring of each member is its one meaning."""

    OK = 0
    """Done: everything asked for succeeded (``status``: healthy)."""

    PARTIAL = 1
    """Finished, but not everything succeeded: rows failed or are still pending, the run
    itself failed, or ``status`` found the deployment degraded."""

    USAGE = 2
    """Bad usage, configuration or input: the message says what to fix; nothing was done."""

    HELD = 3
    """Deletes were held by the mass-delete guard: an operator must allow them
    (``--allow-mass-delete``)."""

    NO_DAEMON = 4
    """No live daemon: ``status`` found none, or ``resync --wait`` saw no daemon take the
    request."""

    DATABASE_UNAVAILABLE = 5
    """The database could not be read, so nothing can be told about the deployment."""

    NOT_FOUND = 6
    """The record asked for (a contact, a run) does not exist."""

    INTERRUPTED = 130
    """Stopped by Ctrl-C (SIGINT) before finishing (128 + SIGINT, the shell convention);
    ``run`` and ``emulator`` treat SIGINT and SIGTERM as a clean stop (``OK``) instead."""
