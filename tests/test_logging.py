"""Logging: JSON off a terminal, stdlib loggers through the same pipeline, secrets redacted."""

from __future__ import annotations

import io
import json
import logging

import pytest

from syncd.logs import configure_logging, get_logger, scrub

SECRET = "s3cr3t-client-value"
TOKEN = "eyJhbGciOi.JIUzI1NiJ9.payload-token"


@pytest.fixture
def stream() -> io.StringIO:
    out = io.StringIO()
    configure_logging(level="debug", fmt="auto", stream=out, secrets=[SECRET])
    return out


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_when_not_a_terminal(stream: io.StringIO) -> None:
    get_logger("syncd.test").info("sync.run.finished", run_id=7, created=3)
    (line,) = _lines(stream)
    assert line["event"] == "sync.run.finished"
    assert line["run_id"] == 7
    assert line["level"] == "info"
    assert "\x1b[" not in stream.getvalue()


def test_stdlib_loggers_use_the_same_pipeline(stream: io.StringIO) -> None:
    logging.getLogger("some.dependency").warning("connection to %s failed", "db")
    (line,) = _lines(stream)
    assert line["event"] == "connection to db failed"
    assert line["logger"] == "some.dependency"


def test_secrets_redacted_everywhere(stream: io.StringIO) -> None:
    log = get_logger("syncd.test")
    log.info("genesys.request", headers={"Authorization": f"Bearer {TOKEN}"}, detail=SECRET)
    log.info("genesys.token", access_token=TOKEN, client_secret=SECRET)
    log.info(f"free text with Bearer {TOKEN} and {SECRET}")
    logging.getLogger("httpx").error("Authorization: Bearer %s", TOKEN)
    try:
        raise RuntimeError(f"boom {SECRET}")
    except RuntimeError:
        log.exception("sync.run.crashed")
    text = stream.getvalue()
    assert SECRET not in text
    assert TOKEN not in text
    assert text.count("***redacted***") >= 6


def test_scrub_urls_and_basic_auth() -> None:
    assert "hunter2" not in scrub("postgresql://syncd:hunter2@db/syncd")
    assert "dXNlcjpwYXNz" not in scrub("Authorization: Basic dXNlcjpwYXNz")


def test_console_format_is_readable() -> None:
    out = io.StringIO()
    configure_logging(level="info", fmt="console", stream=out)
    get_logger("syncd.test").info("daemon.started", pid=1)
    text = out.getvalue()
    assert "daemon.started" in text
    assert not text.lstrip().startswith("{")
    assert "\x1b[" not in text  # no colour codes when the stream is not a terminal
