"""`syncd config check --connect` logs in and reads one page, and a network failure names the
URL and the cause: refused, TLS against a plain-HTTP port, timeout, DNS (issue 16).

Every server here listens on 127.0.0.1; the DNS case is fed a synthetic resolver error.
"""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner, Result

from syncd.cli import cli
from syncd.emulator import EmulatorConfig
from syncd.exit_codes import ExitCode
from syncd.genesys.network import describe
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, serve_in_thread


def _config(tmp_path: Path, api_url: str, login_url: str, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n'
        f'[genesys]\nclient_id = "{CLIENT_ID}"\nclient_secret = "{CLIENT_SECRET}"\n'
        f'api_url = "{api_url}"\nlogin_url = "{login_url}"\nconnect_timeout = "2s"\n{extra}',
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def _check(config: Path) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(config), "--log-level", "error", "config", "check", "--connect"]
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # closed again: nothing listens there


@pytest.fixture
def plain_http() -> Iterator[int]:
    """A plain-HTTP server (no TLS) on loopback."""
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def silent() -> Iterator[int]:
    """A port that accepts connections (the kernel's backlog) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def test_refused(tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    result = _check(_config(tmp_path, url + "/api/v2", url))
    assert result.exit_code == ExitCode.PARTIAL, result.output
    assert f"{url}/oauth/token: connection refused" in result.stderr
    assert CLIENT_SECRET not in result.output


def test_tls_against_a_plain_http_port(tmp_path: Path, plain_http: int) -> None:
    url = f"https://127.0.0.1:{plain_http}"
    result = _check(_config(tmp_path, url + "/api/v2", url))
    assert result.exit_code == ExitCode.PARTIAL, result.output
    assert f"{url}/oauth/token: TLS handshake failed" in result.stderr
    assert "does not speak TLS on that port" in result.stderr


def test_no_answer_is_a_timeout(tmp_path: Path, silent: int) -> None:
    url = f"http://127.0.0.1:{silent}"
    result = _check(_config(tmp_path, url + "/api/v2", url, 'read_timeout = "1s"\n'))
    assert result.exit_code == ExitCode.PARTIAL, result.output
    assert f"{url}/oauth/token: no answer in time (genesys.read_timeout)" in result.stderr


def test_an_unknown_host_name_is_dns() -> None:
    request = httpx.Request("GET", "https://api.nowhere.invalid/api/v2/contacts?q=secret")
    error = httpx.ConnectError("[Errno -2] Name or service not known", request=request)
    error.__cause__ = socket.gaierror(-2, "Name or service not known")
    text = describe(error)
    assert text.startswith("https://api.nowhere.invalid/api/v2/contacts: DNS:")
    assert "secret" not in text  # a query never shows


@pytest.mark.parametrize("profile", ["reference", "externalcontacts"])
def test_success_logs_in_and_reads_one_page(tmp_path: Path, profile: str) -> None:
    with serve_in_thread(EmulatorConfig(profile=profile, requests_per_minute=100_000)) as server:
        server.emulator.seed_contacts([{"firstName": "Ada", "lastName": f"L{i}"} for i in range(3)])
        config = _config(tmp_path, server.api_url, server.login_url, f'profile = "{profile}"\n')
        result = _check(config)
        writes = [r for r in server.emulator.request_log() if r["method"] != "GET"]
    assert result.exit_code == ExitCode.OK, result.output
    assert "# login OK" in result.stderr
    if profile == "externalcontacts":  # no source yet: the page is counted, not parsed
        assert "profile): 3 contact(s)" in result.stderr  # the scan reads at least 10
        assert "does not exist yet: the first sync creates it" in result.stderr
    else:
        assert "profile): 1 contact(s), more follow" in result.stderr
    assert [r["route"] for r in writes] == ["/oauth/token"]  # nothing written


def test_a_wrong_secret_says_so(tmp_path: Path) -> None:
    with serve_in_thread(EmulatorConfig(client_secret="another-secret")) as server:
        result = _check(_config(tmp_path, server.api_url, server.login_url))
    assert result.exit_code == ExitCode.PARTIAL, result.output
    assert "connection check failed" in result.stderr
    assert "401" in result.stderr or "credentials" in result.stderr
