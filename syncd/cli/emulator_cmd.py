"""`syncd emulator`: serve the local Genesys Cloud emulator in the foreground."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from syncd.cli.context import AppContext, pass_app
from syncd.logs import configure_logging


@click.command("emulator")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    default=8089,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free port; the chosen one is printed).",
)
@click.option(
    "--requests-per-minute",
    default=600,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rate limit of the emulated organization (sliding 60 s window).",
)
@click.option(
    "--latency-ms",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Added to every API and token request.",
)
@click.option("--client-id", default="syncd-emulator", show_default=True, help="OAuth client id.")
@click.option(
    "--client-secret",
    default="emulator-secret",
    show_default=True,
    envvar="SYNCD_EMULATOR_SECRET",
    help="OAuth client secret (or $SYNCD_EMULATOR_SECRET).",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for ids and faults.")
@click.option(
    "--token-expires-in",
    default=86400,
    show_default=True,
    type=click.IntRange(min=1),
    help="Lifetime of issued tokens, in seconds.",
)
@click.option(
    "--persist",
    "persist",
    default=None,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Load the store from this JSON file at start and save it there at exit.",
)
@click.option(
    "--profile",
    default="reference",
    show_default=True,
    type=click.Choice(["reference", "externalcontacts"]),
    help="Wire profile to emulate: the reference API, or production's External Contacts API.",
)
@click.option(
    "--bulk-max-entities",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most entities per bulk request (externalcontacts; 413 above it).",
)
@pass_app
def emulator(
    app: AppContext,
    host: str,
    port: int,
    requests_per_minute: int,
    latency_ms: float,
    client_id: str,
    client_secret: str,
    seed: int,
    token_expires_in: int,
    persist: Path | None,
    profile: str,
    bulk_max_entities: int,
) -> None:
    """Run a local Genesys Cloud emulator until SIGTERM or Ctrl-C.

    Prints "syncd emulator listening on http://HOST:PORT" once it accepts connections.
    The API is under /api/v2, the token endpoint is POST /oauth/token, and /__emulator/
    shows and steers its state (see docs/emulator.md).
    """
    from syncd.emulator import EmulatorConfig, run_forever

    configure_logging(
        level=app.log_level or "info",
        fmt=app.log_format or "auto",  # type: ignore[arg-type]
        secrets=[client_secret],
    )
    try:
        config = EmulatorConfig(
            requests_per_minute=requests_per_minute,
            latency_ms=latency_ms,
            client_id=client_id,
            client_secret=client_secret,
            token_expires_in=token_expires_in,
            seed=seed,
            profile=profile,
            persist_path=persist,
            bulk_max_entities=bulk_max_entities,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    run_forever(config, host=host, port=port, out=sys.stdout)


def register(cli: click.Group) -> None:
    cli.add_command(emulator)
