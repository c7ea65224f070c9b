"""The client side of manual resyncs: queue a request, and optionally follow it to the end.

Without ``--wait`` the request is queued even when no daemon is alive (it runs when one
starts) and the user is told so. With ``--wait`` the user wants a result now: with no live
daemon nothing is queued, and a request that was still pending when the wait gives up
(timeout, Ctrl-C, daemon gone) is cancelled, so it cannot run later by surprise. A request
already running is left to finish.
"""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from syncd.exit_codes import ExitCode
from syncd.store import requests, status
from syncd.store.db import Database
from syncd.store.requests import SyncRequest
from syncd.store.status import DaemonStatus


@dataclass(frozen=True)
class Follow:
    """How to follow a request: poll period, give-up rules, where to print, and the clock.

    ``clock`` and ``sleep`` are the monotonic clock and the pause between polls; tests pass
    their own to step through a request's life without waiting.
    """

    stale_after: timedelta
    timeout: float | None = None
    poll: float = 0.25
    echo: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def requested_by() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"[:128]


def live_daemons(db: Database, stale_after: timedelta) -> list[DaemonStatus]:
    return status.live_instances(db, stale_after)


def describe_no_daemon(db: Database) -> str:
    _now, rows = status.all_instances(db)
    if not rows:
        return "no syncd daemon has ever run against this database"
    last = rows[0]
    return (
        f"no syncd daemon is running against this database (last seen: {last.hostname} "
        f"pid {last.pid}, {last.state}, heartbeat {last.heartbeat_at:%Y-%m-%d %H:%M:%SZ})"
    )


def submit(db: Database, kind: str, external_ids: Sequence[str], allow_mass_delete: bool) -> int:
    return requests.create(
        db,
        kind,
        external_ids=external_ids,
        allow_mass_delete=allow_mass_delete,
        requested_by=requested_by(),
    )


def _claimer(db: Database, instance_id: str | None) -> str:
    _now, rows = status.all_instances(db)
    for row in rows:
        if row.instance_id == instance_id:
            return f"{row.hostname} pid {row.pid}"
    return f"instance {instance_id}"


def _line(db: Database, req: SyncRequest) -> str:
    if req.status == "pending":
        return f"request #{req.id}: pending" + (f" ({req.error})" if req.error else "")
    if req.status == "running":
        run = f", run #{req.run_id}" if req.run_id is not None else ""
        return f"request #{req.id}: running (daemon {_claimer(db, req.claimed_by)}{run})"
    run = f"run #{req.run_id} " if req.run_id is not None else ""
    error = f": {req.error}" if req.error else ""
    return f"request #{req.id}: {req.status}, {run}exit code {req.exit_code}{error}"


def follow(db: Database, request_id: int, how: Follow) -> int:
    """Print each status change until the request finishes; the run's exit code.

    ``NO_DAEMON`` when the wait gives up instead: no live daemon, the timeout, or the request
    cancelled or gone.
    """
    deadline = None if how.timeout is None else how.clock() + how.timeout
    last_seen_alive = how.clock()
    shown: tuple[object, ...] | None = None
    try:
        while True:
            req = requests.get(db, request_id)
            if req is None:
                how.echo(f"request #{request_id} has disappeared")
                return ExitCode.NO_DAEMON
            seen = (req.status, req.claimed_by, req.run_id, req.exit_code, req.error)
            if seen != shown:
                how.echo(_line(db, req))
                shown = seen
            if req.finished:
                if req.status == "cancelled":
                    return ExitCode.NO_DAEMON
                return req.exit_code if req.exit_code is not None else ExitCode.PARTIAL
            now = how.clock()
            if live_daemons(db, how.stale_after):
                last_seen_alive = now
            elif now - last_seen_alive > how.stale_after.total_seconds():
                how.echo(describe_no_daemon(db))
                return _give_up(db, req, "no live daemon", how.echo)
            if deadline is not None and now >= deadline:
                how.echo(f"timed out after {how.timeout:g}s")
                return _give_up(db, req, "timed out", how.echo)
            how.sleep(how.poll)
    except KeyboardInterrupt:
        req = requests.get(db, request_id)
        if req is not None and not req.finished:
            _give_up(db, req, "interrupted", how.echo)
        raise


def _give_up(db: Database, req: SyncRequest, why: str, echo: Callable[[str], None]) -> int:
    if requests.cancel_if_pending(db, req.id):
        echo(f"request #{req.id}: cancelled ({why}); nothing was run")
    elif not req.finished:
        echo(f"request #{req.id} is still running; `syncd status` shows how it ends")
    return ExitCode.NO_DAEMON
