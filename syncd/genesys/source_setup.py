"""The one-time setup of profiles with an external source (externalcontacts): our
externalIds point at an ExternalSource, found by name or created once, before the first call;
and the connection check, which only looks the source up.

Why a module of its own: finding must never create (``syncd config check --connect`` only
looks), creating must never make a second source (names are unique: a create that conflicts
or goes unanswered is followed by another lookup), and concurrent first calls share one setup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import httpx

from syncd.errors import ApiConflictError, ApiProtocolError, OutcomeUnknownError
from syncd.genesys.pipeline import parse_answer
from syncd.genesys.profiles import Profile, RequestSpec, SourceProfile
from syncd.genesys.profiles._shape import array, obj
from syncd.logs import get_logger

__all__ = ["ConnectionCheck", "SourceSetup", "check_connection"]

log = get_logger("syncd.genesys")

Call = Callable[[RequestSpec], Awaitable[httpx.Response]]


class SourceSetup:
    """Finds (or creates, once) the external source of ``profile`` and binds it."""

    def __init__(self, profile: SourceProfile, call: Call) -> None:
        self._profile, self._call = profile, call
        self._lock = anyio.Lock()

    async def ensure(self) -> None:
        """Bind the source before the first call; a no-op once bound."""
        profile = self._profile
        if profile.ready:
            return
        async with self._lock:
            if profile.ready:
                return
            created = False
            source_id = await self.find()
            if source_id is None:
                spec = profile.source_create_request()
                try:
                    source_id = parse_answer(spec, await self._call(spec), profile.parse_source)
                    created = True
                except (ApiConflictError, OutcomeUnknownError, ApiProtocolError):
                    # Created meanwhile (by another syncd, or by our own unanswered POST):
                    # names are unique, so look again instead of creating a second one.
                    source_id = await self.find()
                    if source_id is None:
                        raise
            profile.bind_source(source_id)
            log.info(
                "genesys.external_source.ready",
                name=getattr(profile, "source_name", None),
                source_id=source_id,
                created=created,
            )

    async def find(self) -> str | None:
        """The source's id, or None when none has our name; never creates one."""
        profile = self._profile
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            spec = profile.source_lookup_request(cursor)
            found, cursor = parse_answer(spec, await self._call(spec), profile.parse_source_lookup)
            if found is not None or cursor is None or cursor in seen:
                return found
            seen.add(cursor)


@dataclass(frozen=True, slots=True)
class ConnectionCheck:
    """What :func:`check_connection` saw: one page read, the source looked up."""

    listed: int
    more: bool
    source_id: str | None  # None: the profile has no external source; "": not created yet


async def check_connection(
    profile: Profile, setup: SourceSetup | None, call: Call
) -> ConnectionCheck:
    """One page read and the source looked up (never created): nothing is written."""
    source: str | None = None
    if isinstance(profile, SourceProfile) and setup is not None:
        source = await setup.find() or ""
        if source:
            profile.bind_source(source)
    spec = profile.list_request(None, 1)
    response = await call(spec)
    if source == "":  # no source yet, so no contact can carry our ids: just count them
        count = parse_answer(
            spec,
            response,
            lambda body: len(array(obj(body, "page").get("entities") or [], "page.entities")),
        )
        return ConnectionCheck(count, False, source)
    page = parse_answer(spec, response, lambda body: profile.parse_page(body, None, 1))
    return ConnectionCheck(len(page.contacts), page.next_token is not None, source)
