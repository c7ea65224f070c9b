"""Pacing: one budget per organization, shared by every request of one client.

Why one object: the rate limit belongs to the organization (or token), not to a request,
so every request takes its turn from the same schedule, and a 429 or an outage pauses all
of them at once instead of letting each one find out for itself. Four mechanisms:

- **Schedule** (GCRA, a token bucket written as "theoretical arrival time"): sends are
  spaced ``60 / rate`` seconds apart, with a burst of ``burst`` sends. Turns are reserved
  in order, so waiting requests neither drift nor stampede.
- **Bounded concurrency**: at most ``max_in_flight`` requests hold a turn or a connection,
  so latency overlaps instead of wasting the budget, and the server is never flooded.
- **Adaptation**: ``X-Rate-Limit-Limit`` (requests per minute) caps the rate when it is
  lower than configured; ``X-Rate-Limit-Remaining`` at or below the requests still in
  flight pauses everyone until ``X-Rate-Limit-Reset`` (someone else spends the budget too).
  Remaining is *not* spread evenly over Reset: with a sliding window (the emulator's, and
  the usual one) Reset is only when the *oldest* request expires, and spreading would halve
  the throughput at steady state. A 429 pauses everyone until ``Retry-After`` and cuts the
  rate (multiplicative decrease), which then climbs back step by step (additive increase).
- **Headroom**: the schedule runs at ``headroom`` (99%) of the limit, because sends spaced
  exactly at the limit can arrive a little bunched (latency varies) and trip a sliding
  window; 1% of slack absorbs about half a second of arrival jitter per minute.
- **Breaker**: after ``breaker_threshold`` consecutive transient failures (5xx, timeouts,
  connection errors) the whole client pauses with exponential backoff, then lets one probe
  through; the first answer closes it. An outage therefore costs a handful of probes, not
  one failing request per turn.

Clock and sleep are injected so tests run in virtual time.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from syncd.genesys.metrics import ClientMetrics
from syncd.genesys.retry import DEFAULT_RETRY_AFTER
from syncd.logs import get_logger

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

log = get_logger("syncd.genesys")

RATE_WINDOW = 60.0  # seconds over which a per-minute limit is counted


@dataclass(frozen=True, slots=True)
class PacingSettings:
    """Tuning of one :class:`Throttle`; only the first two usually change."""

    requests_per_minute: float
    max_in_flight: int = 8
    burst: int = 1
    headroom: float = 0.99  # fraction of the limit actually scheduled
    use_rate_limit_headers: bool = True  # False: rely on 429s only (as in production)
    decrease: float = 0.5  # rate multiplier on a 429 (floored by the measured accepted rate)
    floor_fraction: float = 0.05  # never below this fraction of the configured rate
    recovery_step: float = 0.05  # fraction of the configured rate regained per period
    recovery_period: float = 10.0  # seconds without a 429 per recovery step
    default_retry_after: float = DEFAULT_RETRY_AFTER  # a 429 that does not say how long
    breaker_threshold: int = 3
    breaker_base: float = 2.0
    breaker_cap: float = 30.0  # also the worst delay before noticing a recovery

    def __post_init__(self) -> None:
        if self.requests_per_minute <= 0 or self.max_in_flight < 1 or self.burst < 1:
            raise ValueError("requests_per_minute must be > 0, max_in_flight and burst >= 1")
        if not 0 < self.decrease < 1 or not 0 < self.floor_fraction <= 1:
            raise ValueError("decrease and floor_fraction are fractions")
        if not 0 < self.headroom <= 1:
            raise ValueError("headroom is a fraction of the limit")


class GateClosed(Exception):
    """The client is paused beyond this request's deadline (internal: mapped by the client)."""

    def __init__(self, reason: str, until: float) -> None:
        super().__init__(reason)
        self.reason = reason  # "rate_limited" | "unavailable"
        self.until = until


