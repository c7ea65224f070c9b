"""The official SDK (``PureCloudPlatformClientV2``) as an independent client of the emulator.

The SDK is generated from Genesys' own OpenAPI definition, so where its models and the
emulator disagree, the SDK is right. Against a real server (``serve_in_thread``) with the
externalcontacts profile, over a socket, the SDK logs in with its own client-credentials
call, then creates, reads, searches, scans, patches, replaces and bulk-writes contacts;
every answer must deserialize into the SDK's models, and ``assert_wire`` checks the raw
JSON key by key against the models' ``attribute_map``/``swagger_types`` (the SDK's own
deserializer silently drops keys it does not know, which would hide an emulator typo).

The SDK takes several seconds to import: it is imported once, in a module fixture.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from types import ModuleType
from typing import Any

import pytest

from syncd.emulator import EmulatorConfig, EmulatorServer  # the type serve_in_thread yields
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, serve_in_thread


@pytest.fixture(scope="module")
def sdk() -> ModuleType:
    import PureCloudPlatformClientV2

    return PureCloudPlatformClientV2


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    config = EmulatorConfig(
        profile="externalcontacts",
        requests_per_minute=100_000,
        bulk_max_entities=50,
        variants={"organization_check": "strict"},  # production's behaviour, as the SDK has it
    )
    with serve_in_thread(config) as running:
        yield running


class Sdk:
    """The SDK's ExternalContactsApi on the emulator, plus the raw-JSON check."""

    def __init__(self, sdk: ModuleType, host: str) -> None:
        self.sdk = sdk
        self.client = sdk.ApiClient(host=host)
        # Its own login: the login host is the API host with "api." replaced by "login.",
        # and the emulator serves /oauth/token on the same host.
        self.client.get_client_credentials_token(CLIENT_ID, CLIENT_SECRET)
        self.api = sdk.ExternalContactsApi(self.client)

    def model(self, class_name: str, /, **attrs: Any) -> Any:
        instance = getattr(self.sdk, class_name)()
        for key, value in attrs.items():
            setattr(instance, key, value)
        return instance

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call the API and check the raw answer against the declared response model."""
        result = getattr(self.api, method)(*args, **kwargs)
        response_type = _response_type(method)
        if response_type is not None and response_type != "object":
            raw = json.loads(self.client.last_response.data)
            problems = wire_problems(self.sdk, raw, response_type)
            assert not problems, f"{method}: {problems}"
            assert "outdated_sdk_version" not in str(result)  # enum values it knows
        return result

    def close(self) -> None:
        self.client.get_http_client().rest_client.pool_manager.clear()


def _response_type(method: str) -> str | None:
    import inspect

    from PureCloudPlatformClientV2 import ExternalContactsApi

    source = inspect.getsource(getattr(ExternalContactsApi, method))
    marker = "response_type='"
    if marker not in source:
        return None
    return source.split(marker, 1)[1].split("'", 1)[0]


def wire_problems(sdk: ModuleType, data: Any, klass: str, where: str = "$") -> list[str]:
    """Every key or value in ``data`` that the SDK model ``klass`` does not describe."""
    if data is None:
        return []
    if klass.startswith("list["):
        if not isinstance(data, list):
            return [f"{where}: expected a list"]
        inner = klass[5:-1]
        return [
            p
            for i, item in enumerate(data)
            for p in wire_problems(sdk, item, inner, f"{where}[{i}]")
        ]
    if klass.startswith("dict("):
        if not isinstance(data, dict):
            return [f"{where}: expected an object"]
        inner = klass.split(", ", 1)[1][:-1]
        return [p for k, v in data.items() for p in wire_problems(sdk, v, inner, f"{where}.{k}")]
    primitive = {"str": str, "bool": bool, "int": int, "float": (int, float), "object": object}
    if klass in primitive:
        ok = isinstance(data, primitive[klass]) and not (klass == "int" and data is True)
        return [] if ok else [f"{where}: {data!r} is not {klass}"]
    if klass == "datetime":
        try:
            datetime.fromisoformat(str(data).replace("Z", "+00:00"))
        except ValueError:
            return [f"{where}: {data!r} is not a datetime"]
        return []
    model = getattr(sdk.models, klass, None) or getattr(sdk, klass)
    instance = model()
    if not isinstance(data, dict):
        return [f"{where}: expected a {klass} object"]
    by_wire = {wire: attr for attr, wire in instance.attribute_map.items()}
    problems = []
    for key, value in data.items():
        attr = by_wire.get(key)
        if attr is None:
            problems.append(f"{where}.{key}: not a field of {klass}")
            continue
        problems += wire_problems(sdk, value, instance.swagger_types[attr], f"{where}.{key}")
    return problems


@pytest.fixture
def gc(sdk: ModuleType, server: EmulatorServer) -> Iterator[Sdk]:
    server.emulator.reset()
    client = Sdk(sdk, server.base_url)
    try:
        yield client
    finally:
        client.close()


def source_of(gc: Sdk, name: str = "sdk-crm") -> Any:
    source = gc.call("post_externalcontacts_externalsources", gc.model("ExternalSource", name=name))
    assert isinstance(source, gc.sdk.ExternalSource)
    return source


def contact_model(gc: Sdk, n: int, source_id: str, **attrs: Any) -> Any:
    ref = gc.model("ExternalSource", id=source_id)
    return gc.model(
        "ExternalContact",
        first_name=f"First{n}",
        last_name=f"Last{n}",
        external_ids=[gc.model("ExternalId", external_source=ref, value=f"crm-{n}")],
        **attrs,
    )


# -- the tests ------------------------------------------------------------------------------------


def test_external_sources(gc: Sdk) -> None:
    source = source_of(gc)
    assert (source.name, source.active) == ("sdk-crm", True)
    listing = gc.call("get_externalcontacts_externalsources", name="sdk")
    assert isinstance(listing, gc.sdk.CursorExternalSourceListing)
    assert [s.id for s in listing.entities] == [source.id]
    with pytest.raises(gc.sdk.rest.ApiException) as info:
        gc.call("post_externalcontacts_externalsources", gc.model("ExternalSource", name="SDK-crm"))
    assert info.value.status == 409


def test_create_get_and_search(gc: Sdk) -> None:
    source = source_of(gc)
    sdk = gc.sdk
    org = gc.call(
        "post_externalcontacts_organizations", gc.model("ExternalOrganization", name="Analytical")
    )
    body = contact_model(
        gc,
        1,
        source.id,
        title="Countess",
        work_email="ada@example.com",
        work_phone=gc.model(
            "PhoneNumber", display="+1 555 123 4567", extension=12, accepts_sms=True
        ),
        cell_phone=gc.model("PhoneNumber", display="030 1234567", normalization_country_code="DE"),
        address=gc.model("ContactAddress", city="London", country_code="GB"),
        external_organization=gc.model("ExternalOrganization", id=org.id, name="Analytical"),
        survey_opt_out=False,
    )
    created = gc.call("post_externalcontacts_contacts", body)
    assert isinstance(created, sdk.ExternalContact)
    assert isinstance(created.work_phone, sdk.PhoneNumber)
    assert (created.work_phone.e164, created.work_phone.extension) == ("+15551234567", 12)
    assert created.work_phone.accepts_sms is True
    assert created.work_phone.user_input == "+1 555 123 4567"
    assert (created.cell_phone.e164, created.cell_phone.country_code) == ("+49301234567", "DE")
    assert isinstance(created.address, sdk.ContactAddress)
    assert created.address.city == "London"
    assert isinstance(created.external_organization, sdk.ExternalOrganization)
    assert isinstance(created.external_ids[0], sdk.ExternalId)
    assert isinstance(created.external_ids[0].external_source, sdk.ExternalSource)
    assert created.external_ids[0].external_source.id == source.id
    assert isinstance(created.create_date, datetime)
    assert created.type == "Curated"
    assert created.self_uri == f"/api/v2/externalcontacts/contacts/{created.id}"

    fetched = gc.call("get_externalcontacts_contact", created.id)
    assert fetched.to_dict() == created.to_dict()

    found = gc.call("get_externalcontacts_contacts", q="crm-1", page_size=25, page_number=1)
    assert isinstance(found, sdk.ContactListing)
    assert ([c.id for c in found.entities], found.total, found.page_count) == ([created.id], 1, 1)
    with pytest.raises(sdk.rest.ApiException) as info:
        gc.call("get_externalcontacts_contacts", page_size=100, page_number=11)
    assert info.value.status == 400


def test_patch_with_the_changes_model_and_a_409(gc: Sdk) -> None:
    source = source_of(gc)
    created = gc.call("post_externalcontacts_contacts", contact_model(gc, 1, source.id, title="Dr"))
    changes = [
        gc.model("ContactsPatchChange", field="$.firstName", value="Ada", action="Update"),
        gc.model("ContactsPatchChange", field="$.title", action="Remove"),
        gc.model("ContactsPatchChange", field="$.middleName", value="A.", action="UpdateIfEmpty"),
    ]
    request = gc.model("ExternalContactsPatchRequest", changes=changes)
    patched = gc.call("patch_externalcontacts_contact", created.id, request)
    assert isinstance(patched, gc.sdk.ExternalContact)
    assert (patched.first_name, patched.title, patched.middle_name) == ("Ada", None, "A.")
    clash = [
        gc.model(
            "ContactsPatchChange", field="$.workPhone", value={"display": "1"}, action="Update"
        ),
        gc.model("ContactsPatchChange", field="$.workPhone.display", value="2", action="Update"),
    ]
    with pytest.raises(gc.sdk.rest.ApiException) as info:
        gc.call(
            "patch_externalcontacts_contact",
            created.id,
            gc.model("ExternalContactsPatchRequest", changes=clash),
        )
    assert info.value.status == 409


def test_a_fetched_model_can_be_put_back_after_a_change(gc: Sdk) -> None:
    """get, modify, put: the SDK sends the read-only fields back; they are ignored."""
    source = source_of(gc)
    created = gc.call("post_externalcontacts_contacts", contact_model(gc, 1, source.id, title="Dr"))
    fetched = gc.call("get_externalcontacts_contact", created.id)
    fetched.title = None
    fetched.last_name = "King"
    replaced = gc.call("put_externalcontacts_contact", created.id, fetched)
    assert (replaced.last_name, replaced.title, replaced.first_name) == ("King", None, "First1")
    assert replaced.create_date == created.create_date


def test_scan_pages_with_cursors(gc: Sdk) -> None:
    source = source_of(gc)
    entities = [contact_model(gc, n, source.id) for n in range(25)]
    added = gc.call(
        "post_externalcontacts_bulk_contacts_add",
        gc.model("BulkContactsRequest", entities=entities),
    )
    expected = {r.id for r in added.results}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        kwargs: dict[str, Any] = {"limit": 10}
        if cursor:
            kwargs["cursor"] = cursor
        page = gc.call("get_externalcontacts_scan_contacts", **kwargs)
        pages += 1
        assert isinstance(page, gc.sdk.CursorContactListing)
        assert all(isinstance(c, gc.sdk.ExternalContact) for c in page.entities)
        seen += [c.id for c in page.entities]
        if page.cursors is None or page.cursors.after is None:
            assert page.next_uri is None
            break
        assert isinstance(page.cursors, gc.sdk.Cursors)
        cursor = page.cursors.after
    assert (len(seen), set(seen), pages) == (25, expected, 3)


def test_bulk_add_update_read_and_remove(gc: Sdk) -> None:
    sdk = gc.sdk
    source = source_of(gc)
    bad = contact_model(gc, 9, source.id, work_email="not-an-email")
    entities = [contact_model(gc, n, source.id) for n in range(4)] + [bad]
    added = gc.call(
        "post_externalcontacts_bulk_contacts_add",
        gc.model("BulkContactsRequest", entities=entities),
    )
    assert isinstance(added, sdk.BulkContactsResponse)
    assert (added.error_count, len(added.results)) == (1, 5)
    (failure,) = [r for r in added.results if not r.success]
    assert added.error_indexes == [added.results.index(failure)]
    assert isinstance(failure.error, sdk.BulkEntityErrorExternalContact)
    assert (failure.error.status, failure.error.retryable) == (400, False)
    assert isinstance(failure.error.entity, sdk.ExternalContact)
    assert failure.error.entity.external_ids[0].value == "crm-9"
    ok = [r for r in added.results if r.success]
    assert all(isinstance(r.entity, sdk.ExternalContact) and r.entity.id == r.id for r in ok)
    by_value = {r.entity.external_ids[0].value: r.id for r in ok}
    assert sorted(by_value) == ["crm-0", "crm-1", "crm-2", "crm-3"]

    ids = [gc.model("ExternalContactsEntity", id=gid) for gid in by_value.values()]
    read = gc.call("post_externalcontacts_bulk_contacts", gc.model("BulkIdsRequest", entities=ids))
    assert isinstance(read, sdk.BulkFetchContactsResponse)
    assert {r.entity.id for r in read.results} == set(by_value.values())

    update = [r.entity for r in read.results]
    for entity in update:
        entity.title = "Updated"
    updated = gc.call(
        "post_externalcontacts_bulk_contacts_update",
        gc.model("BulkContactsRequest", entities=update),
    )
    assert isinstance(updated, sdk.BulkContactsResponse)
    assert updated.error_count == 0
    assert {r.entity.title for r in updated.results} == {"Updated"}

    ghost = gc.model("ExternalContactsEntity", id="ghost")
    removed = gc.call(
        "post_externalcontacts_bulk_contacts_remove",
        gc.model("BulkIdsRequest", entities=[*ids, ghost]),
    )
    assert isinstance(removed, sdk.BulkDeleteResponse)
    assert removed.error_count == 1
    (missing,) = [r for r in removed.results if not r.success]
    assert isinstance(missing.error, sdk.BulkEntityErrorEntity)
    assert (missing.id, missing.error.status) == ("ghost", 404)
    assert gc.call("get_externalcontacts_scan_contacts").entities == []


def test_delete(gc: Sdk) -> None:
    created = gc.call("post_externalcontacts_contacts", gc.model("ExternalContact", first_name="X"))
    gc.call("delete_externalcontacts_contact", created.id)
    with pytest.raises(gc.sdk.rest.ApiException) as info:
        gc.call("get_externalcontacts_contact", created.id)
    assert info.value.status == 404


def test_429_reaches_the_sdk_with_retry_after(sdk: ModuleType) -> None:
    """The SDK's urllib3 would wait out Retry-After and re-send (production SDK behaviour);
    switched off here to look at the 429 itself."""
    config = EmulatorConfig(profile="externalcontacts", requests_per_minute=2)
    with serve_in_thread(config) as limited:
        gc = Sdk(sdk, limited.base_url)
        retries = gc.client.get_http_client().rest_client.pool_manager.connection_pool_kw
        retries["retries"].respect_retry_after_header = False
        try:
            gc.call("get_externalcontacts_scan_contacts")
            gc.call("get_externalcontacts_scan_contacts")
            with pytest.raises(sdk.rest.ApiException) as info:
                gc.call("get_externalcontacts_scan_contacts")
        finally:
            gc.close()
    assert info.value.status == 429
    assert int(info.value.headers["Retry-After"]) >= 1
    assert json.loads(info.value.body)["code"] == "too.many.requests.retry.after"
    assert not [h for h in info.value.headers if h.lower().startswith("x-rate-limit")]


# -- issue 13: identifier lookup, enrich, organizations, divisions, merges -------------------------


def _identifier(gc: Sdk, source_id: str, value: str, klass: str = "ContactIdentifier") -> Any:
    ref = gc.model("ExternalSource", id=source_id)
    return gc.model(klass, type="ExternalId", value=value, external_source=ref)


def _enrich(gc: Sdk, source_id: str, n: int, **attrs: Any) -> Any:
    fields = {
        "matching_identifiers": [_identifier(gc, source_id, f"crm-{n}")],
        "action": "Upsert",
        "contact": gc.model("ExternalContact", first_name=f"First{n}"),
        **attrs,
    }
    return gc.model("ContactEnrichRequest", **fields)


def test_identifier_lookup_and_enrich(gc: Sdk) -> None:
    sdk = gc.sdk
    source = source_of(gc)
    rules = gc.model(
        "EnrichFieldRules",
        default_action="PreferProvided",
        default_array_action="Fill",
        rules=[gc.model("EnrichFieldRule", field="$.title", action="PreferExisting")],
    )
    dry = gc.call("post_externalcontacts_contacts_enrich", _enrich(gc, source.id, 1), dry_run=True)
    assert isinstance(dry, sdk.ExternalContact)
    assert dry.id is None
    created = gc.call(
        "post_externalcontacts_contacts_enrich",
        _enrich(gc, source.id, 1, field_rules=rules, options=gc.model("ContactEnrichOptions")),
    )
    assert gc.client.last_response.status == 201
    again = gc.call("post_externalcontacts_contacts_enrich", _enrich(gc, source.id, 1))
    assert gc.client.last_response.status == 200
    assert again.id == created.id
    found = gc.call(
        "post_externalcontacts_identifierlookup_contacts", _identifier(gc, source.id, "crm-1")
    )
    assert isinstance(found, sdk.ExternalContact)
    assert found.id == created.id
    with pytest.raises(sdk.rest.ApiException) as info:
        gc.call(
            "post_externalcontacts_identifierlookup_contacts", _identifier(gc, source.id, "crm-9")
        )
    assert info.value.status == 404

    bulk = gc.model(
        "BulkContactsEnrichRequest", entities=[_enrich(gc, source.id, n) for n in range(3)]
    )
    answer = gc.call("post_externalcontacts_bulk_contacts_enrich", bulk)
    assert isinstance(answer, sdk.BulkContactsEnrichResponse)
    assert answer.error_count == 0
    assert all(isinstance(r.entity, sdk.ExternalContact) for r in answer.results)
    bad = gc.model(
        "BulkContactsEnrichRequest", entities=[_enrich(gc, source.id, 5, action="Update", id="t")]
    )
    failed = gc.call("post_externalcontacts_bulk_contacts_enrich", bad)
    assert isinstance(failed.results[0].error, sdk.BulkEntityErrorContactEnrichRequest)
    assert isinstance(failed.results[0].error.entity, sdk.ContactEnrichRequest)
    assert failed.results[0].error.entity.id == "t"


def test_organizations_as_records(gc: Sdk) -> None:
    sdk = gc.sdk
    source = source_of(gc)
    ext = [gc.model("ExternalId", external_source=gc.model("ExternalSource", id=source.id),
                    value="org-1")]  # fmt: skip
    org = gc.call(
        "post_externalcontacts_organizations",
        gc.model("ExternalOrganization", name="Analytical", industry="Engines", external_ids=ext),
    )
    assert isinstance(org, sdk.ExternalOrganization)
    assert isinstance(org.division, sdk.WritableStarrableDivision)
    found = gc.call(
        "post_externalcontacts_identifierlookup_organizations",
        _identifier(gc, source.id, "org-1", "ExternalOrganizationIdentifier"),
    )
    assert found.id == org.id
    assert gc.call("get_externalcontacts_organization", org.id).name == "Analytical"
    org.name = "Renamed"
    assert gc.call("put_externalcontacts_organization", org.id, org).name == "Renamed"
    listing = gc.call("get_externalcontacts_organizations", q="renamed")
    assert isinstance(listing, sdk.ExternalOrganizationListing)
    assert [o.id for o in listing.entities] == [org.id]
    scan = gc.call("get_externalcontacts_scan_organizations", division_id=org.division.id)
    assert isinstance(scan, sdk.CursorOrganizationListing)
    assert [o.id for o in scan.entities] == [org.id]

    contact = gc.call(
        "post_externalcontacts_contacts",
        contact_model(
            gc, 1, source.id, external_organization=gc.model("ExternalOrganization", id=org.id)
        ),
    )
    plain = gc.call("get_externalcontacts_contact", contact.id)
    assert (plain.external_organization.id, plain.external_organization.name) == (org.id, None)
    expanded = gc.call("get_externalcontacts_contact", contact.id, expand=["externalOrganization"])
    assert expanded.external_organization.name == "Renamed"
    with pytest.raises(sdk.rest.ApiException) as info:
        gc.call(
            "post_externalcontacts_contacts",
            contact_model(
                gc, 2, source.id, external_organization=gc.model("ExternalOrganization", id="x")
            ),
        )
    assert info.value.status == 400

    added = gc.call(
        "post_externalcontacts_bulk_organizations_add",
        gc.model("BulkOrganizationsRequest", entities=[gc.model("ExternalOrganization", name="B")]),
    )
    assert isinstance(added, sdk.BulkOrganizationsResponse)
    (result,) = added.results
    result.entity.name = "C"
    updated = gc.call(
        "post_externalcontacts_bulk_organizations_update",
        gc.model("BulkOrganizationsRequest", entities=[result.entity]),
    )
    assert updated.results[0].entity.name == "C"
    ids = gc.model("BulkIdsRequest", entities=[gc.model("ExternalContactsEntity", id=result.id)])
    read = gc.call("post_externalcontacts_bulk_organizations", ids)
    assert isinstance(read, sdk.BulkFetchOrganizationsResponse)
    removed = gc.call("post_externalcontacts_bulk_organizations_remove", ids)
    assert isinstance(removed, sdk.BulkDeleteResponse)
    assert removed.error_count == 0
    gc.call("delete_externalcontacts_organization", org.id)
    with pytest.raises(sdk.rest.ApiException) as info:
        gc.call("get_externalcontacts_organization", org.id)
    assert info.value.status == 404


def test_divisions_merges_and_contact_types(gc: Sdk, server: EmulatorServer) -> None:
    sdk = gc.sdk
    source = source_of(gc)
    em = server.emulator
    a = gc.call("post_externalcontacts_contacts", contact_model(gc, 1, source.id))
    b = gc.call("post_externalcontacts_contacts", contact_model(gc, 2, source.id))
    assert isinstance(a.division, sdk.WritableStarrableDivision)
    em.seed_contacts([{"firstName": "Web", "type": "Ephemeral"}])
    scan = gc.call("get_externalcontacts_scan_contacts", division_id=a.division.id)
    assert sorted(c.type for c in scan.entities) == ["Curated", "Curated", "Ephemeral"]
    every = gc.call("get_externalcontacts_scan_contacts_divisionviews_all")
    assert len(every.entities) == 3

    merged = em.profile.writer.merge([a.id, b.id])  # type: ignore[attr-defined]
    canonical = gc.call("get_externalcontacts_contact", a.id)
    assert canonical.id == merged["id"]
    assert {r.id for r in canonical.merged_from} == {a.id, b.id}
    assert isinstance(canonical.canonical_contact, sdk.ContactAddressableEntityRef)
    old = gc.call("get_externalcontacts_contact_unresolved", a.id)
    assert (old.id, old.merged_to.id, old.canonical_contact.id) == (
        a.id,
        merged["id"],
        merged["id"],
    )
    ids = gc.model("BulkIdsRequest", entities=[gc.model("ExternalContactsEntity", id=b.id)])
    bulk = gc.call("post_externalcontacts_bulk_contacts_unresolved", ids)
    assert isinstance(bulk, sdk.BulkFetchContactsResponse)
    assert bulk.results[0].entity.merged_to.id == merged["id"]
