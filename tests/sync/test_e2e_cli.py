"""End to end: `syncd` processes against a real emulator process, as an operator would run them.

The emulator's request log must show exactly the minimal calls: one write per changed
contact, ceil(N/100) listing pages per full reconcile, zero writes when nothing changed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.emulator import EmulatorConfig
from syncd.store import leases
from syncd.store.db import open_database
from syncd.store.schema import contact_links, crm_contacts, ledger
from tests.conftest import _drop_postgres_schema, _postgres_schema_url, require_postgres
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, EmulatorProcess
from tests.sync.conftest import ROUTES, person

pytestmark = pytest.mark.slow

# Both wire profiles on SQLite; the reference also on PostgreSQL (a subprocess per command makes
# this the slowest engine test: the database backend is covered by the in-process tests).
CASES = [
    pytest.param(("sqlite", "reference"), id="sqlite-reference"),
    pytest.param(
        ("postgresql", "reference"), id="postgresql-reference", marks=pytest.mark.postgres
    ),
    pytest.param(("sqlite", "externalcontacts"), id="sqlite-externalcontacts"),
]


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest) -> tuple[str, str]:
    return tuple(request.param)  # type: ignore[return-value]


@pytest.fixture
def profile(case: tuple[str, str]) -> str:
    return case[1]


@pytest.fixture
def database_url(case: tuple[str, str], tmp_path: Path) -> Iterator[str]:
    if case[0] == "sqlite":
        yield f"sqlite:///{tmp_path / 'syncd.db'}"
        return
    base = require_postgres()
    url, schema = _postgres_schema_url(base)
    try:
        yield url
    finally:
        _drop_postgres_schema(base, schema)


@pytest.fixture
def emulator(profile: str, tmp_path: Path) -> Iterator[EmulatorProcess]:
    config = EmulatorConfig(
        requests_per_minute=100_000,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        profile=profile,
    )
    with EmulatorProcess(config, log_path=tmp_path / "emulator.log") as proc:
        yield proc


class Cli:
    def __init__(
        self, tmp: Path, emulator: EmulatorProcess, database_url: str, profile: str
    ) -> None:
        self.emulator = emulator
        self.url = url = emulator.url  # config.toml points the CLI here
        self.profile = profile
        routes = ROUTES[profile]
        self.POST, self.PATCH, self.DELETE = routes["create"], routes["patch"], routes["delete"]
        self.LIST = routes["list"]
        # Each command's client looks its external source up first (externalcontacts).
        self.SETUP = [routes["sources"]] if profile == "externalcontacts" else []
        self.config = tmp / "config.toml"
        self.config.write_text(
            f"""
[database]
url = "{database_url}"

[genesys]
api_url = "{url}/api/v2"
login_url = "{url}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
requests_per_minute = 100000
profile = "{profile}"

