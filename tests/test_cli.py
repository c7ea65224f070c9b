"""The entry points: console script, `python -m syncd`, `syncd db` on each backend."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from syncd.cli import cli


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
    assert "empty -> 0001" in result.output
    result = runner.invoke(cli, ["--config", str(config), "db", "current"])
    assert "up to date" in result.output
    result = runner.invoke(cli, ["--config", str(config), "db", "downgrade", "base"])
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
