"""deploy/syncd.service: accepted by systemd, sandboxed, and the daemon runs in its sandbox."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.daemon.settings import DaemonSettings
from tests.daemon.conftest import ROOT, Harness

UNIT = ROOT / "deploy" / "syncd.service"
MAX_EXPOSURE = 2.5


def _systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.skip("systemd-analyze is not installed (CI runs these on a systemd host)")
    return path


def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_security_exposure_is_at_most_2_5() -> None:
    result = subprocess.run(
        [_systemd_analyze(), "security", "--offline=true", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
        check=False,
    )
    match = re.search(r"Overall exposure level for syncd\.service: ([\d.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_verify_accepts_the_unit(tmp_path: Path) -> None:
    # verify insists that ExecStart's binary exists: point it at this interpreter.
    text = UNIT.read_text(encoding="utf-8")
    text, n = re.subn(r"^ExecStart=\S+", f"ExecStart={sys.executable}", text, flags=re.M)
    assert n == 1
    unit = tmp_path / "syncd.service"
    unit.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [_systemd_analyze(), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "syncd.service" not in result.stderr, result.stderr  # no warnings about our unit


def test_unit_matches_the_daemon() -> None:
    unit = _unit_settings()
    assert unit["Type"] == ["notify"]
    assert unit["ExecStart"][0].endswith(" run")
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert unit["LoadCredential"] == ["client_secret:/etc/syncd/client_secret"]
    assert unit["MemoryDenyWriteExecute"] == ["yes"]
    assert unit["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"]
    # A stop lets the run in flight finish within stop_timeout, before systemd kills.
    stop = float(unit["TimeoutStopSec"][0].removesuffix("s"))
    assert DaemonSettings().stop_timeout.total_seconds() + 10 <= stop
    watchdog = float(unit["WatchdogSec"][0].removesuffix("s"))
    assert watchdog >= 4 * DaemonSettings().heartbeat_every.total_seconds()


@pytest.mark.slow
def test_daemon_runs_with_memory_deny_write_execute(harness: Harness) -> None:
    """CPython and syncd's dependencies never need writable-and-executable memory."""
    wrap = (sys.executable, "-m", "tests.daemon._mdwe")
    canary = subprocess.run(
        [*wrap, sys.executable, "-c", _CANARY],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if canary.returncode == 77:
        pytest.skip(canary.stderr.strip())
    assert canary.returncode == 0, canary.stderr
    assert canary.stdout.split() == ["mdwe=1", "wx-refused", "imports-ok"]
    daemon = harness.start(wrap=wrap)
    daemon.wait_for("daemon.started")
    result = harness.syncd("resync", "--wait", "--external-id", "exit=0")
    assert result.returncode == 0, result.stdout + result.stderr
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit() == 0


# Runs under MDWE: proves the flag is set, enforced, and harmless to what syncd imports.
_CANARY = """
import ctypes, mmap
print("mdwe=%d" % ctypes.CDLL(None).prctl(66, 0, 0, 0, 0))
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    print("wx-allowed")
except OSError:
    print("wx-refused")
import ssl, sqlite3, decimal, json, uuid
import httpx, psycopg, pydantic_core, sqlalchemy, structlog, apscheduler, prometheus_client
import phonenumbers, click
import syncd.cli, syncd.daemon.service
ssl.create_default_context()
sqlite3.connect(":memory:").execute("select 1")
@ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)
def callback(x):
    return x + 1
assert callback(1) == 2  # a libffi closure: must not need W+X pages
print("imports-ok")
"""
