"""Serving the emulator over a real socket: in a background thread, or as the CLI process.

uvicorn's h11 protocol is extended with one ASGI extension: a callable that aborts the
connection, which the lost-acknowledgement fault uses to apply a write and then vanish
without a response (over a socket a client sees ``httpx.RemoteProtocolError``).

Signals are handled here rather than by uvicorn, whose default re-raises SIGTERM after a
graceful shutdown and so makes the process die of it: ``syncd emulator`` exits 0 instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Generator
from types import FrameType, TracebackType
from typing import Any, TextIO

import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from syncd.emulator.app import create_app
from syncd.emulator.clock import Clock
from syncd.emulator.config import EmulatorConfig
from syncd.emulator.pipeline import ABORT_EXTENSION
from syncd.emulator.state import Emulator
from syncd.errors import UserError
from syncd.logs import get_logger

log = get_logger("syncd.emulator")

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


class DroppingH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, plus the ``syncd.emulator.abort`` extension."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner: Any = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            extensions = scope.get("extensions") or {}
            extensions[ABORT_EXTENSION] = {"abort": self._abort}
            scope["extensions"] = extensions
            await inner(scope, receive, send)

        self.app = app

    def _abort(self) -> None:
        transport = getattr(self, "transport", None)
        if transport is not None:
            transport.abort()


class _Server(uvicorn.Server):
    """A uvicorn server that reports when it is listening and exits 0 on SIGTERM/SIGINT."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self._request_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _request_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True


def bind(host: str, port: int) -> socket.socket:
    """A listening-ready socket on ``host:port`` (port 0: a free one); UserError if taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted sockets whose
    # proto says TCP, and without it every response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _uvicorn_config(app: Starlette) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        http=DroppingH11Protocol,
        ws="none",
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
        server_header=False,
    )


class EmulatorServer:
    """A real uvicorn server for one emulator, in a background thread on 127.0.0.1.

    Use as a context manager; entering returns once the port answers, leaving stops the
    server (and saves the store when ``persist_path`` is set).
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.app = create_app(config or EmulatorConfig(), clock=clock)
        self.emulator: Emulator = self.app.state.emulator
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def base_url(self) -> str:
        return url_for(self.host, self.port)

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/v2"

    @property
    def login_url(self) -> str:
        return self.base_url

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            raise RuntimeError("the emulator server is already running")
        sock = bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._server = _Server(_uvicorn_config(self.app), self._started.set)
        self._thread = threading.Thread(
            target=self._run, args=(self._server, sock), name="syncd-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._started.wait(0.01):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                error = self._shutdown()
                raise RuntimeError("the emulator server did not start") from error
        if not self._answers(deadline):
            error = self._shutdown()
            raise RuntimeError("the emulator server does not answer on its port") from error
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread; re-raises a failure of the server."""
        error = self._shutdown()
        if error is not None:
            raise RuntimeError("the emulator server failed") from error

    def _shutdown(self) -> BaseException | None:
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(_STOP_TIMEOUT)
            if thread.is_alive():
                server.force_exit = True
                thread.join(_STOP_TIMEOUT)
        self._server = self._thread = None
        self._started.clear()
        error, self._error = self._error, None
        return error

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self, server: _Server, sock: socket.socket) -> None:
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported by start()/stop() in the caller's thread
            self._error = exc
        finally:
            sock.close()

    def _answers(self, deadline: float) -> bool:
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return True
            except OSError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.01)


def run_forever(
    config: EmulatorConfig, *, host: str, port: int, out: TextIO, clock: Clock | None = None
) -> None:
    """Serve in the foreground until SIGTERM/SIGINT (``syncd emulator``)."""
    app = create_app(config, clock=clock)
    sock = bind(host, port)
    actual = sock.getsockname()[1]

    def announce() -> None:
        print(f"syncd emulator listening on {url_for(host, actual)}", file=out, flush=True)
        log.info("emulator.listening", host=host, port=actual, profile=config.profile)

    server = _Server(_uvicorn_config(app), announce)
    try:
        asyncio.run(server.serve(sockets=[sock]))
    finally:
        sock.close()
