"""What `syncd sync`, `syncd runs` and `syncd status` say after faults is true (issue 16).

Through the CLI (click's runner, and a `syncd sync` child process that is killed), against a
real emulator server on a socket:

- held deletes stay visible: every run while links are held counts them and exits 3, until
  `--allow-mass-delete` releases them; `status` is degraded with the count and the command;
- a run that leaves intents unresolved is `partial` (exit 1) with the count in its summary;
- a killed run's counters come from its ledger rows, calls unknown (not 0), and a run in
  progress shows as running; `syncd sync` right after the kill starts at once (the dead
  process's lease is broken).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from syncd.cli import cli
from syncd.emulator import EmulatorConfig, EmulatorServer
from syncd.emulator.faults import FaultSettings
from syncd.exit_codes import ExitCode
from syncd.store.db import Database
from syncd.store.schema import contact_links, crm_contacts, ledger, sync_runs
from tests.ops.conftest import Rows
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, serve_in_thread, state_of
from tests.sync.conftest import person


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(
        requests_per_minute=100_000, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
    )
    with serve_in_thread(config) as srv:
        yield srv


@pytest.fixture
def config_file(db: Database, server: EmulatorServer, tmp_path: Path) -> Path:
    path = tmp_path / "syncd.toml"
    url = db.url.render_as_string(hide_password=False)
    path.write_text(
        f"""
[database]
url = {json.dumps(url)}

[genesys]
api_url = "{server.api_url}"
login_url = "{server.login_url}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
requests_per_minute = 100000

[sync]
max_delete_count = 5
max_delete_percent = 100
""",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


class Syncd:
    def __init__(self, config: Path, db: Database) -> None:
        self.config, self.db = config, db

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--config", str(self.config), "--log-level", "error", *args],
            env={"COLUMNS": "200"},
            catch_exceptions=False,
        )

    def json(self, *args: str) -> Any:
        result = self(*args, "--format", "json")
        assert result.exit_code in (ExitCode.OK, ExitCode.PARTIAL, ExitCode.NO_DAEMON), (
            result.output
        )
        # The in-process emulator server may log a request line into the captured output
        # while a child process syncs: the document starts at its first line.
        start = re.search(r"^[\[{]", result.stdout, re.MULTILINE)
        assert start, result.output
        return json.JSONDecoder().raw_decode(result.stdout[start.start() :])[0]

    def upsert(self, *rows: dict[str, Any]) -> None:
        with self.db.write() as conn:
            for row in rows:
                conn.execute(sa.insert(crm_contacts).values(**row))

    def tombstone(self, *exts: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                sa.update(crm_contacts)
                .where(crm_contacts.c.external_id.in_(exts))
                .values(deleted=True)
            )


@pytest.fixture
def syncd(config_file: Path, db: Database) -> Syncd:
    return Syncd(config_file, db)


def count(result: Result, label: str) -> int:
    """A row of the run's summary table."""
    found = re.search(rf"^\W*{re.escape(label)}\W+(\d+)\W*$", result.stdout, re.MULTILINE)
    assert found, result.stdout
    return int(found[1])


def test_held_deletes_stay_visible_on_every_run_until_released(syncd: Syncd, db: Database) -> None:
    syncd.upsert(*(person(f"H-{i:02}") for i in range(10)))
    assert syncd("sync").exit_code == ExitCode.OK
    held = [f"H-{i:02}" for i in range(6)]  # 6 deletes > max_delete_count 5
    syncd.tombstone(*held)

    first = syncd("sync")
    assert first.exit_code == ExitCode.HELD, first.output
    assert count(first, "held") == 6
    # Nothing new to hold: the links are still held, and every run says so.
    for args in (("sync",), ("sync",), ("sync", "--full"), ("sync", "--external-id", "H-09")):
        again = syncd(*args)
        assert again.exit_code == ExitCode.HELD, (args, again.output)
        assert count(again, "held") == 6
        assert "6 delete(s) are held" in again.stdout
        assert "--allow-mass-delete" in again.stdout
    dry = syncd("sync", "--dry-run")
    assert dry.exit_code == ExitCode.HELD, dry.output
    runs = syncd.json("runs", "--limit", "5")
    assert [(r["status"], r["held"]) for r in runs] == [("held", 6)] * 5

    Rows(db).daemon(hostname="another-host")  # a live daemon, so health is not "down"
    status = syncd("status", "--format", "json")
    assert status.exit_code == ExitCode.PARTIAL, status.output
    report = json.loads(status.stdout)
    assert report["health"]["state"] == "degraded"
    assert report["held_deletes"] == 6
    (problem,) = [p for p in report["health"]["problems"] if "mass-delete guard" in p]
    assert problem.startswith("6 delete(s) held")
    assert "`syncd sync --allow-mass-delete`" in problem

    released = syncd("sync", "--allow-mass-delete")
    assert released.exit_code == ExitCode.OK, released.output
    assert count(released, "deleted") == 6
    assert count(released, "held") == 0
    after = syncd("sync")
    assert after.exit_code == ExitCode.OK, after.output
    assert count(after, "held") == 0


