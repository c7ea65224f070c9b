"""Wire profiles: everything that differs between Genesys APIs lives in one module each.

A profile turns canonical operations into :class:`RequestSpec` values and answers back into
canonical objects; it never does I/O. The client adds auth, pacing, retries and error
mapping, so a new API dialect (``externalcontacts``) is one more module here and one more
line in :func:`get_profile`.

A profile may also implement the optional protocols below, which the client detects with
``isinstance``: :class:`SourceProfile` (a one-time discovery step before the first call),
:class:`ReadBeforeWriteProfile` (writes computed from a fresh read, so fields syncd does not
manage are never clobbered) and :class:`BulkProfile` (bulk endpoints).

This module only assembles the package: the shared types live in ``_base.py``, which the
profiles import (never this module), so nothing here is imported in a circle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syncd.errors import ConfigError
from syncd.genesys.profiles._base import (
    BulkEntry,
    BulkProfile,
    Profile,
    ReadBeforeWriteProfile,
    RequestSpec,
    SourceProfile,
)
from syncd.genesys.profiles.externalcontacts import ExternalContactsProfile
from syncd.genesys.profiles.reference import ReferenceProfile

if TYPE_CHECKING:
    from syncd.config import GenesysSettings

__all__ = [
    "BulkEntry",
    "BulkProfile",
    "ExternalContactsProfile",
    "Profile",
    "ReadBeforeWriteProfile",
    "ReferenceProfile",
    "RequestSpec",
    "SourceProfile",
    "get_profile",
]


def get_profile(name: str, settings: GenesysSettings | None = None) -> Profile:
    """The profile named in ``genesys.profile`` (a new instance: profiles may hold state)."""
    if name == "reference":
        return ReferenceProfile()
    if name == "externalcontacts":
        return ExternalContactsProfile.from_settings(settings)
    raise ConfigError(
        f"genesys.profile: the {name!r} wire profile is not implemented (available: "
        "externalcontacts, reference)"
    )
