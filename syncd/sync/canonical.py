"""Canonical form: the one representation in which contacts are compared, hashed and sent.

Names are trimmed and NFC-normalized (a tab or line break inside one reads as a space),
emails trimmed, lower-cased and checked, phone numbers parsed with ``phonenumbers`` and
written in E.164 (CRM numbers must be valid, without extension), phone lists de-duplicated
and ordered.
Two contacts with the same meaning therefore have the same content hash, and an unchanged
contact costs zero write calls (invariant 5).

``normalize`` is strict (a CRM row that cannot be sent raises :class:`RejectedRow` with every
reason); ``normalize_remote`` is lenient (what Genesys holds is compared, never rejected).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import phonenumbers

from syncd.errors import InputError
from syncd.model import CONTACT_FIELDS, Contact, Organization, Phone

MAX_EXTERNAL_ID = 255
MAX_NAME = 1000
MAX_EMAIL = 256
MAX_ORG_FIELD = 1000
MAX_PHONE_DISPLAY = 512  # a PhoneNumber's display text
_E164 = re.compile(r"\+[1-9]\d{1,14}")
PHONE_TYPES = ("WORK", "MOBILE", "HOME", "OTHER")
_PHONE_TYPE_ORDER = {t: i for i, t in enumerate(PHONE_TYPES)}
_EMAIL_RE = re.compile(
    r"^[^@\s\"<>(),;:\\\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
# C0 controls and DEL; tab, CR and LF are allowed (a quoted CSV field may span lines).
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# In a name, a tab or line break (with the spaces around it) reads as one space: a name
# shown on an agent's screen has one line, and a CRM export that wrapped it meant a space.
_NAME_BREAKS = re.compile(r" *[\t\r\n][\t\r\n ]*")


class RejectedRow(InputError):
    """A CRM row that cannot be sent; ``reasons`` names each field and what is wrong."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


@dataclass(frozen=True, slots=True)
class RawContact:
    """A CRM contact as it arrived (mirror row, CSV or JSONL line), before normalization."""

    external_id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone_numbers: tuple[tuple[str, str], ...] = ()  # (number, type)
    organization_id: str | None = None
    organization_name: str | None = None


