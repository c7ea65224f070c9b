"""Calls about ExternalOrganization records (the client's :class:`OrganizationsApi`).

Why a module of its own: these are the only calls that are not about contacts, and each has
a rule of its own. A lookup that finds nothing is an answer (404), not an error; a create is
never retried once sent (the engine looks the record up first); a rename reads the record and
PUTs it back whole with only the name changed, because a PUT replaces every field and the
record's other fields (industry, address, ...) are someone else's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import httpx

from syncd.errors import ApiNotFoundError
from syncd.genesys.api import OrganizationRecord, OrganizationsApi
from syncd.genesys.pipeline import parse_answer, parse_created
from syncd.genesys.profiles import RequestSpec
from syncd.genesys.profiles.externalcontacts_orgs import OrganizationDirectory, OrganizationRequests

__all__ = ["OrganizationCalls"]

Call = Callable[[RequestSpec], Awaitable[httpx.Response]]
Ready = Callable[[], Awaitable[None]]


class OrganizationCalls:
    """Finds, creates and renames organization records through the client's pipeline."""

    def __init__(self, profile: OrganizationRequests, call: Call, ready: Ready) -> None:
        self._profile, self._call, self._ready = profile, call, ready

    @property
    def directory(self) -> OrganizationDirectory:
        return self._profile.organizations

    async def find(self, crm_id: str) -> OrganizationRecord | None:
        await self._ready()
        spec = self._profile.organization_lookup_request(crm_id)
        try:
            response = await self._call(spec)
        except ApiNotFoundError:
            return None  # no record claims it
        record = parse_answer(spec, response, self._profile.parse_organization_record)
        return record if record.external_id == crm_id else None

    async def create(self, crm_id: str, name: str) -> OrganizationRecord:
        await self._ready()
        spec = self._profile.organization_create_request(crm_id, name)
        response = await self._call(spec)
        return parse_created(
            spec, response, self._profile.parse_organization_record, "organization"
        )

    async def rename(self, genesys_id: str, name: str) -> OrganizationRecord | None:
        await self._ready()
        spec = self._profile.organization_get_request(genesys_id)
        current = parse_answer(
            spec, await self._call(spec), self._profile.parse_organization_record
        )
        if current.name == name:
            return None
        spec = self._profile.organization_replace_request(current, name)
        return parse_answer(spec, await self._call(spec), self._profile.parse_organization_record)


def _conforms(calls: OrganizationCalls) -> OrganizationsApi:  # mypy checks the protocol
    return calls
