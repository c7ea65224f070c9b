"""Ledger retention: `syncd ledger prune` and `prune_ledger`, on both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from syncd.config import LedgerSettings
from syncd.store.db import Database
from syncd.store.retention import prune_ledger
from syncd.store.schema import ledger
from tests.ops.conftest import Invoke, Rows, make_invoke, write_config


def ages(db: Database) -> list[tuple[int, str]]:
    """(age in whole days, outcome) of every remaining row, oldest first."""
    now = datetime.now(UTC)
    with db.read() as conn:
        rows = conn.execute(sa.select(ledger.c.at, ledger.c.outcome).order_by(ledger.c.at)).all()
    return [((now - at).days, outcome) for at, outcome in rows]


@pytest.fixture
def aged(rows: Rows) -> Rows:
    now = datetime.now(UTC)
    rows.ledger_many(
        [
            {"at": now - timedelta(days=400), "op": "create", "outcome": "ok"},
            {"at": now - timedelta(days=200), "op": "create", "outcome": "pending"},
            {"at": now - timedelta(days=120), "op": "update", "outcome": "failed"},
            {"at": now - timedelta(days=91), "op": "delete", "outcome": "ok"},
            {"at": now - timedelta(days=89), "op": "update", "outcome": "ok"},
            {"at": now - timedelta(days=1), "op": "update", "outcome": "pending"},
            {"at": now - timedelta(hours=1), "op": "update", "outcome": "ok"},
        ]
    )
    return rows


def test_prune_deletes_old_rows_but_keeps_pending(invoke: Invoke, aged: Rows) -> None:
    result = invoke("ledger", "prune", "--older-than", "90d")
    assert result.exit_code == 0, result.output
    assert "deleted 3 ledger entries older than" in result.stdout
    assert "kept 1 older entries still pending" in result.stdout
    assert ages(aged.db) == [(200, "pending"), (89, "ok"), (1, "pending"), (0, "ok")]


def test_prune_dry_run_deletes_nothing(invoke: Invoke, aged: Rows) -> None:
    result = invoke("ledger", "prune", "--older-than", "90d", "--dry-run", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["dry_run"] is True
    assert report["deleted"] == 3
    assert report["pending_kept"] == 1
    assert report["cutoff"].endswith("Z")
    assert aged.count_ledger() == 7
    assert "would delete 3" in invoke("ledger", "prune", "--older-than", "90d", "--dry-run").stdout


def test_prune_in_small_batches(invoke: Invoke, aged: Rows) -> None:
    result = invoke("ledger", "prune", "--older-than", "30d", "--batch-size", "1", "--format",
                    "json")  # fmt: skip
    report = json.loads(result.stdout)
    assert report["deleted"] == 4
    assert report["batches"] == 5
    assert ages(aged.db) == [(200, "pending"), (1, "pending"), (0, "ok")]


def test_prune_defaults_to_90_days_without_a_ledger_section(invoke: Invoke, aged: Rows) -> None:
    result = invoke("ledger", "prune")
    assert result.exit_code == 0
    assert "deleted 3 ledger entries" in result.stdout


def test_prune_ledger_function(db: Database, aged: Rows) -> None:
    result = prune_ledger(db, timedelta(days=100), batch_size=2)
    assert (result.deleted, result.pending_kept, result.dry_run) == (2, 1, False)
    assert prune_ledger(db, timedelta(days=100), batch_size=2).deleted == 0


def test_prune_ledger_rejects_nonsense(db: Database) -> None:
    with pytest.raises(ValueError, match="positive"):
        prune_ledger(db, timedelta(0))
    with pytest.raises(ValueError, match="batch_size"):
        prune_ledger(db, timedelta(days=1), batch_size=0)


def test_bad_older_than_is_a_usage_error(invoke: Invoke) -> None:
    result = invoke("ledger", "prune", "--older-than", "soon")
    assert result.exit_code == 2


def test_ledger_settings() -> None:
    assert LedgerSettings().retention == timedelta(days=90)
    assert LedgerSettings(retention_days=0).retention is None
    with pytest.raises(ValueError, match="retention_days"):
        LedgerSettings(retention_days=-1)
    with pytest.raises(ValueError, match="extra"):
        LedgerSettings.model_validate({"retention": 3})


def test_prune_reads_the_ledger_section(db: Database, tmp_path: Path) -> None:
    """`[ledger] retention_days = 0` in the file turns pruning off."""
    config = write_config(tmp_path / "c.toml", db.url.render_as_string(hide_password=False))
    config.write_text(config.read_text() + "\n[ledger]\nretention_days = 0\n")
    result = make_invoke(config)("ledger", "prune")
    assert result.exit_code == 0
    assert "retention is off" in result.stderr


def _run_ids(db: Database) -> list[int]:
    from syncd.store.schema import sync_runs

    with db.read() as conn:
        return [r[0] for r in conn.execute(sa.select(sync_runs.c.id).order_by(sync_runs.c.id))]


def test_prune_deletes_old_runs_with_their_entries(invoke: Invoke, rows: Rows) -> None:
    """Runs go with the ledger's cutoff, once no entry names them; the newest of each kind,
    the newest completed full reconcile, runs with a pending intent and recent runs stay."""
    now = datetime.now(UTC)
    old = now - timedelta(days=120)
    full_done = rows.run(kind="full", started_at=old - timedelta(days=1))
    empty = [rows.run(started_at=old + timedelta(minutes=i)) for i in range(3)]
    with_pending = rows.run(started_at=old + timedelta(hours=1))
    rows.ledger(run_id=with_pending, at=old, op="create", outcome="pending")
    with_rows = rows.run(started_at=old + timedelta(hours=2))
    rows.ledger(run_id=with_rows, at=old, op="update", outcome="ok")
    failed_full = rows.run(kind="full", status="failed", started_at=old + timedelta(hours=3))
    recent = rows.run(started_at=now - timedelta(days=1))
    newest_full_kind = rows.run(kind="full", status="failed", started_at=now - timedelta(days=2))
    dry = invoke("ledger", "prune", "--older-than", "90d", "--dry-run", "--format", "json")
    assert json.loads(dry.stdout)["runs_deleted"] == 5  # 3 empty, with_rows, failed_full
    assert len(_run_ids(rows.db)) == 9
    result = invoke("ledger", "prune", "--older-than", "90d")
    assert result.exit_code == 0, result.output
    assert "deleted 5 runs older than that with no entries left" in result.stdout
    kept = _run_ids(rows.db)
    assert kept == sorted([full_done, with_pending, recent, newest_full_kind])
    assert not set(empty) & set(kept)
    assert failed_full not in kept
    assert with_rows not in kept
