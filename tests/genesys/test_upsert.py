"""The client's upsert (issue 13): ``POST /externalcontacts/contacts/enrich`` with action
``Upsert``, matched on syncd's ExternalId. Sent again, it updates the contact the first one
made instead of making a second; a lost answer is never re-sent by the client (it stays
unknown, like a create's). In-process emulator, real client, over the HTTP wire.
"""

from __future__ import annotations

from typing import Any

import pytest

from syncd.errors import OutcomeUnknownError
from syncd.model import Contact, Organization
from tests.genesys.fakes import API, LOGIN, FakeServer, answer
from tests.genesys.test_externalcontacts import ec_rig, ec_settings, hand_edit

pytestmark = pytest.mark.anyio

ADA = Contact("crm-1", "Ada", "Lovelace", "ada@example.com", organization=Organization("org-1"))
ENRICH = "POST /api/v2/externalcontacts/contacts/enrich"


def _ours(rig: Any) -> list[dict[str, Any]]:
    return [c for c in rig.emulator.contacts() if c.get("externalIds")]


async def test_an_upsert_makes_the_contact_then_updates_it() -> None:
    async with ec_rig() as rig:
        assert rig.client.upserts is True
        made = await rig.client.upsert(ADA)
        assert made.status == 201
        assert made.remote is not None
        assert made.remote.contact == ADA
        again = await rig.client.upsert(Contact("crm-1", "Ada", "King", "ada@example.com"))
        assert (again.status, again.genesys_id) == (200, made.genesys_id)
        [stored] = _ours(rig)
        assert stored["lastName"] == "King"
        assert [f"{e['method']} {e['route']}" for e in rig.api_log("POST")][-2:] == [ENRICH] * 2


async def test_an_upsert_keeps_what_it_is_not_given() -> None:
    async with ec_rig() as rig:
        made = await rig.client.upsert(ADA)
        await hand_edit(
            rig, made.genesys_id, {"field": "$.title", "value": "Countess", "action": "Update"}
        )
        await rig.client.upsert(Contact("crm-1", "Ada", "Lovelace"))  # no email given
        [stored] = _ours(rig)
        assert stored["title"] == "Countess"  # a field syncd does not manage
        assert stored["workEmail"] == "ada@example.com"  # PreferProvided: kept, not cleared


async def test_a_lost_answer_is_unknown_and_the_upsert_sent_again_makes_no_second() -> None:
    async with ec_rig() as rig:
        rig.emulator.set_faults(lost_ack_rate=1.0)
        with pytest.raises(OutcomeUnknownError):
            await rig.client.upsert(ADA)
        rig.emulator.set_faults(lost_ack_rate=0.0)
        assert len([e for e in rig.api_log("POST") if e["route"].endswith("/enrich")]) == 1
        settled = await rig.client.upsert(ADA)
        assert settled.status == 200  # it found the contact the lost one made
        assert [c["id"] for c in _ours(rig)] == [settled.genesys_id]


async def test_the_reference_profile_has_no_upsert(fake_time: Any) -> None:
    from syncd.genesys.client import GenesysClient
    from syncd.genesys.retry import RetryPolicy

    server = FakeServer(fake_time)
    server.default = answer(200, {})
    settings = ec_settings(API, LOGIN).model_copy(update={"profile": "reference"})
    client = GenesysClient.from_settings(
        settings, transport=server.transport(), retry=RetryPolicy.testing()
    )
    async with client:
        assert client.upserts is False
        with pytest.raises(ValueError, match="the reference profile has no upsert"):
            await client.upsert(ADA)
    assert server.api_requests("POST") == []
