"""The entry points: console script, `python -m syncd`, `syncd db` on each backend."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from syncd.cli import cli
from syncd.cli.context import AppContext
from syncd.config import Settings
from syncd.errors import UserError
from syncd.store.db import Database
from syncd.store.migrate import head_revision
from syncd.sync.seam import RunExecutor


def write_config(tmp_path: Path, database_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "{database_url}"\n[genesys]\nclient_id = "x"\nclient_secret = "y"\n'
    )
    path.chmod(0o600)
    return path


def test_python_m_syncd_and_console_script_agree() -> None:
    a = subprocess.run(
        [sys.executable, "-m", "syncd", "--version"], capture_output=True, text=True, check=True
    )
    exe = shutil.which("syncd", path=str(Path(sys.executable).parent))
    assert exe is not None, "the syncd console script is not installed next to python"
    b = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True)
    assert a.stdout == b.stdout
    assert a.stdout.startswith("syncd, version")


def test_db_upgrade_current_downgrade(tmp_path: Path, database_url: str) -> None:
    config = write_config(tmp_path, database_url)
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "db", "current"])
    assert result.exit_code == 0, result.output
    assert "empty" in result.output
    result = runner.invoke(cli, ["--config", str(config), "db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert f"empty -> {head_revision()}" in result.output
    result = runner.invoke(cli, ["--config", str(config), "db", "current"])
    assert "up to date" in result.output
    result = runner.invoke(cli, ["--config", str(config), "db", "downgrade", "base", "--yes"])
    assert result.exit_code == 0, result.output


def test_missing_database_directory_is_a_user_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path}/nope/syncd.db")
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(config), "db", "upgrade"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "database directory" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_command_is_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", "frobnicate"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert "No such command" in proc.stderr


def test_run_builds_its_executor_with_the_injected_factory(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'syncd.db'}")
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "db", "upgrade"]).exit_code == 0
    asked: list[str] = []

    def refuse(*, settings: Settings, db: Database, instance_id: str) -> RunExecutor:
        asked.append(instance_id)
        raise UserError("the injected factory was asked")

    injected = AppContext(executor_factory=refuse)
    result = runner.invoke(cli, ["--config", str(config), "run"], obj=injected)
    assert isinstance(result.exception, UserError), result.output
    assert str(result.exception) == "the injected factory was asked"
    assert len(asked) == 1
    assert injected.config_path == str(config)  # the options went into the handed-in context


def test_run_has_no_executor_option_any_more() -> None:
    result = CliRunner().invoke(cli, ["run", "--executor", "tests.daemon.fake_executor:x"])
    assert result.exit_code == 2
    assert "No such option '--executor'" in result.output
