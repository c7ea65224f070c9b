"""Faults: each reproducible from the seed, switchable at run time, counted in the stats."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from syncd.emulator import Emulator, EmulatorConfig, LostAcknowledgement, ManualClock
from tests.emulator.conftest import assert_error_body, fetch_token, person
from tests.support.emulator import asgi_transport, emulator_app, state_of

pytestmark = pytest.mark.anyio

API = "/api/v2/contacts"


async def statuses_under(seed: int, faults: dict[str, Any], requests: int = 60) -> list[int]:
    """The statuses a fresh emulator answers to ``requests`` listings under ``faults``."""
    app = emulator_app(EmulatorConfig(requests_per_minute=10_000, seed=seed), clock=ManualClock())
    state_of(app).set_faults(**faults)
    transport = asgi_transport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as client:
        client.headers["Authorization"] = f"Bearer {await fetch_token(client)}"
        return [(await client.get(API)).status_code for _ in range(requests)]


async def test_error_decisions_are_reproducible_from_the_seed() -> None:
    faults = {"error_rate": 0.3}
    first = await statuses_under(1, faults)
    assert first == await statuses_under(1, faults)
    assert first != await statuses_under(2, faults)
    assert {s for s in first if s != 200} == {500, 502, 503, 504}
    assert 5 < sum(s != 200 for s in first) < 35


async def test_other_knobs_do_not_shift_the_error_stream() -> None:
    plain = await statuses_under(5, {"error_rate": 0.3})
    assert plain == await statuses_under(5, {"error_rate": 0.3, "jitter_ms": 50})


async def test_reseeding_replays_the_same_decisions(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.set_faults(error_rate=0.5, seed=42)
    first = [(await client.get(API)).status_code for _ in range(30)]
    emulator.set_faults(seed=42)
    assert [(await client.get(API)).status_code for _ in range(30)] == first


async def test_injected_errors_are_counted_and_writes_are_not_applied(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.set_faults(error_rate=1, error_statuses=[500, 503])
    for _ in range(4):
        response = await client.post(API, json=person(1))
        assert_error_body(response, response.status_code)
        assert response.status_code in (500, 503)
        assert "X-Rate-Limit-Remaining" in response.headers
    stats = emulator.stats()
    assert stats["faults"]["error"] == 4
    assert stats["contacts"] == 0
    assert emulator.write_log() == []


async def test_gateway_errors_are_html_like_a_load_balancer(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.set_faults(error_rate=1, error_statuses=[502])
    response = await client.get(API)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text
    assert response.headers["ININ-Correlation-Id"]


async def test_write_errors_spare_reads(client: httpx.AsyncClient, emulator: Emulator) -> None:
    emulator.set_faults(write_error_rate=1, error_statuses=[504])
    assert (await client.get(API)).status_code == 200
    assert (await client.post(API, json=person(1))).status_code == 504
    assert (await client.delete(f"{API}/x")).status_code == 504
    assert emulator.stats()["faults"]["write_error"] == 2
    assert emulator.contacts() == []


async def test_latency_and_jitter_are_reproducible(
    client: httpx.AsyncClient, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.set_faults(latency_ms=100, jitter_ms=50, seed=9)
    for _ in range(5):
        await client.get(API)
    first = clock.slept[-5:]
    assert all(0.1 <= delay <= 0.15 for delay in first)
    assert len(set(first)) == 5
    emulator.set_faults(seed=9)
    for _ in range(5):
        await client.get(API)
    assert clock.slept[-5:] == first
    assert emulator.stats()["faults"]["latency"] == 10


async def test_configured_latency_applies_to_tokens_and_api(clock: ManualClock) -> None:
    app = emulator_app(EmulatorConfig(latency_ms=250), clock=clock)
    async with httpx.AsyncClient(transport=asgi_transport(app), base_url="http://e") as c:
        c.headers["Authorization"] = f"Bearer {await fetch_token(c)}"
        await c.get(API)
        await c.get("/__emulator/stats")  # introspection is never delayed
    assert clock.slept == [0.25, 0.25]


async def test_an_outage_answers_503_to_everything_but_introspection(
    client: httpx.AsyncClient, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.set_faults(outage_seconds=30)
    assert_error_body(await client.get(API), 503, "service.unavailable")
    token = await client.post("/oauth/token", auth=("a", "b"), data={"grant_type": "x"})
    assert token.status_code == 503
    assert (await client.get("/__emulator/stats")).status_code == 200
    assert emulator.fault_settings()["outage"] is True
    clock.advance(29.9)
    assert (await client.get(API)).status_code == 503
    clock.advance(0.1)
    assert (await client.get(API)).status_code == 200
    assert emulator.stats()["faults"]["outage"] == 3
    assert emulator.fault_settings()["outage"] is False


async def test_an_open_ended_outage_lasts_until_switched_off(
    client: httpx.AsyncClient, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.set_faults(outage=True)
    clock.advance(3600)
    assert (await client.get(API)).status_code == 503
    emulator.set_faults(outage=False)
    assert (await client.get(API)).status_code == 200


async def test_lost_acknowledgement_applies_the_write_and_gives_no_answer(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.set_faults(lost_ack_rate=1)
    assert (await client.get(API)).status_code == 200  # reads are never dropped
    with pytest.raises(httpx.RemoteProtocolError) as caught:
        await client.post(API, json=person(1))
    assert isinstance(caught.value, LostAcknowledgement)
    [contact] = emulator.contacts()
    assert contact["externalId"] == "crm-1"
    assert [w["op"] for w in emulator.write_log()] == ["create"]
    assert emulator.request_log()[-1]["status"] == 0
    with pytest.raises(httpx.RemoteProtocolError):
        await client.patch(f"{API}/{contact['id']}", json={"email": "a@b.io"})
    assert emulator.contacts()[0]["email"] == "a@b.io"
    stats = emulator.stats()
    assert stats["faults"]["lost_ack"] == 2
    assert stats["writes_applied"] == 2
    assert stats["requests_by_status"]["0"] == 2


async def test_rejected_writes_are_never_dropped(
    client: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.set_faults(lost_ack_rate=1)
    assert (await client.post(API, json={})).status_code == 400
    assert (await client.delete(f"{API}/missing")).status_code == 404
    assert emulator.stats()["faults"]["lost_ack"] == 0


async def test_lost_acknowledgements_are_reproducible(
    emulator: Emulator, client: httpx.AsyncClient
) -> None:
    async def dropped() -> list[bool]:
        outcome = []
        for n in range(20):
            try:
                await client.post(API, json=person(n))
                outcome.append(False)
            except httpx.RemoteProtocolError:
                outcome.append(True)
        return outcome

    emulator.set_faults(lost_ack_rate=0.5, seed=3)
    first = await dropped()
    emulator.set_faults(seed=3)
    assert await dropped() == first
    assert 0 < sum(first) < 20
    assert len(emulator.contacts()) == 40


async def test_search_lag_hides_new_changed_and_deleted_contacts_for_a_while(
    client: httpx.AsyncClient, emulator: Emulator, clock: ManualClock
) -> None:
    async def found(q: str) -> list[str]:
        return [
            c["id"] for c in (await client.get(f"{API}/search", params={"q": q})).json()["results"]
        ]

    emulator.set_faults(search_lag_ms=5000)
    created = (await client.post(API, json=person(1))).json()
    cid = created["id"]
    assert await found("crm-1") == []  # not indexed yet...
    assert (await client.get(f"{API}/{cid}")).status_code == 200  # ...but readable
    assert (await client.get(API)).json()["total"] == 1  # ...and listed
    clock.advance(4.999)
    assert await found("crm-1") == []
    clock.advance(0.001)
    assert await found("crm-1") == [cid]

    await client.patch(f"{API}/{cid}", json={"externalId": "crm-2"})
    stale = (await client.get(f"{API}/search", params={"q": "crm-1"})).json()["results"]
    assert [c["externalId"] for c in stale] == ["crm-1"]  # the indexed version
    clock.advance(5)
    assert (await found("crm-1"), await found("crm-2")) == ([], [cid])

    await client.delete(f"{API}/{cid}")
    assert await found("crm-2") == [cid]
    clock.advance(5)
    assert await found("crm-2") == []
    stats = emulator.stats()
    assert stats["faults"]["search_lag"] == 3
    assert stats["search_pending"] == 0


async def test_shortening_the_lag_never_lets_an_old_version_win(
    client: httpx.AsyncClient, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.set_faults(search_lag_ms=10_000)
    cid = (await client.post(API, json=person(1))).json()["id"]
    emulator.set_faults(search_lag_ms=0)
    await client.patch(f"{API}/{cid}", json={"externalId": "crm-9"})
    clock.advance(20)
    results = (await client.get(f"{API}/search", params={"q": "crm-9"})).json()["results"]
    assert [c["id"] for c in results] == [cid]
    assert (await client.get(f"{API}/search", params={"q": "crm-1"})).json()["total"] == 0


@pytest.mark.parametrize(
    "changes",
    [
        {"error_rate": 1.5},
        {"error_rate": -0.1},
        {"error_rate": True},
        {"latency_ms": "slow"},
        {"error_statuses": [404]},
        {"error_statuses": []},
        {"outage": "yes"},
        {"seed": 1.5},
        {"chaos": 1},
    ],
)
def test_invalid_fault_settings_are_refused_whole(
    emulator: Emulator, changes: dict[str, Any]
) -> None:
    before = emulator.fault_settings()
    with pytest.raises(ValueError, match=next(iter(changes))):
        emulator.set_faults(jitter_ms=5, **changes)
    assert emulator.fault_settings() == before


def test_reset_restores_the_configured_faults(emulator: Emulator) -> None:
    emulator.set_faults(error_rate=1, outage=True, search_lag_ms=10)
    emulator.reset()
    settings = emulator.fault_settings()
    assert (settings["error_rate"], settings["outage"], settings["search_lag_ms"]) == (0, False, 0)
    assert set(emulator.stats()["faults"].values()) == {0}
