"""End to end with the real engine: `syncd run` (the engine's executor) against an emulator process.

SIGTERM in the middle of the first run exits 0; the next start finishes the work, and the
emulator holds every contact exactly once, created by exactly one POST each. Each daemon logs in
once for its whole life, however many runs it makes.
"""

from __future__ import annotations

import collections
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from syncd.emulator import EmulatorConfig
from syncd.store.schema import crm_contacts
from tests.daemon.conftest import Harness, eventually
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, EmulatorProcess
from tests.sync.conftest import person

pytestmark = pytest.mark.slow
N = 300


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    config = EmulatorConfig(latency_ms=100, requests_per_minute=100_000)
    with EmulatorProcess(config, log_path=tmp_path / "emulator.log") as running:
        yield running


def _configure(
    h: Harness,
    emulator: EmulatorProcess,
    *,
    secret: str = CLIENT_SECRET,
    every: str = "1h",
    daemon: str = "",
) -> None:
    h.config.write_text(
        f"""
[database]
url = "{h.url}"
[genesys]
api_url = "{emulator.api_url}"
login_url = "{emulator.login_url}"
client_id = "{CLIENT_ID}"
client_secret = "{secret}"
requests_per_minute = 100000
[sync]
incremental_every = "{every}"
[logging]
format = "json"
{daemon}
""",
        encoding="utf-8",
    )
    h.config.chmod(0o600)


def _posts(emulator: EmulatorProcess) -> int:
    return sum(
        1 for r in emulator.requests() if r["method"] == "POST" and r["route"] == "/api/v2/contacts"
    )


def _logins(emulator: EmulatorProcess) -> int:
    return sum(1 for r in emulator.requests() if r["route"] == "/oauth/token")


def test_sigterm_mid_run_then_restart_finishes_without_duplicates(
    harness: Harness, emulator: EmulatorProcess
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
    eventually(lambda: len(emulator.contacts()) >= 20, 30, "the first creates")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(40) == 0
    first = len(emulator.contacts())
    assert 0 < first < N, "the run should have been interrupted mid-way"
    finished = daemon.wait_for("daemon.run.finished")
    assert finished["status"] == "interrupted"

    again = harness.start("second", engine=True)
    again.wait_for("daemon.started", timeout=30)
    eventually(lambda: len(emulator.contacts()) == N, 60, "all contacts")
    logins = _logins(emulator)
    result = harness.syncd("resync", "--full", "--wait", timeout=60)  # a run that calls Genesys
    assert result.returncode == 0, result.stdout + result.stderr
    assert _logins(emulator) == logins == 2  # one token per daemon life, not one per run
    ids = collections.Counter(c.get("externalId") for c in emulator.contacts())
    assert len(ids) == N
    assert set(ids.values()) == {1}  # no duplicates
    assert _posts(emulator) == N  # and no create was sent twice


def test_runs_back_off_while_the_login_fails(harness: Harness, emulator: EmulatorProcess) -> None:
    """A wrong secret: the scheduled runs (every 0.1 s) wait 0.4, 0.8, 1.6, 1.6 s... between
    attempts instead of logging in at every tick; the logins recover the pace."""
    _configure(
        harness,
        emulator,
        secret="not-the-secret",
        every="0.1s",
        daemon='[daemon]\nlogin_backoff = "0.4s"\nlogin_backoff_max = "1.6s"',
    )
    db = harness.database()
    try:  # work to do, so that every run needs a token (a run with nothing to do logs in never)
        with db.write() as conn:
            conn.execute(sa.insert(crm_contacts), [person(f"L-{i}") for i in range(5)])
    finally:
        db.dispose()
    # Rows retried at once (not after the per-row back-off): every run has work to do.
    fast_rows = {"SYNCD_ENGINE_BACKOFF_BASE": "0.01s", "SYNCD_ENGINE_BACKOFF_MAX": "0.01s"}
    daemon = harness.start("locked-out", engine=True, **fast_rows)
    daemon.wait_for("daemon.started", timeout=30)
    eventually(lambda: len(daemon.events("daemon.login.backoff")) >= 4, 30, "four back-offs")
    waits = [e["retry_in"] for e in daemon.events("daemon.login.backoff")[:4]]
    assert waits == [0.4, 0.8, 1.6, 1.6]
    attempts = len(daemon.events("daemon.run.finished"))
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(40) == 0
    # Every 0.1 s for those ~4.4 s would be 40+ runs, each with its own failed login.
    assert attempts <= 6, attempts
    # One login per run: rows in flight do not each ask again once the login was refused.
    assert _logins(emulator) <= attempts + 1
    assert all(r["status"] == "failed" for r in harness.runs())
