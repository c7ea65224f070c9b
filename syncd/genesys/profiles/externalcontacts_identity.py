"""Requests keyed on syncd's ExternalId identifier: the identifier lookup (find a contact by
its externalId: never search, which lags and matches keywords) and the upsert (``enrich``
with action ``Upsert``, matched on that identifier), which the engine sends to settle a
create whose answer was lost: sent again, it updates the contact the first one made instead
of making a second.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from syncd.errors import ApiValidationError
from syncd.genesys.profiles._base import RequestSpec, search_term
from syncd.genesys.profiles.externalcontacts_fields import MAX_EXTERNAL_ID
from syncd.model import Contact

LOOKUP = "/externalcontacts/identifierlookup/contacts"
ENRICH = "/externalcontacts/contacts/enrich"
# An upsert keeps what it is not given (a field syncd does not manage is never cleared) and
# adds to lists (other systems' externalIds stay): the SDK's EnrichFieldRules defaults, sent
# explicitly so that a change of Genesys' defaults cannot change what syncd writes.
FIELD_RULES = {"defaultAction": "PreferProvided", "defaultArrayAction": "Fill"}


class IdentityRequests:
    """The lookup and the upsert; the profile provides the document and the source."""

    if TYPE_CHECKING:  # provided by the profile (and its ExternalSourceRequests)

        def _source(self) -> str: ...

        def document(self, contact: Contact) -> dict[str, Any]: ...

        def _check(self, contact: Contact, method: str, route: str) -> None: ...

    def _identifier(self, external_id: str, route: str) -> dict[str, Any]:
        value = search_term(external_id)
        if len(value) > MAX_EXTERNAL_ID:
            raise ApiValidationError(
                f"cannot look up externalId {value[:40]!r}... ({len(value)} characters): "
                f"Genesys stores at most {MAX_EXTERNAL_ID}; shorten the id in the CRM",
                method="POST",
                route=route,
            )
        return {"type": "ExternalId", "value": value, "externalSource": {"id": self._source()}}

    def lookup_request(self, external_id: str) -> RequestSpec:
        """The keyed identifier lookup; refused before sending when longer than Genesys
        stores an externalId."""
        return RequestSpec("POST", LOOKUP, LOOKUP, json=self._identifier(external_id, LOOKUP))

    def upsert_request(self, contact: Contact) -> RequestSpec:
        """An ``Upsert`` of the contact matched on its ExternalId: 201 when it made the
        contact, 200 when it updated the one claiming the identifier. Not retried by the
        client once sent (a lost answer stays unknown, like a create's)."""
        self._check(contact, "POST", ENRICH)
        document = self.document(contact)
        body: dict[str, Any] = {
            "matchingIdentifiers": [self._identifier(contact.external_id, ENRICH)],
            "action": "Upsert",
            "contact": {k: v for k, v in document.items() if k != "division"},
            "fieldRules": FIELD_RULES,
        }
        if "division" in document:  # a ContactEnrichRequest names it beside the contact
            body["division"] = document["division"]
        return RequestSpec("POST", ENRICH, ENRICH, json=body)
