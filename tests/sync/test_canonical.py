"""Canonical form: equal meaning gives equal content and hash; bad rows list every reason."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.model import Contact, Organization, Phone
from syncd.sync.canonical import (
    RawContact,
    RejectedRow,
    changed_fields,
    content_hash,
    normalize,
    normalize_remote,
)


def raw(**kw: object) -> RawContact:
    base: dict[str, object] = {"external_id": "crm-1", "first_name": "Ann", "last_name": "Lee"}
    base.update(kw)
    return RawContact(**base)  # type: ignore[arg-type]


def test_formatting_differences_do_not_change_the_hash() -> None:
    a = normalize(
        raw(
            first_name="  José ",
            email=" Ann.Lee@Example.COM ",
            phone_numbers=(("(202) 555-0143", "mobile"), ("+44 20 7946 0958", "WORK")),
        )
    )
    b = normalize(
        raw(
            first_name=unicodedata.normalize("NFD", "José"),
            email="ann.lee@example.com",
            phone_numbers=(("+442079460958", "work"), ("202.555.0143", "MOBILE")),
        )
    )
    assert a == b
    assert content_hash(a) == content_hash(b)
    assert a.phone_numbers == (Phone("+442079460958", "WORK"), Phone("+12025550143", "MOBILE"))
    assert a.email == "ann.lee@example.com"


@pytest.mark.parametrize(
    ("kw", "reason"),
    [
        ({"external_id": "  "}, "externalId: missing"),
        ({"external_id": "x" * 256}, "externalId: longer than 255"),
        ({"last_name": None}, "lastName: missing"),
        ({"first_name": " "}, "firstName: missing"),
        ({"first_name": "x" * 1001}, "firstName: longer than 1000"),
        ({"email": "not-an-email"}, "email: 'not-an-email' is not a valid address"),
        ({"email": "a@" + "b" * 260 + ".com"}, "email: longer than 256"),
        ({"phone_numbers": (("12", "WORK"),)}, "is not a possible phone number"),
        ({"phone_numbers": (("call me", "WORK"),)}, "cannot be parsed"),
        ({"phone_numbers": (("+12025550143", "FAX"),)}, "type 'FAX' is not one of"),
        ({"last_name": "Lee\x00"}, "lastName: contains control characters"),
    ],
)
def test_each_bad_field_is_rejected_with_its_reason(kw: dict[str, object], reason: str) -> None:
    with pytest.raises(RejectedRow) as info:
        normalize(raw(**kw))
    assert any(reason in r for r in info.value.reasons), info.value.reasons


def test_all_reasons_reported_together() -> None:
    with pytest.raises(RejectedRow) as info:
        normalize(raw(last_name=None, email="x@", phone_numbers=(("1", "WORK"),)))
    assert len(info.value.reasons) == 3


def test_remote_normalization_never_rejects() -> None:
    remote = Contact(
        external_id=" crm-1 ",
        first_name=None,
        last_name="Lee",
        email="A@B.C",
        phone_numbers=(Phone("garbage", "mobile"),),
        organization=Organization(id=" ", name=None),
    )
    canon = normalize_remote(remote)
    assert canon.external_id == "crm-1"
    assert canon.email == "a@b.c"
    assert canon.phone_numbers == (Phone("garbage", "MOBILE"),)
    assert canon.organization is None


def test_changed_fields_names_only_what_changed() -> None:
    old = normalize(raw(email="a@example.com"))
    new = normalize(raw(email="b@example.com"))
    assert changed_fields(old, new) == {"email": ["a@example.com", "b@example.com"]}
    assert changed_fields(old.content(), old) == {}
    assert set(changed_fields(None, new)) == {
        "first_name",
        "last_name",
        "email",
    }  # phone_numbers and organization are empty on both sides: nothing to send


names = st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30)


@given(first=names, last=names)
def test_normalization_is_idempotent(first: str, last: str) -> None:
    try:
        once = normalize(raw(first_name=first, last_name=last))
    except RejectedRow:
        return
    again = normalize(raw(first_name=once.first_name, last_name=once.last_name))
    assert once == again
    assert normalize_remote(once) == once


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"email": "a\x01b@example.com"}, "email"),
        ({"phone_numbers": (("+1202555\x000143", "WORK"),)}, "phoneNumbers"),
        ({"first_name": "Ann\x1f"}, "firstName"),
        ({"last_name": "Le\x0be"}, "lastName"),
    ],
)
def test_control_characters_rejected_even_where_trimming_would_hide_them(
    kw: dict[str, object], field: str
) -> None:
    with pytest.raises(RejectedRow) as info:
        normalize(raw(**kw))
    assert f"{field}: contains control characters" in info.value.reasons
