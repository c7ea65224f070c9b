"""``GenesysClient``: the HTTP implementation of :class:`~syncd.genesys.api.ContactsApi`.

Each contact operation asks the wire profile for a request, sends it through the
:class:`~syncd.genesys.pipeline.RequestPipeline` (pacing, token, retries, error mapping) and
parses the answer with the profile. A POST that may have been applied is never re-sent: it
raises OutcomeUnknownError.

Profiles with extra needs (``externalcontacts``) are detected by protocol: a one-time
external-source setup before the first call, writes computed from a fresh read, and bulk
endpoints (``bulk_*`` methods, see :class:`~syncd.genesys.api.BulkContactsApi`).
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self

import anyio
import httpx
from pydantic import SecretStr

from syncd.config import GenesysSettings
from syncd.errors import (
    ApiNotFoundError,
    ApiProtocolError,
    ApiValidationError,
    ConfigError,
    ContactMergedError,
    OutcomeUnknownError,
)
from syncd.genesys.api import (
    BulkContactsApi,
    BulkItemResult,
    ContactsApi,
    OrganizationsApi,
    Page,
)
from syncd.genesys.auth import TokenCache, TokenSource
from syncd.genesys.bulk import BulkRunner, one_by_one
from syncd.genesys.metrics import ClientMetrics
from syncd.genesys.network import open_http, require_safe_url
from syncd.genesys.organizations import OrganizationCalls
from syncd.genesys.pipeline import RequestPipeline, parse_answer, parse_created
from syncd.genesys.profiles import (
    BulkProfile,
    Profile,
    ReadBeforeWriteProfile,
    RequestSpec,
    SourceProfile,
    get_profile,
)
from syncd.genesys.profiles.externalcontacts_identity import IdentityRequests
from syncd.genesys.profiles.externalcontacts_orgs import OrganizationRequests
from syncd.genesys.responses import correlation_id
from syncd.genesys.retry import RetryPolicy
from syncd.genesys.source_setup import ConnectionCheck, SourceSetup, check_connection
from syncd.genesys.throttle import Clock, PacingSettings, Sleep, Throttle
from syncd.logs import get_logger, register_secret
from syncd.model import Contact, RemoteContact, WriteResult

__all__ = ["ConnectionCheck", "GenesysClient", "RetryPolicy", "TokenCache", "require_safe_url"]

log = get_logger("syncd.genesys")


class GenesysClient:
    """Throttled, authenticated Genesys contacts client (one per organization)."""

    def __init__(
        self,
        *,
        api_url: str,
        login_url: str,
        client_id: str,
        client_secret: SecretStr | str,
        profile: Profile,
        pacing: PacingSettings,
        http: httpx.AsyncClient,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
        bulk_batch_size: int = 50,
        token_cache: TokenCache | None = None,
    ) -> None:
        self._api_url = require_safe_url(api_url, "api_url")
        login = require_safe_url(login_url, "login_url")
        self._http = http
        self._profile = profile
        policy = retry or RetryPolicy()
        now: Clock = clock or time.monotonic
        wait: Sleep = sleep or anyio.sleep
        jitter = rng or random.Random()
        self.metrics = ClientMetrics()
        self.throttle = Throttle(pacing, clock=now, sleep=wait, metrics=self.metrics, rng=jitter)
        secret = client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        # The HTTP Basic credentials made from it are as secret (a server may echo them).
        basic = f"{client_id}:{secret.get_secret_value()}".encode()
        register_secret(base64.b64encode(basic).decode())
        self.auth = TokenSource(
            http,
            login + "/oauth/token",
            client_id,
            secret,
            clock=now,
            sleep=wait,
            retry=policy,
            metrics=self.metrics,
            cache=token_cache,
        )
        self._pipeline = RequestPipeline(
            http=http,
            api_url=self._api_url,
            throttle=self.throttle,
            auth=self.auth,
            retry=policy,
            clock=now,
            sleep=wait,
            rng=jitter,
            metrics=self.metrics,
        )
        self._source = (
            SourceSetup(profile, self._pipeline.call)
            if isinstance(profile, SourceProfile)
            else None
        )
        self._bulk = (
            BulkRunner(profile, self._pipeline.call, bulk_batch_size)
            if isinstance(profile, BulkProfile)
            else None
        )
        self._bulk_batch_size = bulk_batch_size
        self._organizations = (
            OrganizationCalls(profile, self._pipeline.call, self._ready)
            if isinstance(profile, OrganizationRequests)
            else None
        )

    @classmethod
    def from_settings(
        cls,
        settings: GenesysSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
        retry: RetryPolicy | None = None,
        pacing: Mapping[str, Any] | None = None,
        token_cache: TokenCache | None = None,
    ) -> GenesysClient:
        """Build a client from validated settings (``transport`` for tests and the emulator).

        ``pacing`` overrides fields of :class:`PacingSettings` other than the rate and the
        concurrency, which come from ``settings`` (the rate through
        ``GenesysSettings.effective_requests_per_minute``, a per-profile default). The profile
        decides whether ``X-Rate-Limit-*`` headers are followed (production sends none: it
        relies on 429 + ``Retry-After``).
        """
        if settings.client_secret is None:
            raise ConfigError("genesys.client_secret: no client secret configured")
        api_url = require_safe_url(settings.effective_api_url, "api_url")
        login_url = require_safe_url(settings.effective_login_url, "login_url")
        profile = get_profile(settings.profile, settings)  # before opening anything to close
        rate = settings.effective_requests_per_minute
        pacing_defaults: dict[str, Any] = {
            "use_rate_limit_headers": getattr(profile, "rate_limit_headers", True)
        }
        http = open_http(settings, transport)
        return cls(
            api_url=api_url,
            login_url=login_url,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            profile=profile,
            pacing=PacingSettings(
                requests_per_minute=rate,
                max_in_flight=settings.max_in_flight,
                **{**pacing_defaults, **(pacing or {})},
            ),
            http=http,
            retry=retry,
            clock=clock,
            sleep=sleep,
            bulk_batch_size=settings.bulk_batch_size,
            token_cache=token_cache,
        )

    def __repr__(self) -> str:
        return f"GenesysClient(api_url={self._api_url!r}, profile={self._profile.name!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def check_connection(self) -> ConnectionCheck:
        """Log in and read one page, writing nothing (``syncd config check --connect``): the
        external source is looked up, never created."""
        return await check_connection(self._profile, self._source, self._pipeline.call)

    # -- ContactsApi -------------------------------------------------------------------------

    async def list_page(self, token: str | None = None, page_size: int = 100) -> Page:
        await self._ready()
        spec = self._profile.list_request(token, page_size)
        response = await self._pipeline.call(spec)
        return parse_answer(
            spec, response, lambda body: self._profile.parse_page(body, token, page_size)
        )

    async def iter_all(self, page_size: int = 100) -> AsyncIterator[RemoteContact]:
        token: str | None = None
        seen_tokens: set[str] = set()
        while True:
            page = await self.list_page(token, page_size)
            for contact in page.contacts:
                yield contact
            if page.next_token is None:
                return
            if page.next_token in seen_tokens:
                raise ApiProtocolError(f"the listing repeated page token {page.next_token!r}")
            seen_tokens.add(page.next_token)
            token = page.next_token

    async def get(self, genesys_id: str) -> RemoteContact:
        await self._ready()
        spec = self._profile.get_request(genesys_id)
        response = await self._pipeline.call(spec)
        found = parse_answer(spec, response, self._profile.parse_contact)
        survivor = self._profile.merged_into(found.raw, genesys_id)
        if survivor is not None:  # the answer is another contact, or a merged-away record
            raise ContactMergedError(
                genesys_id,
                survivor,
                status=response.status_code,
                method=spec.method,
                route=spec.route,
            )
        return found

    async def merged_into(self, genesys_id: str) -> str | None:
        await self._ready()
        spec = self._profile.unresolved_request(genesys_id)
        if spec is None:
            return None
        try:
            response = await self._pipeline.call(spec)
        except ApiNotFoundError:
            return None
        return parse_answer(
            spec, response, lambda body: self._profile.merged_into(body, genesys_id)
        )

    async def find_by_external_id(self, external_id: str) -> list[RemoteContact]:
        await self._ready()
        spec = self._profile.lookup_request(external_id)
        try:
            response = await self._pipeline.call(spec)
        except ApiNotFoundError:
            if self._profile.lookup_miss_status != 404:
                raise
            return []
        found = parse_answer(spec, response, self._profile.parse_lookup)
        return [rc for rc in found if rc.contact.external_id == external_id]

    async def create(self, contact: Contact) -> WriteResult:
        return await self._create(contact, upsert=False)

    @property
    def upserts(self) -> bool:
        return isinstance(self._profile, IdentityRequests)

    async def upsert(self, contact: Contact) -> WriteResult:
        return await self._create(contact, upsert=True)

    async def _create(self, contact: Contact, *, upsert: bool) -> WriteResult:
        await self._ready()
        profile = self._profile
        if not upsert:
            spec = profile.create_request(contact)
        elif isinstance(profile, IdentityRequests):
            spec = profile.upsert_request(contact)
        else:
            raise ValueError(f"the {profile.name} profile has no upsert")
        response = await self._pipeline.call(spec)
        try:
            remote = parse_created(spec, response, self._profile.parse_contact, "contact")
        except OutcomeUnknownError:
            self.metrics.outcome_unknown += 1
            raise
        return WriteResult(
            remote.genesys_id, remote, response.status_code, correlation_id(response)
        )

    async def patch(
        self, genesys_id: str, changes: Mapping[str, Any], *, contact: Contact
    ) -> WriteResult:
        await self._ready()
        if isinstance(self._profile, ReadBeforeWriteProfile):
            return await self._write_from_current(self._profile, genesys_id, changes, contact)
        spec = self._profile.patch_request(genesys_id, changes, contact)
        return await self._write(spec, genesys_id)

    async def replace(self, genesys_id: str, contact: Contact) -> WriteResult:
        """The whole contact; a profile that must not clobber other fields PATCHes them all."""
        await self._ready()
        if isinstance(self._profile, ReadBeforeWriteProfile):
            return await self._write_from_current(self._profile, genesys_id, None, contact)
        spec = self._profile.replace_request(genesys_id, contact)
        return await self._write(spec, genesys_id)

    async def delete(self, genesys_id: str) -> WriteResult:
        await self._ready()
        spec = self._profile.delete_request(genesys_id)
        try:
            response = await self._pipeline.call(spec)
        except ApiNotFoundError as exc:
            return WriteResult(genesys_id, None, 404, exc.correlation_id)
        return WriteResult(genesys_id, None, response.status_code, correlation_id(response))

    # -- BulkContactsApi -----------------------------------------------------------------------

    @property
    def supports_bulk(self) -> bool:
        """Whether the wire profile has bulk endpoints (the bulk methods work either way)."""
        return self._bulk is not None

    @property
    def bulk_batch_size(self) -> int:
        """Entities per bulk request: the configured size, lowered by 413 answers."""
        return self._bulk.limit if self._bulk is not None else self._bulk_batch_size

    @property
    def listing_proves_absence(self) -> bool:
        return self._profile.listing_proves_absence

    @property
    def lookup_proves_absence(self) -> bool:
        return self._profile.lookup_proves_absence

    @property
    def scans_every_contact(self) -> bool:
        return getattr(self._profile, "division_id", None) is None

    @property
    def organizations(self) -> OrganizationsApi | None:
        return self._organizations

    def representation_problem(self, contact: Contact) -> str | None:
        check = getattr(self._profile, "representation_problem", None)
        problem: str | None = check(contact) if check is not None else None
        return problem

    async def bulk_create(self, contacts: Sequence[Contact]) -> list[BulkItemResult]:
        await self._ready()
        if self._bulk is not None:
            return await self._bulk.create(contacts)
        keys = [c.external_id for c in contacts]
        if len(set(keys)) != len(keys):
            raise ValueError("the same external_id twice in one bulk call")
        return await one_by_one(
            keys, lambda i: self.create(contacts[i]), creates=True, concurrency=self._fan_out
        )

    async def bulk_update(self, items: Sequence[tuple[str, Contact]]) -> list[BulkItemResult]:
        await self._ready()
        if self._bulk is not None:
            return await self._bulk.update(items)
        keys = [gid for gid, _ in items]
        if len(set(keys)) != len(keys):
            raise ValueError("the same Genesys id twice in one bulk call")
        return await one_by_one(
            keys, lambda i: self.replace(*items[i]), creates=False, concurrency=self._fan_out
        )

    async def bulk_delete(self, genesys_ids: Sequence[str]) -> list[BulkItemResult]:
        await self._ready()
        if self._bulk is not None:
            return await self._bulk.delete(genesys_ids)
        if len(set(genesys_ids)) != len(genesys_ids):
            raise ValueError("the same Genesys id twice in one bulk call")
        return await one_by_one(
            genesys_ids,
            lambda i: self.delete(genesys_ids[i]),
            creates=False,
            concurrency=self._fan_out,
        )

    @property
    def _fan_out(self) -> int:
        return self.throttle.settings.max_in_flight * 2

    # -- internals ---------------------------------------------------------------------------

    async def _ready(self) -> None:
        """One-time profile setup (externalcontacts: find or create our external source)."""
        if self._source is not None:
            await self._source.ensure()

    async def _write_from_current(
        self,
        profile: ReadBeforeWriteProfile,
        genesys_id: str,
        changes: Mapping[str, Any] | None,
        contact: Contact,
    ) -> WriteResult:
        current = None
        if profile.write_needs_current(changes):
            problem = self.representation_problem(contact)
            if problem is not None:  # before spending a read on it
                raise ApiValidationError(f"cannot be represented: {problem}", method="PATCH")
            current = await self.get(genesys_id)
        spec = profile.write_request(genesys_id, changes, contact, current)
        if spec is None:
            if current is None:
                raise ValueError("a PATCH needs at least one changed field")
            return WriteResult(genesys_id, current, 200, None)  # Genesys holds exactly this
        return await self._write(spec, genesys_id)

    async def _write(self, spec: RequestSpec, genesys_id: str) -> WriteResult:
        response = await self._pipeline.call(spec)
        remote = None
        if response.content.strip():
            remote = parse_answer(spec, response, self._profile.parse_contact)
        return WriteResult(genesys_id, remote, response.status_code, correlation_id(response))


if TYPE_CHECKING:  # mypy proves the client satisfies the engine's interface

    def _conforms(client: GenesysClient) -> ContactsApi:
        return client

    def _bulk_conforms(client: GenesysClient) -> BulkContactsApi:
        return client
