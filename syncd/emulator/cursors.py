"""Server-side cursors for scan-style paging (profile-agnostic).

A cursor is an opaque token standing for a position in an ordering: for contacts, the
store's listing key of the last contact of the page that issued it. The next page is whatever
sorts after that key *now*, so contacts created or deleted between pages neither shift nor
repeat the ones still to come (a contact created during a scan appears at the end; one
deleted before it was reached is simply not returned). Tokens expire after ``ttl`` seconds
on the emulator's monotonic clock (24 h, like the production API) and the store is bounded:
when it is full, the oldest tokens go first.
"""

from __future__ import annotations

import random
import uuid
from collections import OrderedDict
from typing import Any

DEFAULT_TTL = 24 * 3600.0
DEFAULT_CAPACITY = 100_000

# A sort key of the scope's ordering (the store's ListingKey, an external source's key).
Key = tuple[Any, ...]


class CursorStore:
    def __init__(
        self,
        *,
        seed: int = 0,
        ttl: float = DEFAULT_TTL,
        capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._rng = random.Random(f"syncd-emulator:{seed}:cursors")
        self._cursors: OrderedDict[str, tuple[str, Key, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cursors)

    def issue(self, scope: str, key: Key, *, now: float) -> str:
        """A new token for the position after ``key`` in ``scope`` (e.g. the route)."""
        self._expire(now)
        while len(self._cursors) >= self.capacity:
            self._cursors.popitem(last=False)
        token = uuid.UUID(int=self._rng.getrandbits(128), version=4).hex
        self._cursors[token] = (scope, key, now + self.ttl)
        return token

    def resolve(self, scope: str, token: str, *, now: float) -> Key | None:
        """The position a token stands for; None when unknown, expired or from another scope."""
        entry = self._cursors.get(token)
        if entry is None:
            return None
        owner, key, expires = entry
        if now >= expires:
            del self._cursors[token]
            return None
        return key if owner == scope else None

    def _expire(self, now: float) -> None:
        while self._cursors:
            token, (_, _, expires) = next(iter(self._cursors.items()))
            if now < expires:
                return
            del self._cursors[token]
