"""Settings of one emulator instance (the CLI flags map one to one onto these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class EmulatorConfig:
    """What the emulated organization looks like at start.

    ``latency_ms`` is the initial fault latency (changeable at run time through the faults
    knob). ``seed`` drives contact ids and every fault decision, so a run can be replayed.
    ``log_limit`` bounds the request and write logs kept for introspection (the counters in
    the stats are never truncated), so a long-running emulator does not grow without end.
    ``bulk_max_entities`` is the most entities one bulk request may carry (profiles with
    bulk endpoints answer 413 above it; the production maximum is unconfirmed).
    ``variants`` picks how the externalcontacts profile plays production behaviours that
    are unconfirmed (see ``docs/externalcontacts.md``); they can be changed at run time too.
    """

    requests_per_minute: int = 600
    latency_ms: float = 0
    client_id: str = "syncd-emulator"
    client_secret: str = "emulator-secret"
    token_expires_in: int = 86400
    seed: int = 0
    profile: str = "reference"
    persist_path: Path | None = None
    log_limit: int = 1_000_000
    bulk_max_entities: int = 100
    variants: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        problems = []
        if self.requests_per_minute < 1:
            problems.append("requests_per_minute must be at least 1")
        if self.latency_ms < 0:
            problems.append("latency_ms must not be negative")
        if self.token_expires_in < 1:
            problems.append("token_expires_in must be at least 1 second")
        if not self.client_id or not self.client_secret:
            problems.append("client_id and client_secret must not be empty")
        if self.log_limit < 1:
            problems.append("log_limit must be at least 1")
        if self.bulk_max_entities < 1:
            problems.append("bulk_max_entities must be at least 1")
        if problems:
            raise ValueError("; ".join(problems))
        if self.persist_path is not None and not isinstance(self.persist_path, Path):
            self.persist_path = Path(self.persist_path)
