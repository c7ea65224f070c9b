"""The diff on its own: pure inputs, one decision out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from syncd.model import Contact, Organization, Phone
from syncd.store.changes import MirrorRow
from syncd.store.links import Link
from syncd.sync import diff as d
from syncd.sync.canonical import (
    ContentRules,
    RawContact,
    content_hash,
    normalize,
    normalize_remote,
)
from syncd.sync.plan import desired_from_row

NOW = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def wanted(**kw: object) -> d.Wanted:
    raw = RawContact(
        external_id=str(kw.pop("external_id", "X-1")),
        first_name=kw.pop("first_name", "Ada"),  # type: ignore[arg-type]
        last_name=kw.pop("last_name", "Lovelace"),  # type: ignore[arg-type]
        email=kw.pop("email", "ada@example.com"),  # type: ignore[arg-type]
        phone_numbers=kw.pop("phone_numbers", (("+1 415 555 0100", "WORK"),)),  # type: ignore[arg-type]
    )
    contact = normalize(raw)
    return d.Wanted(contact, content_hash(contact))


def remote(gid: str, w: d.Wanted | Contact) -> d.Remote:
    contact = w.contact if isinstance(w, d.Wanted) else normalize_remote(w)
    return d.Remote(gid, contact, content_hash(contact))


def synced_link(w: d.Wanted, gid: str = "g-1", **kw: object) -> Link:
    return Link(
        external_id=w.contact.external_id,
        state=str(kw.pop("state", "synced")),
        genesys_id=gid,
        synced_content=w.contact.content(),
        synced_hash=w.hash,
        **kw,  # type: ignore[arg-type]
    )


def test_new_row_is_created_with_every_field() -> None:
    w = wanted()
    decision = d.diff(w, None, now=NOW)
    assert isinstance(decision.action, d.Create)
    assert decision.action.changes["first_name"] == [None, "Ada"]


def test_changed_row_is_patched_with_changed_fields_only() -> None:
    old = wanted()
    new = wanted(first_name="Augusta")
    decision = d.diff(new, synced_link(old), now=NOW)
    assert decision.action == d.Update("g-1", new.contact, {"first_name": ["Ada", "Augusta"]})


@pytest.mark.parametrize(
    "variant",
    [
        {"email": "  ADA@Example.COM "},
        {"phone_numbers": (("(415) 555-0100", "work"),)},
        {"phone_numbers": (("+14155550100", "WORK"), ("+1-415-555-0100", "WORK"))},
        {"first_name": "  Ada\t"},
        {"first_name": "Zoe\u0308"},  # NFD of Zoë
    ],
)
def test_formatting_only_differences_are_unchanged(variant: dict[str, object]) -> None:
    base_kw: dict[str, object] = {"first_name": "Zoë"} if "Zoe" in str(variant) else {}
    old = wanted(**base_kw)
    new = wanted(**variant)
    decision = d.diff(new, synced_link(old), now=NOW)
    assert isinstance(decision.action, d.Unchanged), decision
    # ... and when Genesys holds it in yet another format, a full reconcile agrees.
    shown = Contact(
        external_id="X-1",
        first_name=f" {old.contact.first_name} ",
        last_name="Lovelace",
        email="Ada@EXAMPLE.com",
        phone_numbers=(Phone("+1 (415) 555-0100", "work"),),
    )
    view = d.RemoteView(observed=True, linked=remote("g-1", shown))
    assert isinstance(d.diff(new, synced_link(old), view, now=NOW).action, d.Unchanged)


def test_tombstone_of_linked_contact_is_a_delete() -> None:
    w = wanted()
    assert d.diff(d.Absent(tombstoned=True), synced_link(w), now=NOW).action == d.Delete("g-1")
    assert d.diff(d.Absent(), synced_link(w), now=NOW).action == d.Delete("g-1")


def test_absent_and_unlinked_is_never_deleted() -> None:
    """Invariant 3: a remote contact without a link is an orphan, reported, not deleted."""
    w = wanted()
    view = d.RemoteView(observed=True, others=(remote("g-9", w),))
    decision = d.diff(d.Absent(tombstoned=True), None, view, now=NOW)
    assert isinstance(decision.action, d.Nothing)
    assert [o.genesys_id for o in decision.orphans] == ["g-9"]


def test_existing_remote_with_same_external_id_is_adopted() -> None:
    w = wanted(first_name="Augusta")
    found = remote("g-7", wanted())
    decision = d.diff(w, None, d.RemoteView(observed=True, others=(found,)), now=NOW)
    assert decision.action == d.Adopt(found, w.contact, {"first_name": ["Ada", "Augusta"]})


def test_several_remotes_with_same_external_id_are_reported_not_adopted() -> None:
    w = wanted()
    view = d.RemoteView(observed=True, others=(remote("g-7", w), remote("g-8", w)))
    decision = d.diff(w, None, view, now=NOW)
    assert isinstance(decision.action, d.Wait)
    assert {r.genesys_id for r in decision.duplicates} == {"g-7", "g-8"}


def test_duplicates_of_a_linked_contact_are_reported_and_the_link_kept() -> None:
    w = wanted()
    view = d.RemoteView(observed=True, linked=remote("g-1", w), others=(remote("g-2", w),))
    decision = d.diff(w, synced_link(w), view, now=NOW)
    assert isinstance(decision.action, d.Unchanged)
    assert [r.genesys_id for r in decision.duplicates] == ["g-2"]


def test_remote_edited_by_hand_is_drift_with_remote_old_values() -> None:
    w = wanted()
    edited = remote("g-1", wanted(first_name="Mallory", email="m@evil.example"))
    decision = d.diff(w, synced_link(w), d.RemoteView(observed=True, linked=edited), now=NOW)
    assert decision.action == d.Drift(
        "g-1",
        w.contact,
        {"first_name": ["Mallory", "Ada"], "email": ["m@evil.example", "ada@example.com"]},
    )


def test_crm_change_with_untouched_remote_is_an_update_not_drift() -> None:
    old, new = wanted(), wanted(last_name="King")
    view = d.RemoteView(observed=True, linked=remote("g-1", old))
    decision = d.diff(new, synced_link(old), view, now=NOW)
    assert decision.action == d.Update("g-1", new.contact, {"last_name": ["Lovelace", "King"]})


def test_linked_contact_missing_from_listing_needs_a_confirming_get() -> None:
    w = wanted()
    decision = d.diff(w, synced_link(w), d.RemoteView(observed=True), now=NOW)
    assert isinstance(decision.action, d.Recreate)
    assert decision.action.confirmed is False
    confirmed = d.RemoteView(observed=True, confirmed_missing=True)
    action = d.diff(w, synced_link(w), confirmed, now=NOW).action
    assert isinstance(action, d.Recreate)
    assert action.confirmed


def test_invalid_row_is_rejected_once_then_waits() -> None:
    row = MirrorRow("X-1", "Ada", None, "not-an-email", None, None, None, deleted=False)
    desired = desired_from_row(row, ContentRules("US"))
    assert isinstance(desired, d.Invalid)
    assert any("lastName" in r for r in desired.reasons)
    assert any("email" in r for r in desired.reasons)
    decision = d.diff(desired, None, now=NOW)
    assert isinstance(decision.action, d.Reject)
    link = Link("X-1", "failed", rejected_hash=desired.raw_hash)
    assert isinstance(d.diff(desired, link, now=NOW).action, d.Wait)


def test_content_rejected_by_the_api_waits_until_it_changes() -> None:
    w = wanted(first_name="Too")
    link = Link("X-1", "failed", rejected_hash=w.hash)
    assert isinstance(d.diff(w, link, now=NOW).action, d.Wait)
    changed = wanted(first_name="Fixed")
    assert isinstance(d.diff(changed, link, now=NOW).action, d.Create)


def test_failed_row_waits_for_its_backoff() -> None:
    old, new = wanted(), wanted(first_name="B")
    link = synced_link(old, state="failed", attempts=2, next_attempt_at=NOW + timedelta(minutes=1))
    assert isinstance(d.diff(new, link, now=NOW).action, d.Wait)
    assert isinstance(d.diff(new, link, now=NOW + timedelta(minutes=2)).action, d.Update)
    assert isinstance(d.diff(new, link, now=NOW, ignore_backoff=True).action, d.Update)


def test_pending_intent_waits_for_resolution() -> None:
    w = wanted()
    link = Link("X-1", "pending_create")
    assert isinstance(d.diff(w, link, now=NOW).action, d.Wait)


def test_unsent_link_of_a_removed_row_is_forgotten() -> None:
    link = Link("X-1", "failed", rejected_hash="raw:x")
    assert isinstance(d.diff(d.Absent(), link, now=NOW).action, d.Forget)


def test_restored_row_of_a_held_link_is_unchanged() -> None:
    w = wanted()
    assert isinstance(d.diff(w, synced_link(w, state="held"), now=NOW).action, d.Unchanged)


def test_stored_values_of_the_wrong_type_are_rejected_with_a_reason() -> None:
    row = MirrorRow("X-1", 42, "L", None, "{not json", None, None, deleted=False)  # type: ignore[arg-type]
    desired = desired_from_row(row, ContentRules("US"))
    assert isinstance(desired, d.Invalid)
    assert any("firstName" in r for r in desired.reasons)
    assert any("phoneNumbers" in r for r in desired.reasons)


def test_organization_change_is_one_field() -> None:
    old = wanted()
    new_contact = Contact(
        **{
            **{
                f: getattr(old.contact, f)
                for f in ("external_id", "first_name", "last_name", "email", "phone_numbers")
            },
            "organization": Organization("o-1", "Acme"),
        }
    )
    new = d.Wanted(new_contact, content_hash(new_contact))
    action = d.diff(new, synced_link(old), now=NOW).action
    assert isinstance(action, d.Update)
    assert list(action.changes) == ["organization"]
