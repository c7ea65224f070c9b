"""Benchmark the throttled Genesys client against the emulator over a real socket.

    uv run python -m tests.benchmarks.client_bench [--quick] [--only a,b,b2,c]

Scenarios (issue 4's throughput claims; real time, so this is a benchmark, not a test):

a   emulator at 600/min with 100 ms latency; 300 creates. The budget allows them in 30 s:
    report elapsed, utilization (30 s / elapsed) and 429s. Target: >= 95%, zero 429s.
b   client configured 600/min, emulator limited to 300/min; continuous creates. After the
    first 10 s: 429 share (target < 2%) and throughput as % of 300/min (target > 90%).
b2  as b, but the client ignores X-Rate-Limit-* headers and has only 429 + Retry-After to
    go by (what the production API offers): shows the AIMD fallback on its own.
c   a 2-minute outage (every request 503) under continuous load: requests that reached the
    server during the outage, calls that failed, and time from the end of the outage to
    the first success (recovery).

``--quick`` scales rates up (x10) and durations down so the whole run takes ~30 s; the
emulator's rate window stays 60 s, so b2's dynamics only show in the full run (skipped).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio

from syncd.emulator import Emulator, EmulatorConfig, EmulatorServer
from syncd.errors import ApiError
from syncd.genesys.client import GenesysClient
from syncd.logs import configure_logging
from syncd.model import Contact
from tests.support.emulator import (
    api_requests,
    client_settings,
    duplicate_external_ids,
    serve_in_thread,
)


@dataclass(frozen=True)
class Scale:
    """Knobs of one benchmark run (full, quick, or the CI size)."""

    a_rpm: int = 600
    a_creates: int = 300
    latency_ms: float = 100
    in_flight: int = 8
    b_client_rpm: int = 600
    b_server_rpm: int = 300
    b_seconds: float = 120
    b_warmup: float = 10
    c_rpm: int = 600
    c_before: float = 10
    c_outage: float = 120
    c_after: float = 45
    c_workers: int = 8
    c_stop_on_recovery: bool = False
    run_b2: bool = True


FULL = Scale()
QUICK = Scale(
    a_rpm=6000,
    a_creates=300,
    in_flight=16,
    b_client_rpm=6000,
    b_server_rpm=3000,
    b_seconds=10,
    b_warmup=1,
    c_rpm=6000,
    c_before=1,
    c_outage=6,
    c_after=8,
    run_b2=False,
)
TINY = Scale(
    a_rpm=60_000,
    a_creates=20,
    latency_ms=5,
    in_flight=8,
    b_client_rpm=60_000,
    b_server_rpm=30_000,
    b_seconds=0.5,
    b_warmup=0.1,
    c_rpm=60_000,
    c_before=0.2,
    c_outage=0.5,
    c_after=5,
    c_workers=2,
    c_stop_on_recovery=True,
    run_b2=False,
)


def _client(server: EmulatorServer, rpm: int, in_flight: int, **pacing: Any) -> GenesysClient:
    settings = client_settings(server, requests_per_minute=rpm, max_in_flight=in_flight)
    return GenesysClient.from_settings(settings, pacing=pacing or None)


def _api_log(em: Emulator) -> list[tuple[float, int, str]]:
    """(epoch seconds, status, method) of every API request the emulator saw."""
    out = []
    for entry in api_requests(em.request_log()):
        at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00")).timestamp()
        out.append((at, int(entry["status"]), entry["method"]))
    return out


async def _pool(workers: int, job: Callable[[int], Awaitable[bool]]) -> None:
    """Run ``job(worker)`` in ``workers`` tasks until each returns False."""

    async def loop(n: int) -> None:
        while await job(n):
            pass

    async with anyio.create_task_group() as tg:
        for n in range(workers):
            tg.start_soon(loop, n)


async def scenario_a(scale: Scale) -> dict[str, Any]:
    config = EmulatorConfig(requests_per_minute=scale.a_rpm, latency_ms=scale.latency_ms)
    with serve_in_thread(config) as server:
        async with _client(server, scale.a_rpm, scale.in_flight) as client:
            await client.auth.get()  # the token is not part of the budget
            todo = iter(range(scale.a_creates))

            async def create(_: int) -> bool:
                i = next(todo, None)
                if i is None:
                    return False
                await client.create(Contact(f"a-{i}", "Bench", f"Contact {i}"))
                return True

            started = time.monotonic()
            await _pool(scale.in_flight * 2, create)
            elapsed = time.monotonic() - started
        budget = scale.a_creates / scale.a_rpm * 60
        statuses = [s for _, s, _ in _api_log(server.emulator)]
        return {
            "scenario": f"a: {scale.a_creates} creates at {scale.a_rpm}/min, "
            f"{scale.latency_ms:.0f} ms latency",
            "elapsed_s": round(elapsed, 2),
            "budget_s": round(budget, 2),
            "utilization_pct": round(100 * budget / elapsed, 1),
            "429s": statuses.count(429),
            "created": statuses.count(201),
            "duplicates": duplicate_external_ids(server.emulator),
        }


async def scenario_b(scale: Scale, *, use_headers: bool = True) -> dict[str, Any]:
    config = EmulatorConfig(requests_per_minute=scale.b_server_rpm, latency_ms=scale.latency_ms)
    with serve_in_thread(config) as server:
        pacing = {} if use_headers else {"use_rate_limit_headers": False}
        async with _client(server, scale.b_client_rpm, scale.in_flight, **pacing) as client:
            await client.auth.get()
            started_wall = time.time()
            deadline = time.monotonic() + scale.b_seconds
            counter = iter(range(10**9))
            errors = 0

            async def create(_: int) -> bool:
                nonlocal errors
                if time.monotonic() >= deadline:
                    return False
                i = next(counter)
                try:
                    await client.create(Contact(f"b-{i}", "Bench", f"Contact {i}"))
                except ApiError:
                    errors += 1
                return True

            await _pool(scale.in_flight * 2, create)
            ended_wall = time.time()
            rate = client.metrics.current_rate_per_minute
        log = [(at, s) for at, s, _ in _api_log(server.emulator)]
        after = [s for at, s in log if at >= started_wall + scale.b_warmup]
        window_min = (ended_wall - started_wall - scale.b_warmup) / 60
        ok = sum(200 <= s < 300 for s in after)
        label = "b" if use_headers else "b2 (headers ignored)"
        return {
            "scenario": f"{label}: client {scale.b_client_rpm}/min vs server "
            f"{scale.b_server_rpm}/min, {scale.b_seconds:.0f} s",
            "requests": len(log),
            "429s": sum(s == 429 for _, s in log),
            "429_share_after_warmup_pct": round(100 * after.count(429) / max(len(after), 1), 2),
            "throughput_pct_of_limit": round(100 * ok / window_min / scale.b_server_rpm, 1),
            "client_rate_at_end_per_min": rate,
            "errors": errors,
            "duplicates": duplicate_external_ids(server.emulator),
        }


async def scenario_c(scale: Scale) -> dict[str, Any]:
    config = EmulatorConfig(requests_per_minute=scale.c_rpm, latency_ms=0)
    with serve_in_thread(config) as server:
        em = server.emulator
        async with _client(server, scale.c_rpm, scale.in_flight) as client:
            await client.auth.get()
            t0 = time.monotonic()
            outage_start = t0 + scale.c_before
            outage_end = outage_start + scale.c_outage
            stop_at = outage_end + scale.c_after
            first_ok_after: float | None = None
            failed_calls = 0
            started_outage = False
            counter = iter(range(10**9))

            async def call(_: int) -> bool:
                nonlocal first_ok_after, failed_calls, started_outage
                now = time.monotonic()
                if now >= stop_at or (scale.c_stop_on_recovery and first_ok_after is not None):
                    return False
                if not started_outage and now >= outage_start:
                    started_outage = True
                    em.set_faults(outage_seconds=scale.c_outage)
                try:
                    await client.find_by_external_id(f"c-{next(counter)}")
                except ApiError:
                    failed_calls += 1
                    return True
                done = time.monotonic()
                if started_outage and done >= outage_end and first_ok_after is None:
                    first_ok_after = done - outage_end
                return True

            await _pool(scale.c_workers, call)
            opens = client.metrics.breaker_opens
        log = _api_log(em)
        during = sum(s == 503 for _, s, _ in log)
        naive = scale.c_outage * scale.c_rpm / 60
        return {
            "scenario": f"c: {scale.c_outage:.0f} s outage, {scale.c_workers} callers at "
            f"{scale.c_rpm}/min",
            "requests_during_outage": during,
            "a_paced_loop_would_send": round(naive),
            "failed_calls": failed_calls,
            "breaker_opens": opens,
            "recovery_s": round(first_ok_after, 2) if first_ok_after is not None else None,
            "successful_requests": sum(200 <= s < 300 for _, s, _ in log),
        }


async def run(scale: Scale, only: set[str] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    wanted = only or {"a", "b", "b2", "c"}
    if "a" in wanted:
        rows.append(await scenario_a(scale))
    if "b" in wanted:
        rows.append(await scenario_b(scale))
    if "b2" in wanted and scale.run_b2:
        rows.append(await scenario_b(scale, use_headers=False))
    if "c" in wanted:
        rows.append(await scenario_c(scale))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for row in rows:
        lines.append(row["scenario"])
        for key, value in row.items():
            if key != "scenario":
                lines.append(f"    {key:<30} {value}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="scaled run, about 30 s")
    parser.add_argument("--only", help="comma-separated scenarios: a,b,b2,c")
    args = parser.parse_args(argv)
    configure_logging(level="warning", fmt="console")  # the table, not per-request lines
    scale = QUICK if args.quick else FULL
    only = set(args.only.split(",")) if args.only else None
    started = time.monotonic()
    rows = anyio.run(run, scale, only)
    print(format_table(rows))
    print(f"total {time.monotonic() - started:.1f} s ({'quick' if args.quick else 'full'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
