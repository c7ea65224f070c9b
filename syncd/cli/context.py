"""What every command shares: the configuration (loaded once, lazily) and the database."""

from __future__ import annotations

from dataclasses import dataclass, field

import click

from syncd.config import Settings, load_settings, resolve_config_path, world_readable_warning
from syncd.logs import configure_logging, get_logger
from syncd.store.db import Database, open_database


@dataclass
class AppContext:
    config_path: str | None = None
    log_level: str | None = None
    log_format: str | None = None
    _settings: Settings | None = field(default=None, repr=False)
    _database: Database | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config_path)
            self._setup_logging(self._settings)
            path = resolve_config_path(self.config_path)
            if self._settings.genesys.client_secret_file is None and (
                warning := world_readable_warning(path)
            ) and "client_secret" in path.read_text(encoding="utf-8"):
                get_logger("syncd.config").warning("config.secret_file_readable", detail=warning)
        return self._settings

    def _setup_logging(self, settings: Settings) -> None:
        configure_logging(
            level=self.log_level or settings.logging.level,
            fmt=self.log_format or settings.logging.format,  # type: ignore[arg-type]
            secrets=settings.secrets(),
        )

    def database(self) -> Database:
        if self._database is None:
            s = self.settings
            self._database = open_database(s.database.url, busy_timeout=s.database.busy_timeout)
        return self._database


pass_app = click.make_pass_decorator(AppContext)
