"""`syncd demo`, the README's first command, run as a user would: a subprocess in a clean folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest


def _syncd(cwd: Path, env: dict[str, str], *args: str, timeout: float = 60) -> Any:
    """``python -m syncd ARGS`` in ``cwd``, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _checked(proc: Any) -> Any:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.mark.slow
def test_demo_from_a_clean_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["UV"] = "uv"  # as `uv run syncd demo` in a clone sets it
    proc = _syncd(tmp_path, env, "demo", timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    config = tmp_path / "syncd-demo" / "config.toml"
    assert (tmp_path / "syncd-demo" / "syncd.db").is_file()
    assert f"uv run syncd --config {Path('syncd-demo') / 'config.toml'} ledger" in proc.stdout

    ledger = _checked(
        _syncd(tmp_path, env, "--config", str(config), "ledger", "--limit", "0", "--format", "json")
    )
    rows = json.loads(ledger.stdout)
    ops = Counter((r["op"], r["outcome"]) for r in rows)
    assert ops[("create", "ok")] >= 280
    assert ops[("update", "ok")] == 3
    assert ops[("delete", "ok")] == 1
    assert ops[("drift", "ok")] == 1
    assert not [r for r in rows if r["outcome"] in ("pending", "failed")]
    drift = next(r for r in rows if r["op"] == "drift")
    assert drift["fields"]["last_name"] == ["Edited-By-Hand", "Brown"]

    runs = _checked(_syncd(tmp_path, env, "--config", str(config), "runs", "--format", "json"))
    assert [r["status"] for r in json.loads(runs.stdout)] == ["succeeded", "succeeded"]


@pytest.mark.slow
def test_a_pip_installed_demo_prints_commands_without_uv_run(tmp_path: Path) -> None:
    """Installed with pip, there is no uv: every command it shows must run as printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_") and k != "UV"}
    proc = _syncd(tmp_path, env, "demo", "--dir", str(tmp_path / "d"), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "uv run" not in proc.stdout + proc.stderr
    shown = [line.strip() for line in proc.stdout.splitlines() if "--config" in line]
    assert shown, proc.stdout
    assert all(line.removeprefix("$ ").startswith("syncd --config") for line in shown), shown
