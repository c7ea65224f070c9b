"""Fault injection, switchable at run time and reproducible from a seed.

Every kind of decision draws from its own random stream, derived from the seed and the
kind's name, so turning on jitter does not change which requests get a 503: the same seed
and the same sequence of requests give the same faults. Streams are only drawn from when
their knob is non-zero.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

ERROR_STATUSES = (500, 502, 503, 504)
FAULT_KINDS = (
    "latency",
    "error",
    "write_error",
    "lost_ack",
    "outage",
    "search_lag",
    "revoke",
    "bulk_entity_error",
)
_RATES = ("error_rate", "write_error_rate", "lost_ack_rate", "bulk_entity_error_rate")
_DURATIONS = ("latency_ms", "jitter_ms", "search_lag_ms")
KNOBS = frozenset((*_RATES, *_DURATIONS, "error_statuses", "outage", "outage_seconds", "seed"))


@dataclass
class FaultSettings:
    """The knobs. ``outage_until`` is a monotonic instant; ``outage`` means "until told"."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_statuses: tuple[int, ...] = ERROR_STATUSES
    write_error_rate: float = 0.0
    lost_ack_rate: float = 0.0
    search_lag_ms: float = 0.0
    bulk_entity_error_rate: float = 0.0  # per entity of a bulk request (profiles with bulk)
    outage: bool = False
    outage_until: float | None = None
    seed: int = 0


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    if value != value or value < 0:  # NaN or negative
        raise ValueError(f"{name} must not be negative")
    return float(value)


class FaultInjector:
    """Decides, request by request, which fault (if any) to inject, and counts them."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self.counts: dict[str, int] = dict.fromkeys(FAULT_KINDS, 0)
        self._streams: dict[str, random.Random] = {}
        self.reseed(settings.seed)

    def reseed(self, seed: int) -> None:
        """Restart every decision stream from ``seed``."""
        self.settings.seed = seed
        self._streams = {
            kind: random.Random(f"syncd-emulator:{seed}:{kind}")
            for kind in (
                "jitter",
                "error",
                "error_status",
                "write_error",
                "lost_ack",
                "bulk_entity_error",
            )
        }

    def update(self, now: float, changes: dict[str, Any]) -> None:
        """Merge ``changes`` into the settings; ValueError (and no change) if any is invalid."""
        unknown = sorted(set(changes) - KNOBS)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(unknown)}")
        new = FaultSettings(**asdict(self.settings))
        for name in _DURATIONS:
            if name in changes:
                setattr(new, name, _number(name, changes[name]))
        for name in _RATES:
            if name in changes:
                value = _number(name, changes[name])
                if value > 1:
                    raise ValueError(f"{name} must be between 0 and 1")
                setattr(new, name, value)
        if "error_statuses" in changes:
            statuses = changes["error_statuses"]
            if (
                not isinstance(statuses, list | tuple)
                or not statuses
                or any(s not in ERROR_STATUSES or isinstance(s, bool) for s in statuses)
            ):
                raise ValueError(f"error_statuses must be a non-empty subset of {ERROR_STATUSES}")
            new.error_statuses = tuple(int(s) for s in statuses)
        if "outage" in changes:
            if not isinstance(changes["outage"], bool):
                raise ValueError("outage must be true or false")
            new.outage = changes["outage"]
            new.outage_until = None
        if "outage_seconds" in changes:
            seconds = _number("outage_seconds", changes["outage_seconds"])
            new.outage_until = now + seconds if seconds > 0 else None
        seed = changes.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError("seed must be an integer")
        self.settings = new
        if seed is not None:
            self.reseed(seed)

    def describe(self, now: float) -> dict[str, Any]:
        """The settings as JSON, with the outage as it stands at ``now``."""
        s = self.settings
        remaining = (s.outage_until - now) if s.outage_until is not None else 0.0
        return {
            "latency_ms": s.latency_ms,
            "jitter_ms": s.jitter_ms,
            "error_rate": s.error_rate,
            "error_statuses": list(s.error_statuses),
            "write_error_rate": s.write_error_rate,
            "lost_ack_rate": s.lost_ack_rate,
            "search_lag_ms": s.search_lag_ms,
            "bulk_entity_error_rate": s.bulk_entity_error_rate,
            "outage": self.in_outage(now, count=False),
            "outage_remaining_seconds": max(0.0, remaining),
            "seed": s.seed,
        }

    def record(self, kind: str) -> None:
        self.counts[kind] += 1

    def delay_seconds(self) -> float:
        """Latency plus a uniform jitter in ``[0, jitter_ms]`` for one request."""
        s = self.settings
        delay = s.latency_ms
        if s.jitter_ms > 0:
            delay += self._streams["jitter"].uniform(0, s.jitter_ms)
        if delay > 0:
            self.record("latency")
        return delay / 1000.0

    def in_outage(self, now: float, *, count: bool = True) -> bool:
        s = self.settings
        down = s.outage or (s.outage_until is not None and now < s.outage_until)
        if down and count:
            self.record("outage")
        return down

    def injected_error(self, *, is_write: bool) -> int | None:
        """The 5xx status to answer instead of serving the request, if any."""
        s = self.settings
        kind = None
        if s.error_rate > 0 and self._streams["error"].random() < s.error_rate:
            kind = "error"
        elif (
            is_write
            and s.write_error_rate > 0
            and self._streams["write_error"].random() < s.write_error_rate
        ):
            kind = "write_error"
        if kind is None:
            return None
        self.record(kind)
        return self._streams["error_status"].choice(s.error_statuses)

    def lose_ack(self) -> bool:
        """Whether to drop the connection after applying this write."""
        s = self.settings
        if s.lost_ack_rate > 0 and self._streams["lost_ack"].random() < s.lost_ack_rate:
            self.record("lost_ack")
            return True
        return False

    def entity_error(self) -> bool:
        """Whether to fail one entity of a bulk request (a retryable per-entity error)."""
        s = self.settings
        rate = s.bulk_entity_error_rate
        if rate > 0 and self._streams["bulk_entity_error"].random() < rate:
            self.record("bulk_entity_error")
            return True
        return False

    def search_lag_seconds(self) -> float:
        lag = self.settings.search_lag_ms
        if lag > 0:
            self.record("search_lag")
        return lag / 1000.0
