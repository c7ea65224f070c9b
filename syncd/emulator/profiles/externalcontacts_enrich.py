"""Identifier lookup and enrich (upsert) of contacts in the externalcontacts profile.

- ``POST /identifierlookup/contacts`` ``ContactIdentifier`` -> the contact claiming it, or
  404. Only ExternalId identifiers are claimed in the emulator (other types answer 404). It
  lags writes by the ``identifier_lookup_lag_ms`` variant (default 0: consistent).
- ``POST /contacts/enrich?dryRun=`` ``ContactEnrichRequest`` ``{id?, division?,
  matchingIdentifiers: [1..25], action, contact, fieldRules?, options?}``. The identifiers
  are looked up in order (never lagging); the first claimant is the match. ``Insert``: no
  match -> create (201), a match -> 409. ``Upsert``: update the match (200) or create (201).
  ``Update``: update the match, none -> 404. ``Merge``: every distinct match is merged into a
  new contact first, then updated (200); none -> create (201). A created contact claims the
  ExternalId identifiers it was matched on (added to ``externalIds``), so re-sending the same
  upsert finds it. ``options.promote`` makes a matched contact Curated. ``dryRun=true``
  answers what would be stored and stores nothing (a would-be new contact has no id).
- ``POST /bulk/contacts/enrich?dryRun=`` ``{entities: [ContactEnrichRequest]}``: at most
  ``bulk_enrich_max_entities`` (10; over it is the ``bulk_limit_status`` variant). Results
  carry ``status`` 200/201 per entity; a failed one echoes its request in ``error.entity``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from syncd.emulator.pipeline import ApiCall, ApiEndpoint
from syncd.emulator.profiles._common import Invalid
from syncd.emulator.profiles.externalcontacts_bulk import (
    bulk_answer,
    bulk_entities,
    injected_result,
    invalid_result,
    problem_result,
)
from syncd.emulator.profiles.externalcontacts_document import (
    API,
    MAX_EXTERNAL_IDS,
    content_of,
    validate,
)
from syncd.emulator.profiles.externalcontacts_fieldrules import parse_rules
from syncd.emulator.profiles.externalcontacts_identity import Key, parse_identifier
from syncd.emulator.profiles.externalcontacts_writes import combine_contact
from syncd.emulator.responses import ApiProblem
from syncd.emulator.store import Doc

if TYPE_CHECKING:
    from syncd.emulator.profiles.externalcontacts import ExternalContactsProfile
    from syncd.emulator.state import Emulator

ACTIONS = ("Insert", "Upsert", "Update", "Merge")
REQUEST_KEYS = frozenset(
    {"id", "division", "matchingIdentifiers", "action", "contact", "fieldRules", "options"}
)
MAX_IDENTIFIERS = 25


def _dry_run(call: ApiCall) -> bool:
    raw = call.request.query_params.get("dryRun")
    if raw not in (None, "true", "false"):
        raise ApiProblem(400, f"dryRun must be true or false, got {raw!r}.")
    return raw == "true"


class EnrichRoutes:
    def __init__(self, emulator: Emulator, profile: ExternalContactsProfile) -> None:
        self.em = emulator
        self.profile = profile

    async def lookup(self, call: ApiCall) -> Response:
        body = await call.json_body()
        try:
            kind, key = parse_identifier(body, where="identifier")
        except Invalid as exc:
            raise exc.problem() from None
        em = self.em
        with em.lock:
            claims = self.profile.contact_claims
            holder = claims.lagging_holder(key, now=em.clock.monotonic())
            doc = em.get(holder) if kind == "ExternalId" and holder is not None else None
        if doc is None:
            raise ApiProblem(404, "No contact claims this identifier.", code="not.found")
        return JSONResponse(self.profile.present(doc, call))

    async def enrich(self, call: ApiCall) -> Response:
        dry_run = _dry_run(call)
        body = await call.json_body()
        try:
            with self.em.lock:
                doc, status = self.enrich_one(body, dry_run=dry_run)
        except Invalid as exc:
            raise exc.problem() from None
        return JSONResponse(self.profile.present(doc, call), status_code=status)

    async def bulk_enrich(self, call: ApiCall) -> Response:
        dry_run = _dry_run(call)
        limit = self.profile.variants.bulk_enrich_max_entities
        entities = await bulk_entities(call, self.profile, limit)
        results = []
        with self.em.lock:
            for entity in entities:
                results.append(self._bulk_one(entity, dry_run=dry_run))
        return bulk_answer(results, self.profile)

    def _bulk_one(self, entity: Any, *, dry_run: bool) -> dict[str, Any]:
        tracker = entity.get("id") if isinstance(entity, dict) else None
        tracker = tracker if isinstance(tracker, str) else None
        if self.em.faults.entity_error():
            return injected_result(entity, tracker)
        try:
            doc, status = self.enrich_one(entity, dry_run=dry_run)
        except Invalid as exc:
            return invalid_result(exc, entity, tracker)
        except ApiProblem as problem:
            return problem_result(problem, entity, tracker)
        result: dict[str, Any] = {"success": True, "status": status, "entity": doc}
        return {"id": doc["id"], **result} if "id" in doc else result

    def enrich_one(self, body: Any, *, dry_run: bool) -> tuple[Doc, int]:
        """``(document, status)`` of one ContactEnrichRequest (Invalid or ApiProblem)."""
        if not isinstance(body, dict):
            raise Invalid([("", "invalid.value", "the request must be a ContactEnrichRequest")])
        unknown = sorted(set(body) - REQUEST_KEYS)
        if unknown:
            raise Invalid([(unknown[0], "invalid.property", f"unknown field {unknown[0]!r}")])
        action = body.get("action")
        if action not in ACTIONS:
            message = f"action must be one of {', '.join(ACTIONS)}"
            raise Invalid([("action", "invalid.value", message)])
        raw_ids = body.get("matchingIdentifiers")
        if not isinstance(raw_ids, list) or not 1 <= len(raw_ids) <= MAX_IDENTIFIERS:
            message = f"matchingIdentifiers must list 1..{MAX_IDENTIFIERS} identifiers"
            raise Invalid([("matchingIdentifiers", "invalid.value", message)])
        identifiers = [
            parse_identifier(raw, where=f"matchingIdentifiers[{i}]")
            for i, raw in enumerate(raw_ids)
        ]
        for kind, (source_id, _) in identifiers:
            if kind == "ExternalId" and not self.profile.source_exists(source_id):
                message = f"external source {source_id!r} does not exist"
                raise Invalid([("matchingIdentifiers", "invalid.value", message)])
        rules = parse_rules(body.get("fieldRules"))
        contact_body = body.get("contact")
        provided = validate(contact_body if contact_body is not None else {}, known=self.profile)
        if body.get("division") is not None:
            provided["division"] = validate({"division": body["division"]}, known=self.profile)[
                "division"
            ]
        options = body.get("options") or {}
        promote = isinstance(options, dict) and options.get("promote") is True
        matches = self._matches([key for kind, key in identifiers if kind == "ExternalId"])
        writer = self.profile.writer
        if not matches:
            if action == "Update":
                raise ApiProblem(404, "No contact matches the identifiers.", code="not.found")
            content = self._claiming(provided, identifiers)
            return writer.create(content, dry_run=dry_run)
        if action == "Insert":
            raise ApiProblem(
                409, f"Contact {matches[0]['id']} already claims an identifier.", code="conflict"
            )
        target = matches[0]
        if action == "Merge" and len(matches) > 1:
            if dry_run:
                raise ApiProblem(400, "dryRun is not supported for a Merge of several contacts.")
            target = writer.merge([doc["id"] for doc in matches])
        combined = combine_contact(content_of(target), provided, rules)
        contact_type = "Curated" if promote else None
        doc = writer.update(target, combined, dry_run=dry_run, contact_type=contact_type)
        return doc, 200

    def _matches(self, keys: list[Key]) -> list[Doc]:
        """The distinct live contacts claiming ``keys``, in identifier order."""
        found: dict[str, Doc] = {}
        for key in keys:
            holder = self.profile.contact_claims.holder(key)
            doc = self.em.get(holder) if holder is not None else None
            if doc is not None:
                found.setdefault(doc["id"], doc)
        return list(found.values())

    def _claiming(self, content: dict[str, Any], identifiers: list[tuple[str, Key]]) -> Any:
        """``content`` with the ExternalId identifiers it was matched on in ``externalIds``."""
        entries = list(content.get("externalIds") or [])
        have = {(e["externalSource"]["id"], e["value"]) for e in entries}
        for kind, (source_id, value) in identifiers:
            if kind == "ExternalId" and (source_id, value) not in have:
                have.add((source_id, value))
                entries.append(
                    {
                        "externalSource": {
                            "id": source_id,
                            "selfUri": f"{API}/externalsources/{source_id}",
                        },
                        "value": value,
                    }
                )
        if len(entries) > MAX_EXTERNAL_IDS:
            message = f"the contact would claim more than {MAX_EXTERNAL_IDS} ExternalIds"
            raise Invalid([("contact.externalIds", "invalid.value", message)])
        return {**content, "externalIds": entries} if entries else content


def routes(emulator: Emulator, profile: ExternalContactsProfile) -> list[BaseRoute]:
    r = EnrichRoutes(emulator, profile)
    lookup = f"{API}/identifierlookup/contacts"
    return [
        # A lookup is a read (no write faults, no lost acknowledgements), though it is a POST.
        Route(lookup, ApiEndpoint(emulator, lookup, {"POST": r.lookup}, writes=())),
        Route(
            f"{API}/contacts/enrich",
            ApiEndpoint(emulator, f"{API}/contacts/enrich", {"POST": r.enrich}),
        ),
        Route(
            f"{API}/bulk/contacts/enrich",
            ApiEndpoint(emulator, f"{API}/bulk/contacts/enrich", {"POST": r.bulk_enrich}),
        ),
    ]
