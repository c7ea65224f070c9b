"""`syncd config check`: validate the configuration and print it with secrets redacted;
``--connect`` also logs in to Genesys and reads one page, and says what failed."""

from __future__ import annotations

import asyncio
import json

import click

from syncd.cli.context import AppContext, pass_app
from syncd.config import Settings, redacted_view, resolve_config_path
from syncd.errors import ApiError, ConfigError
from syncd.exit_codes import ExitCode
from syncd.logs import notice


@click.group()
def config() -> None:
    """Inspect the configuration."""


def _toml_value(value: object) -> str:
    if value is None:
        return '""  # unset'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


async def _connect(settings: Settings) -> list[str]:
    """Log in and read one page through the real client (two attempts at most: a check
    should answer quickly); the lines to print."""
    from syncd.genesys.client import GenesysClient, RetryPolicy

    genesys = settings.genesys
    retry = RetryPolicy(max_attempts=2, max_elapsed=60.0)
    async with GenesysClient.from_settings(genesys, retry=retry) as client:
        seen = await client.check_connection()
    lines = [
        f"# login OK: {genesys.effective_login_url}/oauth/token (client {genesys.client_id})",
        f"# read one page of contacts from {genesys.effective_api_url} ({genesys.profile} "
        f"profile): {seen.listed} contact(s){', more follow' if seen.more else ''}",
    ]
    if seen.source_id:
        lines.append(f"# external source {genesys.external_source!r}: {seen.source_id}")
    elif seen.source_id is not None:
        lines.append(
            f"# external source {genesys.external_source!r} does not exist yet: the first "
            "sync creates it"
        )
    return lines


def _check_connection(app: AppContext) -> None:
    try:
        lines = asyncio.run(_connect(app.settings))
    except ConfigError as exc:
        notice(f"--connect: {'; '.join(exc.problems)}", "error")
        raise click.exceptions.Exit(ExitCode.USAGE) from None
    except ApiError as exc:
        notice(f"connection check failed: {exc}", "error")
        raise click.exceptions.Exit(ExitCode.PARTIAL) from None
    for line in lines:
        notice(line)


@config.command("check")
@click.option(
    "--format", "fmt", type=click.Choice(["toml", "json"]), default="toml", show_default=True
)
@click.option(
    "--connect",
    is_flag=True,
    help="Also log in to Genesys and read one page of contacts (writes nothing).",
)
@pass_app
def check(app: AppContext, fmt: str, connect: bool) -> None:
    """Validate the configuration file and print the effective settings (secrets redacted).

    A client secret that cannot be found is a warning, not an error: only `sync` and `run`
    need it (they refuse to start without it). With --connect, log in and read one page;
    exit 1 when that fails, saying where and why (refused, DNS, TLS, timeout, 401...).
    """
    settings = app.local_settings
    missing_secret = None
    try:
        app.settings  # noqa: B018 - resolving the client secret is the check
    except ConfigError as exc:
        missing_secret = "; ".join(exc.problems)
    view = redacted_view(settings)
    if fmt == "json":
        click.echo(json.dumps(view, indent=2))
    else:
        click.echo(f"# effective configuration from {resolve_config_path(app.config_path)}")
        for section, values in view.items():
            click.echo(f"\n[{section}]")
            for key, value in values.items():
                click.echo(f"{key} = {_toml_value(value)}")
    if missing_secret:
        notice(
            f"{missing_secret}. Commands that call Genesys (sync, run) "
            "refuse to start until it is fixed; the others work.",
            "warning",
        )
    elif fmt != "json":
        notice("# configuration OK")
    if connect:
        _check_connection(app)
