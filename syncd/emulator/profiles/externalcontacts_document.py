"""The "externalcontacts" contact document: production Genesys Cloud's ExternalContact.

A contact is an ExternalContact as the official SDK's ``models/external_contact.py`` has it
(``firstName``, ``middleName``, ``lastName``, ``salutation``, ``title``; ``workPhone`` /
``cellPhone`` / ``homePhone`` / ``otherPhone`` as PhoneNumber objects; ``workEmail`` /
``personalEmail`` / ``otherEmail``; ``address``; ``externalOrganization``;
``externalSystemUrl``; ``externalIds`` pointing at ExternalSources; ``createDate``,
``modifyDate``, ``type``, ``selfUri``). Fields without a value are left out of the JSON.

Validation (documented in ``docs/externalcontacts.md``): names and titles up to 1,000
characters, emails up to 256 and ``x@y``-shaped, strings are stripped and an empty string
clears the field. A PhoneNumber needs ``display`` (up to 512); the server computes the
read-only ``e164``, ``countryCode`` (ISO region) and ``userInput`` and rewrites ``display``
in international format when the number can be read as E.164 (``normalizationCountryCode``
or US for numbers without a country code), else keeps it as given. ``externalIds``: at most
10, each ``{externalSource: {id}, value}`` with a value of 1..255 characters and the id of an
existing ExternalSource. Fields of the SDK model the emulator does not interpret (social ids,
``customFields``, ``schema``, ``surveyOptOut``) are stored as given; unknown fields are a 400;
read-only ones are accepted and ignored. ``externalOrganization`` references an existing
ExternalOrganization by its id (stored as ``{id}``, read back as ``{id, selfUri}``) and
``division`` an existing division (fixed at creation: see ``externalcontacts_enrich.py``).

The profile object (seeding, search terms, its own state) is ``externalcontacts.py``; the
routes are ``externalcontacts_routes.py`` (contacts, scan, external sources) and
``externalcontacts_bulk.py`` (bulk endpoints), PATCH ``changes`` ``externalcontacts_patch.py``.
This module is the document model they all share.
"""

from __future__ import annotations

from typing import Any, Protocol

import phonenumbers

from syncd.emulator.profiles._common import (
    EMAIL,
    Content,
    Invalid,
    MissingReference,
    check_body,
    object_items,
)
from syncd.emulator.store import Doc

API = "/api/v2/externalcontacts"
NAME_FIELDS = ("firstName", "middleName", "lastName", "salutation", "title")
PHONE_FIELDS = ("workPhone", "cellPhone", "homePhone", "otherPhone")
EMAIL_FIELDS = ("workEmail", "personalEmail", "otherEmail")
# Stored as given (type-checked only): the emulator does not interpret them.
PASS_OBJECTS = (
    "twitterId",
    "lineId",
    "whatsAppId",
    "facebookId",
    "instagramId",
    "schema",
    "customFields",
)
PASS_LISTS = ("appleOpaqueIds",)
CONTENT_FIELDS = (
    *NAME_FIELDS,
    *PHONE_FIELDS,
    *EMAIL_FIELDS,
    "address",
    "twitterId",
    "lineId",
    "whatsAppId",
    "facebookId",
    "instagramId",
    "appleOpaqueIds",
    "externalIds",
    "externalOrganization",
    "surveyOptOut",
    "externalSystemUrl",
    "schema",
    "customFields",
    "division",
)
READ_ONLY_FIELDS = frozenset(
    {
        "id",
        "createDate",
        "modifyDate",
        "selfUri",
        "type",
        "identifiers",
        "externalDataSources",
        "canonicalContact",
        "mergeSet",
        "mergedFrom",
        "mergedTo",
        "mergeOperation",
    }
)
LIST_FIELDS = frozenset({"externalIds", "appleOpaqueIds"})
PHONE_INPUT = ("display", "extension", "acceptsSMS", "normalizationCountryCode")
PHONE_COMPUTED = frozenset({"e164", "countryCode", "userInput"})
ADDRESS_KEYS = ("address1", "address2", "city", "state", "postalCode", "countryCode")
ORG_KEYS = ("id", "name")
# Other ExternalOrganization attributes a client may send back: accepted, not stored.
ORG_IGNORED = frozenset(
    {
        "division", "companyType", "industry", "address", "phoneNumber", "faxNumber",
        "employeeCount", "revenue", "tags", "websites", "tickers", "twitterId",
        "externalSystemUrl", "modifyDate", "createDate", "trustor", "schema", "customFields",
        "identifiers", "externalIds", "externalDataSources", "selfUri",
    }
)  # fmt: skip
NAME_LIMIT = 1000
EMAIL_LIMIT = 256
DISPLAY_LIMIT = 512
URL_LIMIT = 1000
EXTERNAL_ID_LIMIT = 255
MAX_EXTERNAL_IDS = 10
CONTACT_TYPES = ("Curated", "Identified", "Ephemeral")


