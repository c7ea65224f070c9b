"""Wire profiles: how one flavour of the contacts API looks on the wire.

The core (store, search index, auth, rate limit, faults, stats) is shared; a profile owns
its paths, its JSON shape and its validation. It stores contacts as its own wire
documents and tells the core what it needs to know about one: the external id (for the
write log) and the search terms. Adding the production "externalcontacts" profile meant
adding modules here and a line in :func:`get_profile`, not touching the core. A profile may
also have state of its own (``reset(config)``, ``persist_state()``,
``restore_state(extra)``) and ``rate_limit_headers = False`` when its API sends no
``X-Rate-Limit-*`` headers; the core looks for them with ``getattr``.

Each profile is ``<name>.py`` (the object the core talks to), ``<name>_document.py`` (its
contact document) and ``<name>_routes.py`` (its API); what they share is ``_common.py``.
This module only names the public surface: no profile module imports it.
"""

from __future__ import annotations

from syncd.emulator.profiles._common import Profile

__all__ = ["PROFILES", "Profile", "get_profile"]

PROFILES = ("reference", "externalcontacts")


def get_profile(name: str) -> Profile:
    """A new profile object. Imported on demand: the externalcontacts profile loads
    ``phonenumbers``, which an emulator of the reference profile does not need."""
    if name == "reference":
        from syncd.emulator.profiles.reference import ReferenceProfile

        return ReferenceProfile()
    if name == "externalcontacts":
        from syncd.emulator.profiles.externalcontacts import ExternalContactsProfile

        return ExternalContactsProfile()
    raise ValueError(f"unknown emulator profile {name!r} (known: {', '.join(PROFILES)})")
