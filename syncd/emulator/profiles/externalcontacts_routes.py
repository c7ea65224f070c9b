"""The externalcontacts profile's routes under ``/api/v2/externalcontacts``.

- ``GET /contacts``: search (``q``) or list, ``pageSize`` 1..200 (default 25), ``pageNumber``
  from 1, and only the first 1,000 records: ``pageNumber * pageSize > 1000`` is a 400, as in
  production. ``sortOrder`` is ``field:asc|desc`` over firstName, lastName, middleName, title
  (default: creation order). With ``q`` the answer comes from the (lagging) search index.
- ``POST /contacts``; ``GET / PUT / PATCH / DELETE /contacts/{contactId}``. PUT is a full
  replace (fields left out are cleared); PATCH takes ``{"changes": [...]}``.
- ``GET /scan/contacts?limit=&cursor=``: the full listing, ``limit`` 10..200 (default 100),
  ``{entities, cursors: {after}, nextUri, selfUri}``; the last page has no ``after``.
- ``GET / POST /externalsources``, ``GET /externalsources/{externalSourceId}``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.emulator.pipeline import ApiCall, ApiEndpoint
from syncd.emulator.profiles._common import (
    Invalid,
    check_path_id,
    delete_contact,
    int_param,
    not_found,
)
from syncd.emulator.profiles.externalcontacts_document import API, content_of, validate
from syncd.emulator.profiles.externalcontacts_patch import apply_changes
from syncd.emulator.profiles.externalcontacts_sources import SourceConflict
from syncd.emulator.responses import ApiProblem
from syncd.emulator.store import Doc

if TYPE_CHECKING:
    from syncd.emulator.profiles.externalcontacts import ExternalContactsProfile
    from syncd.emulator.state import Emulator

SEARCH_DEFAULT_PAGE_SIZE = 25
SEARCH_MAX_PAGE_SIZE = 200
SEARCH_WINDOW = 1000  # only the first 1,000 records are reachable by search
SCAN_DEFAULT_LIMIT = 100
SCAN_MIN_LIMIT, SCAN_MAX_LIMIT = 10, 200
MAX_QUERY = 1000
SORT_FIELDS = ("firstName", "lastName", "middleName", "title")
SCAN_SCOPE = "scan/contacts"
SOURCES_SCOPE = "externalsources"


def uri(path: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{path}?{query}" if query else path


class ContactRoutes:
    def __init__(self, emulator: Emulator, profile: ExternalContactsProfile) -> None:
        self.em = emulator
        self.profile = profile

    # -- contacts ----------------------------------------------------------------------------

    async def search(self, call: ApiCall) -> Response:
        size = int_param(call, "pageSize", SEARCH_DEFAULT_PAGE_SIZE, 1, SEARCH_MAX_PAGE_SIZE)
        number = int_param(call, "pageNumber", 1, 1, None)
        if number * size > SEARCH_WINDOW:
            raise ApiProblem(
                400,
                f"Only the first {SEARCH_WINDOW} records can be fetched: pageNumber * pageSize "
                f"must be <= {SEARCH_WINDOW} (got {number} * {size}). Use the scan endpoint "
                f"{API}/scan/contacts for a full listing.",
            )
        query = call.request.query_params.get("q")
        if query is not None and len(query) > MAX_QUERY:
            raise ApiProblem(400, f"The search query is longer than {MAX_QUERY} characters.")
        sort = _sort_order(call.request.query_params.get("sortOrder"))
        offset = (number - 1) * size
        em = self.em
        if query is not None and query.strip():
            found = em.search(query)
            total = len(found)
            entities = _sorted(found, sort)[offset : offset + size]
        elif sort is not None:
            found = em.contacts()
            total = len(found)
            entities = _sorted(found, sort)[offset : offset + size]
        else:
            entities, total = em.page(offset, size, descending=False)
        entities = [self.profile.present(doc, call) for doc in entities]
        pages = math.ceil(total / size) if total else 0
        path = f"{API}/contacts"
        q = query or None
        body: dict[str, Any] = {
            "entities": entities,
            "pageSize": size,
            "pageNumber": number,
            "total": total,
            "pageCount": pages,
            "firstUri": uri(path, pageSize=size, pageNumber=1, q=q),
            "selfUri": uri(path, pageSize=size, pageNumber=number, q=q),
            "lastUri": uri(path, pageSize=size, pageNumber=max(pages, 1), q=q),
        }
        if number < pages and (number + 1) * size <= SEARCH_WINDOW:
            body["nextUri"] = uri(path, pageSize=size, pageNumber=number + 1, q=q)
        if number > 1:
            body["previousUri"] = uri(path, pageSize=size, pageNumber=number - 1, q=q)
        return JSONResponse(body)

    async def create(self, call: ApiCall) -> Response:
        body = await call.json_body()
        try:
            content = validate(body, known=self.profile)
            with self.em.lock:
                doc, _ = self.profile.writer.create(content)
        except Invalid as exc:
            raise exc.problem() from None
        return JSONResponse(self.profile.present(doc, call))

    async def get(self, call: ApiCall) -> Response:
        """A merged-away id answers per the ``merged_contact_get`` variant."""
        contact_id = call.params["contactId"]
        with self.em.lock:
            doc = self.profile.read_contact(contact_id)
        if doc is None:
            raise not_found(contact_id)
        return JSONResponse(self.profile.present(doc, call))

    async def get_unresolved(self, call: ApiCall) -> Response:
        """The contact as it was before a merge (a live contact as it is)."""
        contact_id = call.params["contactId"]
        with self.em.lock:
            doc = self.profile.unresolved_contact(contact_id)
        if doc is None:
            raise not_found(contact_id)
        return JSONResponse(self.profile.present(doc, call))

    async def replace(self, call: ApiCall) -> Response:
        """PUT: the body is the whole contact; fields left out are cleared."""
        contact_id = call.params["contactId"]
        body = await call.json_body()
        check_path_id(body, contact_id)
        try:
            content = validate(body, known=self.profile)
        except Invalid as exc:
            raise exc.problem() from None
        return self._store(call, contact_id, lambda _old: content, op="replace")

    async def patch(self, call: ApiCall) -> Response:
        """PATCH: ``{"changes": [{"field": "$.x", "value": ..., "action": ...}]}``."""
        contact_id = call.params["contactId"]
        body = await call.json_body()

        def change(old: Doc) -> dict[str, Any]:
            try:
                return apply_changes(content_of(old), body, known=self.profile)
            except Invalid as exc:
                raise exc.problem() from None

        return self._store(call, contact_id, change, op="update")

    def _store(self, call: ApiCall, contact_id: str, make: Any, *, op: str) -> Response:
        """PUT and PATCH of a merged-away id are a 404: the record is no longer writable."""
        em = self.em
        with em.lock:
            old = em.get(contact_id)
            if old is None:
                raise not_found(contact_id)
            try:
                doc = self.profile.writer.update(old, make(old), op=op)
            except Invalid as exc:
                raise exc.problem() from None
        return JSONResponse(self.profile.present(doc, call))

    # -- scan ------------------------------------------------------------------------------

    async def scan(self, call: ApiCall) -> Response:
        limit = int_param(call, "limit", SCAN_DEFAULT_LIMIT, SCAN_MIN_LIMIT, SCAN_MAX_LIMIT)
        cursor = call.request.query_params.get("cursor")
        division = call.request.query_params.get("divisionId")
        em = self.em
        with em.lock:
            now = em.clock.monotonic()
            key = None
            if cursor:
                key = em.cursors.resolve(SCAN_SCOPE, cursor, now=now)
                if key is None:
                    raise ApiProblem(400, "The cursor is invalid or has expired.")
            entities, more = self._scan_page(key, limit, division)
            after = None
            if more and entities:
                after = em.cursors.issue(SCAN_SCOPE, em.store.key(entities[-1]["id"]), now=now)
        path = call.request.url.path
        body: dict[str, Any] = {"entities": [self.profile.present(doc, call) for doc in entities]}
        if after is not None:
            body["cursors"] = {"after": after}
            body["nextUri"] = uri(path, limit=limit, cursor=after, divisionId=division)
        body["selfUri"] = uri(path, limit=limit, cursor=cursor or None, divisionId=division)
        return JSONResponse(body)

    def _scan_page(self, key: Any, limit: int, division: str | None) -> tuple[list[Doc], bool]:
        """A scan page, limited to one division when ``divisionId`` is given."""
        store = self.em.store
        if not division:
            return store.after(key, limit)
        found: list[Doc] = []
        while True:
            batch, more = store.after(key, max(limit, SCAN_MAX_LIMIT))
            for doc in batch:
                if (doc.get("division") or {}).get("id") == division:
                    if len(found) == limit:
                        return found, True
                    found.append(doc)
                key = store.key(doc["id"])
            if not more:
                return found, False

    # -- external sources --------------------------------------------------------------------

    async def list_sources(self, call: ApiCall) -> Response:
        limit = int_param(call, "limit", SCAN_DEFAULT_LIMIT, SCAN_MIN_LIMIT, SCAN_MAX_LIMIT)
        params = call.request.query_params
        cursor, name = params.get("cursor"), params.get("name")
        active_raw = params.get("active")
        if active_raw not in (None, "true", "false"):
            raise ApiProblem(400, f"active must be true or false, got {active_raw!r}.")
        active = None if active_raw is None else active_raw == "true"
        em = self.em
        with em.lock:
            now = em.clock.monotonic()
            docs = self.profile.sources.listing(prefix=name, active=active)
            if cursor:
                key = em.cursors.resolve(SOURCES_SCOPE, cursor, now=now)
                if key is None:
                    raise ApiProblem(400, "The cursor is invalid or has expired.")
                docs = [doc for doc in docs if self.profile.sources.key(doc) > key]
            page, more = docs[:limit], len(docs) > limit
            after = None
            if more:
                after = em.cursors.issue(SOURCES_SCOPE, self.profile.sources.key(page[-1]), now=now)
        path = f"{API}/externalsources"
        body: dict[str, Any] = {"entities": page}
        if after is not None:
            body["cursors"] = {"after": after}
            body["nextUri"] = uri(path, limit=limit, cursor=after, name=name, active=active_raw)
        body["selfUri"] = uri(path, limit=limit, cursor=cursor or None, name=name)
        return JSONResponse(body)

    async def create_source(self, call: ApiCall) -> Response:
        body = await call.json_body()
        with self.em.lock:
            try:
                doc = self.profile.sources.create(body)
            except SourceConflict as exc:
                raise ApiProblem(409, str(exc), code="conflict") from None
            except ValueError as exc:
                raise ApiProblem(400, f"Validation failed: {exc}") from None
        return JSONResponse(doc)

    async def get_source(self, call: ApiCall) -> Response:
        source_id = call.params["externalSourceId"]
        with self.em.lock:
            doc = self.profile.sources.get(source_id)
        if doc is None:
            raise ApiProblem(404, f"External source {source_id} was not found.")
        return JSONResponse(doc)


def _sort_order(raw: str | None) -> tuple[str, bool] | None:
    if raw is None or not raw.strip():
        return None
    field, _, direction = raw.partition(":")
    direction = direction or "asc"
    if field not in SORT_FIELDS or direction.lower() not in ("asc", "desc"):
        raise ApiProblem(
            400, f"sortOrder must be one of {', '.join(SORT_FIELDS)} with :asc or :desc."
        )
    return field, direction.lower() == "desc"


def _sorted(docs: list[Doc], sort: tuple[str, bool] | None) -> list[Doc]:
    if sort is None:
        return docs
    field, descending = sort
    return sorted(docs, key=lambda doc: str(doc.get(field, "")).casefold(), reverse=descending)


def routes(emulator: Emulator, profile: ExternalContactsProfile) -> list[BaseRoute]:
    r = ContactRoutes(emulator, profile)
    endpoints = [
        (f"{API}/contacts", {"GET": r.search, "POST": r.create}),
        (
            f"{API}/contacts/{{contactId}}",
            {"GET": r.get, "PUT": r.replace, "PATCH": r.patch, "DELETE": delete_contact},
        ),
        (f"{API}/contacts/{{contactId}}/unresolved", {"GET": r.get_unresolved}),
        (f"{API}/scan/contacts", {"GET": r.scan}),
        (f"{API}/scan/contacts/divisionviews/all", {"GET": r.scan}),
        (f"{API}/externalsources", {"GET": r.list_sources, "POST": r.create_source}),
        (f"{API}/externalsources/{{externalSourceId}}", {"GET": r.get_source}),
    ]
    return [Route(path, ApiEndpoint(emulator, path, handlers)) for path, handlers in endpoints]
