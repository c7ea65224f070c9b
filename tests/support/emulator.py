"""The emulator for tests and benchmarks: one way to run it as a process, one way in-process.

- :class:`EmulatorProcess`: ``python -m syncd emulator`` as a child process on a free port of
  127.0.0.1, as an operator runs it; for tests that run ``syncd`` as processes too (the
  daemon, the CLI, the chaos suite). Ready once it announces its URL, within a deadline;
  its output (stdout and stderr) goes to one log file; stopped with SIGTERM, killed if it
  does not exit in time. Its state is read and steered over ``/__emulator/...``.
- In this process: :func:`emulator_app` (the ASGI app, reached through
  :func:`asgi_transport` with no socket, optionally on a manual clock) or
  :func:`serve_in_thread` (a real socket, served by a background thread).

Both take an :class:`~syncd.emulator.EmulatorConfig` (profile, seed, rate limit, latency,
credentials, state file...): the CLI flags map one to one onto its fields, so a test can move
between the two without translating its options. :func:`client_settings` points a syncd
client at any of them with the emulator's own credentials and profile.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette

from syncd.config import GenesysSettings
from syncd.emulator import Clock, Emulator, EmulatorConfig, EmulatorServer, create_app

ROOT = Path(__file__).resolve().parents[2]
# The emulator's default OAuth client: what a test logs in with unless it needs its own.
CLIENT_ID: str = EmulatorConfig.client_id
CLIENT_SECRET: str = EmulatorConfig.client_secret
TOKEN_ROUTE = "/oauth/token"
ANNOUNCEMENT = "syncd emulator listening on "
# The URL a client uses for an app mounted with ASGITransport (no socket: any host works).
ASGI_BASE_URL = "http://127.0.0.1"

# Every fault the emulator knows, switched off (``POST /__emulator/faults``).
NO_FAULTS: dict[str, Any] = {
    "error_rate": 0,
    "write_error_rate": 0,
    "lost_ack_rate": 0,
    "latency_ms": 0,
    "jitter_ms": 0,
    "search_lag_ms": 0,
    "outage": False,
}

# EmulatorConfig field -> `syncd emulator` flag (log_limit has none: in-process only).
_FLAGS = {
    "requests_per_minute": "--requests-per-minute",
    "latency_ms": "--latency-ms",
    "client_id": "--client-id",
    "client_secret": "--client-secret",
    "token_expires_in": "--token-expires-in",
    "seed": "--seed",
    "profile": "--profile",
    "persist_path": "--persist",
    "bulk_max_entities": "--bulk-max-entities",
}


def child_env(**overrides: str) -> dict[str, str]:
    """This process's environment for a child: no syncd or systemd setting leaks in, and the
    checkout is importable (``tests.*`` executor factories, ``python -m syncd``)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SYNCD_", "NOTIFY_SOCKET", "WATCHDOG_"))
    }
    env["PYTHONPATH"] = str(ROOT)
    env.update(overrides)
    return env


