"""Engine tunables, frozen, built from :class:`~syncd.config.Settings` (tests override fields).

Why not all in the configuration file: only the delete limits, the phone region and the
concurrency are operator decisions today; the rest are engineering defaults that tests shrink
(no waits, tiny batches) through :func:`dataclasses.replace`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from syncd.config import Settings
from syncd.sync.guards import DeleteLimits


@dataclass(frozen=True, slots=True)
class EngineOptions:
    default_region: str = "US"
    limits: DeleteLimits = field(default_factory=lambda: DeleteLimits(100, 10.0))
    max_in_flight: int = 8
    batch_size: int = 500
    page_size: int = 100
    # Per-row backoff after a transient failure: base * 2**(attempts-1), capped.
    backoff_base: timedelta = timedelta(seconds=30)
    backoff_max: timedelta = timedelta(hours=1)
    # A create whose outcome is unknown: how often and how long to look it up before
    # concluding it was not applied (search is indexed asynchronously).
    lookup_attempts: int = 3
    lookup_delay: timedelta = timedelta(seconds=1)
    create_grace: timedelta = timedelta(minutes=10)
    absent_checks: int = 2  # runs that must confirm absence before creating again
    # Stop the run (status failed) after this many consecutive "service unavailable" rows.
    max_consecutive_unavailable: int = 50

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineOptions:
        return cls(
            default_region=settings.genesys.default_phone_region,
            limits=DeleteLimits(
                max_count=settings.sync.max_delete_count,
                max_percent=settings.sync.max_delete_percent,
            ),
            max_in_flight=settings.genesys.max_in_flight,
        )

    def backoff(self, attempts: int) -> timedelta:
        seconds = self.backoff_base.total_seconds() * 2 ** max(0, attempts - 1)
        return timedelta(seconds=min(seconds, self.backoff_max.total_seconds()))
