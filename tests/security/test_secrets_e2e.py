"""Invariant 8, end to end: the client secret and the bearer tokens never leave.

A real emulator process issues tokens to syncd and writes each one to a file
(``SYNCD_EMULATOR_TOKEN_LOG``, a test hook). syncd then runs as an operator would run it,
every command a real process with debug-level JSON logs on stderr: ``db upgrade``,
``mirror import``, ``sync --full``, an edit and a token revocation, ``sync``, ``ledger``,
``runs``, ``status``, ``config check``. Afterwards every log line, every output, every row
of every table (and the SQLite files' raw bytes) is searched for the secret, for the HTTP
Basic credentials made from it, and for each token the emulator issued. The secret is given
in each of the three supported ways: in the file, in ``SYNCD_GENESYS_CLIENT_SECRET``, and in
a ``client_secret_file``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from syncd.emulator import EmulatorConfig
from syncd.emulator.auth import TOKEN_LOG_ENV
from syncd.store.db import open_database
from tests.support.emulator import EmulatorProcess

pytestmark = pytest.mark.slow

CLIENT_ID = "secaudit-client"
SECRET = "Zebra-Quartz-5f3a9c17e2b84d60-s3cr3t"


@dataclass
class Emulator:
    """The emulator process, and the file it writes every token it issues to."""

    process: EmulatorProcess
    token_log: Path

    @property
    def url(self) -> str:
        return self.process.url

    def tokens(self) -> list[str]:
        if not self.token_log.exists():
            return []
        return [t for t in self.token_log.read_text(encoding="ascii").split() if t]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    token_log = tmp_path / "issued-tokens.txt"
    config = EmulatorConfig(requests_per_minute=100_000, client_id=CLIENT_ID, client_secret=SECRET)
    with EmulatorProcess(
        config, log_path=tmp_path / "emulator.log", env={TOKEN_LOG_ENV: str(token_log)}
    ) as process:
        yield Emulator(process, token_log)


@dataclass
class Operator:
    """Runs `syncd` commands as separate processes and keeps everything they printed."""

    config: Path
    env: dict[str, str]
    transcript: list[str] = field(default_factory=list)

    def __call__(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "syncd",
                "--config",
                str(self.config),
                "--log-level",
                "debug",
                "--log-format",
                "json",
                *args,
            ],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
            check=False,
        )
        self.transcript += [f"$ syncd {' '.join(args)}", proc.stdout, proc.stderr]
        assert proc.returncode in ok, (args, proc.returncode, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc


def forbidden_strings(tokens: list[str]) -> list[str]:
    basic = base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode()
    return [SECRET, quote(SECRET), basic, *tokens]


def dump_database(url: str) -> str:
    """Every row of every table, as text."""
    db = open_database(url)
    try:
        inspector = sa.inspect(db.engine)
        parts = []
        with db.engine.connect() as conn:
            for table in inspector.get_table_names():
                rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()  # noqa: S608
                parts.append(f"== {table} ({len(rows)} rows)\n" + "\n".join(map(repr, rows)))
        return "\n".join(parts)
    finally:
        db.dispose()


def write_config(tmp_path: Path, emulator: Emulator, how: str) -> tuple[Path, dict[str, str]]:
    db_path = tmp_path / "syncd.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    lines = [
        "[database]",
        f'url = "sqlite:///{db_path}"',
        "[genesys]",
        f'api_url = "{emulator.url}/api/v2"',
        f'login_url = "{emulator.url}"',
        f'client_id = "{CLIENT_ID}"',
        "requests_per_minute = 100000",
    ]
    if how == "inline":
        lines.append(f'client_secret = "{SECRET}"')
    elif how == "env":
        env["SYNCD_GENESYS_CLIENT_SECRET"] = SECRET
    else:
        secret_file = tmp_path / "client_secret"
        secret_file.write_text(SECRET + "\n", encoding="utf-8")
        secret_file.chmod(0o600)
        lines.append(f'client_secret_file = "{secret_file}"')
    lines += ["[sync]", "max_delete_count = 100", "max_delete_percent = 100"]
    config = tmp_path / "config.toml"
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config.chmod(0o600)
    return config, env


CRM_CSV = (
    "externalId,firstName,lastName,email,workPhone,mobilePhone,homePhone,otherPhone,"
    "organizationId,organizationName\n"
    "SEC-1,Ada,Lovelace,ada@example.com,(202) 555-0143,,,,ORG-1,Analytical\n"
    "SEC-2,Alan,Turing,alan@example.com,,+44 20 7946 0958,,,,\n"
    "SEC-3,Grace,Hopper,grace@example.com,,,,,,\n"
    # organizationId over the API's 255 characters: syncd sends it, the API answers 400.
    f"SEC-4,Bad,Org,bad@example.com,,,,,{'O' * 300},\n"
)


@pytest.mark.parametrize("how", ["inline", "env", "file"])
def test_secret_and_tokens_never_leave(tmp_path: Path, emulator: Emulator, how: str) -> None:
    config, env = write_config(tmp_path, emulator, how)
    run = Operator(config, env)
    crm = tmp_path / "crm.csv"
    crm.write_text(CRM_CSV, encoding="utf-8")

    run("db", "upgrade")
    run("mirror", "import", str(crm))
    run("sync", "--full", ok=(0, 1))  # 1: SEC-4 was rejected by the API (a 400)
    # An edit, then a revoked token: the next run renews it (a second token to look for).
    crm.write_text(CRM_CSV.replace("Grace,Hopper", "Grace,Brewster Hopper"), encoding="utf-8")
    run("mirror", "import", str(crm))
    emulator.process.revoke()
    run("sync", ok=(0, 1))
    run("ledger", "--format", "json")
    run("config", "check", "--format", "json")
    if how == "inline":  # every other command once (each is a process start: ~2 s)
        run("sync", "--full", ok=(0, 1))
        run("ledger")
        run("runs")
        run("status", ok=(0, 4))  # 4: no daemon has reported (none runs here)
        run("config", "check")

    tokens = emulator.tokens()
    assert len(tokens) >= 2, "the emulator issued fewer tokens than expected"
    contacts = emulator.process.contacts()
    assert {c["externalId"] for c in contacts} >= {"SEC-1", "SEC-2", "SEC-3"}

    transcript = "\n".join(run.transcript)
    log_lines = [line for line in transcript.splitlines() if line.startswith("{")]
    assert any(json.loads(line).get("event") == "genesys.request" for line in log_lines)
    database = dump_database(f"sqlite:///{tmp_path / 'syncd.db'}")
    assert "SEC-4" in database
    assert "400" in database
    raw_files = b"".join(
        p.read_bytes() for p in tmp_path.glob("syncd.db*") if p.is_file()
    )  # the database, its WAL and shared memory, byte for byte
    for needle in forbidden_strings(tokens):
        assert needle not in transcript, f"{needle[:6]}... printed by a command"
        assert needle not in database, f"{needle[:6]}... stored in the database"
        assert needle.encode() not in raw_files, f"{needle[:6]}... in the SQLite file bytes"
    assert "***redacted***" in transcript  # config check showed the secret's place, redacted


def test_auth_failure_does_not_echo_the_secret(tmp_path: Path, emulator: Emulator) -> None:
    """A wrong secret: the run fails with a clear message that quotes no credential."""
    config, env = write_config(tmp_path, emulator, "inline")
    wrong = "Wrong-Walrus-0a9b8c7d6e5f-secret"
    config.write_text(config.read_text().replace(SECRET, wrong), encoding="utf-8")
    run = Operator(config, env)
    crm = tmp_path / "crm.csv"
    crm.write_text(CRM_CSV, encoding="utf-8")
    run("db", "upgrade")
    run("mirror", "import", str(crm))
    proc = run("sync", ok=(1, 2))
    assert "refused" in proc.stderr + proc.stdout or "401" in proc.stderr + proc.stdout
    transcript = "\n".join(run.transcript) + dump_database(f"sqlite:///{tmp_path / 'syncd.db'}")
    basic = base64.b64encode(f"{CLIENT_ID}:{wrong}".encode()).decode()
    for needle in (wrong, SECRET, basic, *emulator.tokens()):
        assert needle not in transcript
