"""``GenesysClient``: the HTTP implementation of :class:`~syncd.genesys.api.ContactsApi`.

One call = one loop of attempts. Each attempt takes a turn from the shared
:class:`~syncd.genesys.throttle.Throttle`, sends with a bearer token from
:class:`~syncd.genesys.auth.TokenSource`, and then decides (see ``retry``): done, renew the
token once on a 401, wait out a 429 (not counted as a failure), back off and retry a
transient failure, or raise the mapped exception (``raise X from exc``). A POST that may
have been applied is never re-sent: it raises OutcomeUnknownError.

Profiles with extra needs (``externalcontacts``) are detected by protocol: a one-time
external-source setup before the first call, writes computed from a fresh read, and bulk
endpoints (``bulk_*`` methods, see :class:`~syncd.genesys.api.BulkContactsApi`).
"""

from __future__ import annotations

import base64
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import urlsplit

import anyio
import httpx
from pydantic import SecretStr

from syncd.config import GenesysSettings, is_loopback_host
from syncd.errors import (
    ApiConflictError,
    ApiError,
    ApiNotFoundError,
    ApiProtocolError,
    ApiValidationError,
    ConfigError,
    OutcomeUnknownError,
)
from syncd.genesys.api import BulkContactsApi, BulkItemResult, ContactsApi, Page
from syncd.genesys.auth import TokenSource
from syncd.genesys.bulk import BulkRunner, one_by_one
from syncd.genesys.metrics import ClientMetrics
from syncd.genesys.profiles import (
    BulkProfile,
    Profile,
    ReadBeforeWriteProfile,
    RequestSpec,
    SourceProfile,
    get_profile,
)
from syncd.genesys.responses import (
    correlation_id,
    error_for,
    gate_error,
    retry_after,
    unavailable,
)
from syncd.genesys.retry import (
    IDEMPOTENT_METHODS,
    RetryPolicy,
    Verdict,
    classify_error,
    classify_status,
)
from syncd.genesys.throttle import (
    Clock,
    GateClosed,
    PacingSettings,
    RequestBudget,
    Sleep,
    Slot,
    Throttle,
)
from syncd.logs import get_logger, register_secret
from syncd.model import Contact, RemoteContact, WriteResult

log = get_logger("syncd.genesys")

USER_AGENT = "syncd/0.1 (+genesys-contacts-sync)"
T = TypeVar("T")


