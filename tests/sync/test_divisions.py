"""``[genesys] division_id``: creates go there, scans stay there, nothing is moved (issue 13).

A contact's division is fixed at creation in Genesys. With a division configured, syncd
creates contacts in it and scans only it, so contacts of other divisions are nobody's
orphans; a contact of another division that claims one of syncd's externalIds is linked
where it lives (the ledger says so), never moved and never duplicated. In-process emulator
in the externalcontacts profile, real client.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from syncd.config import parse_settings
from syncd.errors import ConfigError
from syncd.store.db import Database
from tests.sync.conftest import FAST_OPTIONS, Harness, creates, make_app, person

SALES = "5a1e5000-0000-4000-8000-000000000001"


def _harness(db: Database) -> Harness:
    h = Harness(db, make_app("externalcontacts"), options=replace(FAST_OPTIONS, batch_size=50))
    h.em.profile.divisions.add({"id": SALES, "name": "Sales"})
    h.client_overrides = {"division_id": SALES}
    return h


def _division(h: Harness, gid: str) -> str:
    [doc] = [c for c in h.raw_remote() if c["id"] == gid]
    return str(doc["division"]["id"])


def _made_in(h: Harness, division: dict[str, Any], **content: Any) -> str:
    with h.em.lock:
        doc, _ = h.em.profile.writer.create(
            {"firstName": "Hand", "lastName": "Made", **content, "division": division}
        )
    return str(doc["id"])


def test_creates_go_to_the_configured_division_and_scans_stay_in_it(db: Database) -> None:
    h = _harness(db)
    h.upsert(person("S-1"), person("S-2"))
    assert h.run().status == "succeeded"
    for ext in ("S-1", "S-2"):
        assert _division(h, h.links()[ext]["genesys_id"]) == SALES
    home_walk_in = _made_in(h, h.em.profile.divisions.home)
    sales_walk_in = _made_in(h, h.em.profile.divisions.get(SALES))
    assert h.run("full").status == "succeeded"
    # The scan saw Sales only: the home division's walk-in is not reported.
    assert [r["genesys_id"] for r in h.ledger(op="orphan")] == [sales_walk_in]
    assert home_walk_in in h.remote_by_id()  # another division's contact: left alone


def test_a_contact_in_another_division_is_linked_where_it_lives(db: Database) -> None:
    h = _harness(db)
    home = h.em.profile.divisions.home
    h.upsert(person("S-3"))
    h.run()  # the first write creates syncd's external source
    # Someone made S-4's contact by hand in the home division, with syncd's ExternalId.
    source = h.em.profile.sources.all()[0]
    theirs = _made_in(
        h, home, externalIds=[{"externalSource": {"id": source["id"]}, "value": "S-4"}]
    )
    h.upsert(person("S-4"))
    assert h.run("full").status == "succeeded"  # the lookup finds it outside the scan
    assert h.links()["S-4"]["genesys_id"] == theirs
    [row] = h.ledger(external_id="S-4", op="adopt")
    assert f"lives in division {home['id']}" in row["error"]
    for kind in ("full", "incremental", "targeted", "full"):  # outside the scan, never re-created
        assert h.run(kind, external_ids=("S-4",) if kind == "targeted" else ()).status == (
            "succeeded"
        )
    assert [w["id"] for w in creates(h, "S-4")] == [theirs]  # the hand-made one only
    assert _division(h, theirs) == home["id"]
    assert h.ledger(external_id="S-4", op="recreate") == []


@pytest.mark.parametrize("bad", ["", " x", "a/b"])
def test_a_malformed_division_id_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="division_id"):
        parse_settings({"genesys": {"client_id": "x", "division_id": bad}}, require_secret=False)


def test_an_incremental_run_looks_a_new_row_up_before_creating_it(db: Database) -> None:
    h = _harness(db)
    h.upsert(person("S-5"))
    h.run()
    source = h.em.profile.sources.all()[0]
    ref = [{"externalSource": {"id": source["id"]}, "value": "S-6"}]
    theirs = _made_in(h, h.em.profile.divisions.home, externalIds=ref)
    h.upsert(person("S-6"))
    start = len(h.em.request_log())
    assert h.run().status == "succeeded"
    assert h.calls(start).count(h.route("lookup")) == 1  # one keyed lookup for the new row
    assert h.links()["S-6"]["genesys_id"] == theirs
    assert [w["id"] for w in creates(h, "S-6")] == [theirs]
