"""The sections of the configuration file, one pydantic model each, and :class:`Settings`.

Every section forbids unknown keys (a typo must not fall back to a default) and is frozen:
settings are validated once at start-up and then only read.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from syncd.config.values import Duration, parse_listen, unsafe_url_problem, validate_cron
from syncd.regions import REGION_API_HOSTS, region_urls

# The rate limit of each wire profile: the reference's per organization, production's per
# client-credentials token (an organization can ask Genesys for more).
DEFAULT_REQUESTS_PER_MINUTE = {"reference": 600, "externalcontacts": 300}
# The longest ExternalSource name Genesys accepts (SDK model ExternalSource.name): checked
# here, at load, so a too-long genesys.external_source fails before any request is sent.
MAX_SOURCE_NAME = 200


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseSettings(_Section):
    url: str = "sqlite:////var/lib/syncd/syncd.db"
    busy_timeout: Duration = timedelta(seconds=30)
    auto_upgrade: bool = False

    @field_validator("url")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            url = make_url(v)
        except ArgumentError as exc:
            raise ValueError(f"is not a SQLAlchemy database URL: {exc}") from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(
                "must be a sqlite:/// or postgresql+psycopg:// URL "
                f"(got backend {url.get_backend_name()!r})"
            )
        try:
            url.get_dialect()
        except NoSuchModuleError:
            raise ValueError(
                f"unknown database driver {url.drivername!r}: use sqlite:/// or "
                "postgresql+psycopg://"
            ) from None
        return v


class GenesysSettings(_Section):
    profile: Literal["reference", "externalcontacts"] = "reference"
    region: str = "us_east_1"
    api_url: str | None = None
    login_url: str | None = None
    client_id: str
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    # None: the profile's default budget (reference 600, externalcontacts 300 per token).
    requests_per_minute: int | None = Field(default=None, ge=1, le=100_000)
    max_in_flight: int = Field(default=8, ge=1, le=256)
    connect_timeout: Duration = timedelta(seconds=5)
    read_timeout: Duration = timedelta(seconds=30)
    default_phone_region: str = "US"
    # externalcontacts profile (docs/externalcontacts.md): the ExternalSource our externalIds
    # point at (found or created by name), the email slot, the phone slot of each canonical
    # phone type (a partial table overrides the defaults; one slot per type), and bulk size.
    external_source: str = "syncd"
    email_slot: Literal["workEmail", "personalEmail", "otherEmail"] = "workEmail"
    phone_slots: dict[str, str] = Field(
        default_factory=lambda: {
            "WORK": "workPhone",
            "MOBILE": "cellPhone",
            "HOME": "homePhone",
            "OTHER": "otherPhone",
        }
    )
    bulk_batch_size: int = Field(default=50, ge=1, le=1000)
    # externalcontacts: whether the identifier lookup sees a create at once. Unconfirmed for
    # production; true lets a lookup that finds nothing prove an unknown create absent.
    identifier_lookup_consistent: bool = False
    # externalcontacts: the division syncd creates contacts in and scans (None: the caller's
    # home division for creates, every division the caller may see for scans).
    division_id: str | None = None
    # Where the secret came from: "env", "file" or "config" (set by parse_settings).
    _secret_source: str | None = PrivateAttr(default=None)

    @property
    def secret_source(self) -> str | None:
        return self._secret_source

    @field_validator("region")
    @classmethod
    def _known_region(cls, v: str) -> str:
        if v not in REGION_API_HOSTS:
            raise ValueError(f"unknown region {v!r}; allowed: {', '.join(REGION_API_HOSTS)}")
        return v

    @field_validator("external_source")
    @classmethod
    def _source_name_fits(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty: name the ExternalSource syncd's ids point at")
        if len(v) > MAX_SOURCE_NAME:
            raise ValueError(
                f"is {len(v)} characters; Genesys allows an ExternalSource name of at most "
                f"{MAX_SOURCE_NAME}: choose a shorter name"
            )
        return v

    @field_validator("division_id")
    @classmethod
    def _division_id_shape(cls, v: str | None) -> str | None:
        if v is not None and (not v.strip() or v != v.strip() or "/" in v):
            raise ValueError(
                f"{v!r} is not a division id: give the id (a UUID) from Admin > Divisions, "
                "or leave the key out"
            )
        return v

    @field_validator("client_id")
    @classmethod
    def _client_id_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty: set the OAuth client id of the Genesys org")
        return v

    @field_validator("api_url", "login_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        problem = unsafe_url_problem(v)
        if problem is not None:
            raise ValueError(problem)
        return v.rstrip("/")

    @field_validator("default_phone_region")
    @classmethod
    def _phone_region(cls, v: str) -> str:
        import phonenumbers

        if not v.isascii() or v.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"must be a two-letter region code such as 'US' or 'DE' (got {v!r})")
        return v.upper()

    @field_validator("phone_slots")
    @classmethod
    def _phone_slots(cls, v: dict[str, str]) -> dict[str, str]:
        types = ("WORK", "MOBILE", "HOME", "OTHER")
        slots = ("workPhone", "cellPhone", "homePhone", "otherPhone")
        merged = dict(zip(types, slots, strict=True))
        for kind, slot in v.items():
            if kind.upper() not in types:
                raise ValueError(f"{kind!r} is not a phone type; use {', '.join(types)}")
            if slot not in slots:
                raise ValueError(f"{slot!r} is not a phone slot; use {', '.join(slots)}")
            merged[kind.upper()] = slot
        if len(set(merged.values())) != len(merged):
            raise ValueError(f"each slot must hold one phone type (got {merged})")
        return merged

    @model_validator(mode="after")
    def _one_secret_source(self) -> GenesysSettings:
        if self.client_secret is not None and self.client_secret_file is not None:
            raise ValueError("set either client_secret or client_secret_file, not both")
        return self

    @property
    def effective_requests_per_minute(self) -> int:
        """The request budget: the configured one, else the profile's documented limit."""
        if self.requests_per_minute is not None:
            return self.requests_per_minute
        return DEFAULT_REQUESTS_PER_MINUTE[self.profile]

    @property
    def effective_api_url(self) -> str:
        return self.api_url or region_urls(self.region)[0]

    @property
    def effective_login_url(self) -> str:
        return self.login_url or region_urls(self.region)[1]


