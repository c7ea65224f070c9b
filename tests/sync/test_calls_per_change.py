"""The calls each kind of change costs in the externalcontacts profile, single and bulk
(issue 13: "calls per change stay at the minimum"). The table in docs/externalcontacts.md
("Calls per change") is this test's expectations, written out.

Each run's client looks syncd's external source up once, before its first call (one GET,
left out below; a run with nothing to do makes no call at all).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest

from syncd.store.db import Database
from tests.sync.conftest import (
    FAST_OPTIONS,
    ROUTES,
    Harness,
    make_app,
    person,
    single_calls,
)

N = 12  # contacts per change (batch_size 50: one bulk request per kind)


def _run(h: Harness, kind: str = "incremental") -> Counter[str]:
    """The calls of one run, by ROUTES name (the source lookup left out)."""
    start = len(h.em.request_log())
    report = h.run(kind)
    assert report.status == "succeeded", report.error
    names = {route: name for name, route in _routes(h).items()}
    calls = Counter(names.get(call, f"{call}") for call in h.calls(start))
    assert calls.pop("sources", 1) == 1  # once, before the run's first call (if it makes one)
    return calls


def _routes(h: Harness) -> dict[str, tuple[str, str]]:
    return ROUTES[h.profile]


def _members(org: str | None, name: str | None, **extra: object) -> list[dict[str, object]]:
    return [
        person(f"C-{n:02}", organization_id=org, organization_name=name, **extra) for n in range(N)
    ]


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_calls_per_change(db: Database, bulk: bool) -> None:
    h = Harness(db, make_app("externalcontacts"), options=replace(FAST_OPTIONS, batch_size=50))
    if not bulk:
        h.wrap = single_calls
    h.upsert(person("X-0"))
    h.run()  # creates the external source

    # N creates naming one new organization: the record once, then the contacts.
    h.upsert(*_members("ORG-1", "One"))
    expected = {"org_lookup": 1, "org_create": 1}
    assert _run(h) == Counter({**expected, **({"bulk_add": 1} if bulk else {"create": N})})

    # Nothing changed: no call at all.
    assert _run(h) == Counter()

    # A name changes on every contact: one PATCH each, or a bulk read + a bulk update.
    h.upsert(*_members("ORG-1", "One", first_name="Grace"))
    one_each = Counter({"patch": N})
    assert _run(h) == (Counter({"bulk_read": 1, "bulk_update": 1}) if bulk else one_each)

    # A phone changes: the contact is read first, so that only that slot is written.
    phones = [{"number": "+1 415 555 0199", "type": "WORK"}]
    h.upsert(*_members("ORG-1", "One", first_name="Grace", phone_numbers=phones))
    read_then_patch = Counter({"get": N, "patch": N})
    assert _run(h) == (Counter({"bulk_read": 1, "bulk_update": 1}) if bulk else read_then_patch)

    # The organization is renamed in the CRM: one read and one PUT of the record, no contact.
    h.upsert(*_members("ORG-1", "One Ltd", first_name="Grace", phone_numbers=phones))
    assert _run(h) == Counter({"org_get": 1, "org_put": 1})

    # The contacts move to a new organization: its record is made once, each contact PATCHed.
    h.upsert(*_members("ORG-2", "Two", first_name="Grace", phone_numbers=phones))
    moved = Counter({"bulk_read": 1, "bulk_update": 1}) if bulk else Counter({"patch": N})
    assert _run(h) == Counter({"org_lookup": 1, "org_create": 1, **moved})

    # A full reconcile of an unchanged mirror: the listing only.
    assert _run(h, "full") == Counter({"list": 1})

    # Every row tombstoned (the guard allows it here): one DELETE each, or one bulk remove.
    h.tombstone(*(f"C-{n:02}" for n in range(N)))
    assert _run(h) == (Counter({"bulk_remove": 1}) if bulk else Counter({"delete": N}))
