"""The organization's request budget: a sliding 60-second window, counted exactly.

The window is a log of the monotonic instants of admitted requests. A request at ``t`` is
admitted when fewer than ``limit`` admitted requests happened in ``(t - 60, t]``; an entry
admitted at ``s`` stops counting at exactly ``s + 60``. Rejected (429) requests are not
logged, so a client that keeps hammering is not locked out forever, and ``limit + 1``
requests inside one window give exactly one 429.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

WINDOW_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome of one request, and the values of the ``X-Rate-Limit-*`` headers.

    ``reset``: whole seconds (rounded up) until the oldest request in the window expires,
    that is until ``remaining`` next increases; 0 when the window is empty.
    ``retry_after``: for a rejected request, the same wait, at least 1 second.
    """

    admitted: bool
    limit: int
    remaining: int
    reset: int
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        return {
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(self.remaining),
            "X-Rate-Limit-Reset": str(self.reset),
        }


class SlidingWindowLimiter:
    def __init__(self, limit: int, window: float = WINDOW_SECONDS) -> None:
        if limit < 1:
            raise ValueError("the rate limit must be at least 1 request per window")
        self.limit = limit
        self.window = window
        self._admitted: deque[float] = deque()

    def acquire(self, now: float) -> RateDecision:
        """Admit (and count) one request at ``now``, or refuse it without counting it."""
        self._expire(now)
        if len(self._admitted) < self.limit:
            self._admitted.append(now)
            return self._decision(now, admitted=True)
        wait = self._admitted[0] + self.window - now
        decision = self._decision(now, admitted=False)
        return RateDecision(
            admitted=False,
            limit=decision.limit,
            remaining=0,
            reset=decision.reset,
            retry_after=max(1, math.ceil(wait)),
        )

    def peek(self, now: float) -> RateDecision:
        """The header values for a response that did not count (401, outage)."""
        self._expire(now)
        return self._decision(now, admitted=True)

    def reset(self) -> None:
        self._admitted.clear()

    def _expire(self, now: float) -> None:
        cutoff = now - self.window
        while self._admitted and self._admitted[0] <= cutoff:
            self._admitted.popleft()

    def _decision(self, now: float, *, admitted: bool) -> RateDecision:
        used = len(self._admitted)
        reset = math.ceil(self._admitted[0] + self.window - now) if used else 0
        return RateDecision(
            admitted=admitted, limit=self.limit, remaining=self.limit - used, reset=max(0, reset)
        )
