"""Create, update, delete through the real client and emulator; the change log is consumed."""

from __future__ import annotations

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