class Known(Protocol):
    """What validation checks references against (the profile object implements it)."""

    @property
    def strict_organizations(self) -> bool:
        """False: the legacy embedded ``{id, name}``, not checked against records."""
        ...

    def source_exists(self, source_id: str) -> bool: ...

    def organization_exists(self, organization_id: str) -> bool: ...

    def division_ref(self, division_id: str) -> dict[str, Any] | None: ...


# -- validation ---------------------------------------------------------------------------


def validate(body: Any, *, known: Known) -> Content:
    """The content a POST / PUT / bulk body states (fields left out are absent)."""
    content, problems = check_body(
        body,
        what="the contact",
        writable=CONTENT_FIELDS,
        read_only=READ_ONLY_FIELDS,
        check=lambda name, value: check_field(name, value, known),
    )
    if problems:
        raise Invalid(problems)
    return {name: value for name, value in content.items() if value is not None}


def check_field(name: str, value: Any, known: Known) -> Any:
    """The stored form of one field (None: the field is cleared); ValueError if invalid."""
    if value is None:
        return None
    if name in NAME_FIELDS:
        return text(value, NAME_LIMIT)
    if name in EMAIL_FIELDS:
        email = text(value, EMAIL_LIMIT)
        if email is not None and not EMAIL.fullmatch(email):
            raise ValueError("is not a valid email address")
        return email
    if name in PHONE_FIELDS:
        return phone(value)
    if name == "address":
        return strings(value, ADDRESS_KEYS, NAME_LIMIT, ignored=frozenset())
    if name == "externalOrganization":
        if not known.strict_organizations:
            return strings(value, ORG_KEYS, NAME_LIMIT, ignored=ORG_IGNORED)
        return _organization_ref(value, known)
    if name == "division":
        return division_ref(value, known)
    if name == "externalIds":
        return external_ids(value, known)
    if name == "externalSystemUrl":
        return http_url(value)
    if name == "surveyOptOut":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if name in PASS_LISTS:
        if not isinstance(value, list) or len(value) > MAX_EXTERNAL_IDS:
            raise ValueError(f"must be a list of at most {MAX_EXTERNAL_IDS} entries")
        return value or None
    if not isinstance(value, dict):
        raise ValueError("must be an object")
    return value


def text(value: Any, limit: int) -> str | None:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    text = value.strip()
    if len(text) > limit:
        raise ValueError(f"is longer than {limit} characters")
    return text or None


def http_url(value: Any) -> str | None:
    """An ``externalSystemUrl``: text of at most URL_LIMIT characters, http(s) only."""
    url = text(value, URL_LIMIT)
    if url is not None and not url.startswith(("http://", "https://")):
        raise ValueError("must be an http(s) URL")
    return url


def strings(value: Any, keys: tuple[str, ...], limit: int, *, ignored: frozenset[str]) -> Any:
    if not isinstance(value, dict):
        raise ValueError("must be an object")
    unknown = sorted(set(value) - set(keys) - ignored)
    if unknown:
        raise ValueError(f"has unknown field {unknown[0]!r}")
    out = {}
    for key in keys:
        try:
            cleaned = text(value[key], limit) if value.get(key) is not None else None
        except ValueError as exc:
            raise ValueError(f".{key} {exc}") from None
        if cleaned is not None:
            out[key] = cleaned
    return out or None


def _organization_ref(value: Any, known: Known) -> dict[str, str]:
    """A reference to an ExternalOrganization record, by its Genesys id, that must exist."""
    if not isinstance(value, dict):
        raise ValueError("must be an object")
    unknown = sorted(set(value) - set(ORG_KEYS) - ORG_IGNORED)
    if unknown:
        raise ValueError(f"has unknown field {unknown[0]!r}")
    org_id = value.get("id")
    if not isinstance(org_id, str) or not org_id:
        raise ValueError(".id is required: an organization is referenced by its id")
    if not known.organization_exists(org_id):
        message = f".id {org_id!r} does not exist: create the organization first"
        raise MissingReference(message, "organization.not.found")
    return {"id": org_id}


