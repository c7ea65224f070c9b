"""Named leases with fencing tokens: the locks of syncd, in plain SQL on the ``leases`` table.

A lease is a row that says who holds a name until when. It works the same on SQLite and
PostgreSQL (no advisory locks, no file locks) and survives crashes: a holder that dies simply
stops renewing, and the lease may be taken over once it has expired.

Every takeover increments ``fencing_token``. A holder that was paused past its expiry (GC,
SIGSTOP, a lost network) can tell it was deposed because its token no longer matches, and
:func:`renew` then answers ``False``. Re-acquiring a lease we still hold keeps the token.

Names in use:

- ``"sync"``: the single-writer run lock (invariant 7), held by whoever performs a sync run,
  daemon or foreground ``syncd sync``, for the duration of the run.
- ``"leader"``: the daemon instance that schedules runs and claims manual requests.

Time: on PostgreSQL the database clock is used (daemons on several hosts compare one clock);
on SQLite, necessarily on one host, the local clock. Tests pass ``now`` explicitly.

A holder id names its host and process (:func:`holder_id`, ``role@host:pid``). A lease whose
holder is a process of *this* host that no longer exists (``kill -9``, a crash) is broken at
once instead of waiting for its expiry: nobody can renew it. Holders on other hosts, and ids
that do not name a process, still wait for expiry.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from syncd.errors import LockHeldError
from syncd.logs import get_logger
from syncd.store.db import Database
from syncd.store.schema import leases

SYNC_LEASE = "sync"
LEADER_LEASE = "leader"

_log = get_logger("syncd.store.leases")


@dataclass(eq=False)
class Lease:
    """A lease we hold. ``expires_at`` moves forward on every successful :func:`renew`.

    ``lost`` is set as soon as a renewal finds the lease taken over or released: a long
    operation should check it (or ``renew``'s result) before each write it fences.
    """

    name: str
    holder: str
    fencing_token: int
    acquired_at: datetime
    expires_at: datetime
    ttl: timedelta
    lost: threading.Event = field(default_factory=threading.Event, repr=False)


@dataclass(frozen=True)
class LeaseInfo:
    """What the table says about a lease (held or not), for messages and status views."""

    name: str
    holder: str | None
    fencing_token: int
    acquired_at: datetime | None
    expires_at: datetime | None

    def is_held(self, now: datetime) -> bool:
        return self.holder is not None and self.expires_at is not None and self.expires_at > now

    def is_live(self, now: datetime) -> bool:
        """Held, and not by a process of this host that is gone."""
        return self.is_held(now) and not holder_is_dead(self.holder)


def holder_id(role: str, instance: str | None = None) -> str:
    """A readable, unique-enough holder name: ``role@host:pid`` (plus an instance tag).

    The host and pid are what :func:`holder_is_dead` reads back: keep them in this form.
    """
    base = f"{role}@{socket.gethostname()}:{os.getpid()}"
    return (f"{base}/{instance}" if instance else base)[:128]


_HOLDER = re.compile(r"^[^@/]*@(?P<host>[^@:/]+):(?P<pid>[0-9]{1,10})(?:/|$)")


def holder_process(holder: str | None) -> tuple[str, int] | None:
    """``(host, pid)`` of a :func:`holder_id`; ``None`` for an id that names no process."""
    match = _HOLDER.match(holder or "")
    return (match["host"], int(match["pid"])) if match else None


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (a zombie, killed but not reaped, does not).

    When it cannot be told (no permission, not a positive pid), the answer is "alive": a
    lease is then only taken over once it has expired.
    """
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rpartition(")")[2].split()[:1]
    except OSError:
        return True
    return state not in (["Z"], ["X"])


def local_process_gone(hostname: str | None, pid: int | None) -> bool:
    """True when ``hostname`` is this host and its process ``pid`` no longer exists."""
    if hostname is None or pid is None or hostname != socket.gethostname():
        return False
    return pid != os.getpid() and not process_alive(pid)


def holder_is_dead(holder: str | None) -> bool:
    """True when ``holder`` is a process of this host (same host name) that is gone."""
    found = holder_process(holder)
    return found is not None and local_process_gone(*found)


def db_now(conn: Connection) -> datetime:
    """The time every lease and heartbeat comparison uses (see the module docstring)."""
    if conn.dialect.name == "postgresql":
        value = conn.execute(sa.select(sa.func.current_timestamp())).scalar_one()
        assert isinstance(value, datetime)
        return value.astimezone(UTC)
    return datetime.now(UTC)


def _ensure_row(conn: Connection, name: str) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    conn.execute(
        insert(leases)
        .values(name=name, fencing_token=0)
        .on_conflict_do_nothing(index_elements=["name"])
    )


def info(conn: Connection, name: str) -> LeaseInfo | None:
    """The row for ``name`` through the caller's connection (``None`` if never used)."""
    return _info(conn, name)


def _info(conn: Connection, name: str) -> LeaseInfo | None:
    row = conn.execute(sa.select(leases).where(leases.c.name == name)).one_or_none()
    if row is None:
        return None
    return LeaseInfo(row.name, row.holder, int(row.fencing_token), row.acquired_at, row.expires_at)


def acquire(
    db: Database, name: str, holder: str, ttl: timedelta, now: datetime | None = None
) -> Lease | None:
    """Take ``name`` if it is free, expired, or already ours; ``None`` if someone else holds it.

    Atomic on both backends: the conditional UPDATE is serialized by ``BEGIN IMMEDIATE`` on
    SQLite and by the row lock (with WHERE re-evaluation) on PostgreSQL.
    """
    with db.write() as conn:
        _ensure_row(conn, name)
        at = now or db_now(conn)
        expires = at + ttl
        still_ours = sa.and_(leases.c.holder == holder, leases.c.expires_at > at)
        free = [
            leases.c.holder.is_(None),
            leases.c.expires_at.is_(None),
            leases.c.expires_at <= at,
            leases.c.holder == holder,
        ]
        before = _info(conn, name)
        theirs = before is not None and before.holder not in (None, holder) and before.is_held(at)
        if before is not None and theirs and holder_is_dead(before.holder):
            # Only that exact holder is broken: a live process taking over meanwhile wins.
            free.append(leases.c.holder == before.holder)
            _log.warning(
                "lease.dead_holder_broken",
                lease=name,
                dead_holder=before.holder,
                fencing=before.fencing_token,
            )
        result = conn.execute(
            leases.update()
            .where(leases.c.name == name, sa.or_(*free))
            .values(
                holder=holder,
                fencing_token=sa.case(
                    (still_ours, leases.c.fencing_token), else_=leases.c.fencing_token + 1
                ),
                acquired_at=sa.case((still_ours, leases.c.acquired_at), else_=at),
                expires_at=expires,
            )
        )
        if result.rowcount != 1:
            return None
        info = _info(conn, name)
    assert info is not None
    assert info.acquired_at is not None
    return Lease(name, holder, info.fencing_token, info.acquired_at, expires, ttl)


def renew(db: Database, lease: Lease, now: datetime | None = None) -> bool:
    """Extend ``lease`` by its TTL; ``False`` (and ``lease.lost`` set) when we lost it.

    A renewal after expiry still succeeds if nobody took the lease in between: the unchanged
    fencing token proves no other holder existed.
    """
    if lease.lost.is_set():
        return False
    with db.write() as conn:
        at = now or db_now(conn)
        expires = at + lease.ttl
        result = conn.execute(
            leases.update()
            .where(
                leases.c.name == lease.name,
                leases.c.holder == lease.holder,
                leases.c.fencing_token == lease.fencing_token,
            )
            .values(expires_at=expires)
        )
    if result.rowcount != 1:
        lease.lost.set()
        _log.warning(
            "lease.lost", lease=lease.name, holder=lease.holder, fencing=lease.fencing_token
        )
        return False
    lease.expires_at = expires
    return True


def release(db: Database, lease: Lease) -> None:
    """Give the lease up (a no-op if it was already taken over). The token is kept."""
    with db.write() as conn:
        conn.execute(
            leases.update()
            .where(
                leases.c.name == lease.name,
                leases.c.holder == lease.holder,
                leases.c.fencing_token == lease.fencing_token,
            )
            .values(holder=None, acquired_at=None, expires_at=None)
        )
    lease.lost.set()


def current(db: Database, name: str) -> LeaseInfo | None:
    """The row for ``name``, whether held, expired or released (``None`` if never used)."""
    with db.read() as conn:
        return _info(conn, name)


def is_valid(conn: Connection, lease: Lease) -> sa.ColumnElement[bool]:
    """SQL condition "``lease`` is still ours and unexpired", to fence a write atomically."""
    return sa.exists().where(
        leases.c.name == lease.name,
        leases.c.holder == lease.holder,
        leases.c.fencing_token == lease.fencing_token,
        leases.c.expires_at > db_now(conn),
    )


def held_message(info: LeaseInfo | None, name: str) -> str:
    """The operator-facing explanation of who holds ``name``."""
    if info is None or info.holder is None:
        return f"the {name!r} lock is held by another process"
    since = info.acquired_at.isoformat(timespec="seconds") if info.acquired_at else "?"
    until = info.expires_at.isoformat(timespec="seconds") if info.expires_at else "?"
    what = "a sync run" if name == SYNC_LEASE else f"the {name!r} lock"
    return (
        f"{what} is already in progress: held by {info.holder} since {since}, until {until} "
        f"unless renewed (fencing token {info.fencing_token}); wait for it to finish, "
        "or check `syncd status`"
    )


class _Renewer(threading.Thread):
    """Renews a lease every ``every`` seconds until stopped or lost (a daemon thread)."""

    def __init__(self, db: Database, lease: Lease, every: float) -> None:
        super().__init__(name=f"lease-{lease.name}", daemon=True)
        self.db, self.lease, self.every = db, lease, every
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                if not renew(self.db, self.lease):
                    return
            except Exception as exc:  # a transient database error: retry until expiry
                _log.warning("lease.renew_failed", lease=self.lease.name, error=str(exc))
                if datetime.now(UTC) >= self.lease.expires_at:
                    self.lease.lost.set()
                    return


@contextmanager
def hold(
    db: Database,
    name: str,
    holder: str,
    ttl: timedelta,
    *,
    renew_every: timedelta | None = None,
) -> Iterator[Lease]:
    """Hold ``name`` for the duration of the block, or raise :class:`LockHeldError`.

    With ``renew_every`` a background thread renews the lease and sets ``lease.lost`` if it
    is taken over; without it, call :func:`renew` yourself more often than ``ttl``.
    """
    lease = acquire(db, name, holder, ttl)
    if lease is None:
        raise LockHeldError(held_message(current(db, name), name))
    renewer = _Renewer(db, lease, renew_every.total_seconds()) if renew_every else None
    if renewer:
        renewer.start()
    try:
        yield lease
    finally:
        if renewer:
            renewer.stopped.set()
            renewer.join()
        try:
            release(db, lease)
        except Exception as exc:  # it expires on its own; do not mask the block's outcome
            _log.warning("lease.release_failed", lease=name, holder=holder, error=str(exc))
