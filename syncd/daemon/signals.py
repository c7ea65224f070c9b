"""Signals delivered as bytes on a pipe, read by the main loop with a timeout.

The Python-level handlers do nothing; ``signal.set_wakeup_fd`` makes the interpreter write the
signal number to the pipe as soon as the signal arrives. The main loop then handles signals
in ordinary code (no work inside a signal handler, no re-entrancy), and its ``select`` doubles
as the loop's sleep. Tests and other threads inject "signals" with :meth:`Signals.send`.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
from types import FrameType

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """Delivery happens through the wakeup fd."""


class Signals:
    def __init__(self) -> None:
        self._r, self._w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._previous: dict[int, object] = {}
        self._previous_fd: int | None = None

    def install(self) -> None:
        """Route SIGTERM, SIGINT and SIGHUP to the pipe (main thread only)."""
        for sig in HANDLED:
            self._previous[sig] = signal.signal(sig, _ignore)
        self._previous_fd = signal.set_wakeup_fd(self._w, warn_on_full_buffer=False)

    def restore(self) -> None:
        if self._previous_fd is not None:
            signal.set_wakeup_fd(self._previous_fd)
            self._previous_fd = None
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        self._previous.clear()

    def send(self, sig: int) -> None:
        """Deliver ``sig`` to the main loop as if the process had received it."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._w, bytes([sig]))

    def wait(self, timeout: float) -> list[int]:
        """Signals received, waiting up to ``timeout`` seconds for the first one."""
        try:
            ready, _, _ = select.select([self._r], [], [], max(0.0, timeout))
        except InterruptedError:  # pragma: no cover - PEP 475 retries select
            ready = [self._r]
        if not ready:
            return []
        try:
            data = os.read(self._r, 512)
        except BlockingIOError:
            return []
        return list(data)

    def close(self) -> None:
        self.restore()
        for fd in (self._r, self._w):
            with contextlib.suppress(OSError):
                os.close(fd)
