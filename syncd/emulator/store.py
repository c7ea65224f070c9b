"""The contacts store: a dict by id plus one sorted list of listing keys.

It is profile-agnostic: it holds each contact as the wire JSON document of the active
profile and only needs its id and creation instant. The sorted key list gives listing
pages by slicing (ascending, or reversed slices for descending) instead of sorting the
whole store per request, which matters with 100,000 contacts. New contacts usually sort
last, so inserts are appends; deletes are a bisect plus one C-level ``del``.

Why an arrival number in the key: timestamps have millisecond resolution, so contacts
created (or seeded) in one instant tie. Breaking ties by their random ids made the order
of such contacts, and so the pages a client reads, depend on timing; breaking them by the
order the store received them gives one total order that pagination and cursors can rely
on. A persisted store is saved and loaded in listing order, so it keeps that order.

Documents are treated as immutable: an update stores a new dict, so a page, the search
index or a caller can keep a reference without seeing it change underneath.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]
# (created, arrival number, id): the listing order, a total order even for equal instants.
ListingKey = tuple[str, int, str]


@dataclass(frozen=True, slots=True)
class StoredContact:
    """A document ready for the store. ``created`` is a fixed-width ISO string (it sorts)."""

    id: str
    created: str
    doc: Doc


class ContactStore:
    """Contacts by id, ordered by creation instant, then by arrival in the store."""

    def __init__(self) -> None:
        self._docs: dict[str, Doc] = {}
        self._key_of: dict[str, ListingKey] = {}
        self._keys: list[ListingKey] = []
        self._arrivals = itertools.count()

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, contact_id: object) -> bool:
        return contact_id in self._docs

    def get(self, contact_id: str) -> Doc | None:
        return self._docs.get(contact_id)

    def key(self, contact_id: str) -> ListingKey:
        """The listing key of a stored contact (search results and cursors use it too)."""
        return self._key_of[contact_id]

    def insert(self, item: StoredContact) -> None:
        """Add a new contact; the id must be unused."""
        key = self._admit(item)
        if not self._keys or key > self._keys[-1]:
            self._keys.append(key)
        else:
            bisect.insort(self._keys, key)

    def insert_many(self, items: Iterable[StoredContact]) -> None:
        """Bulk insert (seeding, loading): one sort at the end instead of one insort each."""
        added = 0
        for item in items:
            self._keys.append(self._admit(item))
            added += 1
        if added:
            self._keys.sort()

    def replace(self, contact_id: str, doc: Doc) -> Doc:
        """Swap the document of an existing contact (its listing key never changes)."""
        old = self._docs[contact_id]
        self._docs[contact_id] = doc
        return old

    def delete(self, contact_id: str) -> Doc | None:
        doc = self._docs.pop(contact_id, None)
        if doc is None:
            return None
        key = self._key_of.pop(contact_id)
        del self._keys[bisect.bisect_left(self._keys, key)]
        return doc

    def clear(self) -> None:
        self._docs.clear()
        self._key_of.clear()
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
        return [self._docs[cid] for _, _, cid in keys]

    def after(self, key: ListingKey | None, limit: int) -> tuple[list[Doc], bool]:
        """Up to ``limit`` documents sorting after ``key`` (from the start when None), and
        whether more follow them. The basis of cursor paging (``syncd.emulator.cursors``)."""
        start = 0 if key is None else bisect.bisect_right(self._keys, key)
        keys = self._keys[start : start + limit]
        return [self._docs[cid] for _, _, cid in keys], start + len(keys) < len(self._keys)

    def __iter__(self) -> Iterator[Doc]:
        """Every document in ascending order."""
        return (self._docs[cid] for _, _, cid in list(self._keys))

    def _admit(self, item: StoredContact) -> ListingKey:
        if item.id in self._docs:
            raise KeyError(f"duplicate contact id {item.id!r}")
        key = (item.created, next(self._arrivals), item.id)
        self._docs[item.id] = item.doc
        self._key_of[item.id] = key
        return key
