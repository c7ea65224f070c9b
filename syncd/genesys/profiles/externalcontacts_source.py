"""The ExternalSource that syncd's externalIds point at: found by name (never created by a
lookup) or created once, by :mod:`syncd.genesys.source_setup` (the SourceProfile half of the
externalcontacts profile)."""

from __future__ import annotations

from typing import Any

from syncd.genesys.profiles._base import RequestSpec
from syncd.genesys.profiles._shape import array, obj, opt_str, req_str

SOURCE_PAGE_SIZE = 200


def claimed_id(data: dict[str, Any], source_id: str, where: str) -> str | None:
    """The value of the ``externalIds`` entry of ``data`` (a contact or an organization)
    that is in source ``source_id``, or None."""
    for i, item in enumerate(array(data.get("externalIds") or [], f"{where}.externalIds")):
        entry = obj(item, f"{where}.externalIds[{i}]")
        ref = entry.get("externalSource")
        if isinstance(ref, dict) and ref.get("id") == source_id:
            return opt_str(entry, "value", f"{where}.externalIds[{i}]")
    return None


class ExternalSourceRequests:
    """Requests and answers about our ExternalSource; the profile holds its name and id."""

    source_name: str
    source_id: str | None

    @property
    def ready(self) -> bool:
        return self.source_id is not None

    def source_lookup_request(self, cursor: str | None) -> RequestSpec:
        params: dict[str, str | int] = {"name": self.source_name, "limit": SOURCE_PAGE_SIZE}
        if cursor:
            params["cursor"] = cursor
        route = "/externalcontacts/externalsources"
        return RequestSpec("GET", route, route, params=params)

    def parse_source_lookup(self, body: Any) -> tuple[str | None, str | None]:
        """The name filter is a prefix filter: pick the exact (case-insensitive) name."""
        data = obj(body, "externalsources")
        entities = array(data.get("entities") or [], "externalsources.entities")
        wanted = self.source_name.casefold()
        for i, item in enumerate(entities):
            source = obj(item, f"externalsources.entities[{i}]")
            name = opt_str(source, "name", f"externalsources.entities[{i}]")
            if name is not None and name.casefold() == wanted:
                return req_str(source, "id", f"externalsources.entities[{i}]"), None
        cursors = data.get("cursors")
        after = opt_str(cursors, "after", "externalsources.cursors") if cursors else None
        return None, after or None

    def source_create_request(self) -> RequestSpec:
        route = "/externalcontacts/externalsources"
        return RequestSpec("POST", route, route, json={"name": self.source_name, "active": True})

    def parse_source(self, body: Any) -> str:
        return req_str(obj(body, "externalsource"), "id", "externalsource")

    def bind_source(self, source_id: str) -> None:
        self.source_id = source_id

    def _source(self) -> str:
        if self.source_id is None:
            raise RuntimeError("the external source is not known yet (the client sets it up)")
        return self.source_id
