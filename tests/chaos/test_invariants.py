"""The chaos checks themselves, on hand-made observations (they run in the default suite):
a check that cannot fail proves nothing, and one that fails on a correct run hides bugs."""

from __future__ import annotations

from typing import Any

from tests.chaos.invariants import Observed, ledger_matches_writes

GID = "c-1"


def _observed(writes: list[dict[str, Any]], requests: list[dict[str, Any]], ok: int) -> Observed:
    rows = [
        {"op": "update", "outcome": "ok", "genesys_id": GID, "at": "2026-01-01T00:00:00Z"}
        for _ in range(ok)
    ]
    return Observed({}, 0, {}, rows, 0, [], writes, requests, profile="externalcontacts")


def _bulk_update(request: str, status: int) -> tuple[dict[str, Any], dict[str, Any]]:
    write = {"op": "replace", "id": GID, "at": "2026-01-01T00:00:01Z", "request": request}
    sent = {
        "method": "POST",
        "route": "/api/v2/externalcontacts/bulk/contacts/update",
        "path": "/api/v2/externalcontacts/bulk/contacts/update",
        "status": status,
        "request": request,
    }
    return write, sent


def test_a_bulk_update_re_sent_after_its_answer_was_dropped_is_one_intent() -> None:
    """Seed 1087457689 failed here: the check counted dropped answers per URL path, and a
    bulk update's path names no contact."""
    lost_write, lost = _bulk_update("r-1", 0)
    again_write, again = _bulk_update("r-2", 200)
    assert ledger_matches_writes(_observed([lost_write, again_write], [lost, again], ok=1)) == []


def test_an_update_applied_twice_for_one_answered_intent_is_reported() -> None:
    first_write, first = _bulk_update("r-1", 200)
    second_write, second = _bulk_update("r-2", 200)
    [problem] = ledger_matches_writes(_observed([first_write, second_write], [first, second], ok=1))
    assert problem == f"update of {GID}: 2 applied, 1 ok ledger rows, 0 applied without an answer"
