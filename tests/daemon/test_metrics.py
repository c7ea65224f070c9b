"""The optional Prometheus endpoint, scraped from the real daemon."""

from __future__ import annotations

import socket
import urllib.request

import pytest

from syncd.daemon.settings import MetricsSettings, parse_listen
from tests.daemon.conftest import Harness, eventually


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def _value(text: str, prefix: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.rsplit(" ", 1)[1])
    return None


@pytest.mark.slow
def test_metrics_endpoint(harness: Harness) -> None:
    port = _free_port()
    daemon = harness.start(SYNCD_METRICS_LISTEN=f"127.0.0.1:{port}")
    daemon.wait_for("daemon.metrics.listening")
    assert harness.syncd("resync", "--wait", "--external-id", "exit=1").returncode == 1
    assert harness.syncd("resync").returncode == 0  # left pending if the daemon is slow

    def scraped() -> str | None:
        text = _scrape(port)
        return text if 'syncd_runs_total{kind="targeted",status="partial"' in text else None

    text = eventually(scraped, 10, "the targeted run in the metrics")
    # The startup run of a database with no full reconcile yet is a full one.
    assert _value(text, 'syncd_runs_total{kind="full",status="succeeded"') == 1.0
    assert _value(text, 'syncd_runs_total{kind="targeted",status="partial"') == 1.0
    assert _value(text, 'syncd_last_success_timestamp_seconds{kind="full"}') > 1e9  # type: ignore[operator]
    assert _value(text, 'syncd_api_requests_total{kind="targeted"}') == 2.0
    assert _value(text, "syncd_leader ") == 1.0
    assert _value(text, "syncd_pending_requests ") is not None
    assert _value(text, "syncd_failed_rows ") == 0.0
    assert _value(text, 'syncd_contact_links{state="synced"}') == 0.0
    assert "process_resident_memory_bytes" in text  # the default registry is served too
    assert 'syncd_info{instance_id="' in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [("127.0.0.1:9464", ("127.0.0.1", 9464)), ("[::1]:9464", ("::1", 9464))],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected
    assert MetricsSettings(listen=value).address == expected


@pytest.mark.parametrize("value", ["9464", "localhost:", ":9464", "host:99999", "host:http"])
def test_parse_listen_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        parse_listen(value)
