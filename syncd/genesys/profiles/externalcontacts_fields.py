"""The slots of an ExternalContact that hold syncd's email and phones, how a phone number
held in a slot compares with the CRM's, and the documented length limits of what syncd sends.

Separate from the profile so the slot rules (checked once, at configuration load) read on
their own; :mod:`syncd.genesys.profiles.externalcontacts` re-exports :class:`FieldMapping`.
The limits are checked before sending because Genesys' answer to an over-long value is a 400
that costs a request (and, for a search, may silently match nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syncd.model import Contact

PHONE_TYPES = ("WORK", "MOBILE", "HOME", "OTHER")
PHONE_SLOTS = ("workPhone", "cellPhone", "homePhone", "otherPhone")
EMAIL_SLOTS = ("workEmail", "personalEmail", "otherEmail")
DEFAULT_PHONE_SLOTS = dict(zip(PHONE_TYPES, PHONE_SLOTS, strict=True))
# Computed by the server from what was sent: never sent back.
PHONE_READ_ONLY = frozenset({"e164", "countryCode", "userInput"})

# Documented limits, in characters (SDK models; the developer forum for ``q``; the
# ExternalSource name limit lives with the setting, in syncd.config).
MAX_EXTERNAL_ID = 255  # an externalIds entry's value
MAX_NAME = 1000  # firstName, lastName
MAX_EMAIL = 256  # workEmail, personalEmail, otherEmail


@dataclass(frozen=True, slots=True)
class FieldMapping:
    """Which ExternalContact slots hold the canonical email and phones."""

    email_slot: str = "workEmail"
    phone_slots: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PHONE_SLOTS))

    def __post_init__(self) -> None:
        if self.email_slot not in EMAIL_SLOTS:
            raise ValueError(f"email_slot must be one of {', '.join(EMAIL_SLOTS)}")
        slots = {**DEFAULT_PHONE_SLOTS, **self.phone_slots}
        if set(slots) != set(PHONE_TYPES) or sorted(slots.values()) != sorted(PHONE_SLOTS):
            raise ValueError("phone_slots must map WORK, MOBILE, HOME, OTHER to distinct slots")
        object.__setattr__(self, "phone_slots", slots)

    def type_of(self, slot: str) -> str:
        return next(kind for kind, name in self.phone_slots.items() if name == slot)


def held_number(phone: Any) -> str | None:
    """The number a PhoneNumber holds: its E.164 form, else what was displayed."""
    if not isinstance(phone, dict):
        return None
    value = phone.get("e164") or phone.get("display")
    return value if isinstance(value, str) and value else None


def same_number(number: str | None, held: Any) -> bool:
    """Whether the slot already holds ``number`` (the server may have reformatted it)."""
    if number is None or not isinstance(held, dict):
        return False
    current = held_number(held)
    return current is not None and (current == number or _digits(current) == _digits(number))


def _digits(text: str | None) -> str:
    return "".join(ch for ch in text or "" if ch.isdigit())


def length_problem(contact: Contact, email_slot: str) -> str | None:
    """Which of ``contact``'s values is longer than Genesys stores (None: all fit)."""
    values = (
        ("externalIds value", contact.external_id, MAX_EXTERNAL_ID),
        ("firstName", contact.first_name, MAX_NAME),
        ("lastName", contact.last_name, MAX_NAME),
        (email_slot, contact.email, MAX_EMAIL),
    )
    for wire, value, limit in values:
        if value is not None and len(value) > limit:
            return f"{wire} is {len(value)} characters; Genesys stores at most {limit}"
    return None
