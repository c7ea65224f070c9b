"""``/__emulator/...`` hooks of the externalcontacts profile (no token, no rate budget).

- ``GET / POST /__emulator/variants``: the unconfirmed-behaviour variants (see
  ``externalcontacts_variants.py``); POST merges the given ones, 400 on an invalid one.
- ``POST /__emulator/merge`` ``{"contactIds": [a, b, ...]}``: merge contacts by hand, as
  Genesys' identity resolution (or an agent) would; answers the new surviving contact.
- ``GET / POST /__emulator/divisions`` ``{id, name}``: the divisions contacts may be in.
- ``GET / POST /__emulator/organizations``: every organization record; POST seeds a list of
  them (validated, ids and dates kept when given), like ``/__emulator/seed`` for contacts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from syncd.emulator.introspect import request_json
from syncd.emulator.profiles._common import Invalid, seed_identity
from syncd.emulator.profiles.externalcontacts_organizations import (
    build_organization,
    validate_organization,
)
from syncd.emulator.responses import ApiProblem

if TYPE_CHECKING:
    from syncd.emulator.profiles.externalcontacts import ExternalContactsProfile
    from syncd.emulator.state import Emulator


def introspection_routes(
    em: Emulator, profile: ExternalContactsProfile
) -> list[tuple[str, str, Any]]:
    async def get_variants(_: Request) -> Response:
        with em.lock:
            return JSONResponse(profile.variants.describe())

    async def set_variants(request: Request) -> Response:
        body = await request_json(request)
        if not isinstance(body, dict):
            raise ApiProblem(400, "The variants must be a JSON object.")
        with em.lock:
            return JSONResponse(profile.set_variants(body))

    async def merge(request: Request) -> Response:
        body = await request_json(request)
        ids = body.get("contactIds") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ApiProblem(400, 'Send {"contactIds": [id, id, ...]}.')
        with em.lock:
            return JSONResponse(profile.writer.merge(ids))

    async def get_divisions(_: Request) -> Response:
        with em.lock:
            return JSONResponse(profile.divisions.all())

    async def add_division(request: Request) -> Response:
        body = await request_json(request)
        with em.lock:
            return JSONResponse(profile.divisions.add(body), status_code=201)

    async def get_organizations(_: Request) -> Response:
        with em.lock:
            return JSONResponse(profile.organizations.all())

    async def seed_organizations(request: Request) -> Response:
        body = await request_json(request)
        if not isinstance(body, list):
            raise ApiProblem(400, "Send a list of organizations.")
        with em.lock:
            now = em.now_iso()
            docs = []
            for position, raw in enumerate(body):
                try:
                    content = validate_organization(raw, known=profile)
                    org_id, created, modified = seed_identity(
                        raw,
                        new_id=profile.organizations.new_id,
                        now=now,
                        created_field="createDate",
                        modified_field="modifyDate",
                    )
                except (Invalid, ValueError) as exc:
                    raise ApiProblem(400, f"organization {position}: {exc}") from None
                content.setdefault("division", profile.divisions.home)
                docs.append(build_organization(org_id, content, created=created, modified=modified))
            taken = [doc["id"] for doc in docs if profile.organizations.get(doc["id"])]
            if taken or len({doc["id"] for doc in docs}) < len(docs):
                raise ApiProblem(400, "organization ids must be new and distinct.")
            profile.organizations.load(docs)
        return JSONResponse(docs, status_code=201)

    return [
        ("variants", "GET", get_variants),
        ("variants", "POST", set_variants),
        ("merge", "POST", merge),
        ("divisions", "GET", get_divisions),
        ("divisions", "POST", add_division),
        ("organizations", "GET", get_organizations),
        ("organizations", "POST", seed_organizations),
    ]