def require_safe_url(url: str, what: str) -> str:
    """Refuse ``http://`` unless the host is loopback: tokens never travel in clear text."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"genesys.{what}: must be an http(s) URL (got {url!r})")
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"genesys.{what}: refusing plain http:// to {parts.hostname!r}: bearer tokens and the "
            "client secret would travel in clear text; use https:// (http:// is allowed only "
            "for a loopback host such as 127.0.0.1)"
        )
    return url.rstrip("/")


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
    ) -> None:
        self._api_url = require_safe_url(api_url, "api_url")
        login = require_safe_url(login_url, "login_url")
        self._http = http
        self._profile = profile
        self._retry = retry or RetryPolicy()
        self._clock: Clock = clock or time.monotonic
        self._sleep: Sleep = sleep or anyio.sleep
        self._rng = rng or random.Random()
        self.metrics = ClientMetrics()
        self.throttle = Throttle(
            pacing, clock=self._clock, sleep=self._sleep, metrics=self.metrics, rng=self._rng
        )
        secret = client_secret if isinstance(client_secret, SecretStr) else SecretStr(client_secret)
        # The HTTP Basic credentials made from it are as secret (a server may echo them).
        basic = f"{client_id}:{secret.get_secret_value()}".encode()
        register_secret(base64.b64encode(basic).decode())
        self.auth = TokenSource(
            http,
            login + "/oauth/token",
            client_id,
            secret,
            clock=self._clock,
            sleep=self._sleep,
            retry=self._retry,
            metrics=self.metrics,
        )
        self._setup_lock = anyio.Lock()
        self._bulk = (
            BulkRunner(profile, self._call, bulk_batch_size)
            if isinstance(profile, BulkProfile)
            else None
        )
        self._bulk_batch_size = bulk_batch_size

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
        connect = settings.connect_timeout.total_seconds()
        read = settings.read_timeout.total_seconds()
        http = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(connect=connect, read=read, write=read, pool=connect),
            limits=httpx.Limits(
                max_connections=settings.max_in_flight + 2,
                max_keepalive_connections=settings.max_in_flight,
            ),
            verify=True,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
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
        )

    def __repr__(self) -> str:
        return f"GenesysClient(api_url={self._api_url!r}, profile={self._profile.name!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- ContactsApi -------------------------------------------------------------------------

    async def list_page(self, token: str | None = None, page_size: int = 100) -> Page:
        await self._ready()
        spec = self._profile.list_request(token, page_size)
        response = await self._call(spec)
        return self._parse(
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
        response = await self._call(spec)
        return self._parse(spec, response, self._profile.parse_contact)

    async def find_by_external_id(self, external_id: str) -> list[RemoteContact]:
        await self._ready()
        spec = self._profile.search_request(external_id)
        response = await self._call(spec)
        found = self._parse(spec, response, self._profile.parse_search)
        return [rc for rc in found if rc.contact.external_id == external_id]

    async def create(self, contact: Contact) -> WriteResult:
        await self._ready()
        spec = self._profile.create_request(contact)
        response = await self._call(spec)
        try:
            remote = self._profile.parse_contact(_json(response))
        except ApiProtocolError as exc:
            # Created (2xx) but we cannot tell which id it got: the engine must look it up.
            self.metrics.outcome_unknown += 1
            raise OutcomeUnknownError(
                f"POST {spec.route} -> {response.status_code} but the answer is unreadable "
                f"({exc.message}); look the contact up before creating it again",
                status=response.status_code,
                correlation_id=correlation_id(response),
                method=spec.method,
                route=spec.route,
            ) from exc
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
            response = await self._call(spec)
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
        profile = self._profile
        if not isinstance(profile, SourceProfile) or profile.ready:
            return
        async with self._setup_lock:
            if profile.ready:
                return
            created = False
            source_id = await self._find_source(profile)
            if source_id is None:
                spec = profile.source_create_request()
                try:
                    response = await self._call(spec)
                    source_id = self._parse(spec, response, profile.parse_source)
                    created = True
                except (ApiConflictError, OutcomeUnknownError, ApiProtocolError):
                    # Created meanwhile (by another syncd, or by our own unanswered POST):
                    # names are unique, so look again instead of creating a second one.
                    source_id = await self._find_source(profile)
                    if source_id is None:
                        raise
            profile.bind_source(source_id)
            log.info(
                "genesys.external_source.ready",
                name=getattr(profile, "source_name", None),
                source_id=source_id,
                created=created,
            )

    async def _find_source(self, profile: SourceProfile) -> str | None:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            spec = profile.source_lookup_request(cursor)
            response = await self._call(spec)
            found, cursor = self._parse(spec, response, profile.parse_source_lookup)
            if found is not None or cursor is None or cursor in seen:
                return found
            seen.add(cursor)

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
        response = await self._call(spec)
        remote = None
        if response.content.strip():
            remote = self._parse(spec, response, self._profile.parse_contact)
        return WriteResult(genesys_id, remote, response.status_code, correlation_id(response))

    def _parse(self, spec: RequestSpec, response: httpx.Response, parse: Callable[[Any], T]) -> T:
        try:
            return parse(_json(response))
        except ApiProtocolError as exc:
            exc.method, exc.route = spec.method, spec.route
            exc.status = response.status_code
            exc.correlation_id = correlation_id(response)
            raise

    async def _call(self, spec: RequestSpec) -> httpx.Response:
        """Send ``spec`` until it succeeds or a rule says stop; returns a 2xx response."""
        policy = self._retry
        budget = RequestBudget(max_elapsed=policy.max_elapsed)
        attempt = failures = rate_limited = 0
        renewed = False
        while True:
            token = await self.auth.get()
            attempt += 1
            if attempt > 1:
                self.metrics.retries += 1
            slot, outcome = await self._send(spec, token, attempt, budget)
            if isinstance(outcome, httpx.Response):
                response: httpx.Response | None = outcome
                error: httpx.TransportError | None = None
                status = outcome.status_code
                if 200 <= status < 300:
                    return outcome
                if status < 200:  # an interim answer is never final: the server misbehaves
                    if _retry_method(spec) not in IDEMPOTENT_METHODS:
                        raise self._unknown(spec, outcome, None)
                    raise ApiProtocolError(
                        f"{spec.method} {spec.route}: the server answered {status} as final",
                        status=status,
                        method=spec.method,
                        route=spec.route,
                    )
                if status == 401 and not renewed:
                    renewed = True
                    try:
                        await self.auth.renew(token)
                    except ApiError as exc:
                        exc.method, exc.route = spec.method, spec.route
                        raise
                    continue
                if status == 429:
                    rate_limited += 1
                    wait = self.throttle.on_rate_limited(slot, retry_after(outcome))
                    if rate_limited > policy.max_rate_limited or wait > policy.max_retry_after:
                        raise error_for(outcome, method=spec.method, route=spec.route)
                    continue
                verdict = classify_status(_retry_method(spec), status)
                if verdict is Verdict.FAIL:
                    note = "after one token renewal" if status == 401 else None
                    raise error_for(outcome, method=spec.method, route=spec.route, note=note)
            else:
                response, error = None, outcome
                verdict = classify_error(_retry_method(spec), outcome)
                if verdict is Verdict.FAIL:
                    raise unavailable(spec.method, spec.route, None, outcome, failures + 1)
            if verdict is Verdict.UNKNOWN:
                raise self._unknown(spec, response, error)
            failures += 1
            delay = policy.delay(failures, self._rng)
            if failures >= policy.max_attempts or self._past_deadline(budget, delay):
                raise unavailable(spec.method, spec.route, response, error, failures)
            log.info(
                "genesys.request.retry",
                method=spec.method,
                route=spec.route,
                attempt=attempt,
                delay_s=round(delay, 3),
            )
            if delay > 0:
                await self._sleep(delay)

    async def _send(
        self, spec: RequestSpec, token: str, attempt: int, budget: RequestBudget
    ) -> tuple[Slot, httpx.Response | httpx.TransportError]:
        """One attempt inside a throttle slot; transport errors are returned, not raised."""
        try:
            async with self.throttle.slot(budget) as slot:
                started = self._clock()
                self.metrics.requests += 1
                try:
                    response = await self._http.request(
                        spec.method,
                        self._api_url + spec.path,
                        params=spec.params or None,
                        json=spec.json,
                        headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                    )
                except httpx.TransportError as exc:
                    self.metrics.count_error(exc)
                    self.throttle.on_failure(slot)
                    self._log(spec, attempt, started, error=exc)
                    return slot, exc
                except httpx.DecodingError as exc:  # an answer came, its body is undecodable
                    self.metrics.count_error(exc)
                    self._log(spec, attempt, started, error=exc)
                    if _retry_method(spec) not in IDEMPOTENT_METHODS:
                        raise self._unknown(spec, None, exc) from exc
                    raise ApiProtocolError(
                        f"{spec.method} {spec.route}: undecodable answer ({exc})",
                        method=spec.method,
                        route=spec.route,
                    ) from exc
                self._observe(spec, slot, response, attempt, started)
                return slot, response
        except GateClosed as closed:
            raise gate_error(spec.method, spec.route, closed, self._clock()) from None

    def _observe(
        self,
        spec: RequestSpec,
        slot: Slot,
        response: httpx.Response,
        attempt: int,
        started: float,
    ) -> None:
        status = response.status_code
        self.metrics.count_status(status)
        if status == 429:
            self.metrics.rate_limited += 1
        if status in (500, 502, 503, 504):
            self.throttle.on_failure(slot)
        self.throttle.on_response(slot, status, response.headers)
        self._log(spec, attempt, started, response=response)

    def _log(
        self,
        spec: RequestSpec,
        attempt: int,
        started: float,
        *,
        response: httpx.Response | None = None,
        error: BaseException | None = None,
    ) -> None:
        fields: dict[str, Any] = {
            "method": spec.method,
            "route": spec.route,
            "attempt": attempt,
            "latency_ms": round((self._clock() - started) * 1000, 1),
        }
        if response is not None:
            fields["status"] = response.status_code
            fields["correlation_id"] = correlation_id(response)
            ok = response.status_code < 400 or (
                response.status_code == 404 and spec.method == "DELETE"
            )
            (log.debug if ok else log.info)("genesys.request", **fields)
        else:
            fields["error"] = type(error).__name__
            log.info("genesys.request", **fields)

    def _past_deadline(self, budget: RequestBudget, delay: float) -> bool:
        return budget.deadline is not None and self._clock() + delay > budget.deadline

    def _unknown(
        self,
        spec: RequestSpec,
        response: httpx.Response | None,
        error: BaseException | None,
    ) -> OutcomeUnknownError:
        self.metrics.outcome_unknown += 1
        what = f"{response.status_code}" if response is not None else type(error).__name__
        log.warning(
            "genesys.request.outcome_unknown", method=spec.method, route=spec.route, cause=what
        )
        exc = OutcomeUnknownError(
            f"{spec.method} {spec.route}: outcome unknown after {what}; the server may have "
            "applied it, so it is not re-sent: look the contact up first",
            status=response.status_code if response is not None else None,
            correlation_id=correlation_id(response) if response is not None else None,
            method=spec.method,
            route=spec.route,
        )
        exc.__cause__ = error
        return exc


def _retry_method(spec: RequestSpec) -> str:
    """The method whose retry rules apply: an idempotent POST (bulk update, remove, read)
    may be re-sent after an unclear failure, exactly like a PUT."""
    return "PUT" if spec.idempotent and spec.method == "POST" else spec.method


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    # JSONDecodeError and UnicodeDecodeError are ValueErrors; RecursionError: nested too deep
    except (ValueError, RecursionError) as exc:
        raise ApiProtocolError(
            f"the answer is not JSON (content-type {response.headers.get('content-type')!r})",
            status=response.status_code,
        ) from exc


if TYPE_CHECKING:  # mypy proves the client satisfies the engine's interface

    def _conforms(client: GenesysClient) -> ContactsApi:
        return client

    def _bulk_conforms(client: GenesysClient) -> BulkContactsApi:
        return client
