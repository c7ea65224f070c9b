"""`syncd config check`: validate the configuration and print it with secrets redacted."""

from __future__ import annotations

import json

import click

from syncd.cli.context import AppContext, pass_app
from syncd.config import redacted_view, resolve_config_path
from syncd.errors import ConfigError


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


@config.command("check")
@click.option(
    "--format", "fmt", type=click.Choice(["toml", "json"]), default="toml", show_default=True
)
@pass_app
def check(app: AppContext, fmt: str) -> None:
    """Validate the configuration file and print the effective settings (secrets redacted).

    A client secret that cannot be found is a warning, not an error: only `sync` and `run`
    need it (they refuse to start without it).
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
        click.echo(
            f"\nsyncd: warning: {missing_secret}. Commands that call Genesys (sync, run) "
            "refuse to start until it is fixed; the others work.",
            err=True,
        )
    elif fmt != "json":
        click.echo("\n# configuration OK", err=True)