def clean_text(value: object) -> str | None:
    """Trim and NFC-normalize; empty becomes None. Non-strings are a caller bug."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    text = unicodedata.normalize("NFC", value).strip()
    return text or None


def clean_name(value: str | None) -> str | None:
    """:func:`clean_text`, then each run of tabs and line breaks inside as one space."""
    text = clean_text(value)
    return _NAME_BREAKS.sub(" ", text) if text else None


def _check_text(field: str, value: str | None, limit: int, reasons: list[str]) -> None:
    if value is None:
        return
    if len(value) > limit:
        reasons.append(f"{field}: longer than {limit} characters ({len(value)})")


def _control_characters(raw: RawContact) -> list[str]:
    """Fields holding control characters, checked before trimming (which would hide some)."""
    fields: list[tuple[str, str | None]] = [
        ("externalId", raw.external_id),
        ("firstName", raw.first_name),
        ("lastName", raw.last_name),
        ("email", raw.email),
        ("organizationId", raw.organization_id),
        ("organizationName", raw.organization_name),
    ]
    fields += [("phoneNumbers", number) for number, _ in raw.phone_numbers]
    fields += [("phoneNumbers", kind) for _, kind in raw.phone_numbers]
    found: list[str] = []
    for name, value in fields:
        if isinstance(value, str) and CONTROL_CHARS.search(value.strip(" \t\r\n")):
            message = f"{name}: contains control characters"
            if message not in found:
                found.append(message)
    return found


def normalize_email(value: str | None) -> str | None:
    text = clean_text(value)
    return text.lower() if text else None


def normalize_phone(number: str, default_region: str, *, strict: bool = True) -> str:
    """E.164 for a number; ValueError with a reason otherwise.

    ``strict`` (a CRM row) also wants a number in use in its country and no extension: E.164
    has no room for one, and sending the number without it would drop it silently. A wrong
    number is worse than none: ``01 42 68 53 00`` read in region US is not a US number (it is
    French, written without its country code), and E.164 would make it ``+10142685300``.
    Lenient (what Genesys holds) only wants a number of a possible length.
    """
    try:
        parsed = phonenumbers.parse(number, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"cannot be parsed as a phone number ({exc._msg})") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError("is not a possible phone number (wrong length for its country)")
    if strict and parsed.extension:
        raise ValueError(
            f"has an extension ({parsed.extension}) that syncd cannot send: a Genesys phone "
            "number holds no extension here; put the number without it, or the extension in "
            "another field"
        )
    if strict and not phonenumbers.is_valid_number(parsed):
        region = phonenumbers.region_code_for_number(parsed) or default_region
        raise ValueError(
            f"is not a valid number in {region} (read with default region {default_region}; "
            "give numbers from other countries with their +country code)"
        )
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def _order_phones(phones: Iterable[Phone]) -> tuple[Phone, ...]:
    unique = {(p.type, p.number): p for p in phones}
    return tuple(
        sorted(unique.values(), key=lambda p: (_PHONE_TYPE_ORDER.get(p.type, 99), p.number))
    )


def normalize(
    raw: RawContact,
    *,
    default_region: str = "US",
    names_required: bool = True,
    display_phones: bool = False,
) -> Contact:
    """The canonical contact for a CRM row; RejectedRow lists every reason it cannot be sent.

    ``names_required``: the reference API requires both names; External Contacts requires no
    field, so there a row needs only its externalId and some content. ``display_phones``: a
    phone number phonenumbers cannot read at all is kept as the text given (Genesys stores
    it as display text) instead of rejecting the row."""
    reasons: list[str] = _control_characters(raw)
    external_id = clean_text(raw.external_id) or ""
    if not external_id:
        reasons.append("externalId: missing")
    _check_text("externalId", external_id, MAX_EXTERNAL_ID, reasons)
    first = clean_name(raw.first_name)
    last = clean_name(raw.last_name)
    if first is None and names_required:
        reasons.append("firstName: missing (Genesys requires it)")
    if last is None and names_required:
        reasons.append("lastName: missing (Genesys requires it)")
    _check_text("firstName", first, MAX_NAME, reasons)
    _check_text("lastName", last, MAX_NAME, reasons)
    email = normalize_email(raw.email)
    if email is not None:
        if len(email) > MAX_EMAIL:
            reasons.append(f"email: longer than {MAX_EMAIL} characters ({len(email)})")
        elif not _EMAIL_RE.match(email):
            reasons.append(f"email: {email!r} is not a valid address")
    phones: list[Phone] = []
    for number, kind in raw.phone_numbers:
        text = clean_text(number)
        if text is None:
            continue
        ptype = (clean_text(kind) or "WORK").upper()
        if ptype not in _PHONE_TYPE_ORDER:
            reasons.append(f"phoneNumbers: type {ptype!r} is not one of {', '.join(PHONE_TYPES)}")
            continue
        try:
            phones.append(Phone(number=normalize_phone(text, default_region), type=ptype))
        except ValueError as exc:
            if not display_phones or _readable(text, default_region):
                reasons.append(f"phoneNumbers: {text!r} {exc}")
            elif len(text) > MAX_PHONE_DISPLAY:
                reasons.append(f"phoneNumbers: {text!r} is longer than {MAX_PHONE_DISPLAY}")
            else:
                phones.append(Phone(number=text, type=ptype))
    org_id = clean_text(raw.organization_id)
    org_name = clean_name(raw.organization_name)
    _check_text("organizationId", org_id, MAX_ORG_FIELD, reasons)
    _check_text("organizationName", org_name, MAX_ORG_FIELD, reasons)
    if not reasons and not any((first, last, email, phones, org_id, org_name)):
        reasons.append(
            "no content: a row needs a name, an email, a phone number or an organization"
        )
    if reasons:
        raise RejectedRow(reasons)
    return Contact(
        external_id=external_id,
        first_name=first,
        last_name=last,
        email=email,
        phone_numbers=_order_phones(phones),
        organization=Organization(id=org_id, name=org_name) if (org_id or org_name) else None,
    )


def normalize_remote(contact: Contact, *, default_region: str = "US") -> Contact:
    """Canonical form of what Genesys holds; never rejects (unparseable phones kept as text)."""
    phones = []
    for phone in contact.phone_numbers:
        text = clean_text(phone.number)
        if text is None:
            continue
        try:
            number = normalize_phone(text, default_region, strict=False)
        except ValueError:
            number = text
        phones.append(Phone(number=number, type=(phone.type or "WORK").upper()))
    org = contact.organization
    org_id = clean_text(org.id) if org else None
    org_name = clean_text(org.name) if org else None
    return Contact(
        external_id=clean_text(contact.external_id) or "",
        first_name=clean_text(contact.first_name),
        last_name=clean_text(contact.last_name),
        email=normalize_email(contact.email),
        phone_numbers=_order_phones(phones),
        organization=Organization(id=org_id, name=org_name) if (org_id or org_name) else None,
    )


def is_display_text(number: str) -> bool:
    """Whether a canonical phone number is display text (kept as the CRM wrote it), not E.164."""
    return _E164.fullmatch(number) is None


def _readable(number: str, default_region: str) -> bool:
    """Whether phonenumbers reads ``number`` as a number of a possible length: one it can
    make E.164 (rightly or not), which is never kept as display text."""
    try:
        return bool(phonenumbers.is_possible_number(phonenumbers.parse(number, default_region)))
    except phonenumbers.NumberParseException:
        return False


@dataclass(frozen=True, slots=True)
class ContentRules:
    """How one deployment puts contacts in canonical form, on both sides of the diff."""

    default_region: str = "US"
    # Organizations are records (externalcontacts): a contact holds the organization's id
    # only. Its name is the record's, so a rename in the CRM is one write to the record and
    # changes no contact's content (see syncd.sync.organizations).
    organizations_as_records: bool = False
    # The reference API requires first and last names; External Contacts requires no field.
    names_required: bool = True
    # Unreadable phone numbers kept as display text (externalcontacts, lenient policy).
    display_phones: bool = False

    @classmethod
    def for_profile(
        cls, profile: str, default_region: str = "US", phone_policy: str = "strict"
    ) -> ContentRules:
        """The rules a wire profile sets for CRM rows, shared by the import and the engine:
        the reference API requires both names and readable numbers; External Contacts
        requires no field and stores unreadable numbers as display text (``phone_policy``
        ``"lenient"``). Organizations as records come from the client, not from here."""
        external = profile == "externalcontacts"
        return cls(
            default_region,
            names_required=not external,
            display_phones=external and phone_policy == "lenient",
        )

    def normalize(self, raw: RawContact) -> Contact:
        """:func:`normalize` under these rules (RejectedRow when the row cannot be sent)."""
        return normalize(
            raw,
            default_region=self.default_region,
            names_required=self.names_required,
            display_phones=self.display_phones,
        )

    def record_name(self, contact: Contact) -> str | None:
        """The organization name that is the record's under these rules, not the contact's
        (None: organizations embedded, or nothing to reference the record by)."""
        org = contact.organization
        if not self.organizations_as_records or org is None or org.id is None:
            return None
        return org.name

    def referencing(self, contact: Contact) -> Contact:
        """``contact`` as the diff compares it under these rules."""
        org = contact.organization
        if org is None or self.record_name(contact) is None:
            return contact
        return replace(contact, organization=Organization(id=org.id))


def content_hash(content: Mapping[str, Any] | Contact) -> str:
    """SHA-256 of the canonical content (external_id excluded: it is the key, not content)."""
    data = content.content() if isinstance(content, Contact) else dict(content)
    blob = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def changed_fields(old: Mapping[str, Any] | Contact | None, new: Contact) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for each canonical field that differs (all when old is None)."""
    new_content = new.content()
    old_content = (old.content() if isinstance(old, Contact) else dict(old)) if old else {}
    changes = {}
    for name in CONTACT_FIELDS:
        empty: Any = [] if name == "phone_numbers" else None
        before = old_content.get(name)
        if (before if before is not None else empty) != new_content[name]:
            changes[name] = [before, new_content[name]]
    return changes
