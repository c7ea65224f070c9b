"""Ledger query benchmark: are `syncd ledger` queries fast on a ledger of millions of rows?

    uv run python -m tests.benchmarks.ledger_bench [--rows 1000000] [--postgres URL]

Bulk-loads N synthetic ledger rows (90 days, ~10 entries per contact, one run per 5,000 rows)
with big executemany batches, then times the query function the CLI uses
(:func:`syncd.store.ledger_query.iter_ledger`, one read transaction per query, as the command
does) for each filter, and prints the median and 95th percentile in milliseconds. SQLite is
measured as deployed: no ``ANALYZE``. PostgreSQL is analyzed after the load, which autovacuum
does on its own shortly after a bulk load.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url

from syncd.store import migrate
from syncd.store.db import Database, open_database
from syncd.store.ledger_query import LedgerFilter, iter_ledger
from syncd.store.retention import prune_ledger
from syncd.store.schema import ledger, sync_runs

SPAN = timedelta(days=90)
ROWS_PER_RUN = 5000
ROWS_PER_CONTACT = 10
BATCH = 20_000
OPS = [("update", 70), ("create", 12), ("delete", 3), ("drift", 5), ("adopt", 2),
       ("reject", 2), ("orphan", 3), ("recreate", 1), ("resolve", 2)]  # fmt: skip
OUTCOMES = [("ok", 950), ("failed", 30), ("skipped", 12), ("held", 5), ("dry_run", 3)]
ERRORS = ["400 phone number is not valid", "503 service unavailable", "409 conflict",
          "400 email address is not valid"]  # fmt: skip


@contextmanager
def bench_database(postgres: str | None, sqlite_path: str | None) -> Iterator[Database]:
    """A fresh, migrated database: a temporary SQLite file or a throwaway PostgreSQL schema."""
    if postgres is None:
        with tempfile.TemporaryDirectory(prefix="ledger-bench-") as tmp:
            path = Path(sqlite_path) if sqlite_path else Path(tmp) / "bench.db"
            path.unlink(missing_ok=True)
            db = open_database(f"sqlite:///{path}")
            try:
                migrate.upgrade(db)
                yield db
            finally:
                db.dispose()
        return
    base = make_url(postgres).set(drivername="postgresql+psycopg")
    schema = f"ledger_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    db = open_database(base.update_query_dict({"options": f"-csearch_path={schema}"}))
    try:
        migrate.upgrade(db)
        yield db
    finally:
        db.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def _weighted(rng: random.Random, table: list[tuple[str, int]], n: int) -> list[str]:
    names, weights = zip(*table, strict=True)
    return rng.choices(names, weights=weights, k=n)


# Ledger columns in insertion order (``id`` is assigned by the database).
COLUMNS = ("at", "run_id", "external_id", "genesys_id", "op", "outcome", "fields", "http_status",
           "error", "correlation_id")  # fmt: skip
Row = tuple[Any, ...]


def _raw_insert(db: Database) -> Callable[[Connection, list[Row]], None]:
    """Bulk insert without SQLAlchemy's per-row bookkeeping (most of the time on 1M rows).

    PostgreSQL: ``COPY FROM STDIN``. SQLite: one DB-API ``executemany`` of the INSERT that
    SQLAlchemy would run, values converted by their column type's own bind processor, so what
    is stored is exactly what ``conn.execute(insert(ledger), rows)`` would store.
    """
    if db.dialect == "postgresql":
        copy_sql = f"COPY ledger ({', '.join(COLUMNS)}) FROM STDIN"
        fields_at = COLUMNS.index("fields")

        def copy_rows(conn: Connection, rows: list[Row]) -> None:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            with cursor.copy(copy_sql) as copy:
                for row in rows:
                    values = list(row)
                    values[fields_at] = json.dumps(values[fields_at])
                    copy.write_row(values)

        return copy_rows
    dialect = db.engine.dialect
    compiled = (
        sa.insert(ledger).values({n: sa.bindparam(n) for n in COLUMNS}).compile(dialect=dialect)
    )
    assert list(compiled.positiontup or ()) == list(COLUMNS)
    procs = [ledger.c[n].type.bind_processor(dialect) for n in COLUMNS]
    active = [(i, p) for i, p in enumerate(procs) if p is not None]

    def insert(conn: Connection, rows: list[Row]) -> None:
        converted = []
        for row in rows:
            values = list(row)
            for i, proc in active:
                values[i] = proc(values[i])
            converted.append(tuple(values))
        conn.exec_driver_sql(str(compiled), converted)

    return insert


@dataclass
class Dataset:
    rows: int
    external_ids: list[str]
    genesys_ids: list[str]
    run_ids: list[int]
    now: datetime


def load(db: Database, n: int, *, seed: int = 7) -> Dataset:
    """Insert ``n`` ledger rows spread evenly over the last 90 days, oldest first."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    start = now - SPAN
    contacts = max(n // ROWS_PER_CONTACT, 1)
    external_ids = [f"CRM-{i:07d}" for i in range(contacts)]
    genesys_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(contacts)]
    n_runs = n // ROWS_PER_RUN + 1
    step = SPAN / max(n, 1)
    runs = [
        {"kind": "full" if i % 24 == 0 else "incremental", "trigger": "schedule",
         "status": "succeeded", "started_at": start + step * i * ROWS_PER_RUN,
         "finished_at": start + step * (i + 1) * ROWS_PER_RUN, "updated": ROWS_PER_RUN}
        for i in range(n_runs)
    ]  # fmt: skip
    with db.write() as conn:
        conn.execute(sa.insert(sync_runs), runs)
        run_ids = list(conn.execute(sa.select(sync_runs.c.id).order_by(sync_runs.c.id)).scalars())
    ops = _weighted(rng, OPS, n)
    outcomes = _weighted(rng, OUTCOMES, n)
    who = rng.choices(range(contacts), k=n)
    errors = rng.choices(ERRORS, k=n)
    insert = _raw_insert(db)
    with db.engine.connect() as conn:
        if db.dialect == "sqlite":  # the load only: queries below use fresh connections
            conn.exec_driver_sql("PRAGMA cache_size = -1048576")
            conn.commit()
        for lo in range(0, n, BATCH):
            batch: list[Row] = []
            for i in range(lo, min(lo + BATCH, n)):
                c, outcome = who[i], outcomes[i]
                error = errors[i] if outcome == "failed" else None
                batch.append((
                    start + step * i,
                    run_ids[i // ROWS_PER_RUN],
                    external_ids[c],
                    genesys_ids[c],
                    ops[i],
                    "pending" if i >= n - 3 else outcome,
                    {"email": [f"old{i}@example.com", f"new{i}@example.com"]},
                    int(error[:3]) if error else 200,
                    error,
                    None,
                ))  # fmt: skip
            with conn.begin():
                insert(conn, batch)
    if db.dialect == "postgresql":
        with db.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    return Dataset(n, external_ids, genesys_ids, run_ids, now)


@dataclass
class Timing:
    name: str
    samples_ms: list[float]
    rows: int

    @property
    def median(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def time_query(
    db: Database, name: str, make: Callable[[int], LedgerFilter], repeat: int,
    limit: int | None = 100,
) -> Timing:  # fmt: skip
    """Run the CLI's query path ``repeat`` times (one read transaction each, like the CLI)."""
    samples, total = [], 0
    for i in range(repeat):
        flt = make(i)
        t0 = time.perf_counter()
        with db.read() as conn:
            count = sum(1 for _ in iter_ledger(conn, flt, limit=limit))
        samples.append((time.perf_counter() - t0) * 1000)
        total += count
    return Timing(name, samples, total // max(repeat, 1))


def run_queries(db: Database, data: Dataset, repeat: int) -> list[Timing]:
    rng = random.Random(11)
    ext = [rng.choice(data.external_ids) for _ in range(repeat)]
    gid = [rng.choice(data.genesys_ids) for _ in range(repeat)]
    runs = [rng.choice(data.run_ids) for _ in range(repeat)]
    heavy = max(repeat // 10, 3)
    now = datetime.now(UTC)
    return [
        time_query(db, "--external-id X", lambda i: LedgerFilter(external_ids=(ext[i],)), repeat),
        time_query(db, "--since 1h", lambda i: LedgerFilter(since=now - timedelta(hours=1)),
                   repeat),
        time_query(db, "(no filter, newest 100)", lambda i: LedgerFilter(), repeat),
        time_query(db, "--genesys-id G", lambda i: LedgerFilter(genesys_ids=(gid[i],)), repeat),
        time_query(db, "--run R", lambda i: LedgerFilter(run_id=runs[i]), repeat),
        time_query(db, "--outcome failed", lambda i: LedgerFilter(outcomes=("failed",)), heavy),
        time_query(db, "--outcome pending", lambda i: LedgerFilter(outcomes=("pending",)), heavy),
        time_query(db, "--op delete --since 1d",
                   lambda i: LedgerFilter(ops=("delete",), since=now - timedelta(days=1)), heavy),
        time_query(db, "--since 1d --limit 0 (stream)",
                   lambda i: LedgerFilter(since=now - timedelta(days=1)), heavy, limit=None),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.ledger_bench",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="ledger rows to load")
    parser.add_argument("--repeat", type=int, default=200, help="repetitions per point query")
    parser.add_argument("--postgres", metavar="URL", help="benchmark PostgreSQL at URL instead")
    parser.add_argument("--sqlite-path", metavar="PATH", help="SQLite file to (re)create")
    parser.add_argument("--prune", action="store_true", help="also time a 30-day prune")
    args = parser.parse_args(argv)
    backend = "postgresql" if args.postgres else "sqlite"
    with bench_database(args.postgres, args.sqlite_path) as db:
        t0 = time.perf_counter()
        data = load(db, args.rows)
        load_s = time.perf_counter() - t0
        print(f"backend {backend}: loaded {args.rows:,} ledger rows and {len(data.run_ids):,} "
              f"runs in {load_s:.1f}s ({args.rows / max(load_s, 1e-9):,.0f} rows/s)")  # fmt: skip
        timings = run_queries(db, data, args.repeat)
        print(f"{'query':32} {'reps':>5} {'median ms':>10} {'p95 ms':>9} {'rows':>7}")
        for t in timings:
            print(f"{t.name:32} {len(t.samples_ms):>5} {t.median:>10.2f} {t.p95:>9.2f} "
                  f"{t.rows:>7}")  # fmt: skip
        if timings[0].rows == 0:
            print("error: the external-id query matched nothing", file=sys.stderr)
            return 1
        if args.prune:
            t0 = time.perf_counter()
            result = prune_ledger(db, timedelta(days=60))
            took = time.perf_counter() - t0
            print(
                f"prune --older-than 60d: deleted {result.deleted:,} rows in {result.batches} "
                f"batches, {took:.1f}s ({result.deleted / max(took, 1e-9):,.0f} rows/s)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
