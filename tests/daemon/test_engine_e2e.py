"""End to end with the real engine: `syncd run` (the engine's executor) against an emulator process.

SIGTERM in the middle of the first run exits 0; the next start finishes the work, and the
emulator holds every contact exactly once, created by exactly one POST each.
"""

from __future__ import annotations

import collections
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from syncd.store.schema import crm_contacts
from tests.daemon.conftest import ROOT, Harness, eventually
from tests.sync.conftest import CLIENT_ID, CLIENT_SECRET, person

pytestmark = pytest.mark.slow
N = 300


@pytest.fixture
def emulator() -> Iterator[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "syncd",
            "emulator",
            "--port",
            "0",
            "--latency-ms",
            "100",
            "--requests-per-minute",
            "100000",
            "--client-id",
            CLIENT_ID,
            "--client-secret",
            CLIENT_SECRET,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line
        yield line.strip().rsplit(" ", 1)[-1]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _configure(h: Harness, url: str) -> None:
    h.config.write_text(
        f"""
[database]
url = "{h.url}"
[genesys]
api_url = "{url}/api/v2"
login_url = "{url}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
requests_per_minute = 100000
[sync]
incremental_every = "1h"
[logging]
format = "json"
""",
        encoding="utf-8",
    )
    h.config.chmod(0o600)


def _contacts(url: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = httpx.get(f"{url}/__emulator/contacts").json()
    return result


def _posts(url: str) -> int:
    log = httpx.get(f"{url}/__emulator/requests").json()
    return sum(1 for r in log if r["method"] == "POST" and r["route"] == "/api/v2/contacts")


def test_sigterm_mid_run_then_restart_finishes_without_duplicates(
    harness: Harness, emulator: str
) -> None:
    _configure(harness, emulator)
    db = harness.database()
    try:
        with db.write() as conn:
            conn.execute(sa.insert(crm_contacts), [person(f"E-{i:04}") for i in range(N)])
    finally:
        db.dispose()
    daemon = harness.start("first", engine=True)  # `python -m syncd run`: the real engine
    daemon.wait_for("daemon.started", timeout=30)
    eventually(lambda: len(_contacts(emulator)) >= 20, 30, "the first creates")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(40) == 0
    first = len(_contacts(emulator))
    assert 0 < first < N, "the run should have been interrupted mid-way"
    finished = daemon.wait_for("daemon.run.finished")
    assert finished["status"] == "interrupted"

    again = harness.start("second", engine=True)
    again.wait_for("daemon.started", timeout=30)
    eventually(lambda: len(_contacts(emulator)) == N, 60, "all contacts")
    result = harness.syncd("resync", "--wait", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    ids = collections.Counter(c.get("externalId") for c in _contacts(emulator))
    assert len(ids) == N
    assert set(ids.values()) == {1}  # no duplicates
    assert _posts(emulator) == N  # and no create was sent twice
