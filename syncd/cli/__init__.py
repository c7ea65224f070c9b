"""The `syncd` command line. Each command group lives in its own module of this package.

One top-level handler turns :class:`syncd.errors.UserError` into one clear line on stderr and
exit code 2; other syncd errors exit 1 with their message; only bugs print a traceback.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from syncd import __version__
from syncd.cli.context import AppContext
from syncd.errors import SyncdError, UserError
from syncd.logs import scrub


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    envvar=None,
    help="Configuration file (default: $SYNCD_CONFIG, else /etc/syncd/config.toml).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default=None,
    help="Override logging.level.",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "console"]),
    default=None,
    help="Override logging.format.",
)
@click.version_option(__version__, prog_name="syncd")
@click.pass_context
def cli(
    ctx: click.Context, config_path: str | None, log_level: str | None, log_format: str | None
) -> None:
    """Keep Genesys Cloud contacts in sync with a CRM mirror, and ledger every change."""
    app = AppContext(config_path=config_path, log_level=log_level, log_format=log_format)
    ctx.obj = app
    ctx.call_on_close(app.close)


def _register() -> None:
    from syncd.cli import config_cmd, db_cmd

    cli.add_command(config_cmd.config)
    cli.add_command(db_cmd.db)
    # Optional command modules, each exposing ``register(cli)``.
    for name in (
        "emulator_cmd",  # syncd emulator
        "mirror_cmd",  # syncd mirror import
        "sync_cmd",  # syncd sync
        "daemon_cmd",  # syncd run, syncd resync
        "ops_cmd",  # syncd ledger, runs, contact, status
        "demo_cmd",  # syncd demo
    ):
        try:
            module = __import__(f"syncd.cli.{name}", fromlist=["register"])
        except ModuleNotFoundError as exc:
            if exc.name != f"syncd.cli.{name}":
                raise
            continue
        module.register(cli)


_register()


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the console script and of ``python -m syncd``."""
    try:
        code = cli.main(args=argv, prog_name="syncd", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("syncd: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except UserError as exc:
        click.echo(f"syncd: error: {scrub(str(exc))}", err=True)
        sys.exit(exc.exit_code)
    except SyncdError as exc:
        click.echo(f"syncd: error: {scrub(str(exc))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("syncd: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
