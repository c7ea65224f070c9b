"""A full reconcile against a server that lies ends cleanly and corrupts nothing.

The real emulator (in-process) holds what an honest first run created; then the listing is
served through a transport that lies (malformed JSON, an HTML error page, a non-numeric or
negative ``total``, entities of the wrong type, the same page forever). The run must end
``failed`` (or ``partial``) with a readable error that came through ``ApiError``, and leave
every link and ledger row as it was: a partial listing must never look like deletions.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from syncd.emulator import EmulatorConfig
from syncd.genesys.client import GenesysClient
from syncd.genesys.retry import RetryPolicy
from syncd.store.db import Database
from syncd.store.schema import contact_links, crm_contacts, ledger
from syncd.sync.runs import Engine, RunSpec
from tests.support.emulator import (
    CLIENT_ID,
    CLIENT_SECRET,
    asgi_transport,
    client_settings,
    emulator_app,
    state_of,
)
from tests.sync.conftest import FAST_OPTIONS, VirtualTime, person

LIES = {
    "malformed_json": lambda page: httpx.Response(200, content=b'{"entities": [', headers={}),
    "html_502": lambda page: httpx.Response(
        502, content=b"<html><body>Bad Gateway</body></html>", headers={"content-type": "text/html"}
    ),
    "total_text": lambda page: httpx.Response(200, json={**page, "total": "many"}),
    "total_negative": lambda page: httpx.Response(200, json={**page, "total": -7}),
    "entities_object": lambda page: httpx.Response(200, json={**page, "entities": {"a": 1}}),
    "entity_without_id": lambda page: httpx.Response(
        200, json={**page, "entities": [{"firstName": "x"}]}
    ),
    "deep_json": lambda page: httpx.Response(200, content=b"[" * 50_000 + b"]" * 50_000),
    "same_page_forever": lambda page: httpx.Response(
        200, json={**page, "pageNumber": 1, "total": 10**9}
    ),
}


class LyingTransport(httpx.AsyncBaseTransport):
    """The emulator, except that listing pages (after the first, for some lies) are lies."""

    def __init__(self, app: Any, lie: str | None) -> None:
        self.inner = asgi_transport(app)
        self.lie = lie
        self.first_page: dict[str, Any] | None = None
        self.pages = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.lie is None or request.method != "GET" or request.url.path != "/api/v2/contacts":
            return response
        self.pages += 1
        assert self.pages < 500, "the engine kept listing: an endless listing"
        await response.aread()
        page = json.loads(response.content)
        if self.lie == "same_page_forever":
            self.first_page = self.first_page or page
            page = self.first_page
        return LIES[self.lie](page)


def run_full(db: Database, app: Any, lie: str | None) -> Any:
    async def go() -> Any:
        clock = VirtualTime()
        client = GenesysClient.from_settings(
            client_settings(app, requests_per_minute=100_000, max_in_flight=8),
            transport=LyingTransport(app, lie),
            retry=RetryPolicy.testing(max_attempts=2),
            clock=clock,
            sleep=clock.sleep,
        )
        try:
            engine = Engine(db, client, FAST_OPTIONS, clock=lambda: datetime.now(UTC))
            return await engine.run(RunSpec(kind="full"))
        finally:
            await client.aclose()

    return asyncio.run(go())


def rows(db: Database) -> tuple[list[Any], list[Any]]:
    with db.read() as conn:
        links = conn.execute(sa.select(contact_links).order_by(contact_links.c.external_id)).all()
        entries = conn.execute(sa.select(ledger).order_by(ledger.c.id)).all()
    return links, entries


@pytest.mark.parametrize("lie", sorted(LIES))
def test_full_reconcile_against_a_lying_server(sqlite_db: Database, lie: str) -> None:
    app = emulator_app(
        EmulatorConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, requests_per_minute=10**6)
    )
    with sqlite_db.write() as conn:
        for i in range(130):  # more than one listing page
            conn.execute(sa.insert(crm_contacts).values(**person(f"L-{i:03d}")))
    honest = run_full(sqlite_db, app, None)
    assert honest.status == "succeeded", honest.error
    before = rows(sqlite_db)
    assert len(before[0]) == 130
    remote_before = state_of(app).contacts()

    report = run_full(sqlite_db, app, lie)

    assert report.status in ("failed", "partial"), (report.status, report.error)
    assert report.error
    assert "\n" not in report.error
    assert not report.error.startswith(
        ("KeyError", "TypeError", "ValueError", "RecursionError", "AttributeError")
    ), report.error
    assert rows(sqlite_db) == before, "a lying listing changed links or ledger rows"
    assert state_of(app).contacts() == remote_before, "a lying listing caused writes"
