"""The daemon in-process (in a thread): watchdog honesty and reload decisions."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from syncd.config import Settings, load_settings
from syncd.daemon.sdnotify import Notifier
from syncd.daemon.service import Daemon
from syncd.store.db import Database
from tests.daemon.conftest import FakeSystemd, eventually, write_config
from tests.daemon.fake_executor import create_executor


@pytest.fixture
def running(
    sqlite_db: Database, tmp_path: Path, socket_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Daemon, FakeSystemd, Path]]:
    monkeypatch.setenv("SYNCD_DAEMON_HEARTBEAT_EVERY", "0.2")
    monkeypatch.setenv("SYNCD_DAEMON_LEADER_TTL", "1")
    monkeypatch.setenv("SYNCD_DAEMON_POLL_EVERY", "0.1")
    config = write_config(tmp_path / "config.toml", str(sqlite_db.url))
    systemd = FakeSystemd(str(socket_dir / "notify.sock"))
    notifier = Notifier(
        {"NOTIFY_SOCKET": str(socket_dir / "notify.sock"), "WATCHDOG_USEC": "400000"}
    )
    daemon = Daemon(
        settings=load_settings(config),
        db=sqlite_db,
        factory=create_executor,
        reload_settings=lambda: load_settings(config),
        notifier=notifier,
        install_signals=False,
    )
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(daemon.run()), daemon=True)
    thread.start()
    try:
        eventually(lambda: "READY=1" in systemd.lines(), 10, "READY=1")
        yield daemon, systemd, config
    finally:
        daemon.request_stop()
        thread.join(10)
        systemd.close()
    assert codes == [0]


def test_watchdog_pings_stop_when_the_scheduler_stalls(
    running: tuple[Daemon, FakeSystemd, Path],
) -> None:
    daemon, systemd, _config = running
    eventually(lambda: len(systemd.times("WATCHDOG=1")) >= 3, 5, "pings")
    with capture_logs() as logs:
        daemon.scheduler.aps.pause()  # the thread lives, but no job is dispatched any more
        eventually(lambda: any(e["event"] == "daemon.watchdog.withheld" for e in logs), 5)
        count = len(systemd.times("WATCHDOG=1"))
        eventually(lambda: not daemon.scheduler.alive(), 5)
        threading.Event().wait(0.6)
        assert len(systemd.times("WATCHDOG=1")) <= count + 1  # systemd would now restart us
        daemon.scheduler.aps.resume()
        eventually(lambda: len(systemd.times("WATCHDOG=1")) > count + 1, 5, "pings again")


def test_reload_keeps_the_old_configuration_when_the_new_one_is_invalid(
    running: tuple[Daemon, FakeSystemd, Path],
) -> None:
    daemon, systemd, config = running
    old: Settings = daemon.settings
    config.write_text("[genesys]\nclient_id = ''\n", encoding="utf-8")
    with capture_logs() as logs:
        assert daemon.reload() is False
    assert daemon.settings is old
    (rejected,) = [e for e in logs if e["event"] == "daemon.reload.rejected"]
    assert "genesys.client_id: must not be empty" in rejected["error"]
    assert "s3cret" not in str(logs)
    # RELOADING=1 is always closed by READY=1
    eventually(lambda: systemd.lines().count("READY=1") == 2, 5, "READY=1 after the reload")


def test_reload_rejects_a_configuration_the_executor_cannot_use(
    running: tuple[Daemon, FakeSystemd, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon, _systemd, _config = running
    old = daemon.settings

    def refuse(**_kw: object) -> object:
        raise ValueError("cannot reach the API")

    monkeypatch.setattr(daemon, "factory", refuse)
    with capture_logs() as logs:
        assert daemon.reload() is False
    assert daemon.settings is old
    assert any("cannot reach the API" in e.get("error", "") for e in logs)


def test_reload_applies_and_reports_changed_keys_only(
    running: tuple[Daemon, FakeSystemd, Path],
) -> None:
    daemon, _systemd, config = running
    write_config(config, str(daemon.db.url), incremental_every="5m", log_level="debug")
    with capture_logs() as logs:
        daemon.signals.send(signal.SIGHUP)
        eventually(lambda: any(e["event"] == "daemon.reload.applied" for e in logs), 5)
    (applied,) = [e for e in logs if e["event"] == "daemon.reload.applied"]
    assert applied["changed"] == ["logging.level", "sync.incremental_every"]
    assert daemon.settings.sync.incremental_every.total_seconds() == 300
