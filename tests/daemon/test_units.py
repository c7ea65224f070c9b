"""Small pieces of the daemon: settings, scheduler, signals, the resync client."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from syncd.config import SyncSettings, parse_settings
from syncd.daemon import resync
from syncd.daemon.scheduler import INCREMENTAL, Scheduler
from syncd.daemon.settings import DaemonSettings, daemon_settings, metrics_settings
from syncd.daemon.signals import HANDLED, Signals
from syncd.errors import ConfigError
from syncd.exit_codes import ExitCode
from syncd.store import requests, status
from syncd.store.db import Database

SETTINGS = parse_settings({"genesys": {"client_id": "c", "client_secret": "s3cret!"}})


def test_daemon_settings_defaults_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = daemon_settings(SETTINGS)
    assert defaults == DaemonSettings()
    assert defaults.stale_after == timedelta(seconds=15)
    monkeypatch.setenv("SYNCD_DAEMON_HEARTBEAT_EVERY", "250ms")
    monkeypatch.setenv("SYNCD_DAEMON_LEADER_TTL", "2s")
    monkeypatch.setenv("SYNCD_DAEMON_RUN_ON_START", "false")
    fast = daemon_settings(SETTINGS)
    assert fast.heartbeat_every == timedelta(milliseconds=250)
    assert fast.leader_ttl == timedelta(seconds=2)
    assert not fast.run_on_start


def test_daemon_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SYNCD_DAEMON_LEADER_TTL", "6s")
    with pytest.raises(ConfigError, match="leader_ttl must be at least twice heartbeat_every"):
        daemon_settings(SETTINGS)
    monkeypatch.setenv("SYNCD_DAEMON_LEADER_TTL", "soon")
    with pytest.raises(ConfigError, match=r"daemon\.leader_ttl: must be a duration"):
        daemon_settings(SETTINGS)


def test_metrics_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    assert metrics_settings(SETTINGS).address is None
    monkeypatch.setenv("SYNCD_METRICS_LISTEN", "127.0.0.1:9464")
    assert metrics_settings(SETTINGS).address == ("127.0.0.1", 9464)
    monkeypatch.setenv("SYNCD_METRICS_LISTEN", "nowhere")
    with pytest.raises(ConfigError, match=r"metrics\.listen"):
        metrics_settings(SETTINGS)


def test_scheduler_jobs_and_liveness() -> None:
    sched = Scheduler()
    fired: list[str] = []
    beats = threading.Event()
    sync = SyncSettings(incremental_every=timedelta(seconds=0.2))
    sched.start(sync, enqueue=fired.append, heartbeat=beats.set,
                heartbeat_every=timedelta(seconds=0.1), tick_every=0.1)  # fmt: skip
    try:
        assert beats.wait(5)
        deadline = time.monotonic() + 5
        while "incremental" not in fired and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "incremental" in fired
        assert sched.alive()
        job = sched.aps.get_job(INCREMENTAL)
        assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, None)
        before = sched.next_run(INCREMENTAL)
        assert sched.reschedule(sync, SyncSettings(incremental_every=timedelta(hours=1))) == [
            INCREMENTAL
        ]
        after = sched.next_run(INCREMENTAL)
        assert before is not None
        assert after is not None
        assert after - before > timedelta(minutes=59)
        sched.last_tick = time.monotonic() - 10  # the tick job stopped being dispatched
        assert not sched.alive()
    finally:
        sched.shutdown()
    assert not sched.thread_alive()
    assert not sched.alive()


def test_signals_are_delivered_through_the_pipe_and_the_handlers_restored() -> None:
    # Whatever the handlers were before (SIGHUP is ignored under nohup, SIGINT in a
    # background job), closing puts exactly those back.
    before = {sig: signal.getsignal(sig) for sig in HANDLED}
    sigs = Signals()
    sigs.install()
    try:
        assert sigs.wait(0.01) == []
        signal.raise_signal(signal.SIGHUP)
        sigs.send(signal.SIGTERM)
        assert sigs.wait(1) == [signal.SIGHUP, signal.SIGTERM]
    finally:
        sigs.close()
    assert {sig: signal.getsignal(sig) for sig in HANDLED} == before


class Steps:
    """The follower's clock and sleep: each pause moves time on and plays the next step."""

    def __init__(self, *steps: Callable[[], object]) -> None:
        self.now = 0.0
        self.steps = list(steps)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.steps:
            self.steps.pop(0)()


def _follow(steps: Steps, **how: Any) -> resync.Follow:
    return resync.Follow(poll=0.25, clock=steps.clock, sleep=steps.sleep, **how)


def test_follow_prints_each_change_and_returns_the_exit_code(db: Database) -> None:
    rid = requests.create(db, "incremental")
    status.register(db, instance_id="d", hostname="h", pid=1, version="1")
    out: list[str] = []
    steps = Steps(
        lambda: requests.claim_next(db, "d"),
        lambda: requests.finish(db, rid, status="done", exit_code=ExitCode.HELD),
    )
    how = _follow(steps, stale_after=timedelta(seconds=30), echo=out.append)
    assert resync.follow(db, rid, how) == ExitCode.HELD
    assert out == [
        f"request #{rid}: pending",
        f"request #{rid}: running (daemon h pid 1)",
        f"request #{rid}: done, exit code 3",
    ]


def test_follow_gives_up_and_cancels_when_nobody_is_alive(db: Database) -> None:
    rid = requests.create(db, "incremental")
    out: list[str] = []
    how = _follow(Steps(), stale_after=timedelta(seconds=1), echo=out.append)
    assert resync.follow(db, rid, how) == ExitCode.NO_DAEMON
    req = requests.get(db, rid)
    assert req
    assert req.status == "cancelled"
    assert "no syncd daemon has ever run against this database" in out
    assert out[-1] == f"request #{rid}: cancelled (no live daemon); nothing was run"


def test_follow_times_out(db: Database) -> None:
    status.register(db, instance_id="d", hostname="h", pid=1, version="1")
    rid = requests.create(db, "incremental")
    out: list[str] = []
    steps = Steps()
    how = _follow(steps, stale_after=timedelta(seconds=30), timeout=2, echo=out.append)
    assert resync.follow(db, rid, how) == ExitCode.NO_DAEMON
    assert "timed out after 2s" in out
    assert steps.now == 2.0  # gave up at the deadline, not a poll later
    req = requests.get(db, rid)
    assert req
    assert req.status == "cancelled"


def test_sections_from_settings_once_the_lead_wires_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """When Settings gains `daemon` and `metrics`, they are read, and the environment wins."""
    from syncd.config import Settings
    from syncd.daemon.settings import MetricsSettings

    class Wired(Settings):
        daemon: DaemonSettings = DaemonSettings()
        metrics: MetricsSettings = MetricsSettings()

    wired = Wired.model_validate(
        {
            "genesys": {"client_id": "c", "client_secret": "s3cret!"},
            "daemon": {"heartbeat_every": "2s", "leader_ttl": "8s"},
            "metrics": {"listen": "127.0.0.1:9464"},
        }
    )
    assert daemon_settings(wired).leader_ttl == timedelta(seconds=8)
    assert metrics_settings(wired).address == ("127.0.0.1", 9464)
    monkeypatch.setenv("SYNCD_DAEMON_LEADER_TTL", "4s")
    monkeypatch.setenv("SYNCD_METRICS_LISTEN", "")
    assert daemon_settings(wired).leader_ttl == timedelta(seconds=4)
    assert daemon_settings(wired).heartbeat_every == timedelta(seconds=2)
    assert metrics_settings(wired).address is None
