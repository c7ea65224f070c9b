"""Bulk operations: batching, 413 halving, and matching per-entity results back to inputs.

Why matching is explicit: the production API does not promise that ``results`` come back in
the order of the request (the emulator shuffles them on purpose). Each result is therefore
matched to its input by a key it carries: a created entity (or the entity a failure echoes)
by our ``externalIds`` value, an updated, removed or read one by its id. Only when exactly
one input and one keyless result are left over are they paired by elimination; an input no
result accounts for is *unknown* (for a create) or a retryable failure (for the others, which
are safe to send again). Nothing here re-sends a create whose outcome is unknown: that is
the engine's call, after a lookup (invariant 1).

Why batches halve on 413: the maximum entities per request is unconfirmed, so the batch size
is configurable and a 413 ("over the size limit") splits the batch in two and sends both
halves; the runner then keeps the smaller size for later batches.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import httpx

from syncd.errors import (
    ApiAuthError,
    ApiConflictError,
    ApiEnvironmentError,
    ApiError,
    ApiNotFoundError,
    ApiProtocolError,
    ApiRateLimitedError,
    ApiUnavailableError,
    ApiValidationError,
    ContactMergedError,
    OutcomeUnknownError,
)
from syncd.genesys.api import BulkItemResult
from syncd.genesys.profiles import BulkEntry, BulkProfile, RequestSpec
from syncd.genesys.responses import correlation_id, environmental_cause
from syncd.logs import get_logger
from syncd.model import Contact, RemoteContact, WriteResult

log = get_logger("syncd.genesys")

Op = Literal["create", "update", "delete", "read"]
Send = Callable[[RequestSpec], Awaitable[httpx.Response]]
TRANSIENT = (ApiUnavailableError, ApiRateLimitedError)
_BY_STATUS: dict[int, type[ApiError]] = {
    400: ApiValidationError,
    401: ApiAuthError,
    403: ApiAuthError,
    404: ApiNotFoundError,
    409: ApiConflictError,
    413: ApiValidationError,
    422: ApiValidationError,
    429: ApiRateLimitedError,
}


@dataclass(frozen=True, slots=True)
class _Item:
    index: int  # position in the caller's sequence
    key: str  # external id (create) or Genesys id (update, delete, read)
    payload: Any  # Contact (create), full document (update), None (delete, read)


def _failed(item: _Item, error: ApiError, *, retryable: bool, cid: str | None) -> BulkItemResult:
    gid = None if isinstance(item.payload, Contact) else item.key
    return BulkItemResult(
        item.index,
        item.key,
        "failed",
        genesys_id=gid,
        status=error.status,
        error=error,
        retryable=retryable,
        correlation_id=cid,
    )


def _unknown(item: _Item, error: OutcomeUnknownError, cid: str | None) -> BulkItemResult:
    return BulkItemResult(
        item.index, item.key, "unknown", status=error.status, error=error, correlation_id=cid
    )


def _unique(keys: Sequence[str], what: str) -> None:
    if any(not key for key in keys):
        raise ValueError(f"every entity of a bulk call needs {what}")
    if len(set(keys)) != len(keys):
        raise ValueError(f"the same {what} twice in one bulk call")


class BulkRunner:
    """Bulk calls of one client (its 413-learned batch size lives here)."""

    def __init__(self, profile: BulkProfile, send: Send, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.profile = profile
        self._send = send
        self.batch_size = batch_size
        self.limit = batch_size  # lowered by 413 answers

    # -- operations ----------------------------------------------------------------------------

    async def create(self, contacts: Sequence[Contact]) -> list[BulkItemResult]:
        _unique([c.external_id for c in contacts], "external_id")
        results: dict[int, BulkItemResult] = {}
        todo = []
        for index, contact in enumerate(contacts):
            item = _Item(index, contact.external_id, contact)
            if not self._representable(item, contact, results):
                continue
            todo.append(item)
        await self._batches("create", todo, results)
        return [results[i] for i in range(len(contacts))]

    async def update(self, pairs: Sequence[tuple[str, Contact]]) -> list[BulkItemResult]:
        _unique([gid for gid, _ in pairs], "Genesys id")
        results: dict[int, BulkItemResult] = {}
        wanted = []
        for index, (gid, contact) in enumerate(pairs):
            item = _Item(index, gid, None)
            if self._representable(item, contact, results):
                wanted.append((item, contact))
        # A bulk update replaces whole contacts: read them first, keep what syncd does not own.
        reads = await self.read([item.key for item, _ in wanted])
        todo = []
        for (item, contact), read in zip(wanted, reads, strict=True):
            if read.outcome != "ok" or read.remote is None:
                results[item.index] = BulkItemResult(
                    item.index,
                    item.key,
                    "failed",
                    genesys_id=item.key,
                    status=read.status,
                    error=read.error,
                    retryable=read.retryable,
                    correlation_id=read.correlation_id,
                )
                continue
            survivor = self.profile.merged_into(read.remote.raw, item.key)
            if survivor is not None:  # the read answered the contact it was merged into
                merged = ContactMergedError(item.key, survivor, status=404)
                results[item.index] = BulkItemResult(
                    item.index, item.key, "failed", genesys_id=item.key, status=404, error=merged
                )
                continue
            document = self.profile.merged_document(read.remote, contact)
            todo.append(_Item(item.index, item.key, document))
        await self._batches("update", todo, results)
        return [results[i] for i in range(len(pairs))]

    async def delete(self, genesys_ids: Sequence[str]) -> list[BulkItemResult]:
        return await self._plain("delete", genesys_ids)

    async def read(self, genesys_ids: Sequence[str]) -> list[BulkItemResult]:
        return await self._plain("read", genesys_ids)

    async def _plain(self, op: Op, genesys_ids: Sequence[str]) -> list[BulkItemResult]:
        _unique(list(genesys_ids), "Genesys id")
        results: dict[int, BulkItemResult] = {}
        items = [_Item(index, gid, None) for index, gid in enumerate(genesys_ids)]
        await self._batches(op, items, results)
        return [results[i] for i in range(len(genesys_ids))]

    def _representable(
        self, item: _Item, contact: Contact, results: dict[int, BulkItemResult]
    ) -> bool:
        problem = self.profile.representation_problem(contact)
        if problem is None:
            return True
        error = ApiValidationError(f"cannot be represented: {problem}")
        results[item.index] = _failed(item, error, retryable=False, cid=None)
        return False

    # -- batches -------------------------------------------------------------------------------

    async def _batches(
        self, op: Op, items: list[_Item], results: dict[int, BulkItemResult]
    ) -> None:
        size = self.limit
        async with anyio.create_task_group() as tg:
            for start in range(0, len(items), size):
                tg.start_soon(self._batch, op, items[start : start + size], results)

    def _spec(self, op: Op, items: list[_Item]) -> RequestSpec:
        if op == "create":
            return self.profile.bulk_create_request([item.payload for item in items])
        if op == "update":
            return self.profile.bulk_update_request([item.payload for item in items])
        if op == "delete":
            return self.profile.bulk_delete_request([item.key for item in items])
        return self.profile.bulk_read_request([item.key for item in items])

    async def _batch(self, op: Op, items: list[_Item], results: dict[int, BulkItemResult]) -> None:
        spec = self._spec(op, items)
        try:
            response = await self._send(spec)
        except ApiValidationError as exc:
            if exc.status == 413 and len(items) > 1:
                half = (len(items) + 1) // 2
                self.limit = min(self.limit, half)
                log.warning("genesys.bulk.too_large", op=op, size=len(items), retry_size=half)
                await self._batch(op, items[:half], results)
                await self._batch(op, items[half:], results)
                return
            self._all(op, items, exc, results)
            return
        except ApiError as exc:
            self._all(op, items, exc, results)
            return
        cid = correlation_id(response)
        try:
            entries = self.profile.parse_bulk(_body(response))
        except ApiProtocolError as exc:
            exc.method, exc.route, exc.status = spec.method, spec.route, response.status_code
            exc.correlation_id = cid
            self._all(op, items, exc, results)
            return
        self._match(op, items, entries, results, cid, spec.route)

    def _all(
        self, op: Op, items: list[_Item], exc: ApiError, results: dict[int, BulkItemResult]
    ) -> None:
        """The whole batch failed: each entity gets the batch's error."""
        cid = exc.correlation_id
        if op == "create" and isinstance(exc, OutcomeUnknownError | ApiProtocolError):
            unknown = exc if isinstance(exc, OutcomeUnknownError) else _as_unknown(exc)
            for item in items:
                results[item.index] = _unknown(item, unknown, cid)
            return
        retryable = isinstance(exc, (*TRANSIENT, ApiProtocolError, OutcomeUnknownError))
        for item in items:
            results[item.index] = _failed(item, exc, retryable=retryable, cid=cid)

    # -- matching ------------------------------------------------------------------------------

    def _match(
        self,
        op: Op,
        items: list[_Item],
        entries: list[BulkEntry],
        results: dict[int, BulkItemResult],
        cid: str | None,
        route: str,
    ) -> None:
        pending = {item.key: item for item in items}
        keyless: list[BulkEntry] = []
        for entry in entries:
            key = entry.external_id if op == "create" else entry.id
            item = pending.pop(key, None) if key else None
            if item is not None:
                results[item.index] = self._result(op, item, entry, cid, route)
            elif not key:
                keyless.append(entry)
        if len(pending) == 1 and len(keyless) == 1:
            (item,) = pending.values()
            pending.clear()
            results[item.index] = self._result(op, item, keyless[0], cid, route)
        for item in pending.values():
            message = f"POST {route}: the bulk answer has no result for this entity"
            if op == "create":
                unknown = OutcomeUnknownError(
                    message + "; look the contact up before creating it again",
                    correlation_id=cid,
                    method="POST",
                    route=route,
                )
                results[item.index] = _unknown(item, unknown, cid)
            else:
                error = ApiProtocolError(message, correlation_id=cid, method="POST", route=route)
                results[item.index] = _failed(item, error, retryable=True, cid=cid)

    def _result(
        self, op: Op, item: _Item, entry: BulkEntry, cid: str | None, route: str
    ) -> BulkItemResult:
        if entry.success:
            gid = entry.id or (None if op == "create" else item.key)
            if op in ("create", "read") and (gid is None or entry.remote is None):
                message = f"POST {route}: succeeded, but the entity sent back is unreadable"
                if op == "create":
                    unknown = OutcomeUnknownError(
                        message, correlation_id=cid, method="POST", route=route
                    )
                    return _unknown(item, unknown, cid)
                broken = ApiProtocolError(message, correlation_id=cid, method="POST", route=route)
                return _failed(item, broken, retryable=True, cid=cid)
            return BulkItemResult(
                item.index,
                item.key,
                "ok",
                genesys_id=gid,
                remote=entry.remote,
                status=entry.status,
                correlation_id=cid,
            )
        status = entry.status
        if op == "delete" and status == 404:  # already gone, as for a single DELETE
            return BulkItemResult(
                item.index, item.key, "ok", genesys_id=item.key, status=404, correlation_id=cid
            )
        cls = _BY_STATUS.get(status or 0) or (
            ApiUnavailableError if (status or 500) >= 500 else ApiError
        )
        detail = ": ".join(part for part in (entry.code, entry.message) if part)
        message = f"POST {route} -> {status} for this entity: {detail or 'failed'}"
        kw: dict[str, Any] = {"status": status, "correlation_id": cid, "method": "POST"}
        cause = environmental_cause(entry.details, entry.code) if status == 400 else None
        if cause is not None:
            error: ApiError = ApiEnvironmentError(message, cause=cause, route=route, **kw)
        else:
            error = cls(message, route=route, **kw)
        retryable = entry.retryable
        if retryable is None:
            retryable = status in (429, 500, 502, 503, 504)
        return _failed(item, error, retryable=retryable, cid=cid)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ApiProtocolError(
            f"the bulk answer is not JSON ({response.headers.get('content-type')!r})",
            status=response.status_code,
        ) from exc


