"""The externalcontacts client profile: mapping, external source, scan, search, PATCH bodies.

Also home of the helpers the other externalcontacts/bulk client tests use (``ec_rig``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import httpx
import pytest
from pydantic import SecretStr

from syncd.config import GenesysSettings
from syncd.emulator import EmulatorConfig, ManualClock
from syncd.emulator.profiles.externalcontacts_organizations import build_organization
from syncd.errors import ApiValidationError
from syncd.genesys.client import GenesysClient
from syncd.genesys.profiles.externalcontacts import ExternalContactsProfile, FieldMapping
from syncd.genesys.retry import RetryPolicy
from syncd.model import Contact, Organization, Phone
from tests.genesys.emu import Rig
from tests.support.emulator import (
    ASGI_BASE_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    asgi_transport,
    emulator_app,
    state_of,
)

pytestmark = pytest.mark.anyio

EC = "/api/v2/externalcontacts"
ADA = Contact(
    external_id="crm-1",
    first_name="Ada",
    last_name="Lovelace",
    email="ada@example.com",
    phone_numbers=(
        Phone("+15551230001", "WORK"),
        Phone("+15551230002", "MOBILE"),
        Phone("+4930123456", "HOME"),
        Phone("+15551230004", "OTHER"),
    ),
    organization=Organization("org-1"),  # as the engine sends it: a reference to a record
)
ORG_RECORD = "org-record-1"  # the Genesys id of org-1's record, seeded by ec_rig


def ec_settings(api_url: str, login_url: str, **overrides: Any) -> GenesysSettings:
    values: dict[str, Any] = {
        "profile": "externalcontacts",
        "client_id": CLIENT_ID,
        "client_secret": SecretStr(CLIENT_SECRET),
        "api_url": api_url,
        "login_url": login_url,
        "requests_per_minute": 60_000,
        "connect_timeout": "2s",
        "read_timeout": "5s",
        **overrides,
    }
    return GenesysSettings(**values)


@asynccontextmanager
async def ec_rig(
    config: EmulatorConfig | None = None,
    *,
    retry: RetryPolicy | None = None,
    app: Any = None,
    **overrides: Any,
) -> AsyncIterator[Rig]:
    """The externalcontacts emulator in-process, and a client sharing its ManualClock."""
    clock = ManualClock()
    if app is None:
        app = emulator_app(
            config or EmulatorConfig(profile="externalcontacts", requests_per_minute=60_000),
            clock=clock,
        )
    else:
        clock = cast(ManualClock, state_of(app).clock)
    em = state_of(app)
    if em.profile.organizations.get(ORG_RECORD) is None:  # a second rig on one app
        now = em.now_iso()
        content = {"name": "Analytical Engines", "division": em.profile.divisions.home}
        record = build_organization(ORG_RECORD, content, created=now, modified=now)
        em.profile.organizations.load([record])
    client = GenesysClient.from_settings(
        ec_settings(ASGI_BASE_URL + "/api/v2", ASGI_BASE_URL, **overrides),
        transport=asgi_transport(app),
        clock=clock.monotonic,
        sleep=clock.sleep,
        retry=retry or RetryPolicy.testing(),
    )
    assert client.organizations is not None
    client.organizations.directory.bind("org-1", ORG_RECORD)
    async with client:
        yield Rig(client, em, clock, clock)


def routes(rig: Rig, method: str | None = None) -> list[str]:
    return [f"{e['method']} {e['route'].removeprefix(EC)}" for e in rig.api_log(method)]


# -- mapping -----------------------------------------------------------------------------------


async def test_create_get_round_trip_with_the_default_slots() -> None:
    async with ec_rig() as rig:
        created = await rig.client.create(ADA)
        assert created.remote is not None
        assert created.remote.contact == ADA
        raw = rig.emulator.get(created.genesys_id)
        assert raw is not None
        assert raw["workEmail"] == "ada@example.com"
        assert raw["workPhone"]["e164"] == "+15551230001"
        assert raw["cellPhone"]["e164"] == "+15551230002"
        assert raw["homePhone"]["countryCode"] == "DE"
        assert raw["otherPhone"]["display"] == "+1 555-123-0004"
        assert raw["externalOrganization"]["id"] == ORG_RECORD  # the record, by its id
        assert (await rig.client.get(created.genesys_id)).contact == ADA


async def test_configurable_slots_round_trip() -> None:
    slots = {"HOME": "otherPhone", "OTHER": "homePhone", "WORK": "cellPhone", "MOBILE": "workPhone"}
    async with ec_rig(email_slot="personalEmail", phone_slots=slots) as rig:
        created = await rig.client.create(ADA)
        raw = rig.emulator.get(created.genesys_id)
        assert raw is not None
        assert raw["personalEmail"] == "ada@example.com"
        assert "workEmail" not in raw
        assert raw["workPhone"]["e164"] == "+15551230002"  # MOBILE
        assert raw["otherPhone"]["e164"] == "+4930123456"  # HOME
        assert (await rig.client.get(created.genesys_id)).contact == ADA


def test_the_phone_slot_table_must_be_one_to_one() -> None:
    with pytest.raises(ValueError, match="each slot"):
        ec_settings(
            "https://a.example/api/v2", "https://l.example", phone_slots={"HOME": "workPhone"}
        )
    with pytest.raises(ValueError, match="not a phone slot"):
        ec_settings("https://a.example/api/v2", "https://l.example", phone_slots={"HOME": "fax"})
    merged = ec_settings(
        "https://a.example/api/v2",
        "https://l.example",
        phone_slots={"home": "otherPhone", "OTHER": "homePhone"},
    ).phone_slots
    assert merged == {
        "WORK": "workPhone",
        "MOBILE": "cellPhone",
        "HOME": "otherPhone",
        "OTHER": "homePhone",
    }


async def test_two_phones_for_one_slot_cannot_be_represented_and_nothing_is_sent() -> None:
    twice = Contact(
        "crm-2", "A", "B", phone_numbers=(Phone("+15550001", "WORK"), Phone("+15550002", "WORK"))
    )
    async with ec_rig() as rig:
        assert rig.client.representation_problem(ADA) is None
        problem = rig.client.representation_problem(twice)
        assert problem is not None
        assert "two WORK phone numbers" in problem
        with pytest.raises(ApiValidationError, match="cannot be represented"):
            await rig.client.create(twice)
        with pytest.raises(ApiValidationError, match="cannot be represented"):
            await rig.client.patch("any-id", {"phone_numbers": 1}, contact=twice)
        assert routes(rig, "POST") == ["POST /externalsources"]  # the source, no contact
        assert rig.emulator.contacts() == []


def test_unrepresentable_types_have_no_slot() -> None:
    profile = ExternalContactsProfile(FieldMapping())
    problem = profile.representation_problem(Contact("x", phone_numbers=(Phone("1", "FAX"),)))
    assert problem is not None
    assert "FAX" in problem


# -- the external source -----------------------------------------------------------------------


async def test_the_source_is_created_once_then_found_by_name() -> None:
    config = EmulatorConfig(profile="externalcontacts", requests_per_minute=60_000)
    app = emulator_app(config, clock=ManualClock())
    async with ec_rig(app=app) as rig:
        async with anyio.create_task_group() as tg:
            for n in range(5):
                tg.start_soon(rig.client.find_by_external_id, f"crm-{n}")
        await rig.client.create(ADA)
        assert routes(rig).count("POST /externalsources") == 1
        assert routes(rig).count("GET /externalsources") == 1
        source_id = rig.emulator.profile.sources.all()[0]["id"]
    async with ec_rig(app=app) as second:  # a new process: found, not created again
        found = await second.client.find_by_external_id("crm-1")
        assert [rc.contact for rc in found] == [ADA]
        assert routes(second).count("POST /externalsources") == 1  # still the first one's
        assert rig.emulator.profile.sources.all()[0]["id"] == source_id


async def test_the_source_name_is_configurable_and_matched_exactly() -> None:
    async with ec_rig(external_source="crm") as rig:
        rig.emulator.profile.sources.register({"id": "s-1", "name": "crm-archive"})
        await rig.client.create(ADA)
        names = sorted(s["name"] for s in rig.emulator.profile.sources.all())
        assert names == ["crm", "crm-archive"]  # the prefix match was not taken for ours


async def test_a_create_race_on_the_source_ends_with_the_winner(fake_time: Any) -> None:
    from tests.genesys.fakes import API, LOGIN, FakeServer, answer

    server = FakeServer(fake_time)
    source = {"id": "won", "name": "syncd", "active": True}
    server.script = [
        answer(200, {"entities": []}),  # lookup: nothing yet
        answer(409, {"message": "an external source named 'syncd' already exists"}),
        answer(200, {"entities": [source]}),  # lookup again: the winner's
        answer(200, {"entities": [], "selfUri": "x"}),  # the scan
    ]
    client = GenesysClient.from_settings(
        ec_settings(API, LOGIN), transport=server.transport(), retry=RetryPolicy.testing()
    )
    async with client:
        page = await client.list_page()
    assert page.contacts == []
    assert [(s.method, s.path) for s in server.seen] == [
        ("GET", "/api/v2/externalcontacts/externalsources"),
        ("POST", "/api/v2/externalcontacts/externalsources"),
        ("GET", "/api/v2/externalcontacts/externalsources"),
        ("GET", "/api/v2/externalcontacts/scan/contacts"),
    ]
    assert server.seen[0].params == {"name": "syncd", "limit": "200"}


# -- listing and search ------------------------------------------------------------------------


async def test_the_full_listing_goes_through_scan_with_cursors() -> None:
    async with ec_rig() as rig:
        await rig.client.find_by_external_id("warm-up")  # source set up
        stamps = [f"2026-01-01T00:{n // 60:02d}:{n % 60:02d}Z" for n in range(250)]
        stored = rig.emulator.seed_contacts(
            [{"firstName": f"F{n}", "createDate": stamp} for n, stamp in enumerate(stamps)]
        )
        before = len(rig.api_log())
        seen = [rc.genesys_id async for rc in rig.client.iter_all(page_size=100)]
        assert seen == [c["id"] for c in stored]
        assert [e["route"] for e in rig.api_log()[before:]] == [f"{EC}/scan/contacts"] * 3
        page = await rig.client.list_page(page_size=1000)
        assert len(page.contacts) == 200  # clamped to the scan maximum
        assert page.next_token is not None
        assert page.total is None
        rest = await rig.client.list_page(page.next_token, page_size=1000)
        assert (len(rest.contacts), rest.next_token) == (50, None)
        small = await rig.client.list_page(page_size=1)
        assert len(small.contacts) == 10  # the scan minimum


async def test_find_by_external_id_keeps_only_our_source() -> None:
    async with ec_rig() as rig:
        mine = await rig.client.create(ADA)
        rig.emulator.seed_contacts(
            [
                {
                    "firstName": "Other",
                    "externalIds": [
                        {"externalSource": {"id": "erp", "name": "erp"}, "value": "crm-1"}
                    ],
                },
                {"firstName": "crm-1 in a name"},
            ]
        )
        found = await rig.client.find_by_external_id("crm-1")
        assert [rc.genesys_id for rc in found] == [mine.genesys_id]
        # the keyed identifier lookup, never search (which lags and matches keywords)
        assert routes(rig)[-1] == "POST /identifierlookup/contacts"
        assert await rig.client.find_by_external_id("crm-2") == []  # its 404: none claims it
        assert "GET /contacts" not in routes(rig)


async def test_a_contact_without_our_external_id_lists_with_an_empty_one() -> None:
    async with ec_rig() as rig:
        await rig.client.find_by_external_id("warm-up")
        rig.emulator.seed_contacts([{"firstName": "Hand", "lastName": "Made"}])
        (remote,) = [rc async for rc in rig.client.iter_all()]
        assert remote.contact.external_id == ""
        assert remote.contact.first_name == "Hand"


# -- writes ------------------------------------------------------------------------------------


async def test_patch_sends_field_paths_and_remove_for_cleared_fields(fake_time: Any) -> None:
    from tests.genesys.fakes import API, LOGIN, FakeServer, answer

    server = FakeServer(fake_time)
    source = {"entities": [{"id": "src", "name": "syncd"}]}
    ours = {"externalSource": {"id": "src"}, "value": "crm-1"}
    contact = {"id": "c-1", "firstName": "Ada", "externalIds": [ours]}
    server.script = [answer(200, source)]
    server.default = answer(200, contact)
    client = GenesysClient.from_settings(
        ec_settings(API, LOGIN), transport=server.transport(), retry=RetryPolicy.testing()
    )
    new = Contact("crm-1", "Ada", None, None, (), Organization("org-1"))
    assert client.organizations is not None
    client.organizations.directory.bind("org-1", "g-org")
    async with client:
        result = await client.patch(
            "c-1", {"first_name": 1, "last_name": 1, "email": 1, "organization": 1}, contact=new
        )
    assert result.remote is not None
    assert result.remote.contact.external_id == "crm-1"
    (sent,) = server.api_requests("PATCH")
    assert sent.path == "/api/v2/externalcontacts/contacts/c-1"
    assert sent.body == {
        "changes": [
            {"field": "$.firstName", "value": "Ada", "action": "Update"},
            {"field": "$.lastName", "action": "Remove"},
            {"field": "$.workEmail", "action": "Remove"},
            {"field": "$.externalOrganization", "value": {"id": "g-org"}, "action": "Update"},
        ]
    }
    assert not server.api_requests("GET")[1:]  # no read needed without phones
    assert not server.api_requests("PUT")


async def test_phone_changes_read_first_and_touch_only_changed_slots() -> None:
    async with ec_rig() as rig:
        created = await rig.client.create(ADA)
        gid = created.genesys_id
        # Someone adds an extension to the work phone and a title, by hand.
        await hand_edit(
            rig,
            gid,
            {"field": "$.workPhone.extension", "value": 42, "action": "Update"},
            {"field": "$.title", "value": "Countess", "action": "Update"},
        )
        new = Contact(
            ADA.external_id,
            ADA.first_name,
            ADA.last_name,
            ADA.email,
            (ADA.phone_numbers[0], Phone("+15559999999", "MOBILE"), ADA.phone_numbers[3]),
            ADA.organization,
        )
        before = len(rig.api_log())
        result = await rig.client.patch(gid, {"phone_numbers": 1}, contact=new)
        assert [f"{e['method']} {e['route']}" for e in rig.api_log()[before:]] == [
            f"GET {EC}/contacts/{{contactId}}",
            f"PATCH {EC}/contacts/{{contactId}}",
        ]
        assert result.remote is not None
        assert result.remote.contact == new
        stored = rig.emulator.get(gid)
        assert stored is not None
        assert stored["workPhone"]["extension"] == 42  # unchanged slot: untouched
        assert stored["title"] == "Countess"
        assert "homePhone" not in stored
        # Nothing to do: the read shows Genesys already holds it, so no PATCH is sent.
        before = len(rig.api_log())
        again = await rig.client.patch(gid, {"phone_numbers": 1}, contact=new)
        assert again.remote is not None
        assert [e["method"] for e in rig.api_log()[before:]] == ["GET"]


async def hand_edit(rig: Rig, genesys_id: str, *changes: dict[str, Any]) -> None:
    """A PATCH by someone else (an agent in the Genesys UI), straight to the emulator."""
    app = rig.client._http._transport.app  # type: ignore[attr-defined]
    token = await rig.client.auth.get()
    transport = asgi_transport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://e") as raw:
        response = await raw.patch(
            f"{EC}/contacts/{genesys_id}",
            json={"changes": list(changes)},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.is_success, response.text


async def test_replace_never_puts_and_keeps_unmanaged_fields() -> None:
    async with ec_rig() as rig:
        created = await rig.client.create(ADA)
        gid = created.genesys_id
        rig.emulator.profile.sources.register({"id": "erp", "name": "erp"})
        erp_id = {"externalSource": {"id": "erp"}, "value": "E-1"}
        await hand_edit(  # fields syncd does not manage, set by someone else
            rig,
            gid,
            {"field": "$.title", "value": "Countess", "action": "Update"},
            {"field": "$.personalEmail", "value": "ada@home.example", "action": "Update"},
            {"field": "$.address.city", "value": "London", "action": "Update"},
            {"field": "$.externalIds", "value": [erp_id], "action": "AppendToCollection"},
        )
        smaller = Contact("crm-1", "Ada", "King", None, ADA.phone_numbers[:1], None)
        result = await rig.client.replace(gid, smaller)
        assert result.remote is not None
        assert result.remote.contact == smaller
        after = rig.emulator.get(gid)
        assert after is not None
        assert after["title"] == "Countess"
        assert after["personalEmail"] == "ada@home.example"
        assert after["address"] == {"city": "London"}
        assert [i["value"] for i in after["externalIds"]] == ["crm-1", "E-1"]
        assert "workEmail" not in after
        assert "cellPhone" not in after
        assert "PUT" not in [e["method"] for e in rig.api_log()]


async def test_delete_and_not_found() -> None:
    async with ec_rig() as rig:
        created = await rig.client.create(ADA)
        assert (await rig.client.delete(created.genesys_id)).status == 204
        assert (await rig.client.delete(created.genesys_id)).status == 404
