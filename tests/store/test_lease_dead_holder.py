"""A lease whose holder is a process of this host that is gone is broken at once (issue 16).

Holder ids are ``role@host:pid[/instance]`` (:func:`syncd.store.leases.holder_id`): when the
host is this one and the pid no longer exists (``kill -9``), nobody can renew the lease, so
the next holder takes it without waiting for its expiry. A holder on another host, a live
process, or an id that names no process still waits for expiry. Through the CLI
(`python -m syncd`): a process that holds the ``sync`` lease is killed, and `syncd sync`
right after it starts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from syncd.emulator import EmulatorConfig
from syncd.exit_codes import ExitCode
from syncd.store import leases
from syncd.store.db import Database
from tests.support.cli import run_syncd
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, serve_in_thread

TTL = timedelta(seconds=60)
T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
HOST = socket.gethostname()


def dead_pid() -> int:
    """The pid of a process of this host that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_holder_ids_name_their_host_and_process() -> None:
    assert leases.holder_process(leases.holder_id("sync")) == (HOST, os.getpid())
    assert leases.holder_process(leases.holder_id("daemon", "ab12")) == (HOST, os.getpid())
    assert leases.holder_process("sync@host-b:42/instance") == ("host-b", 42)
    for other in ("a", "sync@host", "sync@host:x", None):
        assert leases.holder_process(other) is None


def test_a_dead_local_holder_is_broken_at_once(db: Database) -> None:
    dead = f"sync@{HOST}:{dead_pid()}"
    first = leases.acquire(db, "sync", dead, TTL, now=T0)
    assert first is not None
    taken = leases.acquire(db, "sync", "sync@me:1", TTL, now=T0 + timedelta(seconds=1))
    assert taken is not None
    assert taken.fencing_token == first.fencing_token + 1  # a takeover: the dead one is fenced
    assert not leases.renew(db, first)


@pytest.mark.parametrize(
    "holder",
    [
        pytest.param(f"sync@another-host-{HOST}:{os.getpid() + 10**6}", id="other-host"),
        pytest.param(f"sync@{HOST}:{os.getpid()}/x", id="live-local"),
        pytest.param("some-holder", id="no-process"),
    ],
)
def test_other_holders_still_wait_for_expiry(db: Database, holder: str) -> None:
    assert leases.acquire(db, "sync", holder, TTL, now=T0)
    assert leases.acquire(db, "sync", "sync@me:1", TTL, now=T0 + timedelta(seconds=59)) is None
    assert leases.acquire(db, "sync", "sync@me:1", TTL, now=T0 + TTL)


def test_a_zombie_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(200):  # exited, not reaped yet
            if not leases.process_alive(child.pid):
                break
            subprocess.run([sys.executable, "-c", "import time; time.sleep(0.01)"], check=True)
        assert not leases.process_alive(child.pid)
    finally:
        child.wait()
    assert leases.process_alive(os.getpid())


HOLD = """
import sys, time
from datetime import timedelta
from syncd.store import leases
from syncd.store.db import open_database
db = open_database(sys.argv[1])
lease = leases.acquire(db, "sync", leases.holder_id("sync"), timedelta(minutes=10))
assert lease is not None
print(lease.holder, flush=True)
time.sleep(600)
"""


def _syncd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`syncd ARGS` as an operator runs it (the console script's entry point)."""
    return run_syncd(config, "--log-level", "error", *args, timeout=120)


@pytest.mark.slow
def test_sync_right_after_a_kill_9_starts(db: Database, tmp_path: Path) -> None:
    url = db.url.render_as_string(hide_password=False)
    config = EmulatorConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with serve_in_thread(config) as server:
        path = tmp_path / "syncd.toml"
        path.write_text(
            f"[database]\nurl = {json.dumps(url)}\n[genesys]\n"
            f'api_url = "{server.api_url}"\nlogin_url = "{server.login_url}"\n'
            f'client_id = "{CLIENT_ID}"\nclient_secret = "{CLIENT_SECRET}"\n',
            encoding="utf-8",
        )
        path.chmod(0o600)
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, url], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout is not None
            name = holder.stdout.readline().strip()
            assert name.startswith(f"sync@{HOST}:{holder.pid}")
            refused = _syncd(path, "sync")  # alive: the lock is held
            assert refused.returncode == ExitCode.USAGE, refused.stderr
            assert "already in progress" in refused.stderr
        finally:
            holder.send_signal(signal.SIGKILL)
            holder.wait()
            if holder.stdout is not None:
                holder.stdout.close()
        # The lease has ten minutes to go, but its holder is gone: the run starts at once.
        result = _syncd(path, "sync")
        assert result.returncode == ExitCode.OK, result.stderr
        info = leases.current(db, leases.SYNC_LEASE)
        assert info is not None
        assert info.holder is None
        # On another host the same lease still waits for its expiry.
        other = leases.acquire(db, "sync", f"sync@not-{HOST}:{holder.pid}", TTL)
        assert other is not None
        assert _syncd(path, "sync").returncode == ExitCode.USAGE
