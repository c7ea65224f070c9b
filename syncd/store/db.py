"""Engine set-up and transactions that behave the same on SQLite and PostgreSQL.

SQLite is opened in WAL mode with a busy timeout and foreign keys on. Write transactions
start with ``BEGIN IMMEDIATE``: the write lock is taken up front, where the busy timeout
applies, instead of being upgraded mid-transaction, which in WAL mode fails at once with
"database is locked" whenever another process committed in between. Readers never block
the writer and the writer never blocks readers.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from syncd.errors import DatabaseError, UserError

_WRITE_OPTION = "syncd_write"


@dataclass
class Database:
    """An engine plus the two kinds of transaction syncd uses."""

    engine: Engine
    # SQLite: writers of this process queue here (FIFO, no sleeping) instead of in SQLite's
    # busy handler, which polls with growing sleeps; other processes still meet busy_timeout.
    _write_lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def url(self) -> URL:
        return self.engine.url

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        lock = self._write_lock if self.dialect == "sqlite" else nullcontext()
        with lock, self._translate(), self.engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction: a consistent snapshot, rolled back at the end."""
        with self._translate(), self.engine.connect() as conn, conn.begin() as tx:
            yield conn
            tx.rollback()

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as exc:
            raise DatabaseError(f"database error: {_short(exc)}") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise DatabaseError(f"database connection lost: {_short(exc)}") from exc
            raise

    def dispose(self) -> None:
        self.engine.dispose()


def _short(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)


def _prepare_sqlite_url(url: URL) -> URL:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        parent = Path(database).expanduser().parent
        if not parent.exists():
            raise UserError(
                f"database directory {parent} does not exist; create it or change database.url"
            )
    return url


def open_database(
    url: str | URL, *, busy_timeout: timedelta = timedelta(seconds=30), echo: bool = False
) -> Database:
    """Create the engine for ``url`` with syncd's connection settings."""
    parsed = make_url(url) if isinstance(url, str) else url
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        parsed = _prepare_sqlite_url(parsed)
        # A pool (not NullPool): closing the last connection to a WAL database checkpoints
        # and fsyncs, which cost ~10 ms per write transaction when every write reconnected.
        engine = sa.create_engine(
            parsed,
            echo=echo,
            pool_size=4,
            max_overflow=8,
            connect_args={"timeout": busy_timeout.total_seconds(), "check_same_thread": False},
        )
        _install_sqlite_hooks(engine, busy_timeout)
    elif backend == "postgresql":
        kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(parsed, echo=echo, **kwargs)
    else:
        raise UserError(f"unsupported database backend {backend!r}: use sqlite or postgresql")
    return Database(engine)


def _install_sqlite_hooks(engine: Engine, busy_timeout: timedelta) -> None:
    timeout_ms = int(busy_timeout.total_seconds() * 1000)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is lazy).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cur.execute("PRAGMA foreign_keys = ON")
            mode = cur.execute("PRAGMA journal_mode = WAL").fetchone()
            if mode and str(mode[0]).lower() not in ("wal", "memory"):
                cur.execute(f"PRAGMA journal_mode = {mode[0]}")
            cur.execute("PRAGMA synchronous = NORMAL")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
