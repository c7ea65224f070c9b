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
from syncd.emulator.profiles._common import REFERENCE_CODES, Invalid, not_found
from syncd.emulator.profiles.externalcontacts_document import API, validate
from syncd.emulator.responses import ApiProblem
from syncd.emulator.store import Doc

if TYPE_CHECKING:
    from syncd.emulator.profiles.externalcontacts import ExternalContactsProfile
    from syncd.emulator.state import Emulator

Result = dict[str, Any]


def failure(
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


def invalid_result(exc: Invalid, entity: Any, entity_id: str | None = None) -> Result:
    details = [{"fieldName": field, "message": message} for field, _, message in exc.problems]
    message = f"Validation failed: {exc}"
    # BulkErrorDetail has no code of its own: a missing record is named by the error's code.
    codes = {code for _, code, _ in exc.problems}
    code = codes.pop() if len(codes) == 1 and codes <= REFERENCE_CODES else "bad.request"
    return failure(400, code, message, entity=entity, entity_id=entity_id, details=details)


def not_found_result(entity: Any, entity_id: str) -> Result:
    missing = not_found(entity_id)
    return failure(
        missing.status, missing.code, missing.message, entity=entity, entity_id=entity_id
    )


def injected_result(entity: Any, entity_id: str | None) -> Result:
    message = "The entity could not be processed; try it again."
    return failure(
        503, "service.unavailable", message, entity=entity, entity_id=entity_id, retryable=True
    )


async def bulk_entities(call: ApiCall, profile: ExternalContactsProfile, limit: int) -> list[Any]:
    """The ``entities`` of a bulk body; over ``limit`` is the ``bulk_limit_status`` variant."""
    body = await call.json_body()
    entities = body.get("entities") if isinstance(body, dict) else None
    if not isinstance(entities, list) or not entities:
        raise ApiProblem(400, 'The body must be {"entities": [...]} with at least one entity.')
    if len(entities) > limit:
        raise ApiProblem(
            profile.variants.bulk_limit_status,
            f"The request is over the size limit: at most {limit} entities per bulk "
            f"request, got {len(entities)}.",
        )
    return entities


def bulk_answer(results: list[Result], profile: ExternalContactsProfile) -> Response:
    """Always 200; the results in a (seeded) shuffled order, as production does not keep it."""
    profile.bulk_order.shuffle(results)
    indexes = [i for i, result in enumerate(results) if not result["success"]]
    body = {"results": results, "errorCount": len(indexes), "errorIndexes": indexes}
    return JSONResponse(body)


def problem_result(problem: ApiProblem, entity: Any, entity_id: str | None = None) -> Result:
    return failure(
        problem.status, problem.code, problem.message, entity=entity, entity_id=entity_id
    )


class BulkRoutes:
    def __init__(self, emulator: Emulator, profile: ExternalContactsProfile) -> None:
        self.em = emulator
        self.profile = profile

    async def _entities(self, call: ApiCall) -> list[Any]:
        return await bulk_entities(call, self.profile, self.profile.bulk_max_entities)

    def _answer(self, results: list[Result]) -> Response:
        return bulk_answer(results, self.profile)

    def _each(self, entities: list[Any], one: Callable[[Any], Result]) -> list[Result]:
        with self.em.lock:
            return [one(entity) for entity in entities]

    async def add(self, call: ApiCall) -> Response:
        entities = await self._entities(call)
        em = self.em

        def one(entity: Any) -> Result:
            if em.faults.entity_error():
                return injected_result(entity, None)
            try:
                content = validate(entity, known=self.profile)
                doc, _ = self.profile.writer.create(content)
            except Invalid as exc:
                return invalid_result(exc, entity)
            except ApiProblem as problem:
                return problem_result(problem, entity)
            return {"id": doc["id"], "success": True, "status": 200, "entity": doc}

        return self._answer(self._each(entities, one))

    async def update(self, call: ApiCall) -> Response:
        entities = await self._entities(call)
        em = self.em

        def one(entity: Any) -> Result:
            entity_id = entity.get("id") if isinstance(entity, dict) else None
            if not isinstance(entity_id, str) or not entity_id:
                invalid = Invalid([("id", "missing.property", "id is required to update")])
                return invalid_result(invalid, entity)
            if em.faults.entity_error():
                return injected_result(entity, entity_id)
            old = em.get(entity_id)
            if old is None:
                return not_found_result(entity, entity_id)
            try:
                content = validate(entity, known=self.profile)
                doc = self.profile.writer.update(old, content)
            except Invalid as exc:
                return invalid_result(exc, entity, entity_id)
            return {"id": entity_id, "success": True, "status": 200, "entity": doc}

        return self._answer(self._each(entities, one))

    async def remove(self, call: ApiCall) -> Response:
        entities = await self._entities(call)
        em = self.em

        def one(entity: Any) -> Result:
            entity_id = _id_of(entity)
            if entity_id is None:
                invalid = Invalid([("id", "missing.property", "id is required")])
                return invalid_result(invalid, entity)
            if em.faults.entity_error():
                return injected_result({"id": entity_id}, entity_id)
            if em.apply_delete(entity_id, at=em.now_iso()) is None:
                return not_found_result({"id": entity_id}, entity_id)
            return {"id": entity_id, "success": True, "status": 200}

        return self._answer(self._each(entities, one))

    async def read(self, call: ApiCall) -> Response:
        """Merged-away ids answer per the ``merged_contact_get`` variant."""
        return await self._read(call, self.profile.read_contact)

    async def read_unresolved(self, call: ApiCall) -> Response:
        return await self._read(call, self.profile.unresolved_contact)

    async def _read(self, call: ApiCall, read: Callable[[str], Doc | None]) -> Response:
        entities = await self._entities(call)

        def one(entity: Any) -> Result:
            entity_id = _id_of(entity)
            if entity_id is None:
                invalid = Invalid([("id", "missing.property", "id is required")])
                return invalid_result(invalid, entity)
            doc = read(entity_id)
            if doc is None:
                return not_found_result({"id": entity_id}, entity_id)
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
    unresolved = f"{base}/unresolved"
    out.append(
        Route(unresolved, ApiEndpoint(emulator, unresolved, {"POST": r.read_unresolved}, writes=()))
    )
    return out
