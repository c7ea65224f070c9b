"""The search index, eventually consistent like the production one.

Writes reach the index ``search_lag`` seconds after they reach the store: until then a
search sees the previous indexed version of a contact (or nothing for a new one, or a
deleted one still). With no lag every write is indexed at once. Each scheduled change
carries a sequence number so a change made under a long lag can never overwrite a newer
one that became visible sooner after the lag was shortened.

Matching is profile-neutral: a profile turns a document into :class:`SearchTerms`.
"""

from __future__ import annotations

import heapq
import re
from collections import defaultdict
from dataclasses import dataclass

from syncd.emulator.store import Doc, ListingKey

_PHONE_QUERY = re.compile(r"[0-9+\-(). ]+")
_NON_DIGITS = re.compile(r"\D")


def digits(text: str) -> str:
    return _NON_DIGITS.sub("", text)


@dataclass(frozen=True, slots=True)
class SearchTerms:
    """What a query can match in one contact.

    ``exact``: matched whole and case-sensitively (externalId). ``emails``: lower-cased,
    matched whole. ``phones``: digits only, matched whole against the digits of the query.
    ``names``: lower-cased text lines, matched as a substring of any line.
    """

    exact: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    names: str = ""


@dataclass(frozen=True, slots=True)
class _Entry:
    key: ListingKey  # results come out in listing order
    doc: Doc
    terms: SearchTerms


class SearchIndex:
    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._exact: defaultdict[str, set[str]] = defaultdict(set)
        self._emails: defaultdict[str, set[str]] = defaultdict(set)
        self._phones: defaultdict[str, set[str]] = defaultdict(set)
        self._names: dict[str, str] = {}
        self._pending: list[tuple[float, int, str, _Entry | None]] = []
        self._pending_per_id: defaultdict[str, int] = defaultdict(int)
        self._applied: dict[str, int] = {}
        self._seq = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._reset()

    def put(
        self,
        contact_id: str,
        key: ListingKey,
        doc: Doc,
        terms: SearchTerms,
        *,
        now: float,
        visible_at: float,
    ) -> None:
        """Index (or re-index) a contact from ``visible_at`` on; ``key`` is its listing key."""
        self._schedule(contact_id, _Entry(key, doc, terms), now, visible_at)

    def remove(self, contact_id: str, *, now: float, visible_at: float) -> None:
        """Drop a contact from the index from ``visible_at`` on."""
        self._schedule(contact_id, None, now, visible_at)

    def pending(self) -> int:
        """Changes written but not searchable yet."""
        return len(self._pending)

    def search(self, query: str, *, now: float) -> list[Doc]:
        """Documents matching ``query`` as indexed at ``now``, oldest first."""
        self._apply_due(now)
        text = query.strip()
        lowered = text.lower()
        hits: set[str] = set()
        hits |= self._exact.get(text, set())
        hits |= self._emails.get(lowered, set())
        if _PHONE_QUERY.fullmatch(text) and (wanted := digits(text)):
            hits |= self._phones.get(wanted, set())
        hits.update(cid for cid, names in self._names.items() if lowered in names)
        found = sorted((self._entries[cid] for cid in hits), key=lambda entry: entry.key)
        return [entry.doc for entry in found]

    def _schedule(self, contact_id: str, entry: _Entry | None, now: float, at: float) -> None:
        self._seq += 1
        if at <= now:
            self._apply(contact_id, self._seq, entry)
        else:
            heapq.heappush(self._pending, (at, self._seq, contact_id, entry))
            self._pending_per_id[contact_id] += 1

    def _apply_due(self, now: float) -> None:
        while self._pending and self._pending[0][0] <= now:
            _, seq, contact_id, entry = heapq.heappop(self._pending)
            self._pending_per_id[contact_id] -= 1
            self._apply(contact_id, seq, entry)

    def _apply(self, contact_id: str, seq: int, entry: _Entry | None) -> None:
        if seq > self._applied.get(contact_id, 0):
            self._applied[contact_id] = seq
            self._unindex(contact_id)
            if entry is not None:
                self._index(contact_id, entry)
        if self._pending_per_id.get(contact_id, 0) <= 0:
            # Nothing older is waiting, and anything scheduled later gets a higher sequence
            # number: the bookkeeping for this id is no longer needed.
            self._pending_per_id.pop(contact_id, None)
            self._applied.pop(contact_id, None)

    def _index(self, contact_id: str, entry: _Entry) -> None:
        self._entries[contact_id] = entry
        for value in entry.terms.exact:
            self._exact[value].add(contact_id)
        for value in entry.terms.emails:
            self._emails[value].add(contact_id)
        for value in entry.terms.phones:
            self._phones[value].add(contact_id)
        if entry.terms.names:
            self._names[contact_id] = entry.terms.names

    def _unindex(self, contact_id: str) -> None:
        entry = self._entries.pop(contact_id, None)
        if entry is None:
            return
        for table, values in (
            (self._exact, entry.terms.exact),
            (self._emails, entry.terms.emails),
            (self._phones, entry.terms.phones),
        ):
            for value in values:
                ids = table.get(value)
                if ids is not None:
                    ids.discard(contact_id)
                    if not ids:
                        del table[value]
        self._names.pop(contact_id, None)
