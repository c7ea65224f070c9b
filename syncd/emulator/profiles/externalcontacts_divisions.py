"""Divisions of the emulated organization: a home division, plus any a test adds.

Every contact and organization belongs to one (the home division unless the write names
another); scans and listings can be limited to one with ``divisionId``. Divisions are
managed by the authorization API in production; here they are seeded through
``POST /__emulator/divisions`` ``{id, name}``.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

DIVISIONS_API = "/api/v2/authorization/divisions"


def division_doc(division_id: str, name: str) -> dict[str, Any]:
    return {"id": division_id, "name": name, "selfUri": f"{DIVISIONS_API}/{division_id}"}


class Divisions:
    def __init__(self, *, seed: int) -> None:
        rng = random.Random(f"syncd-emulator:{seed}:divisions")
        home_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        self.home = division_doc(home_id, "Home")
        self._by_id: dict[str, dict[str, Any]] = {home_id: self.home}

    def get(self, division_id: str) -> dict[str, Any] | None:
        doc = self._by_id.get(division_id)
        return dict(doc) if doc is not None else None

    def all(self) -> list[dict[str, Any]]:
        return [dict(doc) for doc in self._by_id.values()]

    def add(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise ValueError("a division must be a JSON object {id, name}")
        division_id, name = raw.get("id"), raw.get("name")
        if not isinstance(division_id, str) or not division_id or "/" in division_id:
            raise ValueError("id must be a non-empty string without '/'")
        if not isinstance(name, str) or not name.strip():
            raise ValueError("name must be a non-empty string")
        if division_id in self._by_id:
            raise ValueError(f"division {division_id!r} already exists")
        doc = division_doc(division_id, name.strip())
        self._by_id[division_id] = doc
        return dict(doc)
