"""The client secret is needed only by the commands that call Genesys (issue 16).

``status``, ``ledger``, ``runs``, ``contact``, ``resync``, ``db upgrade`` and ``config check``
work without it; ``sync`` and ``run`` refuse, naming the cause. A
``${CREDENTIALS_DIRECTORY}`` reference outside systemd says that the variable is unset.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from syncd.cli import cli
from syncd.exit_codes import ExitCode
from syncd.store.db import Database
from tests.support.cli import run_syncd
from tests.support.notices import plain

CREDENTIAL_REF = "${CREDENTIALS_DIRECTORY}/client_secret"


def _config(tmp_path: Path, db: Database, genesys_extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    url = db.url.render_as_string(hide_password=False)
    path.write_text(
        f'[database]\nurl = {json.dumps(url)}\n[genesys]\nclient_id = "x"\n{genesys_extra}',
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def _invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(config), "--log-level", "warning", *args], catch_exceptions=False
    )


def _syncd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_syncd(config, *args)


LOCAL_COMMANDS = [
    (("status",), ExitCode.NO_DAEMON),
    (("ledger",), ExitCode.OK),
    (("ledger", "prune", "--dry-run"), ExitCode.OK),
    (("runs",), ExitCode.OK),
    (("contact", "CRM-1"), ExitCode.NOT_FOUND),
    (("resync",), ExitCode.OK),
    (("db", "upgrade"), ExitCode.OK),
    (("db", "current"), ExitCode.OK),
]


def _command_id(value: object) -> str:
    return " ".join(value) if isinstance(value, tuple) else str(getattr(value, "name", value))


@pytest.mark.parametrize(
    "extra",
    ["", f'client_secret_file = "{CREDENTIAL_REF}"\n'],
    ids=["no-secret", "unset-credentials-directory"],
)
@pytest.mark.parametrize(("args", "code"), LOCAL_COMMANDS, ids=_command_id)
def test_local_commands_work_without_the_secret(
    tmp_path: Path, db: Database, extra: str, args: tuple[str, ...], code: ExitCode
) -> None:
    result = _invoke(_config(tmp_path, db, extra), *args)
    assert result.exit_code == code, result.output
    assert "client_secret" not in result.output


def test_config_check_without_the_secret_warns(tmp_path: Path, db: Database) -> None:
    result = _invoke(_config(tmp_path, db), "config", "check")
    assert result.exit_code == ExitCode.OK, result.output
    assert 'client_id = "x"' in result.stdout
    assert "syncd: warning: genesys.client_secret: no client secret" in plain(result.stderr)
    assert "Commands that call Genesys (sync, run) refuse to start" in result.stderr


def test_an_unset_credentials_directory_is_named(tmp_path: Path, db: Database) -> None:
    config = _config(tmp_path, db, f'client_secret_file = "{CREDENTIAL_REF}"\n')
    result = _invoke(config, "config", "check", "--format", "json")
    assert result.exit_code == ExitCode.OK, result.output
    assert json.loads(result.stdout)["genesys"]["client_secret_file"] == CREDENTIAL_REF
    assert "refers to the environment variable CREDENTIALS_DIRECTORY, which is not set" in (
        result.stderr
    )
    assert "systemd sets CREDENTIALS_DIRECTORY for a service with LoadCredential=" in (
        result.stderr
    )


@pytest.mark.slow
@pytest.mark.parametrize("command", [("sync",), ("sync", "--full"), ("run",)])
def test_commands_that_call_genesys_refuse_without_the_secret(
    tmp_path: Path, db: Database, command: tuple[str, ...]
) -> None:
    proc = _syncd(_config(tmp_path, db), *command)
    assert proc.returncode == ExitCode.USAGE, proc.stdout + proc.stderr
    assert "genesys.client_secret: no client secret" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_sync_names_the_unset_credentials_directory(tmp_path: Path, db: Database) -> None:
    config = _config(tmp_path, db, f'client_secret_file = "{CREDENTIAL_REF}"\n')
    proc = _syncd(config, "sync")
    assert proc.returncode == ExitCode.USAGE, proc.stdout + proc.stderr
    assert "CREDENTIALS_DIRECTORY, which is not set" in proc.stderr
    assert "LoadCredential=" in proc.stderr


def test_a_set_credentials_directory_still_works(
    tmp_path: Path, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "client_secret").write_text("s3cret-value\n", encoding="utf-8")
    (creds / "client_secret").chmod(0o600)
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config = _config(tmp_path, db, f'client_secret_file = "{CREDENTIAL_REF}"\n')
    result = _invoke(config, "config", "check")
    assert result.exit_code == ExitCode.OK, result.output
    assert "warning" not in result.stderr
    assert "s3cret-value" not in result.output


def test_mirror_import_works_without_the_secret(tmp_path: Path, db: Database) -> None:
    """Feeding the mirror never calls Genesys, so an ETL host needs no client secret."""
    config = _config(tmp_path, db)
    assert _invoke(config, "db", "upgrade").exit_code == ExitCode.OK
    rows = tmp_path / "crm.csv"
    header = "externalId,firstName,lastName,email,workPhone,mobilePhone,homePhone,otherPhone,"
    rows.write_text(
        f"{header}organizationId,organizationName\nCRM-1,Ada,Lovelace,ada@example.com,,,,,,\n"
    )
    result = _invoke(config, "mirror", "import", str(rows))
    assert result.exit_code == ExitCode.OK, result.output
    assert "client_secret" not in result.output


def test_redaction_leaves_the_name_of_the_operators_file_whole(
    tmp_path: Path, db: Database
) -> None:
    """A secret whose text is also a file name: the file's name is printed as given (the
    operator typed it), while the secret is still redacted everywhere else."""
    secret = "crmexport"
    config = _config(tmp_path, db, f'client_secret = "{secret}"\n')
    assert _syncd(config, "db", "upgrade").returncode == ExitCode.OK
    rows = tmp_path / f"{secret}.csv"
    rows.write_text("externalId;firstName;lastName\n", encoding="utf-8")
    result = _syncd(config, "mirror", "import", str(rows))
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert f"{rows}: the header is separated by ';'" in result.stderr
    assert "redacted" not in result.stderr


def test_verbatim_text_is_kept_and_the_secret_elsewhere_is_not() -> None:
    from syncd.logs import REDACTED, keep_verbatim, register_secret, scrub

    register_secret("hunter22")
    keep_verbatim("/data/hunter22.csv")
    text = "/data/hunter22.csv: bad header; the secret is hunter22"
    assert scrub(text) == f"/data/hunter22.csv: bad header; the secret is {REDACTED}"
    assert scrub("/data/hunter22.json") == f"/data/{REDACTED}.json"
