"""Create, update, delete through the real client and emulator; the change log is consumed."""

from __future__ import annotations

from typing import Any

import pytest

from tests.sync.conftest import Harness, person


def test_create_update_delete_incremental(h: Harness) -> None:
    h.upsert(person("A-1"), person("A-2", first="Grace", last="Hopper"))
    report = h.run()
    assert report.status == "succeeded", report
    assert report.counts["created"] == 2
    remote = h.remote_by_ext()
    assert set(remote) == {"A-1", "A-2"}
    assert remote["A-1"][0]["phoneNumbers"] == [{"number": "+14155550100", "type": "WORK"}]
    assert h.changes() == []
    assert [r["outcome"] for r in h.ledger(op="create")] == ["ok", "ok"]

    h.upsert(person("A-1", first="Augusta"))
    writes_before = len(h.api_writes())
    report = h.run()
    assert report.counts["updated"] == 1
    new_writes = h.api_writes()[writes_before:]
    assert [w["method"] for w in new_writes] == ["PATCH"]
    [upd] = h.ledger(op="update")
    assert upd["fields"] == {"first_name": ["Ada", "Augusta"]}
    assert h.remote_by_ext()["A-1"][0]["firstName"] == "Augusta"

    h.tombstone("A-2")
    report = h.run()
    assert report.counts["deleted"] == 1, report
    assert set(h.remote_by_ext()) == {"A-1"}
    assert "A-2" not in h.links()
    assert report.status == "succeeded"
    runs = h.runs()
    assert [r["status"] for r in runs] == ["succeeded"] * 3


def test_a_run_records_its_outcome_once_the_database_is_back(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chaos suite (SQLite locked by another writer for longer than the busy timeout): the
    run failed with "database is locked", then could not record that either, so it stayed
    ``running`` until the next run called it "interrupted: the process stopped", its error
    and counters lost. Recording the outcome is retried while the database is unavailable."""
    from syncd.errors import DatabaseError
    from syncd.store import runs as run_store
    from syncd.sync import run_record

    real = run_store.finish_run
    calls: list[str] = []

    def flaky(*args: Any, **kwargs: Any) -> None:
        calls.append(kwargs["status"])
        if len(calls) <= 2:
            raise DatabaseError("database error: database is locked")
        real(*args, **kwargs)

    monkeypatch.setattr(run_store, "finish_run", flaky)
    monkeypatch.setattr(run_record, "FINISH_RETRY_DELAYS", (0.0, 0.0, 0.0))
    h.upsert(person("F-1"))
    report = h.run()
    assert report.status == "succeeded"
    assert calls == ["succeeded"] * 3
    [run] = h.runs()
    assert (run["status"], run["created"]) == ("succeeded", 1)


def test_recording_the_outcome_gives_up_after_its_retries(
    h: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syncd.errors import DatabaseError
    from syncd.store import runs as run_store
    from syncd.sync import run_record

    def down(*_args: Any, **_kwargs: Any) -> None:
        raise DatabaseError("database error: database is locked")

    monkeypatch.setattr(run_store, "finish_run", down)
    monkeypatch.setattr(run_record, "FINISH_RETRY_DELAYS", (0.0,))
    h.upsert(person("F-1"))
    with pytest.raises(DatabaseError):
        h.run()


def test_engine_tunables_from_the_environment() -> None:
    """``SYNCD_ENGINE_<NAME>`` overrides an engineering default (the chaos suite's seconds)."""
    from datetime import timedelta

    from syncd.errors import ConfigError
    from syncd.sync.options import EngineOptions

    options = EngineOptions().with_env(
        {"SYNCD_ENGINE_CREATE_GRACE": "4s", "SYNCD_ENGINE_BATCH_SIZE": "50", "OTHER": "x"}
    )
    assert options.create_grace == timedelta(seconds=4)
    assert options.batch_size == 50
    assert options.sync_lease_ttl == timedelta(seconds=20)  # untouched
    with pytest.raises(ConfigError) as err:
        EngineOptions().with_env(
            {"SYNCD_ENGINE_BATCH_SIZE": "many", "SYNCD_ENGINE_SYNC_LEASE_RENEW": "15s"}
        )
    text = str(err.value)
    assert "SYNCD_ENGINE_BATCH_SIZE: must be a positive integer (got 'many')" in text
    assert "SYNCD_ENGINE_SYNC_LEASE_RENEW must be at most half" in text
