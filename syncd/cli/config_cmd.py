"""`syncd config check`: validate the configuration and print it with secrets redacted."""

from __future__ import annotations

import json

import click

from syncd.cli.context import AppContext, pass_app
from syncd.config import redacted_view, resolve_config_path


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
    """Validate the configuration file and print the effective settings (secrets redacted)."""
    settings = app.settings
    view = redacted_view(settings)
    if fmt == "json":
        click.echo(json.dumps(view, indent=2))
        return
    click.echo(f"# effective configuration from {resolve_config_path(app.config_path)}")
    for section, values in view.items():
        click.echo(f"\n[{section}]")
        for key, value in values.items():
            click.echo(f"{key} = {_toml_value(value)}")
    click.echo("\n# configuration OK", err=True)
