"""Benchmark the engine with bulk batches against single calls (externalcontacts profile).

    uv run python -m tests.benchmarks.engine_bulk_bench [--quick]

The whole engine (mirror in SQLite, intent protocol, ledger, links) against the emulator over
a real socket, both at production's budget of 300 requests per minute, with 150 ms latency
and ``max_in_flight`` 8. Each scenario is an incremental run stopped after a fixed time (the
stop event: writes in flight finish); the figure is contacts synced per minute of run.

creates-single   one POST per new mirror row (the client's bulk support switched off)
creates-bulk     ``bulk/contacts/add`` batches of ``bulk_batch_size`` (50)
updates-single   one PATCH per changed row (a first-name change: no read needed)
updates-bulk     a bulk read + a bulk update per batch of 50

The update scenarios start from contacts seeded in Genesys and adopted by a full reconcile
(not timed), so they cost no creates. ``--quick``: 10 s per scenario; full: 60 s.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from syncd.emulator import EmulatorConfig, EmulatorServer
from syncd.genesys.client import GenesysClient
from syncd.logs import configure_logging
from syncd.store import migrate
from syncd.store.db import Database, open_database
from syncd.store.schema import crm_contacts
from syncd.sync.guards import DeleteLimits
from syncd.sync.options import EngineOptions
from syncd.sync.runs import Engine, RunReport, RunSpec
from tests.support.emulator import (
    api_requests,
    client_settings,
    duplicate_external_ids,
    serve_in_thread,
)

RPM, LATENCY_MS, IN_FLIGHT, BULK = 300, 150, 8, 50
OPTIONS = EngineOptions(limits=DeleteLimits(100_000, 100.0), max_in_flight=IN_FLIGHT)


class _Single:
    """The client with its bulk support hidden: the engine makes one call per contact."""

    supports_bulk = False

    def __init__(self, client: GenesysClient) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _row(ext: str, first: str = "Bench") -> dict[str, Any]:
    n = int(ext.split("-")[1])
    return {
        "external_id": ext,
        "first_name": first,
        "last_name": f"Contact {n}",
        "email": f"{ext.lower()}@example.com",
        "phone_numbers": [
            {"number": f"+1 202 {200 + n // 10000 % 800:03d} {n % 10000:04d}", "type": "MOBILE"}
        ],
        "deleted": False,
    }


def _upsert(db: Database, rows: list[dict[str, Any]]) -> None:
    with db.write() as conn:
        exts = [r["external_id"] for r in rows]
        conn.execute(sa.delete(crm_contacts).where(crm_contacts.c.external_id.in_(exts)))
        conn.execute(sa.insert(crm_contacts), rows)


def _run(server: EmulatorServer, db: Database, spec: RunSpec, bulk: bool, seconds: float) -> Any:
    settings = client_settings(
        server, requests_per_minute=RPM, max_in_flight=IN_FLIGHT, bulk_batch_size=BULK
    )
    stop = threading.Event()
    timer = threading.Timer(seconds, stop.set)

    async def go() -> RunReport:
        async with GenesysClient.from_settings(settings) as client:
            api: Any = client if bulk else _Single(client)
            return await Engine(db, api, OPTIONS).run(spec, stop=stop)

    timer.start()
    try:
        return asyncio.run(go())
    finally:
        timer.cancel()


def _config() -> EmulatorConfig:
    return EmulatorConfig(
        profile="externalcontacts", requests_per_minute=RPM, latency_ms=LATENCY_MS
    )


def _result(name: str, report: RunReport, server: EmulatorServer, key: str) -> dict[str, Any]:
    statuses = [r["status"] for r in api_requests(server.emulator.request_log())]
    done = report.counts[key]
    return {
        "scenario": name,
        "contacts": done,
        "duration_s": round(report.duration_s, 1),
        "contacts_per_min": round(done / report.duration_s * 60),
        "api_calls": report.api_calls,
        "requests_per_min": round(report.api_calls / report.duration_s * 60, 1),
        "429s": statuses.count(429),
        "failed": report.counts["failed"],
        "duplicates": duplicate_external_ids(server.emulator),
        "status": report.status,
    }


def creates(tmp: Path, bulk: bool, seconds: float) -> dict[str, Any]:
    db = open_database(f"sqlite:///{tmp / f'creates-{bulk}.db'}")
    migrate.upgrade(db)
    n = int(RPM / 60 * seconds * (BULK if bulk else 1) * 1.3) + 100  # more than it can do
    _upsert(db, [_row(f"c-{i}") for i in range(n)])
    with serve_in_thread(_config()) as server:
        report = _run(server, db, RunSpec("incremental"), bulk, seconds)
        out = _result("creates-" + ("bulk" if bulk else "single"), report, server, "created")
    db.dispose()
    return out


def updates(tmp: Path, bulk: bool, seconds: float) -> dict[str, Any]:
    db = open_database(f"sqlite:///{tmp / f'updates-{bulk}.db'}")
    migrate.upgrade(db)
    n = int(RPM / 60 * seconds * (BULK / 2 if bulk else 1) * 1.3) + 100
    rows = [_row(f"u-{i}") for i in range(n)]
    _upsert(db, rows)
    with serve_in_thread(_config()) as server:
        source = {"id": "bench-source", "name": "syncd"}
        server.emulator.seed_contacts(
            [
                {
                    "firstName": r["first_name"],
                    "lastName": r["last_name"],
                    "workEmail": r["email"],
                    "cellPhone": {"display": r["phone_numbers"][0]["number"]},
                    "externalIds": [{"externalSource": source, "value": r["external_id"]}],
                }
                for r in rows
            ]
        )
        adopted = _run(server, db, RunSpec("full"), True, 3600)  # adopt everything: not timed
        assert adopted.counts["adopted"] == n, adopted
        _upsert(db, [_row(r["external_id"], first="Renamed") for r in rows])
        start = len(server.emulator.request_log())
        report = _run(server, db, RunSpec("incremental"), bulk, seconds)
        out = _result("updates-" + ("bulk" if bulk else "single"), report, server, "updated")
        log = server.emulator.request_log()[start:]
        out["429s"] = sum(1 for r in log if r["status"] == 429)
    db.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s per scenario instead of 60 s")
    args = parser.parse_args(argv)
    configure_logging(level="warning")
    seconds = 10.0 if args.quick else 60.0
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for scenario in (creates, updates):
            for bulk in (False, True):
                row = scenario(Path(tmp), bulk, seconds)
                rows.append(row)
                print(row, flush=True)
    print()
    print(f"engine at {RPM} requests/min, {LATENCY_MS} ms latency, bulk batches of {BULK}:")
    for row in rows:
        print(
            f"  {row['scenario']:<15} {row['contacts']:>7} contacts in {row['duration_s']:>5} s"
            f"  {row['contacts_per_min']:>7}/min  {row['requests_per_min']:>6} req/min"
            f"  429s {row['429s']}  failed {row['failed']}  duplicates {row['duplicates']}"
        )
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"({time.monotonic() - started:.0f} s)")
    sys.exit(code)
