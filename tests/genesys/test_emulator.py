"""The client against the emulator: in-process (virtual time) and over a real socket."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

import anyio
import httpx
import pytest

from syncd.emulator import Emulator, EmulatorConfig
from syncd.errors import ApiAuthError, ApiNotFoundError, ApiUnavailableError, OutcomeUnknownError
from syncd.model import Contact, Organization, Phone
from tests.genesys.emu import Hook, Rig, in_process, over_socket

pytestmark = pytest.mark.anyio

ADA = Contact(
    external_id="crm-1",
    first_name="Ada",
    last_name="Lovelace",
    email="ada@example.com",
    phone_numbers=(Phone("+15551234567", "MOBILE"),),
    organization=Organization("org-1", "Analytical Engines"),
)

RigFactory = Callable[..., AbstractAsyncContextManager[Rig]]


@pytest.fixture(params=["asgi", "socket"])
def rig_factory(request: pytest.FixtureRequest) -> RigFactory:
    return in_process if request.param == "asgi" else over_socket


def heal_after_first_drop(inner: httpx.AsyncBaseTransport, em: Emulator) -> Hook:
    """The network loses one acknowledgement, then behaves."""

    def heal(_request: httpx.Request, _error: Exception) -> None:
        em.set_faults(lost_ack_rate=0.0)

    return Hook(inner, on_error=heal)


async def test_crud_and_search_round_trip(rig_factory: RigFactory) -> None:
    async with rig_factory() as rig:
        client = rig.client
        created = await client.create(ADA)
        assert created.status == 201
        assert created.remote is not None
        assert created.remote.contact == ADA
        gid = created.genesys_id

        assert (await client.get(gid)).contact == ADA
        assert [rc.genesys_id for rc in await client.find_by_external_id("crm-1")] == [gid]
        assert await client.find_by_external_id("crm-10") == []

        moved = Contact("crm-1", "Ada", "King", "ada@example.org", ADA.phone_numbers)
        patched = await client.patch(gid, {"last_name": 1, "email": 1}, contact=moved)
        assert patched.remote is not None
        assert patched.remote.contact.last_name == "King"
        assert patched.remote.contact.organization == ADA.organization  # untouched by PATCH

        replaced = await client.replace(gid, moved)
        assert replaced.remote is not None
        assert replaced.remote.contact == moved

        page = await client.list_page(page_size=10)
        assert [rc.genesys_id for rc in page.contacts] == [gid]
        assert page.next_token is None

        assert (await client.delete(gid)).status == 204
        assert (await client.delete(gid)).status == 404
        with pytest.raises(ApiNotFoundError):
            await client.get(gid)
        assert rig.token_requests() == 1


async def test_iter_all_over_many_pages() -> None:
    async with in_process(rpm=60_000) as rig:
        rig.emulator.seed_contacts(
            [{"firstName": f"F{i}", "lastName": "L", "externalId": f"e-{i}"} for i in range(230)]
        )
        seen = [rc.contact.external_id async for rc in rig.client.iter_all(page_size=50)]
    assert sorted(seen) == sorted(f"e-{i}" for i in range(230))
    assert len(rig.api_log("GET")) == 5  # 50+50+50+50+30: the short page ends it


async def test_lost_ack_on_create_is_outcome_unknown_with_one_post(rig_factory: RigFactory) -> None:
    async with rig_factory() as rig:
        rig.emulator.set_faults(lost_ack_rate=1.0)
        with pytest.raises(OutcomeUnknownError) as info:
            await rig.client.create(ADA)
        assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)
        assert len(rig.api_log("POST")) == 1  # never re-sent
        assert [w["op"] for w in rig.emulator.write_log()] == ["create"]  # it was applied
        rig.emulator.set_faults(lost_ack_rate=0.0)
        found = await rig.client.find_by_external_id("crm-1")  # how the engine resolves it
        assert len(found) == 1
        assert len(rig.emulator.contacts()) == 1
        assert rig.client.metrics.outcome_unknown == 1


@pytest.mark.parametrize("op", ["patch", "replace", "delete"])
async def test_lost_ack_on_idempotent_write_is_retried(rig_factory: RigFactory, op: str) -> None:
    async with rig_factory(wrap=heal_after_first_drop) as rig:
        gid = (await rig.client.create(ADA)).genesys_id
        rig.emulator.set_faults(lost_ack_rate=1.0)
        changed = Contact("crm-1", "Ada", "King")
        if op == "patch":
            result = await rig.client.patch(gid, {"last_name": 1}, contact=changed)
        elif op == "replace":
            result = await rig.client.replace(gid, changed)
        else:
            result = await rig.client.delete(gid)
        method = {"patch": "PATCH", "replace": "PUT", "delete": "DELETE"}[op]
        sent = rig.api_log(method)
        assert next(e["status"] for e in sent) == 0  # the dropped one
        assert len(sent) == 2
        if op == "delete":
            assert result.status == 404  # the retry found it already gone
            assert rig.emulator.contacts() == []
        else:
            assert result.status == 200
            assert rig.emulator.contacts()[0]["lastName"] == "King"


async def test_token_expiry_mid_run_is_renewed_ahead() -> None:
    async with in_process(EmulatorConfig(token_expires_in=300), rpm=60_000) as rig:
        for i in range(10):
            await rig.client.create(Contact(f"e-{i}", "A", "B"))
            assert rig.clock is not None
            rig.clock.advance(100)
        assert not any(e["status"] == 401 for e in rig.api_log())
        assert rig.token_requests() >= 3
        assert rig.client.metrics.token_renewals == 0


async def test_token_expiry_mid_run_is_invisible_even_when_the_client_misses_it() -> None:
    # The client's clock runs at half speed, so it renews too late: the 401 path must cope.
    config = EmulatorConfig(token_expires_in=300)
    async with in_process(config, rpm=60_000, shared_clock=False) as rig:
        assert rig.clock is not None
        assert rig.client_clock is not None
        results = []
        for i in range(40):
            results.append(await rig.client.create(Contact(f"e-{i}", "A", "B")))
            rig.clock.advance(20)
            rig.client_clock.advance(10)
        assert all(r.status == 201 for r in results)
        statuses = [e["status"] for e in rig.api_log()]
        assert statuses.count(401) == 2
        assert statuses.count(201) == 40
        assert rig.client.metrics.token_renewals == 2
        assert len(rig.emulator.contacts()) == 40  # a 401 on POST is safely re-sent


async def test_revocation_mid_run_is_invisible(rig_factory: RigFactory) -> None:
    async with rig_factory() as rig:

        async def create(i: int) -> None:
            await rig.client.create(Contact(f"e-{i}", "A", "B"))

        await create(0)
        rig.emulator.revoke_tokens()
        async with anyio.create_task_group() as tg:
            for i in range(1, 9):
                tg.start_soon(create, i)
        assert len(rig.emulator.contacts()) == 9
        assert rig.token_requests() == 2  # the concurrent 401s shared one renewal


def revoke_every_token(inner: httpx.AsyncBaseTransport, em: Emulator) -> Hook:
    """The OAuth client lost its grants: every token is dead on arrival."""

    def after(request: httpx.Request, _response: httpx.Response) -> None:
        if request.url.path == "/oauth/token":
            em.revoke_tokens()

    return Hook(inner, after=after)


async def test_revoked_client_fails_clearly_without_a_storm(rig_factory: RigFactory) -> None:
    async with rig_factory(wrap=revoke_every_token) as rig:
        errors: list[BaseException] = []

        async def get() -> None:
            try:
                await rig.client.get("any-id")
            except ApiAuthError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(get)
        await get()  # a later call fails at once too
        assert len(errors) == 9
        assert all(e.status == 401 for e in errors)  # type: ignore[attr-defined]
        assert rig.token_requests() == 2  # the first token and one renewal
        assert len(rig.api_log()) <= 17  # each call at most one retry


async def test_wrong_secret_is_a_clear_auth_error() -> None:
    async with in_process(EmulatorConfig(client_secret="another-secret")) as rig:
        with pytest.raises(ApiAuthError, match=r"syncd-emulator.*client_secret"):
            await rig.client.get("x")
        assert rig.token_requests() == 1
        assert rig.api_log() == []


async def test_outage_costs_a_bounded_number_of_requests_and_recovers() -> None:
    async with in_process(rpm=600) as rig:
        assert rig.clock is not None
        clock = rig.clock
        await rig.client.create(Contact("warm-up", "A", "B"))  # token fetched before the outage
        rig.emulator.set_faults(outage_seconds=120)
        end = clock.monotonic() + 120
        outcomes: dict[str, int] = {"ok": 0, "unavailable": 0, "ok_after": 0}

        async def worker(n: int) -> None:
            i = 0
            while clock.monotonic() < end + 30:
                i += 1
                try:
                    await rig.client.find_by_external_id(f"w{n}-{i}")
                except ApiUnavailableError:
                    outcomes["unavailable"] += 1
                else:
                    outcomes["ok"] += 1
                    outcomes["ok_after"] += clock.monotonic() >= end

        async with anyio.create_task_group() as tg:
            for n in range(4):
                tg.start_soon(worker, n)
        during = [e for e in rig.api_log() if e["status"] == 503]
        assert 3 <= len(during) <= 15, len(during)
        assert outcomes["ok_after"] > 0
        assert not rig.client.throttle.breaker_open


async def test_server_limit_lower_than_configured_virtual_time() -> None:
    """600/min configured against 300/min: sequential, in virtual time, so deterministic."""
    async with in_process(EmulatorConfig(requests_per_minute=300), rpm=600) as rig:
        assert rig.clock is not None
        start = rig.clock.monotonic()
        while rig.clock.monotonic() - start < 180:
            await rig.client.find_by_external_id("x")
        statuses = [e["status"] for e in rig.api_log()]
        assert statuses.count(429) <= 0.02 * len(statuses)
        per_minute = statuses.count(200) / 3
        assert per_minute >= 0.9 * 300, per_minute


async def test_no_429_at_the_configured_limit_virtual_time() -> None:
    async with in_process(EmulatorConfig(requests_per_minute=600), rpm=600) as rig:
        assert rig.clock is not None
        for i in range(700):  # more than one window's worth
            await rig.client.create(Contact(f"e-{i}", "A", "B"))
        statuses = [e["status"] for e in rig.api_log()]
        assert statuses.count(429) == 0
        assert statuses.count(201) == 700
