"""sd_notify: a fake NOTIFY_SOCKET reads what the real daemon tells systemd."""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

import pytest

from syncd.daemon.sdnotify import Notifier
from tests.daemon.conftest import FakeSystemd, Harness, eventually


@pytest.mark.slow
def test_daemon_speaks_sd_notify(harness: Harness, socket_dir: Path) -> None:
    path = socket_dir / "notify.sock"
    systemd = FakeSystemd(str(path))
    try:
        daemon = harness.start(NOTIFY_SOCKET=str(path), WATCHDOG_USEC="1000000")
        eventually(lambda: "READY=1" in systemd.lines(), 20, "READY=1")
        ready = next(lines for _, lines in systemd.messages if "READY=1" in lines)
        assert f"MAINPID={daemon.pid}" in ready
        assert any(line.startswith("STATUS=leader; ") for line in ready)
        # The startup run shows up in a STATUS line once it has finished.
        eventually(
            lambda: any("last run #1 full (startup) succeeded" in x for x in systemd.lines()),
            10,
            "a STATUS line with the last run",
        )
        # WATCHDOG_USEC=1s: pings every half second while the scheduler is alive.
        eventually(lambda: len(systemd.times("WATCHDOG=1")) >= 4, 10, "watchdog pings")
        pings = systemd.times("WATCHDOG=1")
        gaps = [b - a for a, b in itertools.pairwise(pings)]
        assert max(gaps) < 1.0, gaps
        daemon.signal(signal.SIGTERM)
        assert daemon.wait_exit() == 0
        eventually(lambda: "STOPPING=1" in systemd.lines(), 5, "STOPPING=1")
        lines = systemd.lines()
        assert lines.index("READY=1") < lines.index("STOPPING=1")
    finally:
        systemd.close()


@pytest.mark.slow
def test_reload_is_announced(harness: Harness, socket_dir: Path) -> None:
    path = socket_dir / "notify.sock"
    systemd = FakeSystemd(str(path))
    try:
        daemon = harness.start(NOTIFY_SOCKET=str(path))
        eventually(lambda: "READY=1" in systemd.lines(), 20, "READY=1")
        daemon.signal(signal.SIGHUP)
        eventually(lambda: "RELOADING=1" in systemd.lines(), 10, "RELOADING=1")
        eventually(lambda: systemd.lines().count("READY=1") == 2, 10, "READY=1 after reload")
        reloading = next(lines for _, lines in systemd.messages if "RELOADING=1" in lines)
        assert any(line.startswith("MONOTONIC_USEC=") for line in reloading)
        assert "WATCHDOG=1" not in systemd.lines()  # no WATCHDOG_USEC: no pings
    finally:
        systemd.close()


def test_abstract_namespace_socket() -> None:
    name = f"@syncd-test-{os.getpid()}-{time.monotonic_ns()}"
    systemd = FakeSystemd(b"\0" + name[1:].encode())
    try:
        notifier = Notifier({"NOTIFY_SOCKET": name})
        assert notifier.enabled
        assert notifier.ready("up")
        assert notifier.status("line one\nline two")
        assert notifier.stopping("bye")
        eventually(lambda: "STOPPING=1" in systemd.lines(), 5, "STOPPING=1")
        assert "STATUS=line one line two" in systemd.lines()  # one line per STATUS
        notifier.close()
    finally:
        systemd.close()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    notifier = Notifier({})
    assert not notifier.enabled
    assert not notifier.ready("up")
    assert notifier.watchdog_interval is None


def test_a_vanished_socket_never_raises(socket_dir: Path) -> None:
    notifier = Notifier({"NOTIFY_SOCKET": str(socket_dir / "gone.sock")})
    assert notifier.notify("READY=1") is False
    assert notifier.notify("READY=1") is False
    notifier.close()


@pytest.mark.parametrize(
    ("env", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(
    env: dict[str, str], interval: float | None
) -> None:
    assert Notifier(env).watchdog_interval == interval
