"""Fixtures for the operators' commands: a config file for the ``db`` fixture, a CLI runner,
and helpers that write runs, ledger rows, links, mirror rows and daemon status directly."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from syncd.cli import cli
from syncd.store.db import Database
from syncd.store.schema import (
    contact_links,
    crm_contacts,
    daemon_status,
    ledger,
    sync_requests,
    sync_runs,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def write_config(path: Path, url: str, extra: str = "") -> Path:
    path.write_text(
        "[database]\n"
        f"url = {json.dumps(url)}\n"
        "[genesys]\n"
        'client_id = "x"\n'
        'client_secret = "y"\n' + extra,
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


Invoke = Callable[..., Result]


def make_invoke(config: Path) -> Invoke:
    def invoke(*args: str, columns: int = 200) -> Result:
        runner = CliRunner()
        return runner.invoke(
            cli,
            ["--config", str(config), "--log-level", "warning", *args],
            env={"COLUMNS": str(columns)},
            catch_exceptions=False,
        )

    return invoke


@pytest.fixture
def config_file(db: Database, tmp_path: Path) -> Path:
    return write_config(tmp_path / "syncd.toml", db.url.render_as_string(hide_password=False))


@pytest.fixture
def invoke(config_file: Path) -> Invoke:
    """Run `syncd --config <the db fixture's config> ARGS...`; columns sets the terminal width."""
    return make_invoke(config_file)


@dataclass
class Rows:
    """Inserts rows with SQLAlchemy Core, as the engine and the daemon would."""

    db: Database

    def run(self, **kw: Any) -> int:
        values: dict[str, Any] = {
            "kind": "incremental",
            "trigger": "schedule",
            "status": "succeeded",
            "started_at": utcnow() - timedelta(minutes=5),
            "finished_at": None,
        }
        values.update(kw)
        if values["finished_at"] is None and values["status"] != "running":
            values["finished_at"] = values["started_at"] + timedelta(seconds=42)
        with self.db.write() as conn:
            pk = conn.execute(sa.insert(sync_runs).values(**values)).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def ledger(self, **kw: Any) -> None:
        values: dict[str, Any] = {"at": utcnow(), "op": "update", "outcome": "ok"}
        values.update(kw)
        with self.db.write() as conn:
            conn.execute(sa.insert(ledger).values(**values))

    def ledger_many(self, rows: list[dict[str, Any]]) -> None:
        base = {
            "run_id": None,
            "external_id": None,
            "genesys_id": None,
            "fields": None,
            "http_status": None,
            "error": None,
            "correlation_id": None,
        }
        with self.db.write() as conn:
            conn.execute(sa.insert(ledger), [{**base, **r} for r in rows])

    def link(self, external_id: str, **kw: Any) -> None:
        values: dict[str, Any] = {
            "external_id": external_id,
            "genesys_id": f"g-{external_id}",
            "state": "synced",
        }
        values.update(kw)
        with self.db.write() as conn:
            conn.execute(sa.insert(contact_links).values(**values))

    def mirror(self, external_id: str, **kw: Any) -> None:
        values: dict[str, Any] = {"external_id": external_id, "first_name": "Ada"}
        values.update(kw)
        with self.db.write() as conn:
            conn.execute(sa.insert(crm_contacts).values(**values))

    def daemon(self, instance_id: str = "host-a:123", **kw: Any) -> None:
        values: dict[str, Any] = {
            "instance_id": instance_id,
            "hostname": "host-a",
            "pid": 123,
            "version": "0.1.0",
            "started_at": utcnow() - timedelta(hours=1),
            "heartbeat_at": datetime.now(UTC) - timedelta(seconds=5),
            "is_leader": True,
            "state": "running",
            "next_incremental_at": datetime.now(UTC) + timedelta(seconds=30),
            "next_full_at": datetime.now(UTC) + timedelta(hours=5),
        }
        values.update(kw)
        with self.db.write() as conn:
            conn.execute(sa.insert(daemon_status).values(**values))

    def request(self, **kw: Any) -> None:
        values: dict[str, Any] = {
            "kind": "targeted",
            "external_ids": ["A"],
            "status": "pending",
            "requested_at": utcnow() - timedelta(minutes=1),
        }
        values.update(kw)
        with self.db.write() as conn:
            conn.execute(sa.insert(sync_requests).values(**values))

    def count_ledger(self) -> int:
        with self.db.read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(ledger)).scalar_one())


@pytest.fixture
def rows(db: Database) -> Rows:
    return Rows(db)


LONG_NAME = "Compagnie Générale des Établissements " * 4


@dataclass
class Story:
    """A small ledger whose rows are named c1..c9 by their correlation id, relative to ``now``."""

    now: datetime
    full_run: int
    incr_run: int


@pytest.fixture
def story(rows: Rows) -> Story:
    NOW = utcnow()  # noqa: N806 - read as a constant below
    full = rows.run(kind="full", started_at=NOW - timedelta(days=3), created=2, api_calls=3)
    incr = rows.run(
        kind="incremental",
        status="partial",
        started_at=NOW - timedelta(minutes=55),
        updated=1,
        failed=3,
        held=1,
        api_calls=7,
        rate_limited=2,
    )
    d = timedelta
    rows.ledger_many(
        [
            dict(at=NOW - d(days=3), run_id=full, external_id="A", genesys_id="g-a",
                 op="create", outcome="ok", http_status=200, correlation_id="c1",
                 fields={"first_name": [None, "Ada"], "email": [None, "ada@x.org"]}),
            dict(at=NOW - d(days=3) + d(seconds=1), run_id=full, external_id="B",
                 genesys_id="g-b", op="create", outcome="ok", http_status=200,
                 correlation_id="c2", fields={"organization_name": [None, LONG_NAME]}),
            dict(at=NOW - d(minutes=50), run_id=incr, external_id="A", genesys_id="g-a",
                 op="update", outcome="ok", http_status=200, correlation_id="c3",
                 fields={"email": ["ada@x.org", "ada@y.org"]}),
            dict(at=NOW - d(minutes=40), run_id=incr, external_id="C", op="create",
                 outcome="failed", http_status=400, error="phone number invalid",
                 correlation_id="c4"),
            dict(at=NOW - d(minutes=39), run_id=incr, external_id="D", op="create",
                 outcome="failed", http_status=400, error="phone number invalid",
                 correlation_id="c5"),
            dict(at=NOW - d(minutes=30), run_id=incr, external_id="E", genesys_id="g-e",
                 op="delete", outcome="held", correlation_id="c6"),
            dict(at=NOW - d(minutes=20), run_id=incr, external_id="B", genesys_id="g-b",
                 op="update", outcome="failed", http_status=503, error="service unavailable",
                 correlation_id="c7", fields={"last_name": ["Byron", "Lovelace"]}),
            dict(at=NOW - d(minutes=5), external_id="F", genesys_id="g-f", op="drift",
                 outcome="ok", correlation_id="c8",
                 fields={"phone_numbers": [[{"type": "work", "number": "+15551234567"}], []]}),
            dict(at=NOW - d(minutes=2), run_id=incr, external_id="A", genesys_id="g-a",
                 op="update", outcome="pending", correlation_id="c9",
                 fields={"last_name": [None, "King"]}),
        ]
    )  # fmt: skip
    rows.mirror("A", first_name="Ada", last_name="King", email="ada@y.org",
                phone_numbers=[{"type": "mobile", "number": "+15550001111"}])  # fmt: skip
    rows.link("A", genesys_id="g-a", state="pending_update", attempts=1,
              next_attempt_at=NOW + timedelta(minutes=1))  # fmt: skip
    return Story(now=NOW, full_run=full, incr_run=incr)
