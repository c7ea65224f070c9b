"""Typed settings loaded from a TOML file, validated once at start-up.

Where the file comes from: ``--config PATH``, else ``$SYNCD_CONFIG``, else
``/etc/syncd/config.toml``. Every problem in a file is reported at once, one line per
problem, naming the key and what is allowed. Unknown keys are errors: a typo must not
silently fall back to a default.

The client secret comes from (first match wins): ``$SYNCD_GENESYS_CLIENT_SECRET``, the file
named by ``genesys.client_secret_file`` (``${CREDENTIALS_DIRECTORY}`` is expanded, so
systemd's ``LoadCredential=`` works), or ``genesys.client_secret`` in the file.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from syncd.errors import ConfigError
from syncd.logs import REDACTED
from syncd.regions import REGION_API_HOSTS, region_urls

DEFAULT_CONFIG_PATH = Path("/etc/syncd/config.toml")
CONFIG_ENV = "SYNCD_CONFIG"
# The rate limit of each wire profile: the reference's per organization, production's per
# client-credentials token (an organization can ask Genesys for more).
DEFAULT_REQUESTS_PER_MINUTE = {"reference": 600, "externalcontacts": 300}
SECRET_ENV = "SYNCD_GENESYS_CLIENT_SECRET"

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: object) -> timedelta:
    """Parse ``"90s"``, ``"5m"``, ``"2h"``, ``"7d"``, ``"250ms"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("must be a duration such as '60s', '5m', '2h' or '1d'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION_RE.match(value)):
        seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2) or "s"]
    else:
        raise ValueError(f"must be a duration such as '60s', '5m', '2h' or '1d' (got {value!r})")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"must be a positive duration (got {value!r})")
    try:
        duration = timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f"is far too long a duration (got {value!r})") from None
    if not duration:  # under a microsecond rounds to zero
        raise ValueError(f"must be at least one microsecond (got {value!r})")
    return duration


def validate_cron(expr: str) -> str:
    """Check a five-field crontab expression the way the scheduler will read it."""
    from apscheduler.triggers.cron import CronTrigger

    if len(expr.split()) != 5:
        raise ValueError(
            f"must be a five-field crontab expression such as '0 3 * * *' (got {expr!r})"
        )
    try:
        trigger = CronTrigger.from_crontab(expr, timezone="UTC")
    except ValueError as exc:
        raise ValueError(f"is not a valid crontab expression ({exc}): {expr!r}") from exc
    if trigger.get_next_fire_time(None, datetime.now(UTC)) is None:
        raise ValueError(f"never fires (no such date): {expr!r}")
    return expr


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


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
    external_source: str = Field(default="syncd", min_length=1, max_length=255)
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
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL (got {v!r})")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname):
            raise ValueError(
                f"must use https:// unless the host is loopback; tokens never travel in clear "
                f"text (got {v!r})"
            )
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


def parse_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"`` or ``"[::1]:9464"`` to ``(host, port)``."""
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT such as '127.0.0.1:9464' (got {value!r})")
    return host, int(port)


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


