"""Commands that destroy or mislead ask first or answer clearly (issue 16).

``db downgrade`` asks for ``--yes`` (a terminal: the revision typed back) and refuses while a
daemon or a sync run uses the database; ``demo --dir`` refuses a folder it did not make; a
typo in a ledger filter names the valid values; ``resync`` names an unknown external id.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from syncd.cli import cli
from syncd.exit_codes import ExitCode
from syncd.store import leases, migrate
from syncd.store.db import Database
from syncd.store.schema import sync_requests
from tests.ops.conftest import Invoke, Rows, utcnow
from tests.support.notices import plain

# -- db downgrade ---------------------------------------------------------------------------


def test_downgrade_without_yes_refuses_and_keeps_the_schema(invoke: Invoke, db: Database) -> None:
    result = invoke("db", "downgrade", "base")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "--yes" in result.stderr
    assert "drops every syncd table" in result.stderr
    assert "Nothing was changed" in result.stderr
    assert migrate.current_revision(db) == migrate.head_revision()


def test_downgrade_with_yes_reverts(invoke: Invoke, db: Database) -> None:
    result = invoke("db", "downgrade", "base", "--yes")
    assert result.exit_code == ExitCode.OK, result.output
    assert f"{migrate.head_revision()} -> empty" in result.output
    assert migrate.current_revision(db) is None


def test_downgrade_refuses_while_a_live_daemon_heartbeats(
    invoke: Invoke, db: Database, rows: Rows
) -> None:
    rows.daemon("host-a:123", hostname="host-a", pid=123)
    result = invoke("db", "downgrade", "base", "--yes")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "daemon host-a:123 on host-a (pid 123" in result.stderr
    assert "systemctl stop syncd" in result.stderr
    assert migrate.current_revision(db) == migrate.head_revision()


def test_downgrade_refuses_while_a_sync_holds_the_lease(invoke: Invoke, db: Database) -> None:
    holder = "sync@elsewhere.example:4242"
    assert leases.acquire(db, leases.SYNC_LEASE, holder, timedelta(minutes=5)) is not None
    result = invoke("db", "downgrade", "base", "--yes")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"the 'sync' lease, held by {holder}" in result.stderr
    assert migrate.current_revision(db) == migrate.head_revision()


def test_downgrade_ignores_dead_and_stopped_daemons(
    invoke: Invoke, db: Database, rows: Rows
) -> None:
    rows.daemon("dead:1", heartbeat_at=utcnow() - timedelta(hours=1))
    rows.daemon("stopped:2", state="stopped", is_leader=False)
    result = invoke("db", "downgrade", "base", "--yes")
    assert result.exit_code == ExitCode.OK, result.output
    assert migrate.current_revision(db) is None


def test_downgrade_to_an_unknown_revision_names_the_known_ones(invoke: Invoke) -> None:
    result = invoke("db", "downgrade", "nope", "--yes")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "cannot downgrade to 'nope'" in result.stderr
    assert f"known revisions (newest first): {migrate.head_revision()}" in result.stderr


def _downgrade_on_a_terminal(config: Path, typed: str) -> subprocess.CompletedProcess[str]:
    """`syncd db downgrade base` with a terminal as stdin, answering the prompt with ``typed``."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "--config", str(config), "db", "downgrade", "base"],
            stdin=slave,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.close(slave)
        os.write(master, typed.encode() + b"\n")
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(master)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.slow
def test_downgrade_on_a_terminal_wants_the_revision_typed_back(
    config_file: Path, db: Database
) -> None:
    refused = _downgrade_on_a_terminal(config_file, "yes")
    assert refused.returncode == ExitCode.USAGE, refused.stdout + refused.stderr
    assert "Type the target revision (base) to confirm" in refused.stdout
    assert "confirmation did not match (expected 'base')" in refused.stderr
    assert migrate.current_revision(db) == migrate.head_revision()

    done = _downgrade_on_a_terminal(config_file, "base")
    assert done.returncode == ExitCode.OK, done.stdout + done.stderr
    assert migrate.current_revision(db) is None


# -- demo --dir -----------------------------------------------------------------------------


@pytest.mark.parametrize("foreign", ["syncd.db", "config.toml"])
def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path, foreign: str) -> None:
    folder = tmp_path / "prod"
    folder.mkdir()
    (folder / foreign).write_bytes(b"precious")
    result = CliRunner().invoke(cli, ["demo", "--dir", str(folder)], catch_exceptions=False)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"refusing to use {folder} for the demo: it holds {foreign}" in result.stderr
    assert (folder / foreign).read_bytes() == b"precious"
    assert sorted(p.name for p in folder.iterdir()) == [foreign]


@pytest.mark.slow
def test_demo_makes_a_new_folder_and_reuses_its_own(tmp_path: Path) -> None:
    folder = tmp_path / "fresh" / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "syncd", "demo", "--dir", str(folder)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == ExitCode.OK, proc.stdout + proc.stderr
        assert (folder / ".syncd-demo").is_file()


# -- ledger filters -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "typo", "valid"),
    [("--op", "delet", "'delete'"), ("--outcome", "faild", "'failed'")],
)
def test_a_typo_in_a_ledger_filter_names_the_valid_values(
    invoke: Invoke, rows: Rows, option: str, typo: str, valid: str
) -> None:
    rows.ledger(op="delete", outcome="failed")
    result = invoke("ledger", option, typo)
    assert result.exit_code == ExitCode.USAGE, result.output
    assert f"Invalid value for '{option}': '{typo}' is not one of" in result.stderr
    assert valid in result.stderr


def test_ledger_filters_accept_the_valid_values(invoke: Invoke, rows: Rows) -> None:
    rows.ledger(op="delete", outcome="failed", external_id="X")
    result = invoke("ledger", "--op", "DELETE", "--outcome", "failed", "--format", "jsonl")
    assert result.exit_code == ExitCode.OK, result.output
    assert '"external_id": "X"' in result.output


# -- resync --external-id -------------------------------------------------------------------


def _requested_ids(db: Database) -> list[list[str]]:
    with db.read() as conn:
        return [list(r) for r in conn.execute(sa.select(sync_requests.c.external_ids)).scalars()]


def test_resync_warns_about_an_unknown_id_and_queues_the_known_ones(
    invoke: Invoke, db: Database, rows: Rows
) -> None:
    rows.mirror("IN-MIRROR")
    rows.link("ONLY-LINKED")
    result = invoke(
        "resync",
        "--external-id",
        "IN-MIRROR",
        "--external-id",
        "NOPE",
        "--external-id",
        "ONLY-LINKED",
    )
    assert result.exit_code == ExitCode.OK, result.output
    assert "syncd: warning: NOPE is neither in the mirror nor linked to a Genesys contact" in plain(
        result.stderr
    )
    assert "left out of the request" in result.stderr
    assert "for 2 contact(s)" in result.stdout
    assert _requested_ids(db) == [["IN-MIRROR", "ONLY-LINKED"]]


def test_resync_of_only_unknown_ids_queues_nothing(invoke: Invoke, db: Database) -> None:
    result = invoke("resync", "--external-id", "NOPE")
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "NOPE is neither in the mirror nor linked" in result.stderr
    assert "nothing was queued" in result.stderr
    assert _requested_ids(db) == []
