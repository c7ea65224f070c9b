"""The `syncd` command line. Each command group lives in its own module of this package.

One top-level handler turns :class:`syncd.errors.UserError` into one clear line on stderr and
``ExitCode.USAGE``; other syncd errors exit ``PARTIAL`` with their message; only bugs print a
traceback. Every exit status is a :class:`syncd.exit_codes.ExitCode`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import TYPE_CHECKING, NoReturn

import click

from syncd import __version__
from syncd.cli.context import AppContext
from syncd.errors import SyncdError, UserError
from syncd.exit_codes import ExitCode
from syncd.logs import notice

if TYPE_CHECKING:
    from syncd.sync.seam import ExecutorFactory

__all__ = ["main"]

# Commands load their module on first use, so `syncd emulator` does not import SQLAlchemy
# and a broken command module cannot break the others.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("syncd.cli.config_cmd", "config"),
    "db": ("syncd.cli.db_cmd", "db"),
    "emulator": ("syncd.cli.emulator_cmd", "emulator"),
    "mirror": ("syncd.cli.mirror_cmd", "mirror"),
    "sync": ("syncd.cli.sync_cmd", "sync"),
    "run": ("syncd.cli.daemon_cmd", "run"),
    "resync": ("syncd.cli.daemon_cmd", "resync"),
    "ledger": ("syncd.cli.ops_ledger", "ledger_cmd"),
    "runs": ("syncd.cli.ops_runs", "runs_cmd"),
    "contact": ("syncd.cli.ops_contact", "contact_cmd"),
    "status": ("syncd.cli.ops_status", "status_cmd"),
    "demo": ("syncd.cli.demo_cmd", "demo"),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when invoked (or listed in --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        available = {
            name
            for name, (module, _) in LAZY_COMMANDS.items()
            if importlib.util.find_spec(module) is not None
        }
        return sorted(set(super().list_commands(ctx)) | available)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in LAZY_COMMANDS:
            return command
        module_name, attribute = LAZY_COMMANDS[cmd_name]
        if importlib.util.find_spec(module_name) is None:
            return None
        module = importlib.import_module(module_name)
        loaded = getattr(module, attribute)
        if not isinstance(loaded, click.Command):
            raise TypeError(f"{module_name}.{attribute} is not a click command")
        self.add_command(loaded, cmd_name)
        return loaded


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
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
    app = ctx.ensure_object(AppContext)  # main() may hand one in, carrying injected parts
    app.config_path, app.log_level, app.log_format = config_path, log_level, log_format
    ctx.call_on_close(app.close)


def main(
    argv: list[str] | None = None, *, executor_factory: ExecutorFactory | None = None
) -> NoReturn:
    """Entry point of the console script and of ``python -m syncd``.

    ``executor_factory`` replaces the sync engine behind ``syncd run``: the seam through
    which tests start a real daemon process around a test double.
    """
    app = AppContext(executor_factory=executor_factory)
    try:
        code = cli.main(args=argv, prog_name="syncd", standalone_mode=False, obj=app)
    except click.exceptions.Abort:
        notice("syncd: aborted")
        sys.exit(ExitCode.INTERRUPTED)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except UserError as exc:
        notice(str(exc), "error")
        sys.exit(exc.exit_code)
    except SyncdError as exc:
        notice(str(exc), "error")
        sys.exit(ExitCode.PARTIAL)
    except KeyboardInterrupt:
        notice("syncd: interrupted")
        sys.exit(ExitCode.INTERRUPTED)
    sys.exit(code if isinstance(code, int) else ExitCode.OK)
