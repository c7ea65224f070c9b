"""Time sources for the emulator: the real one, and a manual one for tests.

Token expiry, the rate-limit window, outage windows and search lag all read the clock
through this interface, so tests advance time instead of sleeping. Monotonic time drives
durations; wall time only stamps ``dateCreated``/``dateModified`` and log entries.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (durations only)."""
        ...

    def now(self) -> datetime:
        """Aware UTC wall time (timestamps only)."""
        ...


class SystemClock:
    """The real clocks of the machine."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to: both readings advance together.

    The emulator uses a clock's ``sleep`` for injected latency when it has one, so under
    a manual clock latency is recorded in ``slept`` and advances time without waiting.
    """

    def __init__(
        self,
        start: datetime = datetime(2026, 3, 14, 10, 30, tzinfo=UTC),
        monotonic_start: float = 1_000.0,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware start time")
        self._wall = start.astimezone(UTC)
        self._mono = monotonic_start
        self._lock = threading.Lock()
        self.slept: list[float] = []

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def now(self) -> datetime:
        with self._lock:
            return self._wall

    async def sleep(self, seconds: float) -> None:
        """Injected latency under a manual clock: time jumps instead of passing."""
        self.slept.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (never backwards)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._mono += seconds
            self._wall += timedelta(seconds=seconds)


def iso_millis(moment: datetime) -> str:
    """Render an instant as Genesys does: UTC, milliseconds, ``Z`` suffix.

    The fixed width makes these strings sort chronologically, which the store relies on.
    """
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """Parse an ISO-8601 timestamp (``Z`` or offset); naive values are taken as UTC."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
