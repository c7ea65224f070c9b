"""Operator notices and log lines share stderr in one format (issue 16).

A `syncd` process whose stderr is a pipe or the journal logs JSON; its notices (rejected
rows, warnings, the error line) must then be JSON records too, or a log shipper gets lines it
cannot parse and a reader gets prose wedged between records. On a console format every line
is for a human, notices without JSON around them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from syncd.exit_codes import ExitCode
from tests.support.cli import run_syncd

HEADER = (
    "externalId,firstName,lastName,email,workPhone,mobilePhone,homePhone,otherPhone,"
    "organizationId,organizationName"
)
ROWS = [
    "A1,Ada,L,ada@x.org,,,,,,",
    ",No,Id,,,,,,,",  # line 3: no externalId
    "A1,Ada,L,ada@y.org,,,,,,",  # line 4: a repeat
    "B2,Bo,B,not-an-email,,,,,,",  # line 5: a bad email
]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    db = tmp_path / "syncd.db"
    path.write_text(
        f'[database]\nurl = "sqlite:///{db}"\n[genesys]\nclient_id = "x"\n', encoding="utf-8"
    )
    assert _syncd(path, "db", "upgrade").returncode == 0
    (tmp_path / "crm.csv").write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    return path


def _syncd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_syncd(config, "--log-level", "info", *args, cwd=config.parent)


def _records(stderr: str) -> list[dict[str, Any]]:
    """Every stderr line as JSON; fails naming the first line that is not."""
    records = []
    for line in stderr.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a stderr line is not JSON: {line!r}\n--- stderr:\n{stderr}")
    return records


def test_a_piped_stderr_is_json_lines_notices_included(config: Path) -> None:
    proc = _syncd(config, "mirror", "import", "crm.csv")  # logging.format "auto", stderr a pipe
    assert proc.returncode == ExitCode.PARTIAL, proc.stderr
    records = _records(proc.stderr)
    events = [r["event"] for r in records]
    assert "mirror.import.started" in events
    assert "mirror.import.finished" in events
    notices = [
        (r["event"], r["level"], r["message"]) for r in records if r["logger"] == "syncd.cli"
    ]
    assert notices == [
        ("cli.notice", "info", "rejected: line 3: externalId: missing"),
        (
            "cli.warning",
            "warning",
            "line 4: externalId A1 already appeared on line 2; the last occurrence wins",
        ),
        (
            "cli.notice",
            "info",
            "rejected: line 5 (B2): email: 'not-an-email' is not a valid address",
        ),
    ]
    assert all(r["timestamp"].endswith("Z") for r in records)
    assert "rows read" in proc.stdout  # the report itself stays on stdout, for a human


def test_the_error_line_is_a_json_record_too(config: Path) -> None:
    proc = _syncd(config, "mirror", "import", "missing.csv")
    assert proc.returncode == ExitCode.USAGE
    (error,) = [r for r in _records(proc.stderr) if r["event"] == "cli.error"]
    assert error["level"] == "error"
    assert "missing.csv" in error["message"]


def test_a_console_format_prints_plain_lines_and_no_json(config: Path) -> None:
    proc = _syncd(config, "--log-format", "console", "mirror", "import", "crm.csv")
    assert proc.returncode == ExitCode.PARTIAL, proc.stderr
    lines = proc.stderr.splitlines()
    assert not [line for line in lines if line.startswith("{")], proc.stderr
    assert "rejected: line 3: externalId: missing" in lines
    assert (
        "syncd: warning: line 4: externalId A1 already appeared on line 2; the last occurrence "
        "wins" in lines
    )
    assert any("mirror.import.finished" in line for line in lines)
