"""API calls per change compared with the minimum possible: the real engine, emulator-counted.

    uv run python -m tests.benchmarks.calls_bench [--quick | --tiny] [--json]

A fresh SQLite database and the emulator over a real socket (reference profile, unthrottled).
The CRM mirror is written with plain SQL, as an ETL job would (the change triggers fill
``mirror_changes``), and each step is one engine run (:class:`syncd.sync.runs.Engine`). The
requests of each step are counted by method from the emulator's request log and compared with
the minimum possible:

=============  ===================================================  ==========================
step           what changes                                         minimum
=============  ===================================================  ==========================
create         N new mirror rows, incremental run                   N POST
update         M rows renamed, incremental run                      M PATCH
delete         K rows tombstoned, incremental run                   K DELETE
no-op          nothing, incremental run                             0
format-only    F rows rewritten with formatting-only differences    0 (canonical form)
               (email case, phone punctuation, padded names)
full           nothing, full reconcile of the R contacts left       ceil(R/100) GET pages
full-drift     D contacts edited by hand in Genesys, full           ceil(R/100) GET + D PATCH
=============  ===================================================  ==========================

The sizes leave R a multiple of 100 on purpose: the worst case for detecting the end of the
listing (the last page is full, so only ``total`` says it is the last).

Token requests (``/oauth/token``, not part of the API budget) are counted separately: the
benchmark builds one client per run, as the daemon does. The engine's own count of its calls
(``sync_runs.api_calls``) is reported next to the emulator's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from syncd.emulator import Emulator, EmulatorConfig, EmulatorServer
from syncd.genesys.client import GenesysClient
from syncd.logs import configure_logging
from syncd.store import migrate
from syncd.store.db import Database, open_database
from syncd.store.schema import crm_contacts
from syncd.sync.guards import DeleteLimits
from syncd.sync.options import EngineOptions
from syncd.sync.runs import Engine, RunReport, RunSpec
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN_ROUTE,
    client_settings,
    serve_in_thread,
)

PAGE_SIZE = 100
OPTIONS = EngineOptions(
    limits=DeleteLimits(max_count=10**9, max_percent=100), max_in_flight=8, page_size=PAGE_SIZE
)


@dataclass(frozen=True)
class Scale:
    creates: int = 5_000
    updates: int = 1_000
    deletes: int = 200
    format_only: int = 500
    drifted: int = 50


FULL = Scale()
QUICK = Scale(creates=1_000, updates=300, deletes=100, format_only=200, drifted=20)
TINY = Scale(creates=120, updates=30, deletes=20, format_only=20, drifted=5)


def _ext(i: int) -> str:
    return f"CALLS-{i:07d}"


def _row(i: int) -> dict[str, Any]:
    return {
        "external_id": _ext(i),
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
        "email": f"contact{i}@example.com",
        "phone_numbers": [{"number": f"+1202555{i % 10_000:04d}", "type": "WORK"}],
        "organization_id": None,
        "organization_name": None,
        "deleted": False,
    }


def _reformatted(i: int) -> dict[str, Any]:
    """The same contact as :func:`_row`, written differently: equal in canonical form."""
    n = f"{i % 10_000:04d}"
    return {
        "first_name": f"  First{i} ",
        "email": f"Contact{i}@EXAMPLE.com",
        "phone_numbers": [{"number": f"(202) 555-{n}", "type": "WORK"}],
    }


def _run(db: Database, server: EmulatorServer, kind: str) -> RunReport:
    async def go() -> RunReport:
        settings = client_settings(
            server, requests_per_minute=100_000, max_in_flight=OPTIONS.max_in_flight
        )
        client = GenesysClient.from_settings(settings)
        try:
            return await Engine(db, client, OPTIONS).run(RunSpec(kind=kind))  # type: ignore[arg-type]
        finally:
            await client.aclose()

    return asyncio.run(go())


def _count(em: Emulator, since: int) -> tuple[Counter[str], int, int, int]:
    """(API requests by method, token requests, non-2xx API answers, log length) after ``since``."""
    log = em.request_log()
    methods: Counter[str] = Counter()
    tokens = errors = 0
    for entry in log[since:]:
        if entry["route"] == TOKEN_ROUTE:
            tokens += 1
            continue
        methods[entry["method"]] += 1
        errors += not 200 <= int(entry["status"]) < 300
    return methods, tokens, errors, len(log)


def _hand_edit(server: EmulatorServer, ids: list[str]) -> None:
    """Edit contacts in Genesys "by hand" (their own client, before the step's log offset)."""
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        token = http.post(
            TOKEN_ROUTE,
            auth=(CLIENT_ID, CLIENT_SECRET),
            data={"grant_type": "client_credentials"},
        ).json()["access_token"]
        for gid in ids:
            response = http.patch(
                f"/api/v2/contacts/{gid}",
                json={"lastName": "Edited by hand"},
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()


def measure(scale: Scale) -> dict[str, Any]:
    """Run the steps; return ``{"steps": [...], "ok": bool}`` (ok: every step at its minimum)."""
    steps: list[dict[str, Any]] = []
    n, m, k = scale.creates, scale.updates, scale.deletes
    config = EmulatorConfig(
        requests_per_minute=100_000, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    with (
        tempfile.TemporaryDirectory(prefix="syncd-calls-bench-") as tmp,
        serve_in_thread(config) as server,
    ):
        em = server.emulator
        db = open_database(f"sqlite:///{Path(tmp) / 'calls.db'}")
        try:
            migrate.upgrade(db)
            offset = 0

            def step(name: str, change: str, kind: str, minimum: dict[str, int]) -> None:
                nonlocal offset
                started = time.perf_counter()
                report = _run(db, server, kind)
                elapsed = time.perf_counter() - started
                methods, tokens, errors, offset_after = _count(em, offset)
                offset = offset_after
                actual = sum(methods.values())
                need = sum(minimum.values())
                steps.append(
                    {
                        "step": name,
                        "change": change,
                        "kind": kind,
                        "calls": dict(sorted(methods.items())),
                        "minimum": minimum,
                        "total": actual,
                        "minimum_total": need,
                        "at_minimum": dict(methods) == {k: v for k, v in minimum.items() if v},
                        "engine_api_calls": report.api_calls,
                        "token_requests": tokens,
                        "non_2xx": errors,
                        "status": report.status,
                        "counts": {k: v for k, v in report.counts.items() if v},
                        "run_s": round(elapsed, 2),
                    }
                )

            with db.write() as conn:
                conn.execute(sa.insert(crm_contacts), [_row(i) for i in range(n)])
            step("create", f"{n:,} new mirror rows", "incremental", {"POST": n})

            renamed = range(0, m)
            with db.write() as conn:
                conn.execute(
                    sa.update(crm_contacts)
                    .where(crm_contacts.c.external_id.in_([_ext(i) for i in renamed]))
                    .values(last_name=sa.literal("Renamed-") + crm_contacts.c.last_name)
                )
            step("update", f"{m:,} rows renamed", "incremental", {"PATCH": m})

            gone = range(n - k, n)
            with db.write() as conn:
                conn.execute(
                    sa.update(crm_contacts)
                    .where(crm_contacts.c.external_id.in_([_ext(i) for i in gone]))
                    .values(deleted=True)
                )
            step("delete", f"{k:,} rows tombstoned", "incremental", {"DELETE": k})

            step("no-op", "nothing changed", "incremental", {})

            f = min(scale.format_only, n - k)
            with db.write() as conn:
                for i in range(f):
                    conn.execute(
                        sa.update(crm_contacts)
                        .where(crm_contacts.c.external_id == _ext(i))
                        .values(**_reformatted(i))
                    )
            step("format-only", f"{f:,} rows reformatted, same content", "incremental", {})

            remaining = n - k
            pages = math.ceil(remaining / PAGE_SIZE)
            step("full", f"nothing; {remaining:,} contacts listed", "full", {"GET": pages})

            by_ext = {c.get("externalId"): c["id"] for c in em.contacts()}
            edited = [by_ext[_ext(i)] for i in range(m, m + scale.drifted)]
            _hand_edit(server, edited)
            offset = len(em.request_log())
            step(
                "full-drift",
                f"{scale.drifted:,} contacts edited by hand in Genesys",
                "full",
                {"GET": pages, "PATCH": scale.drifted},
            )
            contacts = em.contacts()
            ids = [c.get("externalId") for c in contacts]
        finally:
            db.dispose()
    return {
        "scale": scale.__dict__,
        "steps": steps,
        "ok": all(s["at_minimum"] for s in steps),
        "genesys_contacts": len(contacts),
        "duplicates": len(ids) - len(set(ids)),
    }


def format_steps(result: dict[str, Any]) -> str:
    lines = [f"{'step':<12} {'change':<46} {'calls':<22} {'minimum':<22} {'tokens':>6}"]
    for s in result["steps"]:
        calls = " ".join(f"{v} {k}" for k, v in s["calls"].items()) or "0"
        need = " ".join(f"{v} {k}" for k, v in s["minimum"].items() if v) or "0"
        mark = "" if s["at_minimum"] else "  <-- above the minimum"
        lines.append(
            f"{s['step']:<12} {s['change']:<46} {calls:<22} {need:<22} {s['token_requests']:>6}"
            f"{mark}"
        )
    lines.append(
        f"every step at its minimum: {result['ok']}; duplicates in Genesys: {result['duplicates']}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="a few hundred contacts")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    configure_logging(level="warning", fmt="console")
    scale = TINY if args.tiny else QUICK if args.quick else FULL
    started = time.monotonic()
    result = measure(scale)
    print(format_steps(result))
    print(f"total {time.monotonic() - started:.1f} s")
    if args.json:
        print(json.dumps(result))
    return 0 if result["ok"] and not result["duplicates"] else 1


if __name__ == "__main__":
    sys.exit(main())
