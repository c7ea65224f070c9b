"""Merged-away contacts: kept aside (not listed, not searchable) as unresolved records.

Production merges contacts into a new one; the inputs then carry ``mergedTo`` and
``canonicalContact``. ``GET /contacts/{id}`` of a merged-away id answers per the
``merged_contact_get`` variant (the canonical contact, the unresolved record, or 404);
``GET /contacts/{id}/unresolved`` and ``POST /bulk/contacts/unresolved`` always give the
unresolved record. A merged contact may be merged again: ``canonicalContact`` follows the
chain to its head when read.
"""

from __future__ import annotations

from typing import Any

from syncd.emulator.profiles.externalcontacts_document import API
from syncd.emulator.store import Doc


def _ref(contact_id: str) -> dict[str, str]:
    return {"id": contact_id, "selfUri": f"{API}/contacts/{contact_id}"}


class Merges:
    def __init__(self) -> None:
        self._unresolved: dict[str, Doc] = {}

    def __contains__(self, contact_id: object) -> bool:
        return contact_id in self._unresolved

    def record(self, old: Doc, *, merged_to: str) -> None:
        self._unresolved[old["id"]] = {**old, "mergedTo": _ref(merged_to)}

    def canonical_id(self, contact_id: str) -> str:
        """The head of the merge chain ``contact_id`` is part of (itself if not merged)."""
        seen = set()
        while contact_id in self._unresolved and contact_id not in seen:
            seen.add(contact_id)
            contact_id = self._unresolved[contact_id]["mergedTo"]["id"]
        return contact_id

    def unresolved(self, contact_id: str) -> Doc | None:
        doc = self._unresolved.get(contact_id)
        if doc is None:
            return None
        return {**doc, "canonicalContact": _ref(self.canonical_id(contact_id))}

    def all(self) -> list[Doc]:
        return list(self._unresolved.values())

    def load(self, docs: list[Any]) -> None:
        for doc in docs:
            if isinstance(doc, dict) and isinstance(doc.get("id"), str):
                self._unresolved[doc["id"]] = doc