def stop_process(proc: subprocess.Popen[Any], grace: float = 10) -> int:
    """SIGTERM, then SIGKILL after ``grace`` seconds; always reaped. Returns the exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=10)


def emulator_flags(config: EmulatorConfig) -> list[str]:
    """The ``syncd emulator`` arguments that reproduce ``config`` (host and port aside)."""
    if config.log_limit != EmulatorConfig.log_limit:
        raise ValueError("log_limit has no `syncd emulator` flag: use the emulator in-process")
    if config.variants:
        raise ValueError("variants have no `syncd emulator` flag: use EmulatorProcess.variants()")
    args: list[str] = []
    for field in fields(EmulatorConfig):
        value = getattr(config, field.name)
        if field.name in _FLAGS and value is not None:
            args += [_FLAGS[field.name], str(value)]
    return args


# -- a child process ----------------------------------------------------------------------------


class EmulatorProcess:
    """``python -m syncd emulator`` on a free loopback port; a context manager.

    ``env`` is added to :func:`child_env` (e.g. ``SYNCD_EMULATOR_TOKEN_LOG``). Everything
    the process prints goes to ``log_path`` (see :meth:`output`).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60,
    ) -> None:
        self.config = config or EmulatorConfig()
        self.log_path = log_path
        self.env = child_env(**(env or {}))
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self._http: httpx.Client | None = None

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/v2"

    @property
    def login_url(self) -> str:
        return self.base_url

    @property
    def url(self) -> str:
        """The base URL (``http://127.0.0.1:PORT``): the login host, and the API under it."""
        return self.base_url

    def start(self) -> EmulatorProcess:
        if self.proc is not None:
            raise RuntimeError("the emulator process is already running")
        command = [sys.executable, "-m", "syncd", "emulator", "--host", "127.0.0.1"]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [*command, "--port", "0", *emulator_flags(self.config)],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            self.base_url = self._wait_for_announcement()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_for_announcement(self) -> str:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            for line in self.output().splitlines():
                if line.startswith(ANNOUNCEMENT):
                    return line[len(ANNOUNCEMENT) :].strip()
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"syncd emulator exited with {self.proc.returncode} before it listened:\n"
                    + self.output()
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"syncd emulator did not listen within {self.startup_timeout:.0f}s:\n"
                    + self.output()
                )
            time.sleep(0.02)

    def output(self) -> str:
        """What the process printed so far: its announcement, then its log lines."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> int:
        """Ask it to stop with ``sig``; SIGKILL if it is still running after ``timeout``
        seconds. Returns its exit status (0 after a clean SIGTERM or SIGINT)."""
        if self.proc is None:
            raise RuntimeError("the emulator process was not started")
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)
        finally:
            self._close_http()

    def close(self) -> None:
        """Stop it if it still runs (also after a failed start); safe to call twice."""
        self._close_http()
        if self.proc is not None:
            stop_process(self.proc)

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- /__emulator/...: look inside and steer ----------------------------------------------

    @property
    def http(self) -> httpx.Client:
        """A plain client on the base URL (no token: introspection needs none)."""
        if self._http is None:
            if not self.base_url:
                raise RuntimeError("the emulator process is not listening")
            self._http = httpx.Client(base_url=self.base_url, timeout=60)
        return self._http

    def _close_http(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _call(self, method: str, name: str, body: Any = None) -> Any:
        response = self.http.request(method, f"/__emulator/{name}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    def contacts(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "contacts")
        return result

    def writes(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "writes")
        return result

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "requests")
        return result

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def fault_settings(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "faults")
        return result

    def faults(self, **knobs: Any) -> dict[str, Any]:
        """Change fault knobs (see ``docs/emulator.md``); returns all of them."""
        result: dict[str, Any] = self._call("POST", "faults", knobs)
        return result

    def seed(self, contacts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("POST", "seed", list(contacts))
        return result

    def organizations(self) -> list[dict[str, Any]]:
        """Every ExternalOrganization record (externalcontacts)."""
        result: list[dict[str, Any]] = self._call("GET", "organizations")
        return result

    def variants(self, **changes: Any) -> dict[str, Any]:
        """Switch the externalcontacts variants (see ``docs/externalcontacts.md``); returns
        all of them (none given: only read them)."""
        result: dict[str, Any] = (
            self._call("POST", "variants", changes) if changes else self._call("GET", "variants")
        )
        return result

    def merge(self, contact_ids: Sequence[str]) -> dict[str, Any]:
        """Merge contacts by hand (externalcontacts profile); returns the surviving contact."""
        result: dict[str, Any] = self._call("POST", "merge", {"contactIds": list(contact_ids)})
        return result

    def revoke(self) -> int:
        """Revoke every issued token; returns how many were active."""
        return int(self._call("POST", "revoke")["revoked"])

    def reset(self) -> None:
        self._call("POST", "reset")


# -- in this process ----------------------------------------------------------------------------


def emulator_app(config: EmulatorConfig | None = None, *, clock: Clock | None = None) -> Starlette:
    """A fresh emulator app; its state is ``app.state.emulator`` (see :func:`state_of`)."""
    return create_app(config or EmulatorConfig(), clock=clock)


def state_of(app: Starlette) -> Emulator:
    em: Emulator = app.state.emulator
    return em


def asgi_transport(app: Starlette) -> httpx.ASGITransport:
    """The transport that calls ``app`` directly: no socket, and the app's clock for time."""
    return httpx.ASGITransport(app=app)


@contextmanager
def serve_in_thread(
    config: EmulatorConfig | None = None, *, clock: Clock | None = None
) -> Iterator[EmulatorServer]:
    """A real uvicorn server on a free port of 127.0.0.1, in a background thread."""
    with EmulatorServer(config or EmulatorConfig(), clock=clock) as server:
        yield server


def client_settings(
    emulator: EmulatorProcess | EmulatorServer | Starlette, **overrides: Any
) -> GenesysSettings:
    """Settings of a syncd client for ``emulator``: its credentials, profile and URLs (for an
    app, the loopback URL that :func:`asgi_transport` ignores), plus ``overrides``."""
    if isinstance(emulator, Starlette):
        config = state_of(emulator).config
        api_url, login_url = ASGI_BASE_URL + "/api/v2", ASGI_BASE_URL
    elif isinstance(emulator, EmulatorProcess):
        config, api_url, login_url = emulator.config, emulator.api_url, emulator.login_url
    else:
        config, api_url, login_url = emulator.emulator.config, emulator.api_url, emulator.login_url
    values: dict[str, Any] = {
        "client_id": config.client_id,
        "client_secret": SecretStr(config.client_secret),
        "api_url": api_url,
        "login_url": login_url,
        "profile": config.profile,
        **overrides,
    }
    return GenesysSettings(**values)


# -- reading the emulator's logs ----------------------------------------------------------------


def api_requests(request_log: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The entries of a request log that are API calls (token requests left out)."""
    return [entry for entry in request_log if entry["route"] != TOKEN_ROUTE]


def duplicate_external_ids(em: Emulator) -> int:
    """How many stored contacts repeat an external id already stored (0: no duplicate)."""
    ids = [em.profile.external_id(doc) for doc in em.contacts()]
    return len(ids) - len(set(ids))
