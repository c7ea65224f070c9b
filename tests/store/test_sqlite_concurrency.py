"""SQLite: a CLI reading while the daemon writes must never make the writer fail."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import sqlalchemy as sa

from syncd.store.db import Database, open_database
from syncd.store.schema import sync_requests

HOLDER = textwrap.dedent(
    """
    import sys, time
    import sqlalchemy as sa
    from syncd.store.db import open_database
    db = open_database(sys.argv[1])
    mode = sys.argv[2]
    ctx = db.write() if mode == "write" else db.read()
    with ctx as conn:
        n = conn.execute(sa.text("SELECT count(*) FROM sync_requests")).scalar_one()
        if mode == "write":
            conn.execute(sa.text(
                "INSERT INTO sync_requests (kind, status, requested_at, allow_mass_delete) "
                "VALUES ('full', 'pending', '2026-01-01 00:00:00', 0)"))
        print("holding", n, flush=True)
        sys.stdin.readline()
    print("released", flush=True)
    """
)


def _insert(db: Database) -> None:
    from datetime import UTC, datetime

    with db.write() as conn:
        conn.execute(
            sync_requests.insert().values(kind="incremental", requested_at=datetime.now(UTC))
        )


def _count(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(sync_requests)).scalar_one())


def _start_holder(url: str, mode: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the holder has its transaction open once it prints
    assert line.startswith("holding"), line
    return proc


def _finish(proc: subprocess.Popen[str]) -> None:
    out, _ = proc.communicate(input="\n", timeout=30)
    assert out.startswith("released"), out
    assert proc.returncode == 0


def test_reader_in_another_process_does_not_block_writer(sqlite_db: Database) -> None:
    url = str(sqlite_db.url)
    _insert(sqlite_db)
    reader = _start_holder(url, "read")
    try:
        started = time.monotonic()
        for _ in range(20):
            _insert(sqlite_db)
        assert time.monotonic() - started < 5, "writer waited on a reader"
        assert _count(sqlite_db) == 21
    finally:
        _finish(reader)


def test_writer_waits_for_another_writer_instead_of_failing(
    tmp_path: Path, sqlite_db: Database
) -> None:
    url = str(sqlite_db.url)
    writer = _start_holder(url, "write")
    # A second connection starts its write while the first still holds the write lock; it
    # must wait (busy timeout) and succeed once the first commits, not fail "locked".
    import threading

    errors: list[BaseException] = []

    def second_writer() -> None:
        try:
            db2 = open_database(url)
            _insert(db2)
            db2.dispose()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=second_writer)
    thread.start()
    time.sleep(0.3)  # let the second writer block on the lock (there is no clock to inject)
    assert thread.is_alive(), "second writer did not wait for the lock"
    _finish(writer)
    thread.join(timeout=30)
    assert not errors, errors
    assert _count(sqlite_db) == 2


def test_sqlite_pragmas(sqlite_db: Database) -> None:
    with sqlite_db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
