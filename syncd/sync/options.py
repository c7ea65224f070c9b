"""Engine tunables, frozen, built from :class:`~syncd.config.Settings` (tests override fields).

Why not all in the configuration file: only the delete limits, the phone region and the
concurrency are operator decisions today; the rest are engineering defaults that tests shrink
(no waits, tiny batches) through :func:`dataclasses.replace`, and that a process can shrink
through the environment: ``SYNCD_ENGINE_<FIELD>`` (``SYNCD_ENGINE_CREATE_GRACE=5s``,
``SYNCD_ENGINE_BATCH_SIZE=50``...) overrides the default of every scalar field below. That
is how the chaos suite runs a real daemon with seconds instead of minutes; an invalid value
is a :class:`~syncd.errors.ConfigError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import Any

from syncd.config import Settings, parse_duration
from syncd.errors import ConfigError
from syncd.sync.canonical import ContentRules
from syncd.sync.guards import DeleteLimits

ENV_PREFIX = "SYNCD_ENGINE_"
_NOT_FROM_ENV = (
    "default_region",
    "limits",
    "max_in_flight",
    "organizations_as_records",
    "names_required",
    "display_phones",
)


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
    # How long after a write was last in flight Genesys may still apply it (the client's read
    # timeout): a complete listing that begins later proves an unknown create absent, when
    # the profile's listing can (ContactsApi.listing_proves_absence).
    landing_window: timedelta = timedelta(seconds=30)
    # Stop the run (status failed) after this many consecutive "service unavailable" rows.
    max_consecutive_unavailable: int = 50
    # The single-writer "sync" lease of a run: after a kill -9 the next run waits at most
    # ``sync_lease_ttl`` for it; renewed every ``sync_lease_renew`` (well inside the TTL).
    sync_lease_ttl: timedelta = timedelta(seconds=20)
    sync_lease_renew: timedelta = timedelta(seconds=5)
    # Set by the engine from the client (ContactsApi.organizations), never configured.
    organizations_as_records: bool = False
    names_required: bool = True  # ContentRules.for_profile: False in externalcontacts
    display_phones: bool = False  # ContentRules.for_profile: the lenient phone policy

    @classmethod
    def from_settings(
        cls, settings: Settings, env: Mapping[str, str] | None = None
    ) -> EngineOptions:
        rules = ContentRules.for_profile(
            settings.genesys.profile, phone_policy=settings.sync.phone_policy
        )
        options = cls(
            default_region=settings.genesys.default_phone_region,
            names_required=rules.names_required,
            display_phones=rules.display_phones,
            limits=DeleteLimits(
                max_count=settings.sync.max_delete_count,
                max_percent=settings.sync.max_delete_percent,
            ),
            max_in_flight=settings.genesys.max_in_flight,
            landing_window=settings.genesys.read_timeout,
        )
        return options.with_env(os.environ if env is None else env)

    def with_env(self, env: Mapping[str, str]) -> EngineOptions:
        """These options with every ``SYNCD_ENGINE_<FIELD>`` variable of ``env`` applied."""
        changes: dict[str, Any] = {}
        problems: list[str] = []
        for f in fields(self):
            name = ENV_PREFIX + f.name.upper()
            raw = env.get(name)
            if raw is None or f.name in _NOT_FROM_ENV:
                continue
            current = getattr(self, f.name)
            try:
                if isinstance(current, timedelta):
                    changes[f.name] = parse_duration(raw)
                else:
                    value = int(raw)
                    if value < 1:
                        raise ValueError(f"must be a positive integer (got {raw!r})")
                    changes[f.name] = value
            except ValueError as exc:
                message = str(exc)
                if "invalid literal" in message:
                    message = f"must be a positive integer (got {raw!r})"
                problems.append(f"{name}: {message}")
        merged = replace(self, **changes) if changes else self
        if merged.sync_lease_renew * 2 > merged.sync_lease_ttl:
            problems.append(
                f"{ENV_PREFIX}SYNC_LEASE_RENEW must be at most half of "
                f"{ENV_PREFIX}SYNC_LEASE_TTL, so that one late renewal does not lose the lease"
            )
        if problems:
            raise ConfigError(problems, source="the SYNCD_ENGINE_* environment")
        return merged

    @property
    def content_rules(self) -> ContentRules:
        return ContentRules(
            self.default_region,
            self.organizations_as_records,
            self.names_required,
            self.display_phones,
        )

    def backoff(self, attempts: int) -> timedelta:
        seconds = self.backoff_base.total_seconds() * 2 ** max(0, attempts - 1)
        return timedelta(seconds=min(seconds, self.backoff_max.total_seconds()))
