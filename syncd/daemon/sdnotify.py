"""The systemd notification protocol, spoken directly (no libsystemd, no dependency).

A notification is one datagram of ``KEY=VALUE`` lines sent to the ``AF_UNIX`` socket named
by ``$NOTIFY_SOCKET``; a leading ``@`` names a socket in the abstract namespace. Outside
systemd the variable is unset and every call is a no-op. Sending never raises: a daemon must
not die because its supervisor went away.
"""

from __future__ import annotations

import os
import socket
import time

from syncd.logs import get_logger

_log = get_logger("syncd.daemon.sdnotify")


def _address(value: str) -> str | bytes | None:
    if value.startswith("@"):
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    return None  # vsock and other transports are not used by syncd's unit


class Notifier:
    """Sends notifications to systemd when run under ``Type=notify``."""

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.address = _address(env.get("NOTIFY_SOCKET", ""))
        self._sock: socket.socket | None = None
        self._warned = False
        self.watchdog_usec = _watchdog_usec(env)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *lines: str) -> bool:
        """Send ``lines`` as one datagram; ``True`` if it was sent."""
        if self.address is None:
            return False
        payload = "\n".join(lines).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, self.address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                _log.warning("daemon.sdnotify.failed", error=str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        return self.notify("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self.notify(f"STATUS={_one_line(status)}")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str) -> bool:
        return self.notify("STOPPING=1", f"STATUS={_one_line(status)}")

    def reloading(self) -> bool:
        """Announce a reload; ``ready()`` must follow when it is done."""
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between pings (half of ``WatchdogSec``), ``None`` when not watched."""
        return self.watchdog_usec / 2_000_000 if self.watchdog_usec else None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_usec(env: os._Environ[str] | dict[str, str]) -> int | None:
    """``$WATCHDOG_USEC`` when the watchdog is meant for this process (``$WATCHDOG_PID``)."""
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec)


def _one_line(text: str) -> str:
    return " ".join(text.split())