def _as_unknown(exc: ApiError) -> OutcomeUnknownError:
    unknown = OutcomeUnknownError(
        f"{exc.message}; the batch may have been applied: look each contact up before "
        "creating it again",
        status=exc.status,
        correlation_id=exc.correlation_id,
        method=exc.method,
        route=exc.route,
    )
    unknown.__cause__ = exc
    return unknown


# -- profiles without bulk endpoints: one call per entity, same results ----------------------


async def one_by_one(
    keys: Sequence[str],
    call: Callable[[int], Awaitable[WriteResult]],
    *,
    creates: bool,
    concurrency: int,
) -> list[BulkItemResult]:
    """``call(i)`` for each input (``concurrency`` at a time), mapped to BulkItemResults."""
    results: dict[int, BulkItemResult] = {}
    limiter = anyio.CapacityLimiter(concurrency)

    async def one(index: int) -> None:
        async with limiter:
            key = keys[index]
            item = _Item(index, key, Contact(key) if creates else None)
            try:
                written = await call(index)
            except OutcomeUnknownError as exc:
                results[index] = _unknown(item, exc, exc.correlation_id)
                return
            except ApiError as exc:
                retryable = isinstance(exc, TRANSIENT)
                results[index] = _failed(item, exc, retryable=retryable, cid=exc.correlation_id)
                return
            remote: RemoteContact | None = written.remote
            results[index] = BulkItemResult(
                index,
                key,
                "ok",
                genesys_id=written.genesys_id,
                remote=remote,
                status=written.status,
                correlation_id=written.correlation_id,
            )

    async with anyio.create_task_group() as tg:
        for index in range(len(keys)):
            tg.start_soon(one, index)
    return [results[i] for i in range(len(keys))]
