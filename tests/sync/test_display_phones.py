"""``[sync] phone_policy`` (issue 13): in the externalcontacts profile a phone number that
phonenumbers cannot read at all is sent as display text, which Genesys stores (but cannot
search or dial), with a warning on the ledger row; ``"strict"`` rejects the row instead. A
number that reads as one of the wrong country, or with an extension, is rejected either way
(a wrong number is worse than none).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from syncd.config import parse_settings
from syncd.store.db import Database
from syncd.sync.canonical import RawContact, RejectedRow, normalize
from syncd.sync.options import EngineOptions
from tests.sync.conftest import (
    FAST_OPTIONS,
    Harness,
    import_csv,
    make_app,
    person,
    single_calls,
)


def _raw(number: str) -> RawContact:
    return RawContact(external_id="P-1", first_name="Ada", phone_numbers=((number, "WORK"),))


@pytest.mark.parametrize("text", ["ask at reception", "555-01", "n/a"])
def test_an_unreadable_number_is_kept_as_display_text_when_lenient(text: str) -> None:
    contact = normalize(_raw(text), names_required=False, display_phones=True)
    assert [p.number for p in contact.phone_numbers] == [text]
    with pytest.raises(RejectedRow):
        normalize(_raw(text), names_required=False)  # strict


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("01 42 68 53 00", "is not a valid number in"),  # French, written without +33
        ("+1 415 555 0100 ext. 12", "has an extension"),
        ("x" * 600, "is longer than 512"),
    ],
)
def test_a_number_read_wrongly_or_with_an_extension_is_rejected_either_way(
    text: str, why: str
) -> None:
    with pytest.raises(RejectedRow) as rejected:
        normalize(_raw(text), names_required=False, display_phones=True)
    assert why in rejected.value.reasons[0]


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_a_display_text_phone_is_sent_with_a_ledger_warning_and_never_churns(
    db: Database, bulk: bool
) -> None:
    options = replace(FAST_OPTIONS, names_required=False, display_phones=True)
    h = Harness(db, make_app("externalcontacts"), options=options)
    if not bulk:
        h.wrap = single_calls
    phones = [
        {"number": "ask at reception", "type": "WORK"},
        {"number": "+1 415 555 0100", "type": "MOBILE"},
    ]
    h.upsert(person("P-1", phone_numbers=phones), person("P-2"))
    report = h.run()
    assert report.status == "succeeded", report.error
    docs = {d["externalIds"][0]["value"]: d for d in h.raw_remote()}
    assert docs["P-1"]["workPhone"]["display"] == "ask at reception"
    assert "e164" not in docs["P-1"]["workPhone"]
    assert docs["P-1"]["cellPhone"]["e164"] == "+14155550100"
    [row] = h.ledger(external_id="P-1", op="create")
    assert row["outcome"] == "ok"
    assert "'ask at reception' cannot be read as a number: sent as display text" in row["error"]
    assert h.ledger(external_id="P-2", op="create")[0]["error"] is None
    for kind in ("full", "incremental", "full"):
        again = h.run(kind)
        assert again.status == "succeeded", again.error
        assert again.counts["updated"] == 0


def _import(db: Database, tmp_path: Path, profile: str, policy: str | None) -> set[str]:
    row = {"externalId": "P-1", "firstName": "A", "lastName": "B", "workPhone": "n/a"}
    sync = f"phone_policy = '{policy}'" if policy else ""
    return import_csv(db, tmp_path, [row], profile=profile, sync=sync)[1]


@pytest.mark.parametrize(
    ("profile", "policy", "kept"),
    [
        ("externalcontacts", None, True),  # lenient by default
        ("externalcontacts", "strict", False),
        ("reference", "lenient", False),  # the reference API takes readable numbers only
    ],
)
def test_the_import_follows_the_profile_and_the_policy(
    db: Database, tmp_path: Path, profile: str, policy: str | None, kept: bool
) -> None:
    assert (_import(db, tmp_path, profile, policy) == {"P-1"}) is kept


def test_the_engine_takes_the_policy_from_the_configuration() -> None:
    def options(profile: str, **sync: str) -> EngineOptions:
        data = {"genesys": {"client_id": "x", "profile": profile}, "sync": sync}
        return EngineOptions.from_settings(parse_settings(data, require_secret=False), env={})

    assert options("externalcontacts").content_rules.display_phones is True
    assert options("externalcontacts", phone_policy="strict").content_rules.display_phones is False
    assert options("reference").content_rules.display_phones is False
