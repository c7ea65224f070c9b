"""Configuration: every documented example loads, every kind of mistake names its key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from syncd.cli import cli
from syncd.config import load_settings, parse_duration
from syncd.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config.example.toml"
SECRET = "zz-very-secret-value-42"
BASE = "[genesys]\nclient_id = 'x'\nclient_secret = 's'\n"

MINIMAL = """
[genesys]
client_id = "cid"
client_secret = "{secret}"
"""


def write(tmp_path: Path, text: str, name: str = "config.toml", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text))
    return info.value.problems


def _commented_examples() -> list[tuple[int, str]]:
    """Each commented-out `key = value` line of the example, with its line index."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    return [(i, line) for i, line in enumerate(lines) if re.match(r"^# [a-z_]+ = \S", line)]


def test_example_file_loads_as_is() -> None:
    settings = load_settings(EXAMPLE)
    assert settings.genesys.client_id
    assert settings.sync.incremental_every.total_seconds() == 60
    assert settings.genesys.effective_api_url == "https://api.mypurecloud.com/api/v2"


@pytest.mark.parametrize(("index", "line"), _commented_examples(), ids=lambda v: str(v))
def test_every_commented_example_loads(tmp_path: Path, index: int, line: str) -> None:
    """Uncomment one alternative at a time (replacing the active key) and load the file."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    key = line[2:].split("=", 1)[0].strip()
    # Find the section of this line, and drop the active assignment of the same key there.
    section_start = max(i for i in range(index + 1) if lines[i].startswith("["))
    section_end = next(
        (i for i in range(index + 1, len(lines)) if lines[i].startswith("[")), len(lines)
    )
    for i in range(section_start, section_end):
        if re.match(rf"^{key}\s*=", lines[i]):
            lines[i] = ""
    if key == "client_secret_file":
        # The example names a systemd credential; give it one.
        creds = tmp_path / "creds"
        creds.mkdir()
        (creds / "client_secret").write_text(SECRET + "\n")
        os.environ["CREDENTIALS_DIRECTORY"] = str(creds)
        lines = [ln for ln in lines if not ln.startswith("client_secret =")]
    lines[index] = line[2:]
    path = write(tmp_path, "\n".join(lines))
    settings = load_settings(path)
    assert settings.genesys.client_secret is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[genesys]\nclient_id = 'x'\nclient_secret = 's'\nrequests_per_minute = 'lots'",
            "genesys.requests_per_minute",
        ),
        (
            "[genesys]\nclient_id = 'x'\nclient_secret = 's'\nmax_inflight = 3",
            "genesys.max_inflight: unknown key; allowed keys here: profile",
        ),
        ("[genesys]\nclient_secret = 's'", "genesys.client_id: required key is missing"),
        ("[genesys]\nclient_id = '  '\nclient_secret = 's'", "genesys.client_id"),
        (
            "[genesys]\nclient_id = 'x'\nclient_secret = 's'\n[sync]\nincremental_every = 'soon'",
            "sync.incremental_every: must be a duration",
        ),
        (
            "[genesys]\nclient_id = 'x'\nclient_secret = 's'\n[sync]\nincremental_every = '-5s'",
            "sync.incremental_every",
        ),
        (
            BASE + "[sync]\nfull_reconcile_cron = '61 3 * * *'",
            "sync.full_reconcile_cron: is not a valid crontab expression",
        ),
        (
            BASE + "[sync]\nfull_reconcile_cron = '0 3 * *'",
            "sync.full_reconcile_cron: must be a five-field crontab expression",
        ),
        (
            "[genesys]\nclient_id = 'x'\nclient_secret = 's'\nregion = 'mars_north_1'",
            "genesys.region: unknown region 'mars_north_1'; allowed: us_east_1",
        ),
        ("[genesys]\nclient_id = 'x'\nclient_secret = 's'\nprofile = 'soap'", "genesys.profile"),
        (
            "[genesys]\nclient_id = 'x'\nclient_secret = 's'\napi_url = 'http://api.example.com'",
            "genesys.api_url: refusing plain http:// to 'api.example.com'",
        ),
        (
            "[genesys]\nclient_id = 'x'\nclient_secret = 's'\n[database]\nurl = 'mysql://x/y'",
            "database.url: must be a sqlite:/// or postgresql+psycopg:// URL",
        ),
        (
            "[genesys]\nclient_id = 'x'\nclient_secret = 's'\n[logging]\nformat = 'xml'",
            "logging.format",
        ),
        (
            "[genesys]\nclient_id = 'x'\nclient_secret = 's'\n[sink]\nx = 1",
            "sink: unknown key; allowed keys here: database, genesys, sync, logging",
        ),
        ("[genesys]\nclient_id = 'x'", "genesys.client_secret: no client secret"),
        (
            "[genesys]\nclient_id = 'x'\nclient_secret = 's'\nclient_secret_file = '/x'",
            "set either client_secret or client_secret_file, not both",
        ),
    ],
)
def test_each_mistake_names_its_key(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(expected in p for p in found), found


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        "[genesys]\nclient_id = 'x'\nclient_secret = 's'\nrequests_per_minute = 0\n"
        "bogus = 1\n[sync]\nincremental_every = 'x'\nfull_reconcile_cron = 'nope'\n",
    )
    assert len(found) == 4, found


def test_syntax_error_and_missing_file_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_settings(write(tmp_path, "[genesys\n"))
    with pytest.raises(ConfigError, match="configuration file not found"):
        load_settings(tmp_path / "absent.toml")


def test_lookup_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = write(tmp_path, MINIMAL.format(secret="a").replace("cid", "from-env"), "a.toml")
    monkeypatch.setenv("SYNCD_CONFIG", str(a))
    assert load_settings().genesys.client_id == "from-env"
    b = write(tmp_path, MINIMAL.format(secret="b").replace("cid", "explicit"), "b.toml")
    assert load_settings(b).genesys.client_id == "explicit"


def test_region_fills_both_urls(tmp_path: Path) -> None:
    text = MINIMAL.format(secret="s").replace(
        'client_id = "cid"', 'client_id = "c"\nregion = "eu_central_1"'
    )
    s = load_settings(write(tmp_path, text))
    assert s.genesys.effective_api_url == "https://api.mypurecloud.de/api/v2"
    assert s.genesys.effective_login_url == "https://login.mypurecloud.de"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("60s", 60), ("5m", 300), ("2h", 7200), ("1d", 86400), (90, 90), ("250ms", 0.25)],
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value).total_seconds() == seconds


def _run_check(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, args, env=env, catch_exceptions=False)
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


@pytest.mark.parametrize("how", ["inline", "env", "file"])
def test_secret_never_printed(tmp_path: Path, how: str, capfd: pytest.CaptureFixture[str]) -> None:
    """A secret given in any of the three ways never appears in `config check` or logs."""
    env: dict[str, str] = {}
    if how == "inline":
        text = MINIMAL.format(secret=SECRET)
    elif how == "env":
        text = "[genesys]\nclient_id = 'cid'\n"
        env["SYNCD_GENESYS_CLIENT_SECRET"] = SECRET
    else:
        secret_file = tmp_path / "secret"
        secret_file.write_text(SECRET)
        secret_file.chmod(0o600)
        text = f"[genesys]\nclient_id = 'cid'\nclient_secret_file = '{secret_file}'\n"
    path = write(tmp_path, text)
    for fmt in ("toml", "json"):
        code, out = _run_check(
            ["--config", str(path), "--log-level", "debug", "config", "check", "--format", fmt],
            env,
        )
        assert code == 0, out
        assert SECRET not in out
        assert "redacted" in out
        if fmt == "json":
            assert json.loads(out.split("\n# configuration OK")[0])["genesys"]["client_id"] == "cid"
    captured = capfd.readouterr()
    assert SECRET not in captured.out + captured.err


def test_secret_readable_by_others_warns(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, MINIMAL.format(secret=SECRET), mode=0o644)
    code, out = _run_check(["--config", str(path), "--log-format", "json", "config", "check"])
    assert code == 0
    err = capfd.readouterr().err + out
    assert "config.secret_readable_by_others" in err
    assert "chmod 600" in err
    assert SECRET not in err


def test_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    """Through the real entry point: one message per problem, exit 2, no traceback."""
    path = write(
        tmp_path,
        "[genesys]\nclient_id = 'x'\nclient_secret = 's'\nregion = 'nowhere'\nbogus = 1\n",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(path), "config", "check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("syncd: error: invalid configuration in")
    assert "genesys.region: unknown region 'nowhere'" in proc.stderr
    assert "genesys.bogus: unknown key" in proc.stderr