[sync]
max_delete_count = 100
max_delete_percent = 50
""",
            encoding="utf-8",
        )
        self.config.chmod(0o600)
        self.db = open_database(database_url)
        self.seen = 0

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SYNCD_CONFIG": str(self.config)}
        return subprocess.run(
            [sys.executable, "-m", "syncd", "--log-level", "warning", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            check=False,
        )

    def new_requests(self) -> list[tuple[str, str]]:
        """API requests since the last call (token requests left out)."""
        log = self.emulator.requests()
        fresh, self.seen = log[self.seen :], len(log)
        return [(r["method"], r["route"]) for r in fresh if "oauth" not in r["route"]]

    def contacts(self) -> list[dict[str, Any]]:
        return self.emulator.contacts()

    def external_ids(self) -> set[str]:
        if self.profile == "reference":
            return {c["externalId"] for c in self.contacts()}
        return {c["externalIds"][0]["value"] for c in self.contacts()}

    def bulk(self, kind: str) -> tuple[str, str]:
        return ROUTES["externalcontacts"][kind]

    def write_mirror(self, *rows: dict[str, Any]) -> None:
        with self.db.write() as conn:
            for row in rows:
                ext = row["external_id"]
                conn.execute(sa.delete(crm_contacts).where(crm_contacts.c.external_id == ext))
                conn.execute(sa.insert(crm_contacts).values(**row))


@pytest.fixture
def cli(
    tmp_path: Path, emulator: EmulatorProcess, database_url: str, profile: str
) -> Iterator[Cli]:
    c = Cli(tmp_path, emulator, database_url, profile)
    try:
        yield c
    finally:
        c.db.dispose()


def test_import_sync_edit_sync_delete_sync(cli: Cli, tmp_path: Path) -> None:
    assert cli("db", "upgrade").returncode == 0
    n = 150
    jsonl = tmp_path / "crm.jsonl"
    have_import = "import" in cli("mirror", "--help").stdout
    rows = [person(f"E-{i:03}") for i in range(n)]
    if have_import:
        with jsonl.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(
                    json.dumps(
                        {
                            "externalId": r["external_id"],
                            "firstName": r["first_name"],
                            "lastName": r["last_name"],
                            "email": r["email"],
                            "phoneNumbers": r["phone_numbers"],
                        }
                    )
                    + "\n"
                )
        result = cli("mirror", "import", str(jsonl))
        assert result.returncode == 0, result.stderr
    else:
        cli.write_mirror(*rows)

    result = cli("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "created" in result.stdout
    if cli.profile == "reference":
        assert cli.new_requests() == [cli.POST] * n
    else:  # the source is created on the first run; 150 creates in 3 bulk batches of 50
        setup = [*cli.SETUP, ROUTES["externalcontacts"]["create_source"]]
        assert cli.new_requests() == setup + [cli.bulk("bulk_add")] * math.ceil(n / 50)
    assert len(cli.contacts()) == n

    result = cli("sync")  # nothing changed: not a single call
    assert result.returncode == 0
    assert cli.new_requests() == []

    result = cli("sync", "--full")
    assert result.returncode == 0, result.stdout
    assert cli.new_requests() == cli.SETUP + [cli.LIST] * math.ceil(n / 100)

    # Edit three contacts in the CRM, one only in formatting (no call for that one).
    cli.write_mirror(
        person("E-001", first="Changed"),
        person("E-002", last="Changed"),
        person("E-003", email="  E-003@EXAMPLE.COM "),
    )
    result = cli("sync", "--dry-run")
    assert result.returncode == 0
    assert "first_name: Ada → Changed" in result.stdout
    assert cli.new_requests() == []
    result = cli("sync")
    assert result.returncode == 0
    if cli.profile == "reference":
        assert cli.new_requests() == [cli.PATCH, cli.PATCH]
    else:  # two updates: one bulk read + one bulk update
        expected = [*cli.SETUP, cli.bulk("bulk_read"), cli.bulk("bulk_update")]
        assert cli.new_requests() == expected

    # A snapshot import without some rows tombstones them; the next sync deletes them.
    gone = {"E-010", "E-011", "E-012"}
    if have_import:
        with jsonl.open("w", encoding="utf-8") as f:
            for i in range(n):
                ext = f"E-{i:03}"
                if ext in gone:
                    continue
                r = person(ext)
                f.write(
                    json.dumps(
                        {
                            "externalId": ext,
                            "firstName": r["first_name"],
                            "lastName": r["last_name"],
                            "email": r["email"],
                            "phoneNumbers": r["phone_numbers"],
                        }
                    )
                    + "\n"
                )
        assert cli("mirror", "import", "--snapshot", str(jsonl)).returncode in (0, 1)
        requests_after_import = cli.new_requests()
        assert requests_after_import == []
    else:
        with cli.db.write() as conn:
            conn.execute(
                sa.update(crm_contacts)
                .where(crm_contacts.c.external_id.in_(gone))
                .values(deleted=True)
            )
    result = cli("sync")
    assert result.returncode == 0, result.stdout
    new = cli.new_requests()
    if cli.profile == "reference":
        assert new.count(cli.DELETE) == 3
        assert all(r in (cli.PATCH, cli.DELETE) for r in new)  # the snapshot reverted E-00x
    else:
        assert new[: len(cli.SETUP)] == cli.SETUP
        assert new[len(cli.SETUP) :].count(cli.bulk("bulk_remove")) == 1
        assert set(new[len(cli.SETUP) :]) <= {
            cli.bulk("bulk_remove"),
            cli.bulk("bulk_read"),
            cli.bulk("bulk_update"),
        }
    assert cli.external_ids() == {f"E-{i:03}" for i in range(n)} - gone

    result = cli("sync", "--full")
    assert result.returncode == 0
    assert cli.new_requests() == cli.SETUP + [cli.LIST] * math.ceil((n - 3) / 100)
    with cli.db.read() as conn:
        pending = conn.execute(sa.select(ledger).where(ledger.c.outcome == "pending")).all()
        assert pending == []
        assert conn.execute(sa.select(sa.func.count()).select_from(contact_links)).scalar() == n - 3


def test_guard_exit_code_and_release(cli: Cli) -> None:
    assert cli("db", "upgrade").returncode == 0
    cli.write_mirror(*(person(f"M-{i}") for i in range(4)))
    assert cli("sync").returncode == 0
    with cli.db.write() as conn:
        conn.execute(sa.update(crm_contacts).values(deleted=True))
    cli.new_requests()
    result = cli("sync")
    assert result.returncode == 3, result.stdout
    assert "--allow-mass-delete" in result.stdout
    assert cli.new_requests() == []
    result = cli("sync", "--allow-mass-delete")
    assert result.returncode == 0, result.stdout
    if cli.profile == "reference":
        assert cli.new_requests() == [cli.DELETE] * 4
    else:
        assert cli.new_requests() == [*cli.SETUP, cli.bulk("bulk_remove")]


def test_usage_and_row_failure_exit_codes(cli: Cli) -> None:
    assert cli("db", "upgrade").returncode == 0
    assert cli("sync", "--full", "--external-id", "X").returncode == 2
    cli.write_mirror(person("OK-1"), person("BAD-1", email="not-an-email"))
    result = cli("sync")
    assert result.returncode == 1
    assert "rejected" in result.stdout
    result = cli("sync", "--external-id", "OK-1")
    assert result.returncode == 0, result.stdout


def test_dry_run_works_while_another_process_holds_the_sync_lease(cli: Cli) -> None:
    """A daemon's run (here: a lease held from elsewhere) blocks `sync`, never `sync --dry-run`."""
    assert cli("db", "upgrade").returncode == 0
    cli.write_mirror(person("DRY-1"))
    holder = "sync@elsewhere.example:4242"
    assert leases.acquire(cli.db, leases.SYNC_LEASE, holder, timedelta(minutes=5)) is not None
    result = cli("sync", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "create" in result.stdout
    assert "DRY-1" in result.stdout
    assert cli.contacts() == []
    result = cli("sync")
    assert result.returncode == 2, result.stdout + result.stderr
    assert holder in result.stderr
    assert cli.contacts() == []


def test_organizations_are_records_one_rename_is_one_write(cli: Cli, tmp_path: Path) -> None:
    """CSV import -> sync -> the CRM renames an organization -> import -> sync: the
    record is renamed with one PUT and no contact is written (externalcontacts)."""
    if cli.profile != "externalcontacts":
        pytest.skip("organizations are records in the externalcontacts profile only")
    assert cli("db", "upgrade").returncode == 0
    csv_path = tmp_path / "crm.csv"

    def export(org_name: str) -> None:
        header = "externalId,firstName,lastName,email,workPhone,mobilePhone,homePhone,otherPhone"
        lines = [header + ",organizationId,organizationName"]
        lines += [f"O-{i},Ada,Lovelace,o{i}@example.com,,,,,ORG-1,{org_name}" for i in range(20)]
        csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    export("Analytical Engines")
    assert cli("mirror", "import", str(csv_path)).returncode == 0
    result = cli("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    [record] = cli.emulator.organizations()
    assert record["name"] == "Analytical Engines"
    assert {c["externalOrganization"]["id"] for c in cli.contacts()} == {record["id"]}
    cli.new_requests()
    export("Analytical Engines Ltd")
    assert cli("mirror", "import", str(csv_path)).returncode == 0
    result = cli("sync")
    assert result.returncode == 0, result.stdout + result.stderr
    org_route = "/api/v2/externalcontacts/organizations/{externalOrganizationId}"
    assert [r for r in cli.new_requests() if r[0] != "GET"] == [("PUT", org_route)]
    [renamed] = cli.emulator.organizations()
    assert (renamed["id"], renamed["name"]) == (record["id"], "Analytical Engines Ltd")
    shown = cli("ledger", "--op", "org_rename", "--format", "jsonl")
    assert shown.returncode == 0, shown.stderr
    [row] = [json.loads(line) for line in shown.stdout.splitlines() if line.strip()]
    assert (row["external_id"], row["outcome"]) == ("ORG-1", "ok")
