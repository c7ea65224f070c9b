"""The reference profile's API routes under ``/api/v2/contacts``.

Listing: ``pageSize`` 1..100 (default 25), ``pageNumber`` from 1 (default 1), ``sortOrder``
asc|desc (default asc; by dateCreated, then by arrival in the store). Anything outside
those ranges is a 400 rather than a silent clamp, so a client bug shows. A page beyond the
last is an empty ``entities`` list with the true ``total``. Search: ``q`` is required
(1..1,000 chars).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.emulator.pipeline import ApiCall, ApiEndpoint
from syncd.emulator.profiles._common import (
    Invalid,
    check_path_id,
    delete_contact,
    get_contact,
    int_param,
    not_found,
)
from syncd.emulator.profiles.reference_document import build, content_of, validate
from syncd.emulator.responses import ApiProblem
from syncd.emulator.store import StoredContact

if TYPE_CHECKING:
    from syncd.emulator.state import Emulator

BASE = "/api/v2/contacts"
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
MAX_QUERY = 1000


async def list_contacts(call: ApiCall) -> Response:
    page_size = int_param(call, "pageSize", DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE)
    page_number = int_param(call, "pageNumber", 1, 1, None)
    order = call.request.query_params.get("sortOrder", "asc").lower()
    if order not in ("asc", "desc"):
        raise ApiProblem(400, "sortOrder must be asc or desc.")
    offset = (page_number - 1) * page_size
    entities, total = call.emulator.page(offset, page_size, descending=order == "desc")
    body = {"entities": entities, "pageNumber": page_number, "pageSize": page_size, "total": total}
    return JSONResponse(body)


async def search_contacts(call: ApiCall) -> Response:
    query = call.request.query_params.get("q")
    if query is None or not query.strip():
        raise ApiProblem(400, "The search query q is required.")
    if len(query) > MAX_QUERY:
        raise ApiProblem(400, f"The search query is longer than {MAX_QUERY} characters.")
    results = call.emulator.search(query)
    return JSONResponse({"results": results, "total": len(results)})


async def create_contact(call: ApiCall) -> Response:
    body = await call.json_body()
    try:
        content = validate(body, partial=False)
    except Invalid as exc:
        raise exc.problem() from None
    em = call.emulator
    now = em.now_iso()
    contact_id = em.new_id()
    doc = build(contact_id, content, created=now, modified=now)
    em.apply_create(StoredContact(contact_id, now, doc))
    return JSONResponse(doc, status_code=201)


async def replace_contact(call: ApiCall) -> Response:
    """PUT: the body is the whole contact; fields left out are cleared."""
    return await _write(call, partial=False)


async def patch_contact(call: ApiCall) -> Response:
    """PATCH: only the fields in the body change; ``null`` clears an optional field."""
    return await _write(call, partial=True)


async def _write(call: ApiCall, *, partial: bool) -> Response:
    contact_id = call.params["contactId"]
    body = await call.json_body()
    try:
        changes = validate(body, partial=partial)
    except Invalid as exc:
        raise exc.problem() from None
    check_path_id(body, contact_id)
    em = call.emulator
    with em.lock:
        old = em.get(contact_id)
        if old is None:
            raise not_found(contact_id)
        content = {**content_of(old), **changes} if partial else changes
        now = em.now_iso()
        doc = build(contact_id, content, created=old["dateCreated"], modified=now)
        em.apply_update(contact_id, doc, op="update" if partial else "replace", at=now)
    return JSONResponse(doc)


def routes(emulator: Emulator) -> list[BaseRoute]:
    """Search before ``{contactId}``: "search" is not a contact id."""
    endpoints = [
        (BASE, {"GET": list_contacts, "POST": create_contact}),
        (f"{BASE}/search", {"GET": search_contacts}),
        (
            f"{BASE}/{{contactId}}",
            {
                "GET": get_contact,
                "PUT": replace_contact,
                "PATCH": patch_contact,
                "DELETE": delete_contact,
            },
        ),
    ]
    return [Route(path, ApiEndpoint(emulator, path, handlers)) for path, handlers in endpoints]
