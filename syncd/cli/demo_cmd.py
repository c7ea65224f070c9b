"""`syncd demo`: the whole job in one command, on the embedded defaults.

It starts the bundled emulator on a free loopback port, makes a fresh SQLite database in a
folder it leaves behind, imports the bundled sample CRM export (messy on purpose), runs a
full sync, then plays a day in the life: CRM edits written into the mirror with plain SQL
(as an ETL job would), a CRM deletion, and a hand edit made directly in "Genesys". A second
full reconcile repairs all of it, and the runs table and that run's ledger are printed.
Every step goes through the same commands an operator types.
"""

from __future__ import annotations

import os
import sys
from importlib.resources import as_file, files
from pathlib import Path

import click
import httpx

from syncd.exit_codes import ExitCode
from syncd.logs import notice

DEMO_CLIENT_ID = "syncd-demo"
DEMO_CLIENT_SECRET = "demo-secret-not-for-production"  # the emulator's, never a real org's
# The emulator runs far above the production budget so that the demo takes seconds.
DEMO_RATE = 60_000

# Edits applied to the mirror between the two runs (plain SQL, as an ETL writer would).
CRM_EDITS = [
    "UPDATE crm_contacts SET email = 'robert.vdberg@newco.example' WHERE external_id = 'CRM-00002'",
    "UPDATE crm_contacts SET last_name = 'Ibáñez-Ruiz' WHERE external_id = 'CRM-00003'",
    "UPDATE crm_contacts SET organization_id = 'ORG-002', organization_name = 'Globex' "
    "WHERE external_id = 'CRM-00004'",
    "UPDATE crm_contacts SET deleted = TRUE WHERE external_id = 'CRM-00005'",
]
HAND_EDITED = "CRM-00001"

# The demo resets only a folder it made: the marker says so. The files it deletes or rewrites:
MARKER = ".syncd-demo"
CONFIG_HEADER = "# Written by `syncd demo`"
DATABASE_FILES = ("syncd.db", "syncd.db-wal", "syncd.db-shm")
CLOBBERED = (*DATABASE_FILES, "config.toml")


