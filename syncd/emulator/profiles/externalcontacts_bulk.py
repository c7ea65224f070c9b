"""Bulk endpoints of the externalcontacts profile under ``/api/v2/externalcontacts/bulk``.

``POST /bulk/contacts/add`` ``{entities: [ExternalContact...]}``, ``/bulk/contacts/update``
(each entity a full replace, with its ``id``), ``/bulk/contacts/remove`` and
``/bulk/contacts`` (read) ``{entities: [{id}...]}``. The answer is always 200 with

    {"results": [{"id", "success", "status", "entity", "error": {"code", "message",
     "status", "retryable", "details", "entity"}}], "errorCount", "errorIndexes"}

where, as in production, **the order of ``results`` is not the order of the request**: the
emulator shuffles it (seeded), so a client must match results by id (or, for an add, by the
entity it gets back). A failed entity echoes what was sent in ``error.entity``.
``errorIndexes`` are positions in ``results``. Each entity succeeds or fails on its own:
validation errors (400), unknown ids (404), and, with the ``bulk_entity_error_rate`` fault, a
retryable 503 for that entity alone (nothing applied). More than ``bulk_max_entities``
entities is a 413 for the whole request. A bulk request costs one request of the rate budget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.emulator.pipeline import ApiCall, ApiEndpoint
from syncd.emulator.profiles._common import Invalid, not_found
from syncd.emulator.profiles.externalcontacts_document import API, build, validate
from syncd.emulator.responses import ApiProblem
from syncd.emulator.store import StoredContact

if TYPE_CHECKING:
    from syncd.emulator.profiles.externalcontacts import ExternalContactsProfile
    from syncd.emulator.state import Emulator

Result = dict[str, Any]


def _failure(
    status: int,
    code: str,
    message: str,
    *,
    entity: Any,
    entity_id: str | None = None,
    retryable: bool = False,
    details: list[dict[str, Any]] | None = None,
) -> Result:
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "status": status,
        "retryable": retryable,
        "details": details or [],
    }
    if entity is not None:
        error["entity"] = entity
    result: Result = {"success": False, "status": status, "error": error}
    if entity_id is not None:
        result = {"id": entity_id, **result}
    return result


def _invalid(exc: Invalid, entity: Any, entity_id: str | None = None) -> Result:
    details = [{"fieldName": field, "message": message} for field, _, message in exc.problems]
    message = f"Validation failed: {exc}"
    return _failure(
        400, "bad.request", message, entity=entity, entity_id=entity_id, details=details
    )


def _not_found(entity: Any, entity_id: str) -> Result:
    missing = not_found(entity_id)
    return _failure(
        missing.status, missing.code, missing.message, entity=entity, entity_id=entity_id
    )


def _injected(entity: Any, entity_id: str | None) -> Result:
    message = "The entity could not be processed; try it again."
    return _failure(
        503, "service.unavailable", message, entity=entity, entity_id=entity_id, retryable=True
    )


class BulkRoutes:
    def __init__(self, emulator: Emulator, profile: ExternalContactsProfile) -> None:
        self.em = emulator
        self.profile = profile

    async def _entities(self, call: ApiCall) -> list[Any]:
        body = await call.json_body()
        entities = body.get("entities") if isinstance(body, dict) else None
        if not isinstance(entities, list) or not entities:
            raise ApiProblem(400, 'The body must be {"entities": [...]} with at least one entity.')
        limit = self.profile.bulk_max_entities
        if len(entities) > limit:
            raise ApiProblem(
                413,
                f"The request is over the size limit: at most {limit} entities per bulk "
                f"request, got {len(entities)}.",
            )
        return entities

    def _answer(self, results: list[Result]) -> Response:
        self.profile.bulk_order.shuffle(results)
        indexes = [i for i, result in enumerate(results) if not result["success"]]
        body = {"results": results, "errorCount": len(indexes), "errorIndexes": indexes}
        return JSONResponse(body)

    def _each(self, entities: list[Any], one: Callable[[Any], Result]) -> list[Result]:
        with self.em.lock:
            return [one(entity) for entity in entities]

    async def add(self, call: ApiCall) -> Response:
        entities = await self._entities(call)
        em = self.em

        def one(entity: Any) -> Result:
            if em.faults.entity_error():
                return _injected(entity, None)
            try:
                content = validate(entity, known_source=self.profile.sources.exists)
            except Invalid as exc:
                return _invalid(exc, entity)
            now = em.now_iso()
            contact_id = em.new_id()
            doc = build(contact_id, content, created=now, modified=now)
            em.apply_create(StoredContact(contact_id, now, doc))
            return {"id": contact_id, "success": True, "status": 200, "entity": doc}

        return self._answer(self._each(entities, one))

    async def update(self, call: ApiCall) -> Response:
        entities = await self._entities(call)
        em = self.em

        def one(entity: Any) -> Result:
            entity_id = entity.get("id") if isinstance(entity, dict) else None
            if not isinstance(entity_id, str) or not entity_id:
                invalid = Invalid([("id", "missing.property", "id is required to update")])
                return _invalid(invalid, entity)
            if em.faults.entity_error():
                return _injected(entity, entity_id)
            old = em.get(entity_id)
            if old is None:
                return _not_found(entity, entity_id)
            try:
                content = validate(entity, known_source=self.profile.sources.exists)
            except Invalid as exc:
                return _invalid(exc, entity, entity_id)
            now = em.now_iso()
            doc = build(entity_id, content, created=old["createDate"], modified=now)
            em.apply_update(entity_id, doc, op="replace", at=now)
            return {"id": entity_id, "success": True, "status": 200, "entity": doc}

        return self._answer(self._each(entities, one))

    async def remove(self, call: ApiCall) -> Response:
        entities = await self._entities(call)
        em = self.em

        def one(entity: Any) -> Result:
            entity_id = _id_of(entity)
            if entity_id is None:
                invalid = Invalid([("id", "missing.property", "id is required")])
                return _invalid(invalid, entity)
            if em.faults.entity_error():
                return _injected({"id": entity_id}, entity_id)
            if em.apply_delete(entity_id, at=em.now_iso()) is None:
                return _not_found({"id": entity_id}, entity_id)
            return {"id": entity_id, "success": True, "status": 200}

        return self._answer(self._each(entities, one))

    async def read(self, call: ApiCall) -> Response:
        entities = await self._entities(call)
        em = self.em

        def one(entity: Any) -> Result:
            entity_id = _id_of(entity)
            if entity_id is None:
                invalid = Invalid([("id", "missing.property", "id is required")])
                return _invalid(invalid, entity)
            doc = em.get(entity_id)
            if doc is None:
                return _not_found({"id": entity_id}, entity_id)
            return {"id": entity_id, "success": True, "status": 200, "entity": doc}

        return self._answer(self._each(entities, one))


def _id_of(entity: Any) -> str | None:
    entity_id = entity.get("id") if isinstance(entity, dict) else None
    return entity_id if isinstance(entity_id, str) and entity_id else None


def routes(emulator: Emulator, profile: ExternalContactsProfile) -> list[BaseRoute]:
    r = BulkRoutes(emulator, profile)
    base = f"{API}/bulk/contacts"
    writes = [("add", r.add), ("update", r.update), ("remove", r.remove)]
    out: list[BaseRoute] = [
        Route(f"{base}/{name}", ApiEndpoint(emulator, f"{base}/{name}", {"POST": handler}))
        for name, handler in writes
    ]
    # Reading is not a write: no write faults, no lost acknowledgements.
    out.append(Route(base, ApiEndpoint(emulator, base, {"POST": r.read}, writes=())))
    return out
