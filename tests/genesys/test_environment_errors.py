"""A 400 about what a contact references (a missing organization record, a division,
syncd's external source) is told apart from bad content (issue 13): it becomes
``ApiEnvironmentError``, which the engine backs off and retries instead of rejecting.

Against the externalcontacts emulator in-process: its 400s name the missing record with an
``errorCode`` (single calls) or the error's ``code`` (a bulk entity).
"""

from __future__ import annotations

import pytest

from syncd.errors import ApiEnvironmentError, ApiValidationError
from syncd.genesys.responses import environmental_cause
from syncd.model import Contact, Organization
from tests.genesys.test_externalcontacts import ec_rig

pytestmark = pytest.mark.anyio


def test_only_details_that_all_name_a_referenced_record_are_environmental() -> None:
    org = {"fieldName": "externalOrganization", "errorCode": "organization.not.found"}
    source = {"fieldName": "externalIds", "errorCode": "external.source.not.found"}
    email = {"fieldName": "workEmail", "errorCode": "invalid.value"}
    assert environmental_cause([org]) == "the organization record"
    assert environmental_cause([org, source]) == "syncd's external source, the organization record"
    assert environmental_cause([org, email]) is None  # the content is wrong too: rejected
    assert environmental_cause([{"fieldName": "division.id"}]) == "the division"
    assert environmental_cause([]) is None
    assert environmental_cause(None, "organization.not.found") == "the organization record"
    assert environmental_cause("garbage") is None


async def test_a_create_naming_a_deleted_record_is_an_environment_error() -> None:
    async with ec_rig() as rig:
        assert rig.client.organizations is not None
        rig.client.organizations.directory.bind("org-2", "no-such-record")
        contact = Contact("crm-9", "Ada", "Lovelace", organization=Organization("org-2"))
        with pytest.raises(ApiEnvironmentError) as caught:
            await rig.client.create(contact)
        assert caught.value.status == 400
        assert caught.value.cause == "the organization record"
        assert "[fix in Genesys: the organization record]" in str(caught.value)
        # A content problem stays a validation error (rejected until the CRM changes it).
        with pytest.raises(ApiValidationError) as rejected:
            await rig.client.create(Contact("crm-8", "Ada", "Lovelace", "not-an-email"))
        assert rejected.value.status == 400  # the server's answer, not a local refusal
        assert not isinstance(rejected.value, ApiEnvironmentError)


async def test_a_bulk_entity_naming_a_deleted_record_is_an_environment_error() -> None:
    async with ec_rig() as rig:
        assert rig.client.organizations is not None
        rig.client.organizations.directory.bind("org-2", "no-such-record")
        good = Contact("crm-1", "Ada", "Lovelace", organization=Organization("org-1"))
        bad = Contact("crm-2", "Bob", "Babbage", organization=Organization("org-2"))
        ok, failed = await rig.client.bulk_create([good, bad])
        assert ok.outcome == "ok"
        assert failed.outcome == "failed"
        assert isinstance(failed.error, ApiEnvironmentError)
        assert failed.error.cause == "the organization record"
