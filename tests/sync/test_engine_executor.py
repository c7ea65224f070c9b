"""The daemon's seam: ``create_executor`` builds a RunExecutor that holds the sync lease."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from syncd.config import Settings
from syncd.emulator import (
    EmulatorConfig,
    EmulatorServer,  # the type serve_in_thread yields (annotations only)
)
from syncd.errors import LockHeldError
from syncd.store import leases
from syncd.store.db import Database
from syncd.sync.runs import create_executor
from syncd.sync.seam import RunExecutor, RunRequest, StopEvent
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, client_settings, serve_in_thread
from tests.sync.conftest import Harness, person


@pytest.fixture
def server(profile: str) -> Iterator[EmulatorServer]:
    config = EmulatorConfig(
        requests_per_minute=1_000_000,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        profile=profile,
    )
    with serve_in_thread(config) as srv:
        yield srv


def _settings(server: EmulatorServer, db: Database) -> Settings:
    return Settings(
        database={"url": db.url.render_as_string(hide_password=False)},  # type: ignore[arg-type]
        genesys=client_settings(server, requests_per_minute=100_000),
        sync={"max_delete_count": 1, "max_delete_percent": 100},  # type: ignore[arg-type]
    )


def test_executor_runs_under_the_lease_and_reports(db: Database, server: EmulatorServer) -> None:
    executor = create_executor(settings=_settings(server, db), db=db, instance_id="test-1")
    assert isinstance(executor, RunExecutor)
    h = Harness(db, server.app)
    h.upsert(person("E-1"), person("E-2"), person("E-3"))
    started: list[int] = []
    outcome = executor.execute(
        RunRequest("incremental"), trigger="schedule", stop=StopEvent(), started=started.append
    )
    assert (outcome.status, outcome.exit_code) == ("succeeded", 0)
    assert started == [outcome.run_id]
    assert len(server.emulator.contacts()) == 3
    assert h.runs()[0]["instance_id"] == "test-1"
    assert h.runs()[0]["trigger"] == "schedule"
    info = leases.current(db, leases.SYNC_LEASE)
    assert info is not None
    assert info.holder is None  # released

    h.tombstone("E-1", "E-2")
    outcome = executor.execute(
        RunRequest("full"), trigger="manual", stop=StopEvent(), started=started.append
    )
    assert (outcome.status, outcome.exit_code) == ("held", 3)
    outcome = executor.execute(
        RunRequest("incremental", allow_mass_delete=True),
        trigger="manual",
        stop=StopEvent(),
        started=started.append,
    )
    assert (outcome.status, outcome.exit_code) == ("succeeded", 0)
    assert len(server.emulator.contacts()) == 1


def test_executor_refuses_while_another_writer_holds_the_lock(
    db: Database, server: EmulatorServer
) -> None:
    executor = create_executor(settings=_settings(server, db), db=db, instance_id="test-2")
    with (
        leases.hold(db, leases.SYNC_LEASE, "someone-else", timedelta(seconds=60)),
        pytest.raises(LockHeldError),
    ):
        executor.execute(
            RunRequest("incremental"), trigger="manual", stop=StopEvent(), started=lambda _: None
        )
    assert Harness(db, server.app).runs() == []


def test_a_stop_before_start_interrupts_without_writes(
    db: Database, server: EmulatorServer
) -> None:
    executor = create_executor(settings=_settings(server, db), db=db, instance_id="test-3")
    h = Harness(db, server.app)
    h.upsert(person("S-1"))
    stop = StopEvent()
    stop.stop(grace=5)
    outcome = executor.execute(
        RunRequest("incremental"), trigger="schedule", stop=stop, started=lambda _: None
    )
    assert outcome.status == "interrupted"
    assert outcome.exit_code == 1
    assert server.emulator.contacts() == []
    assert len(h.changes()) == 1
    assert isinstance(stop, threading.Event)
