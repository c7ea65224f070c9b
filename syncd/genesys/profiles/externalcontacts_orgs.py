"""ExternalOrganizations as records: the externalcontacts profile's half of them.

In Genesys a contact's ``externalOrganization`` references an organization record by its
*Genesys* id; the record must exist first. The CRM's organization id is kept on the record as
an ``externalIds`` entry in syncd's external source (so the keyed identifier lookup finds it),
and the canonical contact keeps the CRM's id. :class:`OrganizationDirectory` translates
between the two when a contact is sent or read back; the engine fills it from its own table
(``organization_links``) and keeps it current. A reference to an organization the directory
does not know reads back as ``genesys:<id>``, which no CRM id equals, so syncd writes the
contact's organization again instead of trusting a link it did not make.
"""

from __future__ import annotations

from typing import Any

from syncd.errors import ApiValidationError, OrganizationPendingError
from syncd.genesys.api import OrganizationRecord
from syncd.genesys.profiles._base import RequestSpec, contact_path
from syncd.genesys.profiles._shape import obj, opt_str, req_str
from syncd.genesys.profiles.externalcontacts_fields import MAX_EXTERNAL_ID
from syncd.genesys.profiles.externalcontacts_source import ExternalSourceRequests, claimed_id
from syncd.model import Contact, Organization

__all__ = ["FOREIGN_PREFIX", "OrganizationDirectory", "OrganizationRequests"]

ORGS = "/externalcontacts/organizations"
ORG_ROUTE = ORGS + "/{id}"
ORG_LOOKUP = "/externalcontacts/identifierlookup/organizations"
FOREIGN_PREFIX = "genesys:"
MAX_ORG_NAME = 1000  # ExternalOrganization.name, like a contact's names
# Server-managed fields of an ExternalOrganization: never sent back in a PUT.
ORG_READ_ONLY = frozenset(
    {"id", "createDate", "modifyDate", "trustor", "identifiers", "externalDataSources", "selfUri"}
)


class OrganizationDirectory:
    """The CRM's organization ids and the Genesys records they are linked to (one to one)."""

    def __init__(self) -> None:
        self._by_crm: dict[str, str] = {}
        self._by_genesys: dict[str, str] = {}

    def bind(self, crm_id: str, genesys_id: str) -> None:
        old = self._by_crm.pop(crm_id, None)
        if old is not None:
            self._by_genesys.pop(old, None)
        self._by_crm[crm_id] = genesys_id
        self._by_genesys[genesys_id] = crm_id

    def genesys_id(self, crm_id: str) -> str | None:
        return self._by_crm.get(crm_id)

    def crm_id(self, genesys_id: str) -> str | None:
        return self._by_genesys.get(genesys_id)

    def __len__(self) -> int:
        return len(self._by_crm)


class OrganizationRequests(ExternalSourceRequests):
    """Requests and answers about organization records, and contacts' references to them."""

    organizations: OrganizationDirectory
    division_id: str | None

    # -- a contact's reference -------------------------------------------------------------

    def organization_problem(self, contact: Contact) -> str | None:
        """Why the contact's organization cannot be referenced (None: it can)."""
        org = contact.organization
        if org is not None and org.id is None and org.name is not None:
            return (
                f"organizationName {org.name!r} without an organizationId: organizations are "
                "records in Genesys, which syncd finds by the CRM's organization id; map one"
            )
        if org is not None and org.id is not None and len(org.id) > MAX_EXTERNAL_ID:
            return (
                f"organizationId is {len(org.id)} characters; Genesys stores at most "
                f"{MAX_EXTERNAL_ID} in the organization record's externalId"
            )
        return None

    def organization_ref(self, contact: Contact) -> dict[str, str] | None:
        """``externalOrganization`` as sent: ``{id}`` of the linked record, None for none."""
        org = contact.organization
        if org is None or org.id is None:
            return None
        genesys_id = self.organizations.genesys_id(org.id)
        if genesys_id is None:
            raise OrganizationPendingError(org.id)
        return {"id": genesys_id}

    def read_organization(self, data: dict[str, Any], where: str) -> Organization | None:
        """The reference read back, as the CRM's id; whatever else the read carries (the
        name, or the whole record with ``expand``) is the record's, not the contact's."""
        raw = data.get("externalOrganization")
        if raw is None:
            return None
        genesys_id = opt_str(obj(raw, f"{where}.externalOrganization"), "id", where)
        if genesys_id is None:
            return None
        crm_id = self.organizations.crm_id(genesys_id)
        return Organization(id=crm_id if crm_id is not None else FOREIGN_PREFIX + genesys_id)

    # -- the records -------------------------------------------------------------------------

    def organization_lookup_request(self, crm_id: str) -> RequestSpec:
        identifier = {
            "type": "ExternalId",
            "value": crm_id,
            "externalSource": {"id": self._source()},
        }
        return RequestSpec("POST", ORG_LOOKUP, ORG_LOOKUP, json=identifier, idempotent=True)

    def organization_create_request(self, crm_id: str, name: str) -> RequestSpec:
        if not name or len(name) > MAX_ORG_NAME:
            raise ApiValidationError(
                f"organization {crm_id!r}: a name of 1 to {MAX_ORG_NAME} characters is needed "
                "to create its record (set organizationName in the CRM)",
                method="POST",
                route=ORGS,
            )
        body: dict[str, Any] = {
            "name": name,
            "externalIds": [{"externalSource": {"id": self._source()}, "value": crm_id}],
        }
        if self.division_id is not None:
            body["division"] = {"id": self.division_id}
        return RequestSpec("POST", ORGS, ORGS, json=body)

    def organization_get_request(self, genesys_id: str) -> RequestSpec:
        return RequestSpec("GET", contact_path(ORGS, genesys_id), ORG_ROUTE)

    def organization_replace_request(self, record: OrganizationRecord, name: str) -> RequestSpec:
        """A PUT of the record as read, with only the name replaced (a PUT is a full
        replace: every field syncd does not manage is sent back as it was)."""
        body = {k: v for k, v in record.raw.items() if k not in ORG_READ_ONLY}
        body["name"] = name
        path = contact_path(ORGS, record.genesys_id)
        return RequestSpec("PUT", path, ORG_ROUTE, json=body)

    def parse_organization_record(
        self, body: Any, where: str = "organization"
    ) -> OrganizationRecord:
        data = obj(body, where)
        return OrganizationRecord(
            genesys_id=req_str(data, "id", where),
            name=opt_str(data, "name", where),
            external_id=claimed_id(data, self._source(), where),
            raw=data,
        )