@dataclass(slots=True)
class RequestBudget:
    """Per-call wall-clock budget; the clock starts when the call first holds a slot."""

    max_elapsed: float
    deadline: float | None = None


@dataclass(slots=True)
class Slot:
    """One turn to send: ``probe`` is set when the breaker let this request test the server."""

    probe: bool
    sent_at: float


class Throttle:
    """The shared schedule, concurrency bound, 429 pause and breaker of one client."""

    def __init__(
        self,
        settings: PacingSettings,
        *,
        clock: Clock,
        sleep: Sleep,
        metrics: ClientMetrics | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self.metrics = metrics or ClientMetrics()
        self._configured = settings.requests_per_minute / 60.0 * settings.headroom
        self._ceiling = self._configured  # lowered by X-Rate-Limit-Limit
        self._rate = self._configured
        self._floor = self._configured * settings.floor_fraction
        self._semaphore = anyio.Semaphore(settings.max_in_flight)
        self._tat = -math.inf  # theoretical arrival time of the next send
        self._epoch = 0  # bumped when a pause invalidates reserved turns
        self._paused_until = -math.inf
        self._pause_reason = "rate_limited"
        self._last_change = clock()  # last decrease or recovery step
        self._last_429_at = -math.inf
        self._accepted: deque[float] = deque()  # send times of answers other than 429
        self._started = clock()
        self._in_flight = 0
        self._streak = 0  # consecutive transient failures
        self._level = 0  # breaker: 0 closed, n >= 1 open with the n-th backoff
        self._probe_active = False
        self._probe_done = anyio.Event()
        self._publish()

    # -- state visible to callers ---------------------------------------------------------

    @property
    def rate_per_minute(self) -> float:
        return self._rate * 60.0

    @property
    def paused_until(self) -> float:
        return self._paused_until

    @property
    def breaker_open(self) -> bool:
        return self._level > 0

    # -- taking a turn ---------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self, budget: RequestBudget) -> AsyncIterator[Slot]:
        """Hold one in-flight slot, wait for a turn, and yield; release on exit."""
        async with self._semaphore:
            if budget.deadline is None:
                budget.deadline = self._clock() + budget.max_elapsed
            probe = await self._wait_turn(budget)
            slot = Slot(probe=probe, sent_at=self._clock())
            self._in_flight += 1
            try:
                yield slot
            finally:
                self._in_flight -= 1
                if probe and self._probe_active:
                    self._probe_active = False
                    self._probe_done.set()

    async def _wait_turn(self, budget: RequestBudget) -> bool:
        while True:
            now = self._clock()
            self._recover(now)
            if now < self._paused_until:
                if budget.deadline is not None and self._paused_until > budget.deadline:
                    raise GateClosed(self._pause_reason, self._paused_until)
                await self._sleep(self._paused_until - now)
                continue
            if self._level > 0 and self._probe_active:
                await self._probe_done.wait()
                continue
            interval = 1.0 / self._rate
            tolerance = (self.settings.burst - 1) * interval
            start = max(now, self._tat - tolerance)
            self._tat = max(self._tat, start) + interval
            epoch = self._epoch
            if start > now:
                await self._sleep(start - now)
                if self._epoch != epoch:
                    continue  # a pause or the breaker moved the schedule: queue again
            if self._level > 0:
                if self._probe_active:
                    continue
                self._probe_active = True
                self._probe_done = anyio.Event()
                return True
            return False

    # -- feedback from answers -------------------------------------------------------------

    def on_response(self, slot: Slot, status: int, headers: Mapping[str, str]) -> None:
        """An HTTP answer arrived: adapt to rate-limit headers; any non-5xx closes the breaker."""
        now = self._clock()
        if status != 429:
            self._accepted.append(slot.sent_at)
        if status not in (500, 502, 503, 504):
            self._streak = 0
            if self._level > 0:
                self._level = 0
                log.info("genesys.breaker.closed")
        if self.settings.use_rate_limit_headers:
            self._follow_headers(now, headers)
        self._publish()

    def on_rate_limited(self, slot: Slot, retry_after: float | None) -> float:
        """A 429: pause everyone until Retry-After and lower the rate. Returns the pause."""
        now = self._clock()
        wait = retry_after if retry_after is not None else self.settings.default_retry_after
        self._pause(now + max(wait, 0.0), "rate_limited")
        if slot.sent_at > self._last_429_at:
            # Only the first 429 of a burst lowers the rate: requests already in flight
            # when it arrived say nothing new.
            self._last_429_at = now
            self._decrease(now)
        self._publish()
        return wait

    def on_failure(self, slot: Slot) -> None:
        """A transient failure (5xx, timeout, connection error): feed the breaker."""
        now = self._clock()
        self._streak += 1
        opening = self._level == 0 and self._streak >= self.settings.breaker_threshold
        if opening or (self._level > 0 and slot.probe):
            self._level += 1
            base, cap = self.settings.breaker_base, self.settings.breaker_cap
            delay = min(cap, base * 2.0 ** (self._level - 1)) * (0.75 + 0.25 * self._rng.random())
            if opening:
                self.metrics.breaker_opens += 1
            log.warning("genesys.breaker.open", level=self._level, pause_s=round(delay, 3))
            self._pause(now + delay, "unavailable")
        self._publish()

    # -- internals -------------------------------------------------------------------------

    def _pause(self, until: float, reason: str) -> None:
        if until > self._paused_until:
            self._paused_until = until
            self._pause_reason = reason
            self.metrics.pauses += reason == "rate_limited"
        # Turns reserved before the pause are void: their holders queue again afterwards.
        self._tat = self._paused_until
        self._epoch += 1

    def _decrease(self, now: float) -> None:
        while self._accepted and self._accepted[0] < now - RATE_WINDOW:
            self._accepted.popleft()
        candidate = self._rate * self.settings.decrease
        if now - self._started >= RATE_WINDOW:
            # What the server accepted over the last window is a good estimate of its limit.
            candidate = max(candidate, 0.95 * len(self._accepted) / RATE_WINDOW)
        new = max(self._floor, min(self._rate * 0.9, candidate))
        if new < self._rate:
            log.warning(
                "genesys.throttle.rate_lowered",
                from_per_minute=round(self._rate * 60, 1),
                to_per_minute=round(new * 60, 1),
            )
            self._rate = new
        self._last_change = now

    def _recover(self, now: float) -> None:
        if self._rate >= self._ceiling:
            return
        period = self.settings.recovery_period
        steps = math.floor((now - self._last_change) / period)
        if steps <= 0:
            return
        self._rate = min(
            self._ceiling, self._rate + steps * self.settings.recovery_step * self._configured
        )
        self._last_change += steps * period
        self._publish()

    def _follow_headers(self, now: float, headers: Mapping[str, str]) -> None:
        limit = _number(headers.get("x-rate-limit-limit"))
        if limit is not None and limit >= 1:
            ceiling = min(self._configured, limit / 60.0 * self.settings.headroom)
            if ceiling != self._ceiling:
                log.info("genesys.throttle.limit", server_per_minute=limit)
                self._ceiling = ceiling
                self._rate = min(self._rate, ceiling)
        remaining = _number(headers.get("x-rate-limit-remaining"))
        reset = _number(headers.get("x-rate-limit-reset"))
        if remaining is None or reset is None or reset <= 0 or reset > RATE_WINDOW * 2:
            return  # absent, nothing to wait for, or an epoch timestamp we cannot trust
        # Requests sent after this one are not counted in its Remaining yet.
        if remaining - max(self._in_flight - 1, 0) <= 0:
            self._pause(now + reset, "rate_limited")

    def _publish(self) -> None:
        self.metrics.configured_rate_per_minute = self.settings.requests_per_minute
        self.metrics.current_rate_per_minute = round(self._rate * 60.0, 3)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
