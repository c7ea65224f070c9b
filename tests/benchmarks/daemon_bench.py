"""The daemon's idle footprint and resync pick-up latency, with the real sync engine.

    uv run python -m tests.benchmarks.daemon_bench [--quick | --tiny] [--json]

Unlike ``tests/daemon/measure.py`` (which uses the test executor), this starts a real
``syncd run`` subprocess with the production executor (the sync engine) and the production
``[daemon]`` and ``[sync]`` defaults (heartbeat 5 s, poll 1 s, an incremental run every 60 s),
against the emulator over a socket on 127.0.0.1 (in this process, so its work is not counted).
The mirror holds C contacts; the daemon's start-up run creates them all in Genesys. Then:

idle      after the start-up run and ``settle`` seconds: RSS (VmRSS) and peak RSS (VmHWM) of
          the daemon, its threads, and its CPU use over a window of ``window`` seconds
          (which includes the scheduled incremental runs that fall in it: nothing to do).
pick-up   ``requests`` manual resync requests inserted in the database (as ``syncd resync``
          does), one after the other at random points of the poll cycle: time from the
          request's ``requested_at`` to the daemon's ``claimed_at``.

The CPU and RSS readers are :mod:`tests.daemon.measure`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from syncd.emulator import EmulatorConfig, EmulatorServer
from syncd.logs import configure_logging
from syncd.store import migrate, requests
from syncd.store.db import Database, open_database
from syncd.store.schema import crm_contacts
from tests.daemon.measure import _cpu_seconds, _rss_mib
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, ROOT, child_env, serve_in_thread


@dataclass(frozen=True)
class Scale:
    contacts: int = 1_000
    settle: float = 10
    window: float = 60
    requests: int = 10
    start_timeout: float = 120


FULL = Scale()
QUICK = Scale(contacts=300, settle=5, window=20, requests=5)
TINY = Scale(contacts=50, settle=2, window=5, requests=3, start_timeout=60)


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _config(path: Path, url: str, server: EmulatorServer) -> Path:
    path.write_text(
        "\n".join(
            [
                "[database]",
                f'url = "{url}"',
                "[genesys]",
                f'client_id = "{CLIENT_ID}"',
                f'client_secret = "{CLIENT_SECRET}"',
                f'api_url = "{server.api_url}"',
                f'login_url = "{server.login_url}"',
                "requests_per_minute = 100000",
                "[logging]",
                'format = "json"',
                'level = "info"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def _events(log: Path, name: str) -> list[dict[str, Any]]:
    found = []
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("event") == name:
            found.append(record)
    return found


def _wait_event(
    proc: subprocess.Popen[bytes], log: Path, name: str, timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _events(log, name)
        if found:
            return found[-1]
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise RuntimeError(f"the daemon did not log {name} within {timeout:.0f} s:\n{tail}")


def _seed_mirror(db: Database, n: int) -> None:
    rows = [
        {
            "external_id": f"DAEMON-{i:06d}",
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "email": f"d{i}@example.com",
            "phone_numbers": [],
            "deleted": False,
        }
        for i in range(n)
    ]
    with db.write() as conn:
        conn.execute(sa.insert(crm_contacts), rows)


def _pick_up(db: Database, count: int, proc: subprocess.Popen[bytes]) -> list[float]:
    latencies: list[float] = []
    rng = random.Random(1)
    for _ in range(count):
        rid = requests.create(db, "incremental", requested_by="daemon_bench")
        deadline = time.monotonic() + 60
        req = None
        while time.monotonic() < deadline and proc.poll() is None:
            req = requests.get(db, rid)
            if req is not None and req.finished:
                break
            time.sleep(0.01)
        if req is None or req.claimed_at is None or not req.finished:
            raise RuntimeError(f"resync request #{rid} was not served within 60 s")
        latencies.append((req.claimed_at - req.requested_at).total_seconds())
        time.sleep(rng.uniform(0, 1))  # land at different points of the 1 s poll cycle
    return latencies


def measure(scale: Scale) -> dict[str, Any]:
    config = EmulatorConfig(
        requests_per_minute=100_000, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    with (
        tempfile.TemporaryDirectory(prefix="syncd-daemon-bench-") as tmp,
        serve_in_thread(config) as server,
    ):
        url = f"sqlite:///{Path(tmp) / 'syncd.db'}"
        db = open_database(url)
        log = Path(tmp) / "daemon.log"
        proc: subprocess.Popen[bytes] | None = None
        try:
            migrate.upgrade(db)
            _seed_mirror(db, scale.contacts)
            conf = _config(Path(tmp) / "syncd.toml", url, server)
            with log.open("wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "syncd", "--config", str(conf), "run"],
                    cwd=ROOT,
                    env=child_env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started = time.monotonic()
            _wait_event(proc, log, "daemon.started", scale.start_timeout)
            first = _wait_event(proc, log, "sync.run.finished", scale.start_timeout)
            startup_s = time.monotonic() - started
            created = len(server.emulator.contacts())
            time.sleep(scale.settle)
            pid = proc.pid
            cpu0, t0 = _cpu_seconds(pid), time.monotonic()
            time.sleep(scale.window)
            cpu1, t1 = _cpu_seconds(pid), time.monotonic()
            rss = _rss_mib(pid)
            hwm = _status_kib(pid, "VmHWM") / 1024
            threads = len(os.listdir(f"/proc/{pid}/task"))
            runs_in_window = len(_events(log, "sync.run.finished")) - 1
            latencies = _pick_up(db, scale.requests, proc)
            proc.send_signal(signal.SIGTERM)
            exit_code = proc.wait(timeout=30)
        finally:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            db.dispose()
    return {
        "scale": asdict(scale),
        "startup_run": {
            "contacts_created": created,
            "api_calls": first.get("api_calls"),
            "status": first.get("status"),
            "seconds_to_finish": round(startup_s, 1),
        },
        "idle": {
            "window_s": round(t1 - t0, 1),
            "cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0), 2),
            "cpu_s": round(cpu1 - cpu0, 2),
            "rss_mib": round(rss, 1),
            "peak_rss_mib": round(hwm, 1),
            "threads": threads,
            "scheduled_runs_in_window": runs_in_window,
        },
        "pick_up_s": [round(x, 3) for x in latencies],
        "pick_up_median_s": round(statistics.median(latencies), 3),
        "pick_up_max_s": round(max(latencies), 3),
        "exit_code": exit_code,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="a few seconds")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON only")
    args = parser.parse_args(argv)
    configure_logging(level="warning", fmt="console")
    scale = TINY if args.tiny else QUICK if args.quick else FULL
    result = measure(scale)
    if args.json:
        print(json.dumps(result))
        return 0
    s, idle = result["startup_run"], result["idle"]
    print(
        f"start-up run: {s['contacts_created']:,} contacts created, {s['api_calls']} API calls, "
        f"{s['status']}, finished {s['seconds_to_finish']} s after start"
    )
    print(
        f"idle over {idle['window_s']} s ({idle['scheduled_runs_in_window']} scheduled runs): "
        f"CPU {idle['cpu_pct']}% ({idle['cpu_s']} s), RSS {idle['rss_mib']} MiB "
        f"(peak {idle['peak_rss_mib']} MiB), {idle['threads']} threads"
    )
    print(
        f"resync pick-up latency, {len(result['pick_up_s'])} requests: median "
        f"{result['pick_up_median_s']} s, max {result['pick_up_max_s']} s"
    )
    print(f"daemon exit code after SIGTERM: {result['exit_code']}")
    return 0 if result["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
