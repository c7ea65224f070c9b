"""In the externalcontacts profile a row needs only its externalId and some content (issue 13):
External Contacts requires no field, so rows without a first or last name are imported and
synced; the reference API requires both names, and there they are still rejected.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from syncd.config import parse_settings
from syncd.store.db import Database
from syncd.sync.options import EngineOptions
from tests.sync.conftest import FAST_OPTIONS, Harness, import_csv, make_app, person

ROWS = [
    {"externalId": "N-1", "email": "only.email@example.com"},
    {"externalId": "N-2", "lastName": "Surname-Only"},
    {"externalId": "N-3"},  # nothing but its id: nothing to send
]


def _import(db: Database, tmp_path: Path, profile: str) -> tuple[int, str, set[str]]:
    result, stored = import_csv(db, tmp_path, ROWS, profile=profile)
    return result.exit_code, result.output, stored


def test_the_import_takes_rows_without_names_in_externalcontacts(
    db: Database, tmp_path: Path
) -> None:
    code, output, stored = _import(db, tmp_path, "externalcontacts")
    assert stored == {"N-1", "N-2"}
    assert code == 1, output  # one row rejected
    assert "no content: a row needs a name, an email, a phone number or an organization" in output


def test_the_reference_profile_still_requires_both_names(db: Database, tmp_path: Path) -> None:
    code, output, stored = _import(db, tmp_path, "reference")
    assert stored == set()
    assert code == 1
    assert "firstName: missing (Genesys requires it)" in output


def test_a_contact_without_names_is_synced_and_names_come_and_go(db: Database) -> None:
    options = replace(FAST_OPTIONS, names_required=False)
    h = Harness(db, make_app("externalcontacts"), options=options)
    h.upsert(person("N-1", first=None, last=None))
    report = h.run()
    assert report.status == "succeeded", report.error
    [doc] = h.raw_remote()
    assert "firstName" not in doc
    assert "lastName" not in doc
    assert doc["workEmail"] == "n-1@example.com"
    h.upsert(person("N-1", first="Ada", last=None))
    assert h.run().counts["updated"] == 1
    assert h.raw_remote()[0]["firstName"] == "Ada"
    h.upsert(person("N-1", first=None, last=None))
    assert h.run().counts["updated"] == 1
    assert "firstName" not in h.raw_remote()[0]
    assert h.run("full").counts["updated"] == 0  # nothing churns


@pytest.mark.parametrize("names_required", [True, False])
def test_the_engine_rejects_a_nameless_row_only_where_names_are_required(
    db: Database, names_required: bool
) -> None:
    h = Harness(
        db,
        make_app("externalcontacts"),
        options=replace(FAST_OPTIONS, names_required=names_required),
    )
    h.upsert(person("N-9", first=None, last=None))
    report = h.run()
    assert report.counts["rejected"] == (1 if names_required else 0)
    assert report.counts["created"] == (0 if names_required else 1)


@pytest.mark.parametrize(
    ("profile", "required"), [("reference", True), ("externalcontacts", False)]
)
def test_the_daemon_takes_the_rule_from_the_configured_profile(
    profile: str, required: bool
) -> None:
    settings = parse_settings(
        {"genesys": {"client_id": "x", "profile": profile}}, require_secret=False
    )
    options = EngineOptions.from_settings(settings, env={})
    assert options.names_required is required
    assert options.content_rules.names_required is required
