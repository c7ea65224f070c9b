"""Wire profiles: everything that differs between Genesys APIs lives in one module each.

A profile turns canonical operations into :class:`RequestSpec` values and answers back into
canonical objects; it never does I/O. The client adds auth, pacing, retries and error
mapping, so a new API dialect (``externalcontacts``) is one more module here and one more
line in :data:`PROFILES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from syncd.errors import ConfigError
from syncd.genesys.api import Page
from syncd.model import Contact, RemoteContact


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One HTTP request, relative to the API base URL.

    ``route`` is the path template (``/contacts/{id}``) used in logs and errors, so contact
    ids and search terms (personal data) stay out of log aggregation keys.
    """

    method: str
    path: str
    route: str
    params: Mapping[str, str | int] = field(default_factory=dict)
    json: Any = None


class Profile(Protocol):
    """Maps canonical contacts and operations to one wire format."""

    name: str

    def list_request(self, token: str | None, page_size: int) -> RequestSpec: ...

    def parse_page(self, body: Any, token: str | None, page_size: int) -> Page: ...

    def get_request(self, genesys_id: str) -> RequestSpec: ...

    def search_request(self, external_id: str) -> RequestSpec: ...

    def parse_search(self, body: Any) -> list[RemoteContact]: ...

    def create_request(self, contact: Contact) -> RequestSpec: ...

    def patch_request(
        self, genesys_id: str, changes: Mapping[str, Any], contact: Contact
    ) -> RequestSpec: ...

    def replace_request(self, genesys_id: str, contact: Contact) -> RequestSpec: ...

    def delete_request(self, genesys_id: str) -> RequestSpec: ...

    def parse_contact(self, body: Any) -> RemoteContact:
        """One contact body; ApiProtocolError when it is not the documented shape."""
        ...


def get_profile(name: str) -> Profile:
    """The profile named in ``genesys.profile``."""
    from syncd.genesys.profiles import reference

    profiles: dict[str, Profile] = {"reference": reference.ReferenceProfile()}
    try:
        return profiles[name]
    except KeyError:
        known = ", ".join(sorted(profiles))
        raise ConfigError(
            f"genesys.profile: the {name!r} wire profile is not implemented yet (available: "
            f"{known})"
        ) from None
