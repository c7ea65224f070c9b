"""``/__emulator/...``: look inside the emulator and steer it (no token, no rate budget)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.emulator.responses import ApiProblem, correlation_id, error_response

if TYPE_CHECKING:
    from syncd.emulator.state import Emulator

PREFIX = "/__emulator"


async def request_json(request: Request) -> Any:
    """The body of an introspection request as JSON (None when empty)."""
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise ApiProblem(400, f"The request body is not valid JSON: {exc}") from None


def routes(em: Emulator) -> list[BaseRoute]:
    def guarded(handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            try:
                result: Response = await handler(request)
            except ApiProblem as problem:
                return error_response(problem, correlation_id(request.scope))
            except ValueError as exc:
                return error_response(ApiProblem(400, str(exc)), correlation_id(request.scope))
            return result

        return endpoint

    async def stats(_: Request) -> Response:
        return JSONResponse(em.stats())

    async def contacts(_: Request) -> Response:
        return JSONResponse(em.contacts())

    async def requests(_: Request) -> Response:
        return JSONResponse(em.request_log())

    async def writes(_: Request) -> Response:
        return JSONResponse(em.write_log())

    async def get_faults(_: Request) -> Response:
        return JSONResponse(em.fault_settings())

    async def set_faults(request: Request) -> Response:
        body = await request_json(request)
        if not isinstance(body, dict):
            raise ApiProblem(400, "The fault settings must be a JSON object.")
        return JSONResponse(em.set_faults(**body))

    async def reset(_: Request) -> Response:
        em.reset()
        return Response(status_code=204)

    async def seed(request: Request) -> Response:
        body = await request_json(request)
        if isinstance(body, dict):
            body = body.get("contacts")
        if not isinstance(body, list):
            raise ApiProblem(400, 'Send a list of contacts (or {"contacts": [...]}).')
        return JSONResponse(em.seed_contacts(body), status_code=201)

    async def revoke(_: Request) -> Response:
        return JSONResponse({"revoked": em.revoke_tokens()})

    async def save(_: Request) -> Response:
        if em.config.persist_path is None:
            raise ApiProblem(400, "The emulator was started without a persist path.")
        em.save()
        return Response(status_code=204)

    table: list[tuple[str, str, Any]] = [
        ("stats", "GET", stats),
        ("contacts", "GET", contacts),
        ("requests", "GET", requests),
        ("writes", "GET", writes),
        ("faults", "GET", get_faults),
        ("faults", "POST", set_faults),
        ("reset", "POST", reset),
        ("seed", "POST", seed),
        ("revoke", "POST", revoke),
        ("save", "POST", save),
    ]
    # A profile may add hooks of its own (``introspection_routes(emulator)``).
    profile_routes = getattr(em.profile, "introspection_routes", None)
    if profile_routes is not None:
        table += profile_routes(em)
    return [
        Route(f"{PREFIX}/{name}", guarded(handler), methods=[method])
        for name, method, handler in table
    ]
