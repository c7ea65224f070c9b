"""The rules every contact write of the externalcontacts profile follows, in one place.

POST, PUT, PATCH, the bulk writes, enrich and merges all store contacts through
:class:`ContactWriter`, so these hold on every route:

- a contact's ``division`` is set at creation (the home division unless given) and never
  changes: a write naming another division is a 400 on ``division``;
- a contact's ``type`` (Curated, Identified, Ephemeral) is kept by updates;
- a create naming an ExternalId another contact claims follows the
  ``claimed_external_id`` variant: ``duplicate`` (stored: two claimants), ``reject``
  (409, nothing stored) or ``merge`` (the values are combined into the claimant, 200);
- merging makes a new contact (``mergedFrom``) and the merged-away ones are kept aside
  as unresolved records carrying ``mergedTo`` / ``canonicalContact``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncd.emulator.profiles._common import Content, Invalid
from syncd.emulator.profiles.externalcontacts_document import (
    API,
    CONTENT_FIELDS,
    LIST_FIELDS,
    MAX_EXTERNAL_IDS,
    build,
    content_of,
)
from syncd.emulator.profiles.externalcontacts_fieldrules import FieldRules, combine
from syncd.emulator.profiles.externalcontacts_identity import claims_of
from syncd.emulator.responses import ApiProblem
from syncd.emulator.store import Doc, StoredContact

if TYPE_CHECKING:
    from syncd.emulator.profiles.externalcontacts import ExternalContactsProfile
    from syncd.emulator.state import Emulator

LIMITS = {"externalIds": MAX_EXTERNAL_IDS, "appleOpaqueIds": MAX_EXTERNAL_IDS}
MERGE_RULES = FieldRules(default_action="PreferExisting")


def combine_contact(existing: Content, provided: Content, rules: FieldRules) -> Content:
    return combine(
        existing, provided, rules, fields=CONTENT_FIELDS, list_fields=LIST_FIELDS, limits=LIMITS
    )


def ref(contact_id: str) -> dict[str, str]:
    return {"id": contact_id, "selfUri": f"{API}/contacts/{contact_id}"}


class ContactWriter:
    def __init__(self, emulator: Emulator, profile: ExternalContactsProfile) -> None:
        self.em = emulator
        self.profile = profile

    def claimant(self, content: Content) -> Doc | None:
        """The live contact that already claims one of ``content``'s ExternalIds."""
        for key in sorted(claims_of(content)):
            holder = self.profile.contact_claims.holder(key)
            if holder is not None:
                return self.em.get(holder)
        return None

    def create(
        self, content: Content, *, contact_type: str = "Curated", dry_run: bool = False
    ) -> tuple[Doc, int]:
        """``(document, status)``: 201 for a new contact, 200 when merged into a claimant."""
        policy = self.profile.variants.claimed_external_id
        claimant = self.claimant(content) if policy != "duplicate" else None
        if claimant is not None and policy == "reject":
            raise ApiProblem(
                409,
                f"An ExternalId of this contact is already claimed by contact {claimant['id']}.",
                code="identifier.conflict",
            )
        if claimant is not None:
            merged = combine_contact(content_of(claimant), content, FieldRules())
            return self.update(claimant, merged, dry_run=dry_run), 200
        content = dict(content)
        content.setdefault("division", self.profile.divisions.home)
        now = self.em.now_iso()
        contact_id = "" if dry_run else self.em.new_id()
        doc = build(contact_id, content, created=now, modified=now, contact_type=contact_type)
        if dry_run:
            doc.pop("id")
            doc.pop("selfUri")
        else:
            self.em.apply_create(StoredContact(contact_id, now, doc))
        return doc, 201

    def update(
        self,
        old: Doc,
        content: Content,
        *,
        op: str = "replace",
        dry_run: bool = False,
        contact_type: str | None = None,
    ) -> Doc:
        """Store a new version of ``old`` (its division and, unless told, its type kept)."""
        division = old.get("division")
        given = content.get("division")
        if given is not None and division is not None and given["id"] != division["id"]:
            message = "division cannot be changed after creation (delete and re-create)"
            raise Invalid([("division", "invalid.value", message)])
        content = {**content, "division": division} if division else content
        now = self.em.now_iso()
        doc = build(
            old["id"],
            content,
            created=old["createDate"],
            modified=now,
            contact_type=contact_type or old.get("type", "Curated"),
        )
        for name in ("canonicalContact", "mergeSet", "mergedFrom"):
            if name in old:
                doc[name] = old[name]
        if not dry_run:
            self.em.apply_update(old["id"], doc, op=op, at=now)
        return doc

    def merge(self, contact_ids: list[str], override: Content | None = None) -> Doc:
        """Merge live contacts into a new one: the most recently modified wins a field,
        the others fill what it lacks; ExternalIds are the union (at most 10)."""
        em = self.em
        if len(set(contact_ids)) < 2:
            raise ApiProblem(400, "A merge needs at least two different contacts.")
        olds = []
        for contact_id in contact_ids:
            doc = em.get(contact_id)
            if doc is None:
                raise ApiProblem(404, f"Contact {contact_id} was not found.", code="not.found")
            olds.append(doc)
        if len({(doc.get("division") or {}).get("id") for doc in olds}) > 1:
            raise ApiProblem(400, "Contacts of different divisions cannot be merged.")
        ordered = sorted(olds, key=lambda doc: doc["modifyDate"], reverse=True)
        content: Content = {}
        for doc in ordered:
            content = combine_contact(content, content_of(doc), MERGE_RULES)
        if override:
            content = combine_contact(content, override, FieldRules())
        types = {doc.get("type") for doc in olds}
        contact_type = next((t for t in ("Curated", "Identified") if t in types), "Ephemeral")
        now = em.now_iso()
        new_id = em.new_id()
        doc = build(new_id, content, created=now, modified=now, contact_type=contact_type)
        doc["canonicalContact"] = ref(new_id)
        doc["mergedFrom"] = [ref(old["id"]) for old in olds]
        doc["mergeSet"] = [ref(new_id), *(ref(old["id"]) for old in olds)]
        with em.lock:
            em.apply_create(StoredContact(new_id, now, doc))
            for old in olds:
                em.apply_delete(old["id"], at=now, op="merge")
                self.profile.merges.record(old, merged_to=new_id)
        return doc
