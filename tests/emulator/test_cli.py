"""`syncd emulator` as a real process: it announces its port, serves, and stops with 0."""

from __future__ import annotations

import json
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.emulator.conftest import CLIENT_ID, CLIENT_SECRET

STARTUP_TIMEOUT = 20.0


class Running:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process = process
        self.url = url

    def token(self, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> str:
        response = httpx.post(
            self.url + "/oauth/token",
            auth=(client_id, secret),
            data={"grant_type": "client_credentials"},
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=20)
        finally:
            self.close()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def start(*args: str) -> Running:
    process = subprocess.Popen(
        [sys.executable, "-m", "syncd", "emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        line = lines.get(timeout=STARTUP_TIMEOUT)
    except queue.Empty:
        Running(process, "").close()
        pytest.fail("syncd emulator did not announce its port")
    prefix = "syncd emulator listening on "
    assert line.startswith(prefix), line
    return Running(process, line[len(prefix) :].strip())


@pytest.fixture
def processes() -> Iterator[list[Running]]:
    started: list[Running] = []
    yield started
    for running in started:
        running.close()


def test_it_answers_on_its_port_and_exits_0_on_sigterm(processes: list[Running]) -> None:
    running = start("--requests-per-minute", "42", "--client-id", "me", "--client-secret", "s3cret")
    processes.append(running)
    assert running.url.startswith("http://127.0.0.1:")
    token = running.token("me", "s3cret")
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(
        running.url + "/api/v2/contacts", json={"firstName": "A", "lastName": "B"}, headers=headers
    )
    assert created.status_code == 201
    assert created.headers["X-Rate-Limit-Limit"] == "42"
    assert running.stop() == 0


def test_sigint_also_stops_it_cleanly(processes: list[Running]) -> None:
    running = start()
    processes.append(running)
    assert httpx.get(running.url + "/__emulator/stats").status_code == 200
    assert running.stop(signal.SIGINT) == 0


def test_persist_saves_the_store_on_sigterm_and_loads_it_at_start(
    tmp_path: Path, processes: list[Running]
) -> None:
    path = tmp_path / "store.json"
    running = start("--persist", str(path), "--seed", "7")
    processes.append(running)
    seeded = httpx.post(
        running.url + "/__emulator/seed", json=[{"firstName": "A", "lastName": "B"}]
    )
    assert running.stop() == 0
    assert json.loads(path.read_text())["contacts"] == seeded.json()
    again = start("--persist", str(path))
    processes.append(again)
    assert httpx.get(again.url + "/__emulator/contacts").json() == seeded.json()
    assert again.stop() == 0


def test_a_port_in_use_is_a_clear_error() -> None:
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