def _write_config(folder: Path, api_url: str, login_url: str) -> Path:
    config = folder / "config.toml"
    config.write_text(
        f"{CONFIG_HEADER}: the emulator it points at is gone when the demo ends,\n"
        "# but every read-only command (ledger, runs, contact, status) works on this file.\n"
        "[database]\n"
        f'url = "sqlite:///{(folder / "syncd.db").resolve()}"\n\n'
        "[genesys]\n"
        f'api_url = "{api_url}"\n'
        f'login_url = "{login_url}"\n'
        f'client_id = "{DEMO_CLIENT_ID}"\n'
        f'client_secret = "{DEMO_CLIENT_SECRET}"\n'
        f"requests_per_minute = {DEMO_RATE}\n"
        "max_in_flight = 16\n\n"
        "[logging]\n"
        'level = "warning"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    return config


def _is_demo_folder(folder: Path) -> bool:
    """The marker is there, or (a folder of an older demo) its config has the demo's header."""
    if (folder / MARKER).is_file():
        return True
    try:
        with (folder / "config.toml").open(encoding="utf-8") as config:
            return config.readline().startswith(CONFIG_HEADER)
    except (OSError, UnicodeDecodeError):
        return False


def _claim_folder(folder: Path) -> None:
    """Make ``folder`` the demo's, refusing (``USAGE``) one whose files it did not create."""
    present = [
        name for name in CLOBBERED if (folder / name).is_symlink() or (folder / name).exists()
    ]
    if present and not _is_demo_folder(folder):
        notice(
            f"refusing to use {folder} for the demo: it holds "
            f"{', '.join(present)}, which `syncd demo` did not create and would overwrite "
            "(the demo recreates its database). Pass --dir with a new or empty folder, or "
            "move those files away. Nothing was changed.",
            "error",
        )
        raise click.exceptions.Exit(ExitCode.USAGE)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text(
        "Made by `syncd demo`: running `syncd demo --dir` on this folder again recreates its "
        "database and config.\n",
        encoding="utf-8",
    )


def _step(title: str) -> None:
    click.secho(f"\n== {title}", bold=True)


def command_prefix() -> str:
    """How the operator types syncd here: ``uv run syncd`` when uv started this process
    (uv sets ``UV`` for what it runs: a clone's quick start), plain ``syncd`` when it was
    installed with pip or as a package."""
    return "uv run syncd" if os.environ.get("UV") else "syncd"


def _syncd(config: Path, *args: str) -> int:
    """Run one `syncd` command in-process, exactly as typed on a shell."""
    from syncd.cli import cli

    click.secho(f"$ {command_prefix()} --config {config} {' '.join(args)}", dim=True)
    try:
        code = cli.main(
            args=["--config", str(config), *args], prog_name="syncd", standalone_mode=False
        )
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    return int(code or ExitCode.OK)


def _hand_edit(api_url: str, login_url: str, external_id: str) -> str:
    """Edit one contact directly in Genesys, as an agent would in the UI."""
    with httpx.Client(timeout=10) as http:
        token = (
            http.post(
                f"{login_url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET),
            )
            .raise_for_status()
            .json()["access_token"]
        )
        headers = {"Authorization": f"Bearer {token}"}
        found = (
            http.get(f"{api_url}/contacts/search", params={"q": external_id}, headers=headers)
            .raise_for_status()
            .json()["results"]
        )
        contact = next(c for c in found if c.get("externalId") == external_id)
        http.patch(
            f"{api_url}/contacts/{contact['id']}",
            json={"lastName": "Edited-By-Hand", "email": "someone.else@example.com"},
            headers=headers,
        ).raise_for_status()
        return str(contact["id"])


@click.command()
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("syncd-demo"),
    show_default=True,
    help="Folder for the demo's database and config: a new or empty one, or one an earlier "
    "demo made (its database is then recreated).",
)
def demo(folder: Path) -> None:
    """Show the whole job in one command: emulator, import, sync, edits, drift, ledger.

    Refuses (exit 2) a folder holding a database or config.toml that it did not create.
    """
    import sqlalchemy as sa

    from syncd.emulator import EmulatorConfig, EmulatorServer
    from syncd.logs import configure_logging
    from syncd.store.db import open_database

    configure_logging(level="warning")

    _claim_folder(folder)
    for leftover in DATABASE_FILES:
        (folder / leftover).unlink(missing_ok=True)
    emulator_config = EmulatorConfig(
        requests_per_minute=DEMO_RATE,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        seed=7,
    )
    with EmulatorServer(emulator_config) as server:
        config = _write_config(folder, server.api_url, server.login_url)
        click.secho(
            f"syncd demo: Genesys emulator on {server.base_url}, database in {folder}/", bold=True
        )

        _step("1. Create the database")
        if _syncd(config, "db", "upgrade") != ExitCode.OK:
            raise click.ClickException("db upgrade failed")

        _step("2. Import the sample CRM export (a few rows are invalid on purpose)")
        with as_file(files("syncd") / "data" / "sample_crm.csv") as sample:
            code = _syncd(config, "mirror", "import", str(sample))
        if code not in (ExitCode.OK, ExitCode.PARTIAL):  # PARTIAL: the invalid rows
            raise click.ClickException("the sample import failed")

        _step("3. First full sync: every valid contact is created in Genesys")
        first = _syncd(config, "sync", "--full")

        _step("4. A day in the life")
        db = open_database(f"sqlite:///{(folder / 'syncd.db').resolve()}")
        try:
            with db.write() as conn:
                for statement in CRM_EDITS:
                    conn.execute(sa.text(statement))
        finally:
            db.dispose()
        click.echo(
            f"CRM: {len(CRM_EDITS) - 1} contacts edited and 1 deleted (plain SQL on "
            "the mirror, as an ETL job would)"
        )
        genesys_id = _hand_edit(server.api_url, server.login_url, HAND_EDITED)
        click.echo(f"Genesys: contact {genesys_id} ({HAND_EDITED}) edited by hand")

        _step("5. Full reconcile: CRM changes sent, the deletion applied, the hand edit repaired")
        second = _syncd(config, "sync", "--full")

        _step("6. The runs")
        _syncd(config, "runs", "--limit", "5")

        _step("7. The ledger of the last run")
        _syncd(
            config,
            "ledger",
            "--since",
            "1h",
            "--op",
            "update",
            "--op",
            "delete",
            "--op",
            "drift",
            "--op",
            "recreate",
            "--op",
            "reject",
            "--limit",
            "20",
        )

    click.secho("\nExplore the ledger the demo left behind:", bold=True)
    for command in ("runs", "ledger --limit 20", f"contact {HAND_EDITED}", "ledger --format json"):
        click.echo(f"  {command_prefix()} --config {config} {command}")
    ran = (ExitCode.OK, ExitCode.PARTIAL)
    if first not in ran or second not in ran:
        sys.exit(ExitCode.PARTIAL)
