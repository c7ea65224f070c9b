"""Harness for `syncd run` as a real subprocess: config files, logs, polling with deadlines.

The daemon runs syncd's CLI with the test executor injected (``python -m tests.support.daemon``,
or ``python -m syncd`` itself with ``engine=True``) and every period shortened through
``SYNCD_DAEMON_*``. Its JSON log lines go to a file the tests read.
The SQLite schema is created once per session with ``syncd db upgrade`` and copied per test.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from syncd.store import migrate, requests
from syncd.store.db import Database, open_database
from syncd.store.requests import SyncRequest
from syncd.store.schema import crm_contacts, sync_runs
from tests.conftest import require_postgres
from tests.support.daemon import COMMAND, ENGINE_COMMAND

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

FAST_ENV = {
    "SYNCD_DAEMON_HEARTBEAT_EVERY": "0.25",
    "SYNCD_DAEMON_LEADER_TTL": "1.5",
    "SYNCD_DAEMON_POLL_EVERY": "0.2",
    "SYNCD_DAEMON_STOP_TIMEOUT": "5",
    "SYNCD_TEST_SYNC_TTL": "2",
    "SYNCD_TEST_RUN_SECONDS": "0.2",
}


def eventually(check: Callable[[], T | None], timeout: float = 15, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(0.05)


def wait_request(db: Database, request_id: int, *statuses: str, timeout: float = 15) -> SyncRequest:
    """Wait until the request reaches one of ``statuses`` (any finished status if none)."""

    def check() -> SyncRequest | None:
        req = requests.get(db, request_id)
        if req is None:
            return None
        return req if (req.status in statuses if statuses else req.finished) else None

    return eventually(check, timeout, what=f"request #{request_id} {statuses or 'finished'}")


def write_config(
    path: Path,
    url: str,
    *,
    incremental_every: str = "1h",
    auto_upgrade: bool = False,
    log_level: str = "info",
) -> Path:
    lines = [
        "[database]",
        f'url = "{url}"',
        f"auto_upgrade = {'true' if auto_upgrade else 'false'}",
        "[genesys]",
        'client_id = "test-client"',
        'client_secret = "test-secret-value"',
        "[sync]",
        f'incremental_every = "{incremental_every}"',
        "[logging]",
        'format = "json"',
        f'level = "{log_level}"',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def base_env(**overrides: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SYNCD_", "NOTIFY_SOCKET", "WATCHDOG_"))
    }
    env.update(FAST_ENV)
    env["PYTHONPATH"] = str(ROOT)
    env.update(overrides)
    return env


def syncd(
    config: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    engine: bool = False,
) -> subprocess.CompletedProcess[str]:
    """One syncd command; ``syncd run`` uses the test executor unless ``engine``."""
    return subprocess.run(
        [*(ENGINE_COMMAND if engine else COMMAND), "--config", str(config), *args],
        cwd=ROOT,
        env=env or base_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _external_ids(args: tuple[str, ...]) -> list[str]:
    """The values of ``--external-id`` in a command line (both spellings)."""
    ids = [value for flag, value in itertools.pairwise(args) if flag == "--external-id"]
    return ids + [a.split("=", 1)[1] for a in args if a.startswith("--external-id=")]


@dataclass
class DaemonProcess:
    proc: subprocess.Popen[bytes]
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def logs(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                records.append({"event": "<raw>", "line": line})
        return records

    def events(self, name: str, **match: Any) -> list[dict[str, Any]]:
        return [
            r
            for r in self.logs()
            if r.get("event") == name and all(r.get(k) == v for k, v in match.items())
        ]

    def wait_for(self, name: str, timeout: float = 20, **match: Any) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            found = self.events(name, **match)
            if found:
                return found[-1]
            if self.proc.poll() is not None:
                pytest.fail(f"daemon exited ({self.proc.returncode}) before {name}:\n{self.tail()}")
            return None

        return eventually(check, timeout, what=f"{name} {match or ''}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 20) -> int:
        return self.proc.wait(timeout=timeout)

    def tail(self, n: int = 40) -> str:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-n:])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@dataclass
class Harness:
    """One test's daemon world: a database, a config file, and the daemons started."""

    tmp: Path
    url: str
    config: Path
    daemons: list[DaemonProcess] = field(default_factory=list)

    def start(
        self,
        name: str = "daemon",
        *,
        wrap: tuple[str, ...] = (),
        engine: bool = False,
        **env: str,
    ) -> DaemonProcess:
        """Start `syncd run` (optionally through a wrapper command) with extra environment.

        The test executor performs the runs, or the real sync engine with ``engine=True``.
        """
        log_path = self.tmp / f"{name}-{len(self.daemons)}.log"
        log = log_path.open("wb")
        command = ENGINE_COMMAND if engine else COMMAND
        proc = subprocess.Popen(
            [*wrap, *command, "--config", str(self.config), "run"],
            cwd=ROOT,
            env=base_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        daemon = DaemonProcess(proc, log_path)
        self.daemons.append(daemon)
        return daemon

    def syncd(
        self, *args: str, timeout: float = 60, engine: bool = False, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """One command. A ``resync --external-id SCRIPT`` first puts SCRIPT in the mirror: the
        test executor reads its instructions from the ids, and `syncd resync` queues only ids
        the mirror or the links know (as a CRM import would have put them there)."""
        if args and args[0] == "resync" and not engine:
            self.mirror(*_external_ids(args))
        return syncd(self.config, *args, env=base_env(**env), timeout=timeout, engine=engine)

    def mirror(self, *external_ids: str) -> None:
        """Put these ids in the mirror (a no-op for ids already there)."""
        if not external_ids:
            return
        db = self.database()
        try:
            with db.write() as conn:
                known = set(
                    conn.execute(
                        sa.select(crm_contacts.c.external_id).where(
                            crm_contacts.c.external_id.in_(external_ids)
                        )
                    ).scalars()
                )
                rows = [{"external_id": i} for i in dict.fromkeys(external_ids) if i not in known]
                if rows:
                    conn.execute(crm_contacts.insert(), rows)
        finally:
            db.dispose()

    def database(self) -> Database:
        return open_database(self.url)

    def runs(self) -> list[dict[str, Any]]:
        db = self.database()
        try:
            with db.read() as conn:
                rows = conn.execute(sa.select(sync_runs).order_by(sync_runs.c.id)).all()
            return [dict(r._mapping) for r in rows]
        finally:
            db.dispose()

    def stop_all(self) -> None:
        for daemon in self.daemons:
            if daemon.proc.poll() is None:
                daemon.signal(signal.SIGTERM)
        for daemon in self.daemons:
            try:
                daemon.wait_exit(15)
            except subprocess.TimeoutExpired:
                daemon.kill()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite database brought to head by the real `syncd db upgrade` command."""
    tmp = tmp_path_factory.mktemp("template")
    path = tmp / "syncd.db"
    config = write_config(tmp / "config.toml", f"sqlite:///{path}")
    result = syncd(config, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    return path


@pytest.fixture
def harness(tmp_path: Path, template_db: Path) -> Iterator[Harness]:
    db_path = tmp_path / "syncd.db"
    shutil.copy(template_db, db_path)
    url = f"sqlite:///{db_path}"
    h = Harness(tmp_path, url, write_config(tmp_path / "config.toml", url))
    try:
        yield h
    finally:
        h.stop_all()


@pytest.fixture
def pg_harness(tmp_path: Path) -> Iterator[Harness]:
    """A fresh PostgreSQL schema, migrated, for daemons on several 'hosts'."""
    base = require_postgres()
    schema = f"d_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(make_url(base).set(drivername="postgresql+psycopg"))
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    url = make_url(base).set(drivername="postgresql+psycopg")
    url = url.update_query_dict({"options": f"-csearch_path={schema}"})
    url_text = url.render_as_string(hide_password=False)
    db = open_database(url_text)
    migrate.upgrade(db)
    db.dispose()
    h = Harness(tmp_path, url_text, write_config(tmp_path / "config.toml", url_text))
    try:
        yield h
    finally:
        h.stop_all()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def assert_no_overlap(runs: list[dict[str, Any]], *, open_until: Any = None) -> None:
    """Runs recorded by the test executor never overlap in time (invariant 7)."""
    spans = sorted(
        (r["started_at"], r["finished_at"] or open_until, r["id"]) for r in runs if r["started_at"]
    )
    for (_s1, end1, id1), (start2, _e2, id2) in itertools.pairwise(spans):
        assert end1 is not None, f"run {id1} never finished but run {id2} started after it"
        assert end1 <= start2, f"run {id1} (until {end1}) overlaps run {id2} (from {start2})"


class FakeSystemd:
    """A datagram socket that collects notifications, like systemd's notify socket."""

    def __init__(self, address: str | bytes) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.2)
        self.messages: list[tuple[float, list[str]]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._done.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode().split("\n")))

    def lines(self) -> list[str]:
        return [line for _, lines in list(self.messages) for line in lines]

    def times(self, line: str) -> list[float]:
        return [t for t, lines in list(self.messages) if line in lines]

    def close(self) -> None:
        self._done.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="sdn", dir="/tmp") as tmp:
        yield Path(tmp)
