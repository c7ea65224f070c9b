"""Counters of one client, plain data so the daemon can export them (Prometheus) as it likes.

Why plain counters and not a metrics library here: ``genesys/`` must not decide how the
daemon exposes numbers, and tests read these fields directly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class ClientMetrics:
    """Monotonic counters (except the two rate gauges) since the client was created."""

    requests: int = 0  # sends, including retries (token requests excluded)
    responses_by_status: dict[int, int] = field(default_factory=dict)
    transport_errors: dict[str, int] = field(default_factory=dict)  # by httpx error class
    rate_limited: int = 0  # 429 answers
    retries: int = 0  # sends after the first one of a call (429, 401, transient failures)
    outcome_unknown: int = 0  # POSTs surfaced as OutcomeUnknownError
    token_fetches: int = 0  # successful token requests
    token_renewals: int = 0  # forced renewals after a 401
    breaker_opens: int = 0  # times repeated failures paused the whole client
    pauses: int = 0  # client-wide pauses (429 Retry-After, exhausted rate-limit window)
    configured_rate_per_minute: float = 0.0
    current_rate_per_minute: float = 0.0

    def count_status(self, status: int) -> None:
        self.responses_by_status[status] = self.responses_by_status.get(status, 0) + 1

    def count_error(self, exc: BaseException) -> None:
        name = type(exc).__name__
        self.transport_errors[name] = self.transport_errors.get(name, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy (dict keys as strings), safe to log or serve."""
        data = asdict(self)
        data["responses_by_status"] = {
            str(k): v for k, v in sorted(self.responses_by_status.items())
        }
        return data
