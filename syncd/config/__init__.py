"""Typed settings loaded from a TOML file, validated once at start-up.

Where the file comes from: ``--config PATH``, else ``$SYNCD_CONFIG``, else
``/etc/syncd/config.toml``. Every problem in a file is reported at once, one line per
problem, naming the key and what is allowed. Unknown keys are errors: a typo must not
silently fall back to a default.

The client secret comes from (first match wins): ``$SYNCD_GENESYS_CLIENT_SECRET``, the file
named by ``genesys.client_secret_file`` (``${CREDENTIALS_DIRECTORY}`` is expanded, so
systemd's ``LoadCredential=`` works), or ``genesys.client_secret`` in the file.

The package sits below every layer and imports none of them. Its modules: ``values`` (the
parsers of durations, crontabs, addresses), ``sections`` (one model per section),
``problems`` (one line per problem), ``secret_source`` (the client secret) and ``loading``
(file to :class:`Settings`, and the redacted view). Import from here, not from them.
"""

from __future__ import annotations

from syncd.config.loading import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    load_settings,
    parse_settings,
    redacted_view,
    resolve_config_path,
    with_secret,
)
from syncd.config.problems import format_validation_error
from syncd.config.secret_source import SECRET_ENV, world_readable_warning
from syncd.config.sections import (
    DEFAULT_REQUESTS_PER_MINUTE,
    MAX_SOURCE_NAME,
    DaemonSettings,
    DatabaseSettings,
    GenesysSettings,
    LedgerSettings,
    LoggingSettings,
    MetricsSettings,
    Settings,
    SyncSettings,
)
from syncd.config.values import (
    Duration,
    is_loopback_host,
    parse_duration,
    parse_listen,
    unsafe_url_problem,
    validate_cron,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_REQUESTS_PER_MINUTE",
    "MAX_SOURCE_NAME",
    "SECRET_ENV",
    "DaemonSettings",
    "DatabaseSettings",
    "Duration",
    "GenesysSettings",
    "LedgerSettings",
    "LoggingSettings",
    "MetricsSettings",
    "Settings",
    "SyncSettings",
    "format_validation_error",
    "is_loopback_host",
    "load_settings",
    "parse_duration",
    "parse_listen",
    "parse_settings",
    "redacted_view",
    "resolve_config_path",
    "unsafe_url_problem",
    "validate_cron",
    "with_secret",
    "world_readable_warning",
]