def is_loopback_host(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_config_path(explicit: str | os.PathLike[str] | None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH


def _format_loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def _allowed_keys(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The keys allowed at ``loc``'s parent, for the 'unknown key' message."""
    current: type[BaseModel] = model
    for part in loc[:-1]:
        field = current.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type):
            return []
        if not issubclass(field.annotation, BaseModel):
            return []
        current = field.annotation
    return list(current.model_fields)


def format_validation_error(exc: ValidationError) -> list[str]:
    """One human line per problem, naming the dotted key (never quoting a secret's value)."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        key = _format_loc(loc)
        secret = any(_SECRET_KEY.search(str(part)) for part in loc)
        kind = err["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(Settings, loc)
            hint = f"; allowed keys here: {', '.join(allowed)}" if allowed else ""
            problems.append(f"{key}: unknown key{hint}")
        elif kind == "missing":
            problems.append(f"{key}: required key is missing")
        else:
            msg = str(err["msg"]).removeprefix("Value error, ")
            got = err.get("input")
            if (
                kind
                in (
                    "int_parsing",
                    "int_type",
                    "float_parsing",
                    "float_type",
                    "bool_type",
                    "bool_parsing",
                    "string_type",
                    "literal_error",
                    "model_type",
                )
                and not secret
            ):
                msg = f"{msg} (got {got!r})"
            problems.append(f"{key}: {msg}")
    # One line per problem: a key or a validator's message may hold a raw control character.
    return [_CONTROL.sub(lambda m: ascii(m.group())[1:-1], p) for p in problems]


_SECRET_KEY = re.compile(r"secret|password|token", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _control_characters(data: object, loc: tuple[str, ...] = ()) -> list[str]:
    """Keys whose string value holds a control character: no setting can use one (a NUL in a
    path or URL fails far from the file, a newline in a header splits it)."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _control_characters(v, (*loc, str(k)))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _control_characters(v, (*loc, str(i)))]
    if isinstance(data, str) and (found := _CONTROL.search(data)):
        key = _CONTROL.sub(lambda m: ascii(m.group())[1:-1], _format_loc(loc))
        return [f"{key}: contains the control character {found.group()!a}"]
    return []


def _read_secret_file(path: Path) -> str:
    expanded = Path(os.path.expandvars(str(path)))
    try:
        text = expanded.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path, or not UTF-8
        why = exc.strerror if isinstance(exc, OSError) else "not a readable UTF-8 text file"
        raise ConfigError(
            f"genesys.client_secret_file: cannot read {str(expanded)!a}: {why}"
        ) from None
    secret = text.strip()
    if not secret:
        raise ConfigError(f"genesys.client_secret_file: {expanded} is empty")
    return secret


def world_readable_warning(path: Path) -> str | None:
    """A warning when a file that holds a secret can be read by other users."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        return (
            f"{path} holds a secret but is readable by other users (mode "
            f"{stat.S_IMODE(mode):o}); run: chmod 600 {path}"
        )
    return None


def parse_settings(data: dict[str, Any], *, source: str | None = None) -> Settings:
    """Validate a parsed TOML document into :class:`Settings` (secrets resolved)."""
    controls = _control_characters(data)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(controls + format_validation_error(exc), source=source) from None
    if controls:
        raise ConfigError(controls, source=source)
    genesys = settings.genesys
    env_secret = os.environ.get(SECRET_ENV)
    secret: str | None
    origin: str | None
    if env_secret:
        secret, origin = env_secret.strip(), "env"
    elif genesys.client_secret_file is not None:
        secret, origin = _read_secret_file(genesys.client_secret_file), "file"
    elif genesys.client_secret is not None:
        secret, origin = genesys.client_secret.get_secret_value().strip(), "config"
    else:
        secret, origin = None, None
    if not secret:
        raise ConfigError(
            "genesys.client_secret: no client secret; set genesys.client_secret, "
            f"genesys.client_secret_file, or the {SECRET_ENV} environment variable",
            source=source,
        )
    resolved = genesys.model_copy(update={"client_secret": SecretStr(secret)})
    resolved._secret_source = origin
    return settings.model_copy(update={"genesys": resolved})


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the configuration file (see the module docstring for the lookup)."""
    resolved = resolve_config_path(path)
    try:
        raw = resolved.read_bytes()
    except FileNotFoundError:
        raise ConfigError(
            f"configuration file not found: {resolved} (pass --config PATH or set {CONFIG_ENV}; "
            "config.example.toml documents every key)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {resolved}: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{resolved} is not UTF-8 text ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{resolved} is not valid TOML: {exc}") from None
    return parse_settings(data, source=str(resolved))


def redacted_view(settings: Settings) -> dict[str, Any]:
    """The effective configuration as plain data, with every secret replaced."""
    data = settings.model_dump(mode="json")
    for name, section in data.items():
        for key in section:
            current = getattr(getattr(settings, name), key)
            if isinstance(current, timedelta):  # "30s", as written in the file, not "PT30S"
                section[key] = f"{current.total_seconds():g}s"
    g = data["genesys"]
    if g.get("client_secret") is not None:
        g["client_secret"] = REDACTED
    g["requests_per_minute"] = settings.genesys.effective_requests_per_minute
    g["api_url"] = settings.genesys.effective_api_url
    g["login_url"] = settings.genesys.effective_login_url
    from sqlalchemy.engine import make_url

    data["database"]["url"] = make_url(settings.database.url).render_as_string(hide_password=True)
    return data
