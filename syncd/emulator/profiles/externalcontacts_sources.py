"""External sources of the externalcontacts profile: ``{id, name, active, selfUri}``.

Names are unique, compared case-insensitively (a second source with the same name is a
409). Listing is ordered by name, then id, which is also the cursor order.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

API = "/api/v2/externalcontacts"
NAME_LIMIT = 255


class SourceConflict(ValueError):
    """A source with this name (or id) already exists."""


class Sources:
    def __init__(self, *, seed: int) -> None:
        self._by_id: dict[str, dict[str, Any]] = {}
        self._ids = random.Random(f"syncd-emulator:{seed}:external-sources")

    def __len__(self) -> int:
        return len(self._by_id)

    def exists(self, source_id: str) -> bool:
        return source_id in self._by_id

    def get(self, source_id: str) -> dict[str, Any] | None:
        doc = self._by_id.get(source_id)
        return dict(doc) if doc is not None else None

    def all(self) -> list[dict[str, Any]]:
        return [dict(doc) for doc in sorted(self._by_id.values(), key=self.key)]

    @staticmethod
    def key(doc: dict[str, Any]) -> tuple[str, str]:
        return (str(doc["name"]).casefold(), str(doc["id"]))

    def listing(self, *, prefix: str | None, active: bool | None) -> list[dict[str, Any]]:
        """Sources whose name starts with ``prefix`` (case-insensitive), in cursor order."""
        wanted = prefix.casefold() if prefix else ""
        return [
            doc
            for doc in self.all()
            if str(doc["name"]).casefold().startswith(wanted)
            and (active is None or doc["active"] is active)
        ]

    def create(self, body: Any) -> dict[str, Any]:
        """A new source from a POST body; ValueError (400) or SourceConflict (409)."""
        if not isinstance(body, dict):
            raise ValueError("the external source must be a JSON object")
        unknown = sorted(set(body) - {"id", "name", "active", "linkConfiguration", "selfUri"})
        if unknown:
            raise ValueError(f"unknown field {unknown[0]!r}")
        source_id = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
        return self.register({**body, "id": source_id})

    def register(self, raw: Any) -> dict[str, Any]:
        """Add a source with its id (creation, seeding, loading a persisted store)."""
        if not isinstance(raw, dict):
            raise ValueError("an external source must be a JSON object")
        name, source_id = raw.get("name"), raw.get("id")
        if not isinstance(name, str) or not name.strip() or len(name) > NAME_LIMIT:
            raise ValueError(f"name must be a string of 1..{NAME_LIMIT} characters")
        if not isinstance(source_id, str) or not source_id or "/" in source_id:
            raise ValueError("id must be a non-empty string without '/'")
        active = raw.get("active", True)
        if not isinstance(active, bool):
            raise ValueError("active must be true or false")
        link = raw.get("linkConfiguration")
        if link is not None and (
            not isinstance(link, dict) or not isinstance(link.get("uriTemplate"), str)
        ):
            raise ValueError("linkConfiguration must be an object with a uriTemplate string")
        folded = name.strip().casefold()
        for other in self._by_id.values():
            if str(other["name"]).casefold() == folded:
                raise SourceConflict(f"an external source named {other['name']!r} already exists")
        if source_id in self._by_id:
            raise SourceConflict(f"an external source with id {source_id!r} already exists")
        doc: dict[str, Any] = {"id": source_id, "name": name.strip(), "active": active}
        if link is not None:
            doc["linkConfiguration"] = {"uriTemplate": link["uriTemplate"]}
        doc["selfUri"] = f"{API}/externalsources/{source_id}"
        self._by_id[source_id] = doc
        return dict(doc)
