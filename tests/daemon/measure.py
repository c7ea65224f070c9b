"""Figures for the daemon's notes: idle footprint, resync pick-up latency, failover time.

Not a test (pytest does not collect it). Run: uv run python -m tests.daemon.measure [PG_URL]
It uses the production defaults of [daemon] (heartbeat 5 s, leader TTL 15 s, poll 1 s).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from syncd.store import migrate, requests
from syncd.store.db import open_database
from tests.daemon.conftest import ROOT, DaemonProcess, write_config
from tests.support.daemon import COMMAND

TICKS = os.sysconf("SC_CLK_TCK")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNCD_", "NOTIFY_"))}
    env.update(PYTHONPATH=str(ROOT))
    return env


def _start(config: Path, log: Path) -> DaemonProcess:
    out = log.open("wb")
    proc = subprocess.Popen(
        [*COMMAND, "--config", str(config), "run"],
        cwd=ROOT,
        env=_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    return DaemonProcess(proc, log)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def idle_and_latency(tmp: Path) -> None:
    db_path = tmp / "syncd.db"
    url = f"sqlite:///{db_path}"
    db = open_database(url)
    migrate.upgrade(db)
    config = write_config(tmp / "config.toml", url, incremental_every="1h")
    daemon = _start(config, tmp / "idle.log")
    daemon.wait_for("daemon.started", timeout=60)
    time.sleep(5)  # start-up work (the startup run) settles
    cpu0, t0 = _cpu_seconds(daemon.pid), time.monotonic()
    time.sleep(30)
    cpu1, t1 = _cpu_seconds(daemon.pid), time.monotonic()
    threads = len(os.listdir(f"/proc/{daemon.pid}/task"))
    print(
        f"idle over {t1 - t0:.0f}s: CPU {100 * (cpu1 - cpu0) / (t1 - t0):.2f}% "
        f"({cpu1 - cpu0:.2f}s), RSS {_rss_mib(daemon.pid):.1f} MiB, {threads} threads"
    )
    latencies = []
    for _ in range(10):
        rid = requests.create(db, "incremental")
        while (req := requests.get(db, rid)) is None or req.claimed_at is None:
            time.sleep(0.01)
        latencies.append((req.claimed_at - req.requested_at).total_seconds())
        while not (r := requests.get(db, rid)) or not r.finished:
            time.sleep(0.01)
        time.sleep(random.uniform(0, 1))  # land at different points of the poll cycle
    print(
        f"resync pick-up latency (poll 1s), 10 requests: median "
        f"{statistics.median(latencies):.3f}s, max {max(latencies):.3f}s"
    )
    daemon.signal(signal.SIGTERM)
    daemon.wait_exit(30)
    db.dispose()


def failover(tmp: Path, base: str) -> None:
    schema = f"m_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(make_url(base).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).set(drivername="postgresql+psycopg")
    url_text = url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )
    db = open_database(url_text)
    migrate.upgrade(db)
    db.dispose()
    config = write_config(tmp / "pg.toml", url_text, incremental_every="1h")
    try:
        results = []
        for i in range(3):
            a = _start(config, tmp / f"a{i}.log")
            a.wait_for("daemon.leader.elected", timeout=60)
            b = _start(config, tmp / f"b{i}.log")
            b.wait_for("daemon.standby", timeout=60)
            time.sleep(2 + 1.7 * i)  # kill at different points of the renewal cycle
            a.proc.kill()
            killed = datetime.now(UTC)
            a.wait_exit()
            elected = b.wait_for("daemon.leader.elected", timeout=60)
            at = datetime.fromisoformat(elected["timestamp"].replace("Z", "+00:00"))
            results.append((at - killed).total_seconds())
            b.signal(signal.SIGTERM)
            b.wait_exit(30)
        print(
            f"failover after kill -9 (leader_ttl 15s, heartbeat 5s): "
            f"{', '.join(f'{r:.1f}s' for r in results)}"
        )
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="syncd-measure-"))
    try:
        idle_and_latency(tmp)
        if len(sys.argv) > 1:
            failover(tmp, sys.argv[1])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
