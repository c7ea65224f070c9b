"""`syncd emulator` as a real process: it announces its port, serves, and stops with 0."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from syncd.emulator import EmulatorConfig
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, TOKEN_ROUTE, EmulatorProcess

STARTUP_TIMEOUT = 20.0
STOP_TIMEOUT = 20.0


def emulator_process(config: EmulatorConfig, log_path: Path) -> EmulatorProcess:
    return EmulatorProcess(config, log_path=log_path, startup_timeout=STARTUP_TIMEOUT)


def token(running: EmulatorProcess, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> str:
    response = httpx.post(
        running.url + TOKEN_ROUTE,
        auth=(client_id, secret),
        data={"grant_type": "client_credentials"},
    )
    assert response.status_code == 200, response.text
    access_token: str = response.json()["access_token"]
    return access_token


def test_it_answers_on_its_port_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    config = EmulatorConfig(requests_per_minute=42, client_id="me", client_secret="s3cret")
    with emulator_process(config, tmp_path / "emulator.log") as running:
        assert running.url.startswith("http://127.0.0.1:")
        headers = {"Authorization": f"Bearer {token(running, 'me', 's3cret')}"}
        created = httpx.post(
            running.url + "/api/v2/contacts",
            json={"firstName": "A", "lastName": "B"},
            headers=headers,
        )
        assert created.status_code == 201
        assert created.headers["X-Rate-Limit-Limit"] == "42"
        assert running.stop(timeout=STOP_TIMEOUT) == 0


def test_sigint_also_stops_it_cleanly(tmp_path: Path) -> None:
    with emulator_process(EmulatorConfig(), tmp_path / "emulator.log") as running:
        assert httpx.get(running.url + "/__emulator/stats").status_code == 200
        assert running.stop(signal.SIGINT, timeout=STOP_TIMEOUT) == 0


def test_persist_saves_the_store_on_sigterm_and_loads_it_at_start(tmp_path: Path) -> None:
    path = tmp_path / "store.json"
    first = EmulatorConfig(persist_path=path, seed=7)
    with emulator_process(first, tmp_path / "first.log") as running:
        seeded = httpx.post(
            running.url + "/__emulator/seed", json=[{"firstName": "A", "lastName": "B"}]
        )
        assert running.stop(timeout=STOP_TIMEOUT) == 0
    assert json.loads(path.read_text())["contacts"] == seeded.json()
    with emulator_process(EmulatorConfig(persist_path=path), tmp_path / "again.log") as again:
        assert httpx.get(again.url + "/__emulator/contacts").json() == seeded.json()
        assert again.stop(timeout=STOP_TIMEOUT) == 0


def test_a_port_in_use_is_a_clear_error() -> None:
    # A plain process: EmulatorProcess always asks for a free port (--port 0).
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "syncd", "emulator", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
