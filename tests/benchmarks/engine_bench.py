"""Benchmark the sync engine: incremental cost vs mirror size, and full-reconcile memory.

    uv run python -m tests.benchmarks.engine_bench [--quick] [--only incremental,full]

incremental  the same incremental run (N changes, each one PATCH) over a small mirror and over
             a big one, links included. Target: big / small <= 1.5 (cost follows the changes,
             not the mirror). Full: 1,000 changes, 10,000 vs 1,000,000 rows.
full         a full reconcile of M contacts (every one linked, 1% edited by hand in Genesys)
             against an unthrottled emulator over a real socket, in a child process that
             reports its own peak RSS (VmHWM). Target: < 300 MB. Full: M = 100,000.

``--quick`` shrinks both (100,000-row big mirror, 200 changes; 20,000 contacts). The mirror is
built with executemany in big batches (SQLite, in a temporary directory).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import SecretStr
from starlette.applications import Starlette

from syncd.config import GenesysSettings
from syncd.emulator import EmulatorConfig
from syncd.genesys.client import GenesysClient
from syncd.logs import configure_logging
from syncd.store import migrate
from syncd.store.db import Database, open_database
from syncd.store.schema import contact_links, crm_contacts, mirror_changes
from syncd.sync.canonical import content_hash
from syncd.sync.guards import DeleteLimits
from syncd.sync.options import EngineOptions
from syncd.sync.runs import Engine, RunReport, RunSpec
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    asgi_transport,
    client_settings,
    emulator_app,
    serve_in_thread,
    state_of,
)

BATCH = 50_000


@dataclass(frozen=True)
class Scale:
    small: int = 10_000
    big: int = 1_000_000
    changes: int = 1_000
    repeats: int = 3
    full_contacts: int = 100_000


FULL = Scale()
QUICK = Scale(small=10_000, big=100_000, changes=200, repeats=3, full_contacts=20_000)
TINY = Scale(small=200, big=2_000, changes=20, repeats=1, full_contacts=300)

OPTIONS = EngineOptions(limits=DeleteLimits(max_count=10**9, max_percent=100), max_in_flight=16)


def _content(i: int, first: str = "First") -> dict[str, Any]:
    return {
        "first_name": f"{first}{i}",
        "last_name": f"Last{i}",
        "email": f"c{i}@example.com",
        "phone_numbers": [],
        "organization": None,
    }


def _ext(i: int) -> str:
    return f"EXT-{i:08d}"


def _gid(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


def build_mirror(db: Database, n: int) -> float:
    """n mirror rows and n synced links (executemany, big batches); returns seconds."""
    started = time.perf_counter()
    for lo in range(0, n, BATCH):
        rng = range(lo, min(n, lo + BATCH))
        mirror_rows = [
            {
                "external_id": _ext(i),
                "first_name": f"First{i}",
                "last_name": f"Last{i}",
                "email": f"c{i}@example.com",
                "phone_numbers": [],
                "deleted": False,
            }
            for i in rng
        ]
        link_rows = []
        for i in rng:
            content = _content(i)
            link_rows.append(
                {
                    "external_id": _ext(i),
                    "genesys_id": _gid(i),
                    "state": "synced",
                    "origin": "created",
                    "synced_content": content,
                    "synced_hash": content_hash(content),
                    "attempts": 0,
                }
            )
        with db.write() as conn:
            conn.execute(sa.insert(crm_contacts), mirror_rows)
            conn.execute(sa.insert(contact_links), link_rows)
            conn.execute(sa.delete(mirror_changes))  # the initial load is already synced
    with db.engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def _doc(i: int, first: str = "First") -> dict[str, Any]:
    return {
        "id": _gid(i),
        "firstName": f"{first}{i}",
        "lastName": f"Last{i}",
        "email": f"c{i}@example.com",
        "externalId": _ext(i),
    }


def _settings(api_url: str, login_url: str, in_flight: int = 16) -> GenesysSettings:
    """The full-reconcile child's client: it gets the emulator's URLs on its command line."""
    return GenesysSettings(
        client_id=CLIENT_ID,
        client_secret=SecretStr(CLIENT_SECRET),
        api_url=api_url,
        login_url=login_url,
        requests_per_minute=100_000,
        max_in_flight=in_flight,
    )


# -- incremental ---------------------------------------------------------------------------


def incremental_case(tmp: Path, size: int, scale: Scale) -> dict[str, Any]:
    db = open_database(f"sqlite:///{tmp / f'inc-{size}.db'}")
    migrate.upgrade(db)
    build_s = build_mirror(db, size)
    rng = random.Random(size)
    chosen = rng.sample(range(size), scale.changes)
    app = emulator_app(
        EmulatorConfig(requests_per_minute=10**6, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    )
    state_of(app).seed_contacts([_doc(i) for i in chosen])
    timings: list[float] = []
    for round_ in range(scale.repeats):
        with db.write() as conn:
            conn.execute(
                sa.update(crm_contacts)
                .where(crm_contacts.c.external_id.in_([_ext(i) for i in chosen]))
                .values(first_name=sa.literal(f"Round{round_}-") + crm_contacts.c.last_name)
            )
        report = _run(db, app, "incremental")
        assert report.counts["updated"] == scale.changes, report
        timings.append(report.duration_s)
    db.dispose()
    return {"rows": size, "build_s": round(build_s, 1), "runs_s": [round(t, 3) for t in timings]}


def _run(db: Database, app: Starlette, kind: str) -> RunReport:
    async def go() -> RunReport:
        client = GenesysClient.from_settings(
            client_settings(app, requests_per_minute=100_000, max_in_flight=16),
            transport=asgi_transport(app),
        )
        try:
            return await Engine(db, client, OPTIONS).run(RunSpec(kind=kind))  # type: ignore[arg-type]
        finally:
            await client.aclose()

    return asyncio.run(go())


def bench_incremental(scale: Scale) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="syncd-engine-bench-") as tmp:
        small = incremental_case(Path(tmp), scale.small, scale)
        big = incremental_case(Path(tmp), scale.big, scale)
    ratio = statistics.median(big["runs_s"]) / statistics.median(small["runs_s"])
    return {"changes": scale.changes, "small": small, "big": big, "ratio": round(ratio, 2)}


# -- full reconcile -------------------------------------------------------------------------


def bench_full(scale: Scale) -> dict[str, Any]:
    n = scale.full_contacts
    drifted = set(random.Random(7).sample(range(n), max(1, n // 100)))
    with tempfile.TemporaryDirectory(prefix="syncd-engine-bench-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'full.db'}"
        db = open_database(url)
        migrate.upgrade(db)
        build_mirror(db, n)
        db.dispose()
        config = EmulatorConfig(
            requests_per_minute=10**6, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        )
        with serve_in_thread(config) as server:
            em = server.emulator
            for lo in range(0, n, BATCH):
                em.seed_contacts(
                    [
                        _doc(i, "Hand" if i in drifted else "First")
                        for i in range(lo, min(n, lo + BATCH))
                    ]
                )
            started = time.perf_counter()
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.benchmarks.engine_bench",
                    "--child-full",
                    url,
                    server.api_url,
                    server.base_url,
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert proc.stdout is not None
            out = proc.stdout.read()
            proc.stdout.close()
            status = proc.wait()
            elapsed = time.perf_counter() - started
            if status != 0:
                raise SystemExit(f"the full-reconcile child failed (status {status})")
            pages = sum(
                1
                for r in em.request_log()
                if r["method"] == "GET" and r["route"].endswith("contacts")
            )
    child = json.loads(out)
    return {
        "contacts": n,
        "drifted": len(drifted),
        "elapsed_s": round(elapsed, 1),
        "run_s": child["duration_s"],
        "updated": child["updated"],
        "unchanged": child["unchanged"],
        "listing_pages": pages,
        # VmHWM of the child's own image: ru_maxrss from wait4 would also count the pages the
        # forked child shared with this (big) parent before exec.
        "peak_rss_mb": child["peak_rss_mb"],
        "python_peak_mb": child["python_peak_mb"],
    }


def _peak_rss_kb() -> int:
    """This process's peak resident set (VmHWM, Linux), in kB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def child_full(url: str, api_url: str, login_url: str) -> None:
    """Run one full reconcile and print its figures as JSON (peak RSS is read by the parent)."""
    import tracemalloc

    tracemalloc.start()
    db = open_database(url)

    async def go() -> RunReport:
        client = GenesysClient.from_settings(_settings(api_url, login_url))
        try:
            return await Engine(db, client, OPTIONS).run(RunSpec(kind="full"))
        finally:
            await client.aclose()

    report = asyncio.run(go())
    _, peak = tracemalloc.get_traced_memory()
    db.dispose()
    print(
        json.dumps(
            {
                "status": report.status,
                "duration_s": round(report.duration_s, 1),
                "updated": report.counts["updated"],
                "unchanged": report.counts["unchanged"],
                "python_peak_mb": round(peak / 2**20, 1),
                "peak_rss_mb": round(_peak_rss_kb() / 1024, 1),
            }
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", default="incremental,full")
    parser.add_argument("--child-full", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    configure_logging(level="warning", fmt="console")
    if args.child_full:
        child_full(*args.child_full)
        return 0
    scale = TINY if args.tiny else QUICK if args.quick else FULL
    results: dict[str, Any] = {}
    ok = True
    if "incremental" in args.only:
        inc = bench_incremental(scale)
        results["incremental"] = inc
        ok &= inc["ratio"] <= 1.5
        print(
            f"incremental: {inc['changes']} changes; {inc['small']['rows']:,} rows "
            f"{inc['small']['runs_s']} s vs {inc['big']['rows']:,} rows {inc['big']['runs_s']} s"
            f" -> ratio {inc['ratio']} (target <= 1.5)",
            flush=True,
        )
    if "full" in args.only:
        full = bench_full(scale)
        results["full"] = full
        ok &= full["peak_rss_mb"] < 300
        print(
            f"full reconcile: {full['contacts']:,} contacts ({full['drifted']} drifted), "
            f"{full['listing_pages']} pages, run {full['run_s']} s, updated {full['updated']}, "
            f"peak RSS {full['peak_rss_mb']} MB (target < 300), "
            f"Python peak {full['python_peak_mb']} MB",
            flush=True,
        )
    print(json.dumps(results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
