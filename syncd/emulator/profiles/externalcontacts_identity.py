"""ExternalId claims: which record holds ``(external source id, value)``.

An ExternalId identifier is the same thing as an ``externalIds`` entry: a contact (or an
organization) claims every entry of its ``externalIds``. The index answers identifier
lookups and enrich matching with a dict access instead of a scan of the store. Several
records may claim one identifier (the ``claimed_external_id = "duplicate"`` variant):
the oldest claim answers, the next one takes over when it is released.

Identifier lookups may lag (the ``identifier_lookup_lag_ms`` variant): a lagging reader
sees each identifier's claimants as they were ``lag`` seconds ago. Enrich matching never
lags (it is the store's own key, see ``docs/externalcontacts.md``).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from typing import Any

from syncd.emulator.profiles._common import Invalid

Key = tuple[str, str]  # (external source id, value)


def claims_of(doc: dict[str, Any] | None) -> set[Key]:
    """The ExternalId identifiers a stored record claims."""
    if not doc:
        return set()
    return {
        (str(item["externalSource"]["id"]), str(item["value"]))
        for item in doc.get("externalIds") or ()
    }


class ClaimIndex:
    def __init__(self) -> None:
        self._claimants: dict[Key, list[str]] = {}
        self._visible: dict[Key, tuple[str, ...]] = {}
        self._visible_seq: dict[Key, int] = {}
        self._due: list[tuple[float, int, Key, tuple[str, ...]]] = []
        self._seq = itertools.count()

    def observe(
        self,
        record_id: str,
        old: dict[str, Any] | None,
        new: dict[str, Any] | None,
        *,
        now: float,
        lag: float,
    ) -> None:
        """Follow one write (``old`` None: a create; ``new`` None: a delete)."""
        before, after = claims_of(old), claims_of(new)
        for key in before - after:
            holders = self._claimants.get(key, [])
            if record_id in holders:
                holders.remove(record_id)
            if not holders:
                self._claimants.pop(key, None)
        for key in after - before:
            self._claimants.setdefault(key, []).append(record_id)
        self._publish(before ^ after, now=now, lag=lag)

    def load(self, items: Iterable[tuple[str, dict[str, Any]]]) -> None:
        """Seeded or restored records: claimed and visible at once."""
        for record_id, doc in items:
            for key in claims_of(doc):
                self._claimants.setdefault(key, []).append(record_id)
                self._visible[key] = tuple(self._claimants[key])

    def holder(self, key: Key) -> str | None:
        """The oldest current claimant (enrich matching, the claimed-id policy)."""
        holders = self._claimants.get(key)
        return holders[0] if holders else None

    def lagging_holder(self, key: Key, *, now: float) -> str | None:
        """The oldest claimant as a lagging identifier lookup sees it."""
        while self._due and self._due[0][0] <= now:
            _, seq, due_key, holders = heapq.heappop(self._due)
            if seq > self._visible_seq.get(due_key, -1):
                self._visible_seq[due_key] = seq
                self._visible[due_key] = holders
        visible = self._visible.get(key)
        return visible[0] if visible else None

    def _publish(self, keys: set[Key], *, now: float, lag: float) -> None:
        for key in keys:
            holders = tuple(self._claimants.get(key, ()))
            seq = next(self._seq)
            if lag <= 0:
                self._visible_seq[key] = seq
                self._visible[key] = holders
            else:
                heapq.heappush(self._due, (now + lag, seq, key, holders))


IDENTIFIER_TYPES = (
    "SocialLine", "SocialFacebook", "SocialTwitter", "SocialWhatsapp", "SocialInstagram",
    "SocialWhatsappBsuid", "AppleOpaqueId", "Email", "Phone", "Cookie", "ExternalId",
    "SocialInstagramHandle",
)  # fmt: skip
IDENTIFIER_KEYS = frozenset({"type", "value", "externalSource", "division", "dateCreated"})
VALUE_LIMIT = 255


def parse_identifier(
    raw: Any, *, where: str, types: tuple[str, ...] = IDENTIFIER_TYPES
) -> tuple[str, Key]:
    """``(type, (source id, value))`` of a ContactIdentifier / ExternalOrganizationIdentifier.

    An ExternalId identifier needs its ``externalSource.id``; other types have no source
    (``""``). Raises Invalid naming the bad part.
    """
    if not isinstance(raw, dict):
        raise Invalid([(where, "invalid.value", f"{where} must be an identifier object")])
    unknown = sorted(set(raw) - IDENTIFIER_KEYS)
    if unknown:
        message = f"{where} has unknown field {unknown[0]!r}"
        raise Invalid([(f"{where}.{unknown[0]}", "invalid.property", message)])
    kind = raw.get("type")
    if kind not in types:
        message = f"{where}.type must be one of {', '.join(types)}"
        raise Invalid([(f"{where}.type", "invalid.value", message)])
    value = raw.get("value")
    value = value.strip() if isinstance(value, str) else None
    if not value or len(value) > VALUE_LIMIT:
        message = f"{where}.value must be a string of 1..{VALUE_LIMIT} characters"
        raise Invalid([(f"{where}.value", "invalid.value", message)])
    source = raw.get("externalSource")
    source_id = source.get("id") if isinstance(source, dict) else None
    if kind == "ExternalId" and (not isinstance(source_id, str) or not source_id):
        message = f"{where}.externalSource.id is required for an ExternalId identifier"
        raise Invalid([(f"{where}.externalSource", "missing.property", message)])
    return str(kind), (str(source_id or ""), value)