def division_ref(value: Any, known: Known) -> dict[str, Any]:
    """``{id, name, selfUri}`` of an existing division named by ``{id}``."""
    division_id = value.get("id") if isinstance(value, dict) else None
    if not isinstance(division_id, str) or not division_id:
        raise ValueError("must be an object with the division's id")
    ref = known.division_ref(division_id)
    if ref is None:
        message = f".id {division_id!r} is not a division of this organization"
        raise MissingReference(message, "division.not.found")
    return ref


def phone(value: Any) -> dict[str, Any]:
    """A PhoneNumber as stored: input fields checked, read-only fields computed."""
    if not isinstance(value, dict):
        raise ValueError("must be an object")
    unknown = sorted(set(value) - set(PHONE_INPUT) - PHONE_COMPUTED)
    if unknown:
        raise ValueError(f"has unknown field {unknown[0]!r}")
    raw = value.get("display")
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(".display is required (a string)")
    if len(raw) > DISPLAY_LIMIT:
        raise ValueError(f".display is longer than {DISPLAY_LIMIT} characters")
    out: dict[str, Any] = {"display": raw.strip()}
    extension = value.get("extension")
    if extension is not None:
        if isinstance(extension, bool) or not isinstance(extension, int) or extension < 0:
            raise ValueError(".extension must be a non-negative integer")
        out["extension"] = extension
    sms = value.get("acceptsSMS")
    if sms is not None:
        if not isinstance(sms, bool):
            raise ValueError(".acceptsSMS must be true or false")
        out["acceptsSMS"] = sms
    region = value.get("normalizationCountryCode")
    if region is not None:
        if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(".normalizationCountryCode must be a region code such as US or DE")
        out["normalizationCountryCode"] = region.upper()
    out["userInput"] = raw
    try:
        parsed = phonenumbers.parse(raw, region.upper() if isinstance(region, str) else "US")
    except phonenumbers.NumberParseException:
        return out
    if phonenumbers.is_possible_number(parsed):
        international = phonenumbers.PhoneNumberFormat.INTERNATIONAL
        out["display"] = phonenumbers.format_number(parsed, international)
        out["e164"] = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        country = phonenumbers.region_code_for_number(parsed)
        if country and country != "ZZ":
            out["countryCode"] = country
    return out


def external_ids(value: Any, known: Known) -> list[dict[str, Any]] | None:
    out = []
    keys = frozenset({"externalSource", "value"})
    for where, item in object_items(value, limit=MAX_EXTERNAL_IDS, keys=keys):
        source = item.get("externalSource")
        source_id = source.get("id") if isinstance(source, dict) else None
        if not isinstance(source_id, str) or not source_id:
            raise ValueError(f"{where}.externalSource.id is required")
        if not known.source_exists(source_id):
            message = f"{where}.externalSource {source_id!r} does not exist"
            raise MissingReference(message, "external.source.not.found")
        claimed = item.get("value")
        if not isinstance(claimed, str) or not claimed or len(claimed) > EXTERNAL_ID_LIMIT:
            raise ValueError(f"{where}.value must be a string of 1..{EXTERNAL_ID_LIMIT} characters")
        out.append(
            {
                "externalSource": {
                    "id": source_id,
                    "selfUri": f"{API}/externalsources/{source_id}",
                },
                "value": claimed,
            }
        )
    return out or None


# -- documents ----------------------------------------------------------------------------


def build(
    contact_id: str,
    content: Content,
    *,
    created: str,
    modified: str,
    contact_type: str = "Curated",
) -> Doc:
    """The wire document: fields in the SDK model's order, empty fields left out."""
    doc: Doc = {"id": contact_id}
    for name in CONTENT_FIELDS:
        value = content.get(name)
        if value is not None:
            doc[name] = value
    org = doc.get("externalOrganization")
    if isinstance(org, dict) and "id" in org:
        doc["externalOrganization"] = {**org, "selfUri": f"{API}/organizations/{org['id']}"}
    doc["createDate"] = created
    doc["modifyDate"] = modified
    doc["type"] = contact_type
    doc["selfUri"] = f"{API}/contacts/{contact_id}"
    return doc


def content_of(doc: Doc) -> Content:
    content = {name: doc[name] for name in CONTENT_FIELDS if name in doc}
    org = content.get("externalOrganization")
    if isinstance(org, dict):
        content["externalOrganization"] = {k: v for k, v in org.items() if k in ORG_KEYS}
    return content
