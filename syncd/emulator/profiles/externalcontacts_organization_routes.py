"""Organization routes of the externalcontacts profile (records: see
``externalcontacts_organizations.py``).

- ``GET /organizations?pageSize&pageNumber&q``: search by name (case-insensitive
  substring), the first 1,000 records only; ``POST /organizations`` (200).
- ``GET / PUT / DELETE /organizations/{externalOrganizationId}`` (DELETE: 204; contacts keep
  their reference, which then reads back as ``{id, selfUri}`` even with expand).
- ``GET /scan/organizations?limit&cursor&divisionId`` (and ``/divisionviews/all``).
- ``POST /bulk/organizations`` (read), ``/bulk/organizations/{add,update,remove}``: the
  contacts' bulk shape and limit (``bulk_max_entities``).
- ``POST /identifierlookup/organizations``: an ExternalId ExternalOrganizationIdentifier ->
  the organization, or 404 (lags like the contacts' lookup).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.emulator.pipeline import ApiCall, ApiEndpoint
from syncd.emulator.profiles._common import Invalid, check_path_id, int_param
from syncd.emulator.profiles.externalcontacts_bulk import (
    bulk_answer,
    bulk_entities,
    injected_result,
    invalid_result,
    problem_result,
)
from syncd.emulator.profiles.externalcontacts_document import API
from syncd.emulator.profiles.externalcontacts_identity import parse_identifier
from syncd.emulator.profiles.externalcontacts_organizations import (
    Organizations,
    validate_organization,
)
from syncd.emulator.profiles.externalcontacts_routes import (
    SCAN_DEFAULT_LIMIT,
    SCAN_MAX_LIMIT,
    SCAN_MIN_LIMIT,
    SEARCH_WINDOW,
    uri,
)
from syncd.emulator.responses import ApiProblem
from syncd.emulator.store import Doc

if TYPE_CHECKING:
    from syncd.emulator.profiles.externalcontacts import ExternalContactsProfile
    from syncd.emulator.state import Emulator

SCAN_SCOPE = "scan/organizations"
Result = dict[str, Any]


def organization_not_found(org_id: str) -> ApiProblem:
    return ApiProblem(404, f"External organization {org_id} was not found.", code="not.found")


class OrganizationRoutes:
    def __init__(self, emulator: Emulator, profile: ExternalContactsProfile) -> None:
        self.em = emulator
        self.profile = profile

    @property
    def orgs(self) -> Organizations:
        """Looked up per call: a reset gives the profile new records."""
        return self.profile.organizations

    # -- writes, shared by the single and the bulk routes ------------------------------------

    def _lag(self) -> float:
        return self.profile.variants.identifier_lookup_lag_ms / 1000.0

    def create_one(self, body: Any) -> Doc:
        content = validate_organization(body, known=self.profile)
        em = self.em
        return self.orgs.create(
            content,
            now=em.now_iso(),
            at=em.clock.monotonic(),
            home=self.profile.divisions.home,
            lag=self._lag(),
        )

    def replace_one(self, org_id: str, body: Any) -> Doc:
        old = self.orgs.get(org_id)
        if old is None:
            raise organization_not_found(org_id)
        content = validate_organization(body, known=self.profile)
        em = self.em
        return self.orgs.replace(
            old, content, now=em.now_iso(), at=em.clock.monotonic(), lag=self._lag()
        )

    # -- single routes ---------------------------------------------------------------------

    async def search(self, call: ApiCall) -> Response:
        size = int_param(call, "pageSize", 25, 1, 200)
        number = int_param(call, "pageNumber", 1, 1, None)
        if number * size > SEARCH_WINDOW:
            raise ApiProblem(400, f"pageNumber * pageSize must be <= {SEARCH_WINDOW}.")
        query = (call.request.query_params.get("q") or "").strip().casefold()
        with self.em.lock:
            found = [d for d in self.orgs.all() if query in str(d.get("name", "")).casefold()]
        entities = found[(number - 1) * size : number * size]
        pages = math.ceil(len(found) / size) if found else 0
        path = f"{API}/organizations"
        q = query or None
        body: dict[str, Any] = {
            "entities": entities,
            "pageSize": size,
            "pageNumber": number,
            "total": len(found),
            "pageCount": pages,
            "firstUri": uri(path, pageSize=size, pageNumber=1, q=q),
            "selfUri": uri(path, pageSize=size, pageNumber=number, q=q),
            "lastUri": uri(path, pageSize=size, pageNumber=max(pages, 1), q=q),
        }
        if number < pages:
            body["nextUri"] = uri(path, pageSize=size, pageNumber=number + 1, q=q)
        return JSONResponse(body)

    async def create(self, call: ApiCall) -> Response:
        body = await call.json_body()
        try:
            with self.em.lock:
                doc = self.create_one(body)
        except Invalid as exc:
            raise exc.problem() from None
        return JSONResponse(doc)

    async def get(self, call: ApiCall) -> Response:
        org_id = call.params["externalOrganizationId"]
        with self.em.lock:
            doc = self.orgs.get(org_id)
        if doc is None:
            raise organization_not_found(org_id)
        return JSONResponse(doc)

    async def replace(self, call: ApiCall) -> Response:
        org_id = call.params["externalOrganizationId"]
        body = await call.json_body()
        check_path_id(body, org_id)
        try:
            with self.em.lock:
                doc = self.replace_one(org_id, body)
        except Invalid as exc:
            raise exc.problem() from None
        return JSONResponse(doc)

    async def delete(self, call: ApiCall) -> Response:
        org_id = call.params["externalOrganizationId"]
        with self.em.lock:
            doc = self.orgs.delete(org_id, at=self.em.clock.monotonic(), lag=self._lag())
        if doc is None:
            raise organization_not_found(org_id)
        return Response(status_code=204)

    async def scan(self, call: ApiCall) -> Response:
        limit = int_param(call, "limit", SCAN_DEFAULT_LIMIT, SCAN_MIN_LIMIT, SCAN_MAX_LIMIT)
        cursor = call.request.query_params.get("cursor")
        division = call.request.query_params.get("divisionId")
        em = self.em
        with em.lock:
            now = em.clock.monotonic()
            docs = self.orgs.all()
            if division:
                docs = [doc for doc in docs if doc["division"]["id"] == division]
            start = 0
            if cursor:
                key = em.cursors.resolve(SCAN_SCOPE, cursor, now=now)
                if key is None:
                    raise ApiProblem(400, "The cursor is invalid or has expired.")
                keys = [self.orgs.store.key(doc["id"]) for doc in docs]
                start = sum(1 for k in keys if k <= key)
            page = docs[start : start + limit]
            after = None
            if start + limit < len(docs) and page:
                after = em.cursors.issue(SCAN_SCOPE, self.orgs.store.key(page[-1]["id"]), now=now)
        path = call.request.url.path
        body: dict[str, Any] = {"entities": page}
        if after is not None:
            body["cursors"] = {"after": after}
            body["nextUri"] = uri(path, limit=limit, cursor=after, divisionId=division)
        body["selfUri"] = uri(path, limit=limit, cursor=cursor or None, divisionId=division)
        return JSONResponse(body)

    async def lookup(self, call: ApiCall) -> Response:
        body = await call.json_body()
        try:
            _, key = parse_identifier(body, where="identifier", types=("ExternalId",))
        except Invalid as exc:
            raise exc.problem() from None
        em = self.em
        with em.lock:
            holder = self.orgs.claims.lagging_holder(key, now=em.clock.monotonic())
            doc = self.orgs.get(holder) if holder is not None else None
        if doc is None:
            raise ApiProblem(
                404, "No external organization claims this identifier.", code="not.found"
            )
        return JSONResponse(doc)

    # -- bulk --------------------------------------------------------------------------------

    async def _bulk(self, call: ApiCall, one: Callable[[Any], Result]) -> Response:
        entities = await bulk_entities(call, self.profile, self.profile.bulk_max_entities)
        with self.em.lock:
            results = [one(entity) for entity in entities]
        return bulk_answer(results, self.profile)

    def _guarded(self, entity: Any, entity_id: str | None, write: Callable[[], Doc]) -> Result:
        if self.em.faults.entity_error():
            return injected_result(entity, entity_id)
        try:
            doc = write()
        except Invalid as exc:
            return invalid_result(exc, entity, entity_id)
        except ApiProblem as problem:
            return problem_result(problem, entity, entity_id)
        return {"id": doc["id"], "success": True, "status": 200, "entity": doc}

    async def bulk_add(self, call: ApiCall) -> Response:
        return await self._bulk(call, lambda e: self._guarded(e, None, lambda: self.create_one(e)))

    async def bulk_update(self, call: ApiCall) -> Response:
        def one(entity: Any) -> Result:
            org_id = _id_of(entity)
            if org_id is None:
                missing = Invalid([("id", "missing.property", "id is required to update")])
                return invalid_result(missing, entity)
            return self._guarded(entity, org_id, lambda: self.replace_one(org_id, entity))

        return await self._bulk(call, one)

    async def bulk_remove(self, call: ApiCall) -> Response:
        def one(entity: Any) -> Result:
            org_id = _id_of(entity)
            if org_id is None:
                missing = Invalid([("id", "missing.property", "id is required")])
                return invalid_result(missing, entity)

            def remove() -> Doc:
                doc = self.orgs.delete(org_id, at=self.em.clock.monotonic(), lag=self._lag())
                if doc is None:
                    raise organization_not_found(org_id)
                return doc

            result = self._guarded({"id": org_id}, org_id, remove)
            result.pop("entity", None)
            return result

        return await self._bulk(call, one)

    async def bulk_read(self, call: ApiCall) -> Response:
        def one(entity: Any) -> Result:
            org_id = _id_of(entity)
            doc = self.orgs.get(org_id) if org_id is not None else None
            if doc is None:
                missing = organization_not_found(str(org_id))
                return problem_result(missing, {"id": org_id}, org_id)
            return {"id": org_id, "success": True, "status": 200, "entity": doc}

        entities = await bulk_entities(call, self.profile, self.profile.bulk_max_entities)
        with self.em.lock:
            results = [one(entity) for entity in entities]
        return bulk_answer(results, self.profile)


def _id_of(entity: Any) -> str | None:
    org_id = entity.get("id") if isinstance(entity, dict) else None
    return org_id if isinstance(org_id, str) and org_id else None


def routes(emulator: Emulator, profile: ExternalContactsProfile) -> list[BaseRoute]:
    r = OrganizationRoutes(emulator, profile)
    bulk = f"{API}/bulk/organizations"
    reads = {f"{bulk}": r.bulk_read, f"{API}/identifierlookup/organizations": r.lookup}
    endpoints: list[tuple[str, dict[str, Any]]] = [
        (f"{API}/organizations", {"GET": r.search, "POST": r.create}),
        (
            f"{API}/organizations/{{externalOrganizationId}}",
            {"GET": r.get, "PUT": r.replace, "DELETE": r.delete},
        ),
        (f"{API}/scan/organizations", {"GET": r.scan}),
        (f"{API}/scan/organizations/divisionviews/all", {"GET": r.scan}),
        (f"{bulk}/add", {"POST": r.bulk_add}),
        (f"{bulk}/update", {"POST": r.bulk_update}),
        (f"{bulk}/remove", {"POST": r.bulk_remove}),
    ]
    out: list[BaseRoute] = [
        Route(path, ApiEndpoint(emulator, path, handlers)) for path, handlers in endpoints
    ]
    # Reading is not a write: no write faults, no lost acknowledgements.
    out += [
        Route(path, ApiEndpoint(emulator, path, {"POST": handler}, writes=()))
        for path, handler in reads.items()
    ]
    return out
