"""The chaos world: a real emulator process, real `syncd` processes, a real database.

Everything here runs as an operator would run it: `python -m syncd emulator`, `syncd run`,
`syncd mirror import`, `syncd resync`, `syncd status`, with a configuration file, and
faults switched through the emulator's `/__emulator/faults`. Every process started is
recorded and killed in :meth:`World.close` (called from a fixture's ``finally``), so a failing
test leaves no emulator or daemon behind. Every wait polls with a deadline.

Sizes: ``SYNCD_CHAOS_SIZE=full`` selects the full size (thousands of contacts, 20+ kills, a
5-minute outage); anything else the reduced one that CI runs. ``SYNCD_CHAOS_SEED`` replays a
seed (it is printed at the start of every test).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from syncd.emulator import EmulatorConfig
from syncd.store import migrate
from syncd.store.db import Database, open_database
from tests.support.emulator import ROOT, EmulatorProcess, child_env, stop_process

CLIENT_ID = "chaos-client"
CLIENT_SECRET = "chaos-secret-value"
SEED_ENV = "SYNCD_CHAOS_SEED"
SIZE_ENV = "SYNCD_CHAOS_SIZE"
T = TypeVar("T")


@dataclass(frozen=True)
class Size:
    """How big a chaos run is (see the module docstring)."""

    name: str
    contacts: int
    kills: int
    foreign: int  # foreign contacts seeded in Genesys, of each kind
    preexisting: int  # mirror contacts that already exist in Genesys (adopted)
    max_kill_delay: float  # seconds after a run starts at most before a kill
    edit_every: float  # seconds between two mirror edits
    import_every: int  # one `syncd mirror import` every this many edits
    outage_seconds: float
    outage_contacts: int
    deadline: float  # seconds any one convergence may take


REDUCED = Size(
    name="reduced",
    contacts=300,
    kills=5,
    foreign=6,
    preexisting=10,
    max_kill_delay=2.5,
    edit_every=0.08,
    import_every=40,
    outage_seconds=20,
    outage_contacts=200,
    deadline=90,
)
FULL = Size(
    name="full",
    contacts=3000,
    kills=24,
    foreign=20,
    preexisting=60,
    max_kill_delay=6.0,
    edit_every=0.05,
    import_every=60,
    outage_seconds=300,
    outage_contacts=1500,
    deadline=600,
)


def chaos_size() -> Size:
    return FULL if os.environ.get(SIZE_ENV, "").strip().lower() == "full" else REDUCED


def chaos_seed(label: str) -> int:
    """The seed of this test (``SYNCD_CHAOS_SEED`` or a fresh one), printed for replay."""
    raw = os.environ.get(SEED_ENV, "").strip()
    seed = int(raw) if raw else random.SystemRandom().randrange(1, 2**31)
    size = chaos_size().name
    print(
        f"\n[chaos] {label}: seed {seed}, size {size} "
        f"(replay: {SEED_ENV}={seed} {SIZE_ENV}={size} uv run pytest tests/chaos -m chaos -s)",
        flush=True,
    )
    return seed


def eventually(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.1) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def start_emulator(
    tmp: Path, *, seed: int, requests_per_minute: int, profile: str = "reference"
) -> EmulatorProcess:
    """`syncd emulator` in a child process with the chaos credentials; log in ``tmp``."""
    config = EmulatorConfig(
        requests_per_minute=requests_per_minute,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        seed=seed,
        profile=profile,
    )
    return EmulatorProcess(config, log_path=tmp / "emulator.log").start()


# -- syncd processes -----------------------------------------------------------------------------


@dataclass
class Daemon:
    """One `syncd run` process and its JSON log file."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)

    def logs(self) -> list[dict[str, Any]]:
        records = []
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = {"event": "<raw>", "line": line}
            records.append(record if isinstance(record, dict) else {"event": "<raw>"})
        return records

    def events(self, name: str) -> list[dict[str, Any]]:
        return [r for r in self.logs() if r.get("event") == name]

    def wait_for(self, name: str, timeout: float, count: int = 1) -> dict[str, Any]:
        """The ``count``-th ``name`` event (polling the log file)."""

        def check() -> dict[str, Any] | None:
            found = self.events(name)
            if len(found) >= count:
                return found[count - 1]
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited ({self.proc.returncode}) before {name}:\n{self.tail()}")
            return None

        return eventually(check, timeout, f"{name} in {self.log_path.name}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as a crash or the OOM killer would."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def tail(self, n: int = 40) -> str:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-n:])


# Engine tunables shortened from minutes to seconds (SYNCD_ENGINE_*, syncd/sync/options.py):
# the grace before an unconfirmed create is sent again stays above the emulator's latency,
# jitter and search lag together, so a create is still never re-sent while it may exist.
FAST_ENGINE = {
    "SYNCD_ENGINE_SYNC_LEASE_TTL": "3s",
    "SYNCD_ENGINE_SYNC_LEASE_RENEW": "0.5s",
    "SYNCD_ENGINE_BACKOFF_BASE": "0.5s",
    "SYNCD_ENGINE_BACKOFF_MAX": "4s",
    "SYNCD_ENGINE_LOOKUP_DELAY": "0.3s",
    "SYNCD_ENGINE_CREATE_GRACE": "4s",
    "SYNCD_ENGINE_BATCH_SIZE": "50",
}


