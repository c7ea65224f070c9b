"""Benchmark bulk writes against single calls: the externalcontacts emulator over a socket.

    uv run python -m tests.benchmarks.bulk_bench [--quick]

Production's budget is 300 requests per minute per token, and every call costs one request
whatever it carries, so the number that matters is contacts written per minute. Scenarios
(emulator at 300/min with 150 ms latency, client at its externalcontacts default of
300/min, ``max_in_flight`` 8):

creates-single   one ``POST /externalcontacts/contacts`` per contact
creates-bulk-N   ``bulk_create`` in batches of N (one ``bulk/contacts/add`` per batch)
updates-single   one PATCH per contact (a name change: no read needed)
updates-bulk-N   ``bulk_update`` in batches of N (a bulk read, then a bulk update, per batch)

For each: contacts per minute, requests per minute, 429s, failed and duplicate contacts.
``--quick`` keeps the rates and the latency (the point of the benchmark) and shortens each
scenario to a few seconds (about 35 s in all); the full run gives each 60 s (about 6 min).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from syncd.emulator import Emulator, EmulatorConfig, EmulatorServer
from syncd.errors import ApiError
from syncd.genesys.client import GenesysClient
from syncd.logs import configure_logging
from syncd.model import Contact, Phone
from tests.support.emulator import (
    api_requests,
    client_settings,
    duplicate_external_ids,
    serve_in_thread,
)


@dataclass(frozen=True)
class Scale:
    rpm: int = 300
    latency_ms: float = 150
    create_seconds: float = 60
    update_seconds: float = 60
    batch_sizes: tuple[int, ...] = (50, 100)
    in_flight: int = 8
    bulk_max_entities: int = 100
    update_pool: int = 20_000  # contacts seeded for the update scenarios


FULL = Scale()
QUICK = Scale(create_seconds=6, update_seconds=3, update_pool=2_000)
TINY = Scale(
    rpm=60_000,
    latency_ms=5,
    create_seconds=0.4,
    update_seconds=0.3,
    batch_sizes=(10,),
    in_flight=4,
    update_pool=300,
)


def _client(server: EmulatorServer, scale: Scale, batch: int) -> GenesysClient:
    settings = client_settings(
        server,
        requests_per_minute=scale.rpm,
        max_in_flight=scale.in_flight,
        bulk_batch_size=batch,
    )
    return GenesysClient.from_settings(settings)


def _contact(n: int, first: str = "Bench") -> Contact:
    return Contact(
        f"b-{n}",
        first,
        f"Contact {n}",
        f"c{n}@example.com",
        (Phone(f"+1555{n:07d}", "MOBILE"),),
    )


async def _pool(workers: int, job: Callable[[], Awaitable[bool]]) -> None:
    async def loop() -> None:
        while await job():
            pass

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(loop)


def _api_statuses(em: Emulator, skip: int) -> list[int]:
    return [int(e["status"]) for e in api_requests(em.request_log())[skip:]]


def _row(
    name: str, done: int, failed: int, elapsed: float, statuses: list[int], dupes: int
) -> dict[str, Any]:
    return {
        "scenario": name,
        "contacts": done,
        "failed": failed,
        "elapsed_s": round(elapsed, 1),
        "contacts_per_min": round(done / elapsed * 60),
        "requests": len(statuses),
        "requests_per_min": round(len(statuses) / elapsed * 60, 1),
        "429s": statuses.count(429),
        "duplicates": dupes,
    }


def _config(scale: Scale) -> EmulatorConfig:
    return EmulatorConfig(
        profile="externalcontacts",
        requests_per_minute=scale.rpm,
        latency_ms=scale.latency_ms,
        bulk_max_entities=scale.bulk_max_entities,
    )


async def creates(scale: Scale, batch: int | None) -> dict[str, Any]:
    """Create contacts for ``create_seconds`` one by one (batch None) or in bulk batches."""
    with serve_in_thread(_config(scale)) as server:
        async with _client(server, scale, batch or 50) as client:
            await client.find_by_external_id("warm-up")  # token and external source: not timed
            skip = len(_api_statuses(server.emulator, 0))
            numbers = iter(range(10**9))
            done = failed = 0
            deadline = time.monotonic() + scale.create_seconds

            async def single() -> bool:
                nonlocal done, failed
                if time.monotonic() >= deadline:
                    return False
                try:
                    await client.create(_contact(next(numbers)))
                    done += 1
                except ApiError:
                    failed += 1
                return True

            async def bulk() -> bool:
                nonlocal done, failed
                if time.monotonic() >= deadline:
                    return False
                assert batch is not None
                results = await client.bulk_create([_contact(next(numbers)) for _ in range(batch)])
                done += sum(r.ok for r in results)
                failed += sum(not r.ok for r in results)
                return True

            started = time.monotonic()
            await _pool(scale.in_flight, single if batch is None else bulk)
            elapsed = time.monotonic() - started
        name = "creates-single" if batch is None else f"creates-bulk-{batch}"
        statuses = _api_statuses(server.emulator, skip)
        return _row(name, done, failed, elapsed, statuses, duplicate_external_ids(server.emulator))


async def updates(scale: Scale, batch: int | None) -> dict[str, Any]:
    """Rename existing contacts for ``update_seconds``: PATCH each, or bulk_update batches."""
    with serve_in_thread(_config(scale)) as server:
        em = server.emulator
        async with _client(server, scale, batch or 50) as client:
            await client.find_by_external_id("warm-up")
            source = em.profile.sources.all()[0]["id"]
            seeded = em.seed_contacts(
                [
                    {
                        "firstName": "Bench",
                        "lastName": f"Contact {n}",
                        "externalIds": [{"externalSource": {"id": source}, "value": f"b-{n}"}],
                    }
                    for n in range(scale.update_pool)
                ]
            )
            todo = iter((doc["id"], n) for n, doc in enumerate(seeded))
            skip = len(_api_statuses(em, 0))
            done = failed = 0
            deadline = time.monotonic() + scale.update_seconds

            async def single() -> bool:
                nonlocal done, failed
                item = next(todo, None)
                if time.monotonic() >= deadline or item is None:
                    return False
                gid, n = item
                contact = Contact(f"b-{n}", "Renamed", f"Contact {n}")
                try:
                    await client.patch(gid, {"first_name": "Renamed"}, contact=contact)
                    done += 1
                except ApiError:
                    failed += 1
                return True

            async def bulk() -> bool:
                nonlocal done, failed
                assert batch is not None
                items = [item for _, item in zip(range(batch), todo, strict=False)]
                if time.monotonic() >= deadline or not items:
                    return False
                pairs = [(gid, Contact(f"b-{n}", "Renamed", f"Contact {n}")) for gid, n in items]
                results = await client.bulk_update(pairs)
                done += sum(r.ok for r in results)
                failed += sum(not r.ok for r in results)
                return True

            started = time.monotonic()
            await _pool(scale.in_flight, single if batch is None else bulk)
            elapsed = time.monotonic() - started
        name = "updates-single" if batch is None else f"updates-bulk-{batch}"
        return _row(
            name, done, failed, elapsed, _api_statuses(em, skip), duplicate_external_ids(em)
        )


async def run(scale: Scale) -> list[dict[str, Any]]:
    rows = [await creates(scale, None)]
    for batch in scale.batch_sizes:
        rows.append(await creates(scale, batch))
    if scale.update_seconds > 0:
        rows.append(await updates(scale, None))
        rows.append(await updates(scale, scale.batch_sizes[0]))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    keys = [k for k in rows[0] if k != "scenario"]
    widths = [max(len(k), *(len(str(r[k])) for r in rows)) for k in keys]
    lines = [
        "scenario".ljust(18) + "  ".join(k.rjust(w) for k, w in zip(keys, widths, strict=True))
    ]
    for row in rows:
        cells = "  ".join(str(row[k]).rjust(w) for k, w in zip(keys, widths, strict=True))
        lines.append(str(row["scenario"]).ljust(18) + cells)
    by_name = {row["scenario"]: row for row in rows}
    single = by_name.get("creates-single")
    if single and single["contacts_per_min"]:
        for row in rows:
            if row["scenario"].startswith("creates-bulk"):
                ratio = row["contacts_per_min"] / single["contacts_per_min"]
                lines.append(
                    f"{row['scenario']}: x{ratio:.0f} the contacts per minute of single calls"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short scenarios, about 35 s")
    args = parser.parse_args(argv)
    configure_logging(level="warning", fmt="console")
    scale = QUICK if args.quick else FULL
    started = time.monotonic()
    rows = anyio.run(run, scale)
    print(
        f"externalcontacts emulator: {scale.rpm} requests/min, {scale.latency_ms:.0f} ms latency; "
        f"client {scale.rpm}/min, max_in_flight {scale.in_flight}"
    )
    print(format_table(rows))
    print(f"total {time.monotonic() - started:.1f} s ({'quick' if args.quick else 'full'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
