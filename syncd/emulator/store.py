"""The contacts store: a dict by id plus one sorted list of (dateCreated, id) keys.

It is profile-agnostic: it holds each contact as the wire JSON document of the active
profile and only needs its id and creation instant. The sorted key list gives listing
pages by slicing (ascending, or reversed slices for descending) instead of sorting the
whole store per request, which matters with 100,000 contacts. New contacts usually sort
last, so inserts are appends; deletes are a bisect plus one C-level ``del``.

Documents are treated as immutable: an update stores a new dict, so a page, the search
index or a caller can keep a reference without seeing it change underneath.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredContact:
    """A document ready for the store. ``created`` is a fixed-width ISO string (it sorts)."""

    id: str
    created: str
    doc: Doc


class ContactStore:
    """Contacts by id, ordered by (created, id)."""

    def __init__(self) -> None:
        self._docs: dict[str, Doc] = {}
        self._created: dict[str, str] = {}
        self._keys: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, contact_id: object) -> bool:
        return contact_id in self._docs

    def get(self, contact_id: str) -> Doc | None:
        return self._docs.get(contact_id)

    def created(self, contact_id: str) -> str:
        return self._created[contact_id]

    def insert(self, item: StoredContact) -> None:
        """Add a new contact; the id must be unused."""
        if item.id in self._docs:
            raise KeyError(f"duplicate contact id {item.id!r}")
        key = (item.created, item.id)
        if not self._keys or key > self._keys[-1]:
            self._keys.append(key)
        else:
            bisect.insort(self._keys, key)
        self._docs[item.id] = item.doc
        self._created[item.id] = item.created

    def insert_many(self, items: Iterable[StoredContact]) -> None:
        """Bulk insert (seeding, loading): one sort at the end instead of one insort each."""
        added = 0
        for item in items:
            if item.id in self._docs:
                raise KeyError(f"duplicate contact id {item.id!r}")
            self._docs[item.id] = item.doc
            self._created[item.id] = item.created
            self._keys.append((item.created, item.id))
            added += 1
        if added:
            self._keys.sort()

    def replace(self, contact_id: str, doc: Doc) -> Doc:
        """Swap the document of an existing contact (its creation instant never changes)."""
        old = self._docs[contact_id]
        self._docs[contact_id] = doc
        return old

    def delete(self, contact_id: str) -> Doc | None:
        doc = self._docs.pop(contact_id, None)
        if doc is None:
            return None
        key = (self._created.pop(contact_id), contact_id)
        index = bisect.bisect_left(self._keys, key)
        del self._keys[index]
        return doc

    def clear(self) -> None:
        self._docs.clear()
        self._created.clear()
        self._keys.clear()

    def page(self, offset: int, limit: int, *, descending: bool = False) -> list[Doc]:
        """``limit`` documents starting ``offset`` places from the oldest (or the newest)."""
        total = len(self._keys)
        if offset >= total or limit <= 0:
            return []
        if descending:
            stop = total - offset
            start = max(0, stop - limit)
            keys = self._keys[start:stop][::-1]
        else:
            keys = self._keys[offset : offset + limit]
        return [self._docs[cid] for _, cid in keys]

    def after(self, key: tuple[str, str] | None, limit: int) -> tuple[list[Doc], bool]:
        """Up to ``limit`` documents sorting after ``key`` (from the start when None), and
        whether more follow them. The basis of cursor paging (``syncd.emulator.cursors``)."""
        start = 0 if key is None else bisect.bisect_right(self._keys, key)
        keys = self._keys[start : start + limit]
        return [self._docs[cid] for _, cid in keys], start + len(keys) < len(self._keys)

    def key(self, contact_id: str) -> tuple[str, str]:
        """The sort key of a stored contact."""
        return (self._created[contact_id], contact_id)

    def __iter__(self) -> Iterator[Doc]:
        """Every document in ascending order."""
        return (self._docs[cid] for _, cid in list(self._keys))