@dataclass
class World:
    """One test's processes, database and configuration."""

    tmp: Path
    db_url: str
    emulator: EmulatorProcess
    env: dict[str, str]
    # Lines added to the config's [genesys] section (e.g. a profile's own keys).
    genesys_extra: str = ""
    config: Path = field(init=False)
    daemons: list[Daemon] = field(default_factory=list)
    children: list[subprocess.Popen[Any]] = field(default_factory=list)
    _db: Database | None = None

    def __post_init__(self) -> None:
        self.config = self.tmp / "config.toml"

    def write_config(
        self,
        *,
        incremental_every: str = "1s",
        full_cron: str = "0 3 * * *",
        busy_timeout: str = "30s",
        read_timeout: str = "10s",
        max_in_flight: int = 8,
    ) -> None:
        self.config.write_text(
            f"""
[database]
url = "{self.db_url}"
busy_timeout = "{busy_timeout}"

[genesys]
profile = "{self.emulator.config.profile}"
{self.genesys_extra}
api_url = "{self.emulator.url}/api/v2"
login_url = "{self.emulator.url}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
requests_per_minute = 100000
max_in_flight = {max_in_flight}
read_timeout = "{read_timeout}"

[sync]
incremental_every = "{incremental_every}"
full_reconcile_cron = "{full_cron}"
max_delete_count = 1000000
max_delete_percent = 100

[logging]
format = "json"
level = "info"

[daemon]
heartbeat_every = "0.25s"
leader_ttl = "1.5s"
poll_every = "0.2s"
stop_timeout = "5s"
""",
            encoding="utf-8",
        )
        self.config.chmod(0o600)

    # -- processes -------------------------------------------------------------------------

    def start_daemon(self, name: str = "daemon", **env: str) -> Daemon:
        return self.start(name, "run", **env)

    def start(self, name: str, *args: str, **env: str) -> Daemon:
        """``syncd ARGS`` in the background (a daemon, or a ``sync`` to kill mid-run)."""
        log_path = self.tmp / f"{name}-{len(self.daemons):03}.log"
        log = log_path.open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--config", str(self.config), *args],
            cwd=ROOT,
            env={**self.env, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        daemon = Daemon(proc, log_path)
        self.daemons.append(daemon)
        return daemon

    def syncd(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run one `syncd` command to completion (killed if it outlives ``timeout``)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--config", str(self.config), *args],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.children.append(proc)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate(timeout=10)
            pytest.fail(f"syncd {' '.join(args)} did not finish in {timeout}s:\n{out}\n{err}")
        finally:
            self.children.remove(proc)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def database(self) -> Database:
        if self._db is None:
            self._db = open_database(self.db_url)
        return self._db

    def close(self) -> None:
        """Kill everything this world started (also after a failure)."""
        for daemon in self.daemons:
            if daemon.alive():
                with suppress(subprocess.TimeoutExpired):
                    daemon.terminate(timeout=10)
        for proc in list(self.children):
            stop_process(proc, grace=5)
        if self._db is not None:
            self._db.dispose()
            self._db = None
        self.emulator.close()


def unsettled(db: Database) -> dict[str, int]:
    """What is left to do: change rows, links not ``synced``, ledger intents ``pending``."""
    from syncd.store.schema import contact_links, ledger, mirror_changes

    with db.read() as conn:

        def count(table: Any, *where: Any) -> int:
            q = sa.select(sa.func.count()).select_from(table)
            return int(conn.execute(q.where(*where) if where else q).scalar_one())

        return {
            "changes": count(mirror_changes),
            "links": count(contact_links, contact_links.c.state != "synced"),
            "intents": count(ledger, ledger.c.outcome == "pending"),
        }


def wait_settled(db: Database, daemon: Daemon, deadline: float) -> float:
    """Until the daemon has consumed every change and resolved every intent; returns the
    seconds it took."""
    began = time.monotonic()
    while True:
        left = unsettled(db)
        if not any(left.values()):
            return time.monotonic() - began
        if not daemon.alive():
            pytest.fail(f"the daemon exited ({daemon.proc.returncode}):\n{daemon.tail()}")
        if time.monotonic() - began > deadline:
            pytest.fail(f"not settled after {deadline}s: {left}\n{daemon.tail()}")
        time.sleep(0.25)


@contextmanager
def world(
    tmp: Path,
    *,
    seed: int,
    db_url: str | None = None,
    engine_env: dict[str, str] | None = None,
    requests_per_minute: int = 100_000,
    profile: str = "reference",
    genesys_extra: str = "",
) -> Iterator[World]:
    """A migrated database (SQLite in ``tmp`` unless ``db_url``), an emulator in ``profile``,
    a config (``genesys_extra``: more lines for its [genesys] section)."""
    url = db_url or f"sqlite:///{tmp / 'syncd.db'}"
    emulator = start_emulator(
        tmp, seed=seed, requests_per_minute=requests_per_minute, profile=profile
    )
    env = child_env(**(FAST_ENGINE if engine_env is None else engine_env))
    w = World(tmp, url, emulator, env, genesys_extra=genesys_extra)
    try:
        db = open_database(url)
        try:
            migrate.upgrade(db)
        finally:
            db.dispose()
        w.write_config()
        yield w
    finally:
        w.close()


@contextmanager
def own_postgres_database(base: str) -> Iterator[tuple[str, sa.Engine]]:
    """A fresh database on the shared server (URL, admin engine); dropped at the end."""
    name = f"syncd_chaos_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(
        make_url(base).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(base).set(drivername="postgresql+psycopg", database=name)
    try:
        yield url.render_as_string(hide_password=False), admin
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
