"""The reference wire profile: canonical contact <-> JSON, PATCH bodies, paging rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.errors import ApiProtocolError, ConfigError
from syncd.genesys.profiles import get_profile
from syncd.genesys.profiles.reference import ReferenceProfile, _next_token
from syncd.model import Contact, Organization, Phone
from tests.genesys.fakes import FakeServer, answer, contact_json, make_client

P = ReferenceProfile()
FULL = Contact(
    external_id="ext-1",
    first_name="Ada",
    last_name="Lovelace",
    email="ada@example.com",
    phone_numbers=(Phone("+15551234567", "MOBILE"), Phone("+15557654321")),
    organization=Organization("org-1", "Analytical"),
)


def test_create_body_uses_wire_names_and_omits_empty_fields() -> None:
    spec = P.create_request(FULL)
    assert (spec.method, spec.path, spec.route) == ("POST", "/contacts", "/contacts")
    assert spec.json == {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "email": "ada@example.com",
        "phoneNumbers": [
            {"number": "+15551234567", "type": "MOBILE"},
            {"number": "+15557654321", "type": "WORK"},
        ],
        "externalOrganization": {"id": "org-1", "name": "Analytical"},
        "externalId": "ext-1",
    }
    sparse = P.create_request(Contact("e", first_name="A", organization=Organization(name="O")))
    assert sparse.json == {
        "firstName": "A",
        "externalOrganization": {"name": "O"},
        "externalId": "e",
    }


def test_patch_body_has_only_the_changed_fields_with_values_from_contact() -> None:
    new = Contact("ext-1", first_name="Ada", email=None, phone_numbers=())
    spec = P.patch_request("c 1/x", {"email": ["old@x", None], "phone_numbers": "ignored"}, new)
    assert (spec.method, spec.path, spec.route) == (
        "PATCH",
        "/contacts/c%201%2Fx",
        "/contacts/{id}",
    )
    assert spec.json == {"email": None, "phoneNumbers": []}
    assert P.patch_request("c", {"organization": 1}, new).json == {"externalOrganization": None}


def test_patch_rejects_unknown_or_no_fields() -> None:
    with pytest.raises(ValueError, match="firstName"):
        P.patch_request("c", {"firstName": "x"}, FULL)
    with pytest.raises(ValueError, match="at least one"):
        P.patch_request("c", {}, FULL)


def test_put_states_every_field() -> None:
    body = P.replace_request("c-1", Contact("ext-1", first_name="A")).json
    assert body == {
        "firstName": "A",
        "lastName": None,
        "email": None,
        "phoneNumbers": [],
        "externalOrganization": None,
        "externalId": "ext-1",
    }


def test_parse_contact_reads_every_field() -> None:
    remote = P.parse_contact(contact_json())
    assert remote.genesys_id == "c-1"
    assert remote.contact == Contact(
        external_id="ext-1",
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        phone_numbers=(Phone("+15551234567", "MOBILE"),),
        organization=Organization("org-1", "Analytical"),
    )
    assert remote.date_created == datetime(2026, 3, 14, 10, 30, tzinfo=UTC)
    assert remote.raw["id"] == "c-1"


def test_parse_contact_tolerates_absent_optional_fields() -> None:
    remote = P.parse_contact(
        {
            "id": "c-2",
            "firstName": "Jane",
            "phoneNumbers": None,
            "externalOrganization": {},
            "unknownField": {"x": 1},
        }
    )
    assert remote.contact == Contact(external_id="", first_name="Jane")
    assert remote.date_created is None


names = st.one_of(st.none(), st.text(min_size=1, max_size=20))
contacts = st.builds(
    Contact,
    external_id=st.text(min_size=1, max_size=20),
    first_name=names,
    last_name=names,
    email=names,
    phone_numbers=st.lists(
        st.builds(
            Phone,
            number=st.text(min_size=1, max_size=15),
            type=st.sampled_from(["WORK", "MOBILE", "HOME", "OTHER"]),
        ),
        max_size=3,
    ).map(tuple),
    organization=st.one_of(
        st.none(),
        st.builds(Organization, id=names, name=names).filter(
            lambda o: o.id is not None or o.name is not None
        ),
    ),
)


@given(contacts)
def test_create_and_put_bodies_round_trip(contact: Contact) -> None:
    for spec in (P.create_request(contact), P.replace_request("c-1", contact)):
        assert P.parse_contact({"id": "c-1", **spec.json}).contact == contact


def test_list_request_pages_and_clamps() -> None:
    assert P.list_request(None, 50).params == {"pageSize": 50, "pageNumber": 1, "sortOrder": "asc"}
    assert P.list_request("3", 500).params["pageSize"] == 100
    assert P.list_request("3", 0).params["pageSize"] == 1
    for bad in ("0", "-1", "abc", "", "2.5"):
        with pytest.raises(ValueError, match="page token"):
            P.list_request(bad, 10)


@pytest.mark.parametrize(
    ("number", "size", "count", "total", "expected"),
    [
        (1, 100, 100, 250, "2"),
        (3, 100, 50, 250, None),  # short last page
        (2, 100, 100, 200, None),  # full page that matches total ends: ceil(N/size) pages
        (2, 100, 100, 150, "3"),  # more than total admits: read on to a short page
        (3, 100, 0, 200, None),  # empty page always ends
        (1, 100, 0, 10_000, None),  # total says more, the server has nothing
        (2, 100, 100, 1, None),  # total too low: at most one page past it
        (1, 100, 100, 1, "2"),
        (1, 100, 100, None, "2"),  # no total: full pages continue
        (4, 100, 40, None, None),
        (1, 100, 60, 250, "2"),  # short but total says more (rows deleted meanwhile)
    ],
)
def test_next_token(
    number: int, size: int, count: int, total: int | None, expected: str | None
) -> None:
    assert _next_token(number, size, count, total) == expected


def test_parse_page_uses_server_page_size() -> None:
    body = {
        "entities": [contact_json(f"c-{i}") for i in range(25)],
        "pageNumber": 1,
        "pageSize": 25,
        "total": 60,
    }
    page = P.parse_page(body, None, 100)
    assert page.next_token == "2"
    assert page.total == 60
    assert len(page.contacts) == 25


def test_unknown_profile_is_a_config_error() -> None:
    assert get_profile("reference").name == "reference"
    assert get_profile("externalcontacts").name == "externalcontacts"
    with pytest.raises(ConfigError, match="available: externalcontacts, reference"):
        get_profile("soap")


def test_search_requires_a_term() -> None:
    with pytest.raises(ValueError, match="empty"):
        P.lookup_request("")
    assert P.lookup_request("sf 1&x").params == {"q": "sf 1&x"}


def test_parse_contact_error_names_the_place() -> None:
    with pytest.raises(ApiProtocolError, match=r"page.entities\[1\].id"):
        P.parse_page({"entities": [contact_json(), {"firstName": "x"}], "total": 2}, None, 10)


# -- through the client --------------------------------------------------------------------


def page(ids: range, total: int | None, number: int, size: int = 100) -> dict[str, object]:
    body: dict[str, object] = {
        "entities": [contact_json(f"c-{i}", f"e-{i}") for i in ids],
        "pageNumber": number,
        "pageSize": size,
    }
    if total is not None:
        body["total"] = total
    return body


@pytest.mark.anyio
async def test_iter_all_streams_every_page(server: FakeServer) -> None:
    server.script = [
        answer(200, page(range(0, 100), 250, 1)),
        answer(200, page(range(100, 200), 250, 2)),
        answer(200, page(range(200, 250), 250, 3)),
    ]
    async with make_client(server) as client:
        ids = [rc.genesys_id async for rc in client.iter_all()]
    assert ids == [f"c-{i}" for i in range(250)]
    assert [s.params["pageNumber"] for s in server.seen] == ["1", "2", "3"]


@pytest.mark.anyio
async def test_iter_all_survives_a_server_lying_about_total(server: FakeServer) -> None:
    # Every page full, forever, with a total that admits one page: the listing stops there.
    server.default = answer(200, page(range(0, 10), 10, 1, size=10))
    async with make_client(server) as client:
        got = [rc async for rc in client.iter_all(page_size=10)]
    assert len(got) == 10
    assert len(server.seen) == 1


@pytest.mark.anyio
async def test_iter_all_stops_on_an_empty_page(server: FakeServer) -> None:
    server.script = [
        answer(200, page(range(0, 100), 1_000_000, 1)),
        answer(200, page(range(0), 1_000_000, 2)),
    ]
    async with make_client(server) as client:
        got = [rc async for rc in client.iter_all()]
    assert len(got) == 100
    assert len(server.seen) == 2


@pytest.mark.anyio
async def test_find_by_external_id_filters_exact_matches(server: FakeServer) -> None:
    server.script = [
        answer(
            200,
            {
                "results": [
                    contact_json("c-1", "ext-1"),
                    contact_json("c-2", "ext-10"),
                    contact_json("c-3", "EXT-1"),
                    contact_json("c-4", "ext-1"),
                ],
                "total": 4,
            },
        )
    ]
    async with make_client(server) as client:
        found = await client.find_by_external_id("ext-1")
    assert [rc.genesys_id for rc in found] == ["c-1", "c-4"]
    assert server.seen[0].path == "/api/v2/contacts/search"
    assert server.seen[0].params == {"q": "ext-1"}


@pytest.mark.anyio
async def test_crud_requests_on_the_wire(server: FakeServer) -> None:
    server.script = [
        answer(201, contact_json("c-9", "ext-1")),
        answer(200, contact_json("c-9", "ext-1")),
        answer(200, contact_json("c-9", "ext-1")),
        answer(200, contact_json("c-9", "ext-1")),
        answer(204),
    ]
    async with make_client(server) as client:
        created = await client.create(FULL)
        got = await client.get("c-9")
        patched = await client.patch("c-9", {"email": 1}, contact=FULL)
        replaced = await client.replace("c-9", FULL)
        deleted = await client.delete("c-9")
    assert created.genesys_id == "c-9"
    assert created.status == 201
    assert created.remote is not None
    assert created.remote.contact.external_id == "ext-1"
    assert got.contact == P.parse_contact(contact_json("c-9", "ext-1")).contact
    assert patched.remote is not None
    assert replaced.status == 200
    assert deleted.status == 204
    assert deleted.remote is None
    assert [(s.method, s.path) for s in server.seen] == [
        ("POST", "/api/v2/contacts"),
        ("GET", "/api/v2/contacts/c-9"),
        ("PATCH", "/api/v2/contacts/c-9"),
        ("PUT", "/api/v2/contacts/c-9"),
        ("DELETE", "/api/v2/contacts/c-9"),
    ]
    assert server.seen[2].body == {"email": "ada@example.com"}