class SyncSettings(_Section):
    incremental_every: Duration = timedelta(seconds=60)
    full_reconcile_cron: str = "0 3 * * *"
    max_delete_count: int = Field(default=100, ge=0)
    max_delete_percent: float = Field(default=10, ge=0, le=100)
    phone_policy: Literal["lenient", "strict"] = "lenient"
    """externalcontacts: an unreadable phone number is sent as display text with a ledger
    warning ("lenient"), or rejects its row ("strict"); the reference profile is strict."""

    @field_validator("full_reconcile_cron")
    @classmethod
    def _cron(cls, v: str) -> str:
        return validate_cron(v)


class LoggingSettings(_Section):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, v: object) -> object:
        return v.lower() if isinstance(v, str) else v


class DaemonSettings(_Section):
    """Timings of the daemon itself (not of the sync runs)."""

    heartbeat_every: Duration = timedelta(seconds=5)
    """How often the status row is written and the leader lease renewed (standbys retry)."""
    leader_ttl: Duration = timedelta(seconds=15)
    """A leader that has not renewed for this long is replaced; failover takes at most
    ``leader_ttl + heartbeat_every``."""
    poll_every: Duration = timedelta(seconds=1)
    """How often the leader looks for manual resync requests."""
    stop_timeout: Duration = timedelta(seconds=30)
    """On SIGTERM, how long a run in flight may take to finish (keep below TimeoutStopSec)."""
    run_on_start: bool = True
    """Run an incremental sync on becoming leader (finishes work an earlier stop left)."""
    login_backoff: Duration = timedelta(seconds=30)
    login_backoff_max: Duration = timedelta(minutes=15)
    """While the login to Genesys fails, scheduled runs wait ``login_backoff`` after the
    first failed run, doubling per failure up to ``login_backoff_max`` (manual resyncs
    are not held back); the first run that logs in ends the back-off."""

    @model_validator(mode="after")
    def _ttl_covers_renewals(self) -> DaemonSettings:
        if self.leader_ttl < 2 * self.heartbeat_every:
            raise ValueError(
                "leader_ttl must be at least twice heartbeat_every, so that one late renewal "
                "does not cost the leadership"
            )
        return self

    @property
    def stale_after(self) -> timedelta:
        """A daemon whose heartbeat is older than this is presumed dead."""
        return max(self.leader_ttl, 3 * self.heartbeat_every)


class MetricsSettings(_Section):
    """The optional Prometheus endpoint; ``listen = "127.0.0.1:9464"`` enables it."""

    listen: str | None = None

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str | None) -> str | None:
        if v is not None:
            parse_listen(v)
        return v

    @property
    def address(self) -> tuple[str, int] | None:
        return parse_listen(self.listen) if self.listen else None


class LedgerSettings(_Section):
    """The ``[ledger]`` section; ``retention_days = 0`` keeps rows forever."""

    retention_days: int = Field(default=90, ge=0, le=36500)
    prune_batch_size: int = Field(default=5000, ge=100, le=1_000_000)

    @property
    def retention(self) -> timedelta | None:
        """How long rows are kept, or ``None`` when pruning is off."""
        return timedelta(days=self.retention_days) if self.retention_days else None


class Settings(_Section):
    database: DatabaseSettings = DatabaseSettings()
    genesys: GenesysSettings
    sync: SyncSettings = SyncSettings()
    logging: LoggingSettings = LoggingSettings()
    daemon: DaemonSettings = DaemonSettings()
    metrics: MetricsSettings = MetricsSettings()
    ledger: LedgerSettings = LedgerSettings()

    def secrets(self) -> list[str]:
        """Every secret value this configuration holds, for the log redactor."""
        return [self.genesys.client_secret.get_secret_value()] if self.genesys.client_secret else []
