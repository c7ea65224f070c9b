"""The emulator over a real socket: EmulatorServer, introspection over HTTP, persistence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syncd.emulator import EmulatorConfig, EmulatorServer, create_app
from syncd.emulator.persist import PersistError
from tests.emulator.conftest import person
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET


def login(server: EmulatorServer) -> httpx.Client:
    token = httpx.post(
        server.login_url + "/oauth/token",
        auth=(CLIENT_ID, CLIENT_SECRET),
        data={"grant_type": "client_credentials"},
    ).json()["access_token"]
    return httpx.Client(base_url=server.api_url, headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(EmulatorConfig(requests_per_minute=10_000)) as running:
        yield running


@pytest.fixture
def live(server: EmulatorServer) -> Iterator[httpx.Client]:
    server.emulator.reset()
    with login(server) as client:
        yield client


def test_urls_point_at_a_free_local_port(server: EmulatorServer) -> None:
    assert server.base_url == f"http://127.0.0.1:{server.port}"
    assert server.port > 0
    assert server.api_url == server.base_url + "/api/v2"
    assert server.login_url == server.base_url


def test_crud_over_a_socket(live: httpx.Client) -> None:
    created = live.post("/contacts", json=person(1))
    assert created.status_code == 201
    assert created.headers["ININ-Correlation-Id"]
    cid = created.json()["id"]
    assert live.patch(f"/contacts/{cid}", json={"email": "x@y.io"}).json()["email"] == "x@y.io"
    listing = live.get("/contacts", params={"pageSize": 1})
    assert listing.json()["total"] == 1
    assert "X-Rate-Limit-Remaining" in listing.headers
    assert live.delete(f"/contacts/{cid}").status_code == 204
    assert live.get(f"/contacts/{cid}").status_code == 404


def test_lost_acknowledgement_drops_the_connection_after_applying_the_write(
    server: EmulatorServer, live: httpx.Client
) -> None:
    server.emulator.set_faults(lost_ack_rate=1)
    with pytest.raises(httpx.RemoteProtocolError):
        live.post("/contacts", json=person(1))
    [contact] = server.emulator.contacts()
    assert contact["externalId"] == "crm-1"
    assert server.emulator.stats()["faults"]["lost_ack"] == 1
    # The server carries on: reads still work on a new connection.
    assert live.get("/contacts").json()["total"] == 1


def test_introspection_over_http(server: EmulatorServer, live: httpx.Client) -> None:
    admin = httpx.Client(base_url=server.base_url + "/__emulator")
    with admin:
        seeded = admin.post("/seed", json=[person(1), person(2)])
        assert seeded.status_code == 201
        assert len(seeded.json()) == 2
        assert admin.post("/seed", json={"contacts": [person(3)]}).status_code == 201
        # Seeded in one millisecond or not, the store keeps the order it received them in.
        listed = [c["externalId"] for c in admin.get("/contacts").json()]
        assert listed == ["crm-1", "crm-2", "crm-3"]
        page = live.get("/contacts", params={"pageSize": 2, "pageNumber": 2}).json()
        assert [c["externalId"] for c in page["entities"]] == ["crm-3"]
        bad = admin.post("/seed", json=[{"firstName": "only"}])
        assert bad.status_code == 400
        assert "lastName" in bad.json()["message"]

        cid = seeded.json()[0]["id"]
        patched = live.patch(f"/contacts/{cid}", json={"email": "q@r.io"})
        assert admin.get("/writes").json()[-1] == {
            "op": "update",
            "id": cid,
            "externalId": "crm-1",
            "at": live.get(f"/contacts/{cid}").json()["dateModified"],
            "request": patched.headers["ININ-Correlation-Id"],
        }
        entry = admin.get("/requests").json()[-1]
        assert set(entry) == {"method", "route", "path", "status", "at", "request"}
        assert (entry["route"], entry["path"]) == (
            "/api/v2/contacts/{contactId}",
            f"/api/v2/contacts/{cid}",
        )

        faults = admin.post("/faults", json={"error_rate": 1, "error_statuses": [503]})
        assert faults.json()["error_rate"] == 1
        assert live.get("/contacts").status_code == 503
        assert admin.post("/faults", json={"error_rate": 7}).status_code == 400
        assert admin.post("/faults", content=b"[]").status_code == 400
        assert admin.get("/faults").json()["error_statuses"] == [503]

        stats = admin.get("/stats").json()
        assert stats["faults"]["error"] == 1
        assert stats["contacts"] == 3
        assert stats["requests_by_route"]["PATCH /api/v2/contacts/{contactId}"] == 1

        assert admin.post("/revoke").json()["revoked"] >= 1
        assert live.get("/contacts").status_code == 401
        assert admin.post("/reset").status_code == 204
        assert admin.get("/contacts").json() == []
        assert admin.post("/save").status_code == 400  # started without a persist path


def test_the_store_persists_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "store" / "emulator.json"
    config = EmulatorConfig(persist_path=path)
    with EmulatorServer(config) as first, login(first) as client:
        created = [client.post("/contacts", json=person(n)).json()["id"] for n in range(3)]
        # The store's order: by dateCreated, then arrival (creates in one millisecond tie).
        ids = [c["id"] for c in first.emulator.contacts()]
        assert ids == created
    saved = json.loads(path.read_text())
    assert saved["format"] == "syncd-emulator/1"
    assert len(saved["contacts"]) == 3
    assert [p.name for p in path.parent.iterdir()] == ["emulator.json"]  # no temp file left
    with EmulatorServer(config) as second:
        assert [c["id"] for c in second.emulator.contacts()] == ids
        assert second.emulator.write_log() == []


def test_save_is_atomic_and_explicit_save_works_in_process(tmp_path: Path) -> None:
    path = tmp_path / "emulator.json"
    app = create_app(EmulatorConfig(persist_path=path))
    app.state.emulator.seed_contacts([person(1)])
    app.state.emulator.save()
    reloaded = create_app(EmulatorConfig(persist_path=path)).state.emulator
    assert reloaded.contacts() == app.state.emulator.contacts()


@pytest.mark.parametrize(
    "content",
    [
        "{broken",
        json.dumps({"format": "other"}),
        json.dumps({"format": "syncd-emulator/1", "profile": "externalcontacts", "contacts": []}),
        json.dumps({"format": "syncd-emulator/1", "profile": "reference", "contacts": [{"x": 1}]}),
    ],
)
def test_an_unreadable_store_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "emulator.json"
    path.write_text(content)
    with pytest.raises(PersistError, match=str(path)):
        create_app(EmulatorConfig(persist_path=path))


def test_stopping_twice_is_harmless_and_the_port_is_released() -> None:
    server = EmulatorServer(EmulatorConfig())
    server.start()
    port = server.port
    server.stop()
    server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/__emulator/stats")
