"""What every command shares: the configuration (loaded once, lazily), the database, and the
executor factory behind ``syncd run`` (``None``: the sync engine's; tests inject a double).

Two views of the configuration: :attr:`AppContext.local_settings` for the commands that never
call Genesys (``status``, ``ledger``, ``runs``, ``contact``, ``resync``, ``db``, ``config
check``), which work without the client secret; :attr:`AppContext.settings` for those that do
(``sync``, ``run``), which refuses clearly, naming the cause, when the secret cannot be found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from syncd.logs import configure_logging, get_logger

if TYPE_CHECKING:  # pydantic and SQLAlchemy load only for commands that need them
    from syncd.config import Settings
    from syncd.store.db import Database
    from syncd.sync.seam import ExecutorFactory


@dataclass
class AppContext:
    config_path: str | None = None
    log_level: str | None = None
    log_format: str | None = None
    executor_factory: ExecutorFactory | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _database: Database | None = field(default=None, repr=False)

    @property
    def local_settings(self) -> Settings:
        """The configuration, with ``genesys.client_secret`` unset when it cannot be found."""
        if self._settings is None:
            from syncd.config import load_settings

            self._settings = load_settings(self.config_path, require_secret=False)
            self._setup_logging(self._settings)
            self._warn_if_secret_readable(self._settings)
        return self._settings

    @property
    def settings(self) -> Settings:
        """The configuration with the client secret, or a ConfigError saying why there is none."""
        settings = self.local_settings
        if settings.genesys.client_secret is None:
            from syncd.config import resolve_config_path, with_secret

            source = str(resolve_config_path(self.config_path))
            self._settings = settings = with_secret(settings, source=source)
            self._setup_logging(settings)  # the secret appeared meanwhile: redact it too
            self._warn_if_secret_readable(settings)
        return settings

    def _warn_if_secret_readable(self, settings: Settings) -> None:
        from syncd.config import resolve_config_path, world_readable_warning

        genesys = settings.genesys
        holder = None
        if genesys.secret_source == "config":
            holder = resolve_config_path(self.config_path)
        elif genesys.secret_source == "file" and genesys.client_secret_file is not None:
            holder = genesys.client_secret_file
        if holder is not None and (warning := world_readable_warning(holder)):
            get_logger("syncd.config").warning("config.secret_readable_by_others", detail=warning)

    def _setup_logging(self, settings: Settings) -> None:
        configure_logging(
            level=self.log_level or settings.logging.level,
            fmt=self.log_format or settings.logging.format,  # type: ignore[arg-type]
            secrets=settings.secrets(),
        )

    def database(self) -> Database:
        if self._database is None:
            from syncd.store.db import open_database

            s = self.local_settings
            self._database = open_database(s.database.url, busy_timeout=s.database.busy_timeout)
        return self._database

    def close(self) -> None:
        """Release pooled connections when the command ends."""
        if self._database is not None:
            self._database.dispose()
            self._database = None


pass_app = click.make_pass_decorator(AppContext)