def test_unresolved_intents_make_the_run_partial_and_status_degraded(
    syncd: Syncd, server: EmulatorServer, db: Database
) -> None:
    em = state_of(server.app)
    em.faults.settings = FaultSettings(lost_ack_rate=1.0)  # every create lands, unanswered
    syncd.upsert(*(person(f"U-{i}") for i in range(3)))
    lost = syncd("sync")
    assert lost.exit_code == ExitCode.PARTIAL, lost.output
    assert count(lost, "unresolved intents") == 3
    assert "3 intent(s) left unresolved" in lost.stdout
    (run,) = syncd.json("runs")
    assert run["status"] == "partial"
    assert "3 intent(s) left unresolved" in run["error"]

    Rows(db).daemon(hostname="another-host")
    fresh = syncd("status", "--pending-after", "1h")
    assert fresh.exit_code == ExitCode.OK, fresh.output
    old = syncd("status", "--pending-after", "1ms", "--format", "json")
    assert old.exit_code == ExitCode.PARTIAL, old.output
    report = json.loads(old.stdout)
    assert report["intents"]["pending"] == 3
    assert any("3 intent(s) unresolved" in p for p in report["health"]["problems"])

    em.faults.settings = FaultSettings()
    resolved = syncd("sync")  # resolves them (found by externalId): nothing left pending
    assert resolved.exit_code == ExitCode.OK, resolved.output
    assert syncd("status", "--pending-after", "1ms").exit_code == ExitCode.OK


def _ledger_ok_creates(db: Database, run_id: int) -> int:
    with db.read() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(
                    ledger.c.run_id == run_id, ledger.c.op == "create", ledger.c.outcome == "ok"
                )
            ).scalar_one()
        )


def _first_run_id(db: Database) -> int | None:
    with db.read() as conn:
        return conn.execute(sa.select(sa.func.min(sync_runs.c.id))).scalar()


@pytest.mark.slow
def test_a_killed_run_counts_from_its_ledger_and_the_next_sync_starts_at_once(
    syncd: Syncd, server: EmulatorServer, db: Database
) -> None:
    state_of(server.app).faults.settings = FaultSettings(latency_ms=20)
    n = 400
    syncd.upsert(*(person(f"K-{i:03}") for i in range(n)))
    env = {**os.environ, "SYNCD_CONFIG": str(syncd.config)}
    child = subprocess.Popen(
        [sys.executable, "-m", "syncd", "--log-level", "error", "sync"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        run_id = None
        while time.monotonic() < deadline:
            run_id = _first_run_id(db)
            if run_id is not None and _ledger_ok_creates(db, run_id) >= 30:
                break
            time.sleep(0.05)
        assert run_id is not None
        # In progress: shown as running, with its counters so far.
        (live,) = syncd.json("runs")
        assert live["status"] == "running"
        assert live["counters_from"] == "ledger"
        assert live["created"] >= 30
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    created = _ledger_ok_creates(db, run_id)
    assert 30 <= created < n

    (dead,) = syncd.json("runs")
    assert dead["id"] == run_id
    assert dead["status"] == "interrupted"
    assert dead["counters_from"] == "ledger"
    assert dead["created"] == created
    assert dead["api_calls"] is None
    assert dead["unchanged"] is None
    table = syncd("runs", "show", str(run_id))
    assert f"created {created}" in table.stdout
    assert "unknown (the run did not record them)" in table.stdout
    assert "no changes" not in syncd("runs").stdout

    # The killed process's sync lease (20 s TTL, unexpired) does not block the next run:
    # without breaking it, this would fail at once with "a sync run is already in progress".
    state_of(server.app).faults.settings = FaultSettings()
    nxt = syncd("sync")
    assert nxt.exit_code in (ExitCode.OK, ExitCode.PARTIAL), nxt.output
    shown = syncd.json("runs", "show", str(run_id))
    assert shown["status"] == "interrupted"
    assert shown["counters_from"] == "ledger"
    assert shown["created"] >= created  # its pending intents, resolved since, count too
    with db.read() as conn:
        links = conn.execute(sa.select(sa.func.count()).select_from(contact_links)).scalar_one()
    assert links == n
