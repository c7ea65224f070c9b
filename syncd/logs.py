"""Structured logging: JSON lines for journald and pipes, readable output on a terminal.

Every record, whether from structlog or from a dependency's stdlib logger, goes through the
same processor chain, which ends with :func:`redact_secrets`: values under secret-looking
keys, ``Authorization``/``Bearer`` material, and every secret value registered with
:func:`register_secret` are replaced before anything is rendered.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

REDACTED = "***redacted***"
_SECRET_KEY_RE = re.compile(
    r"(secret|password|passwd|token|authorization|api[_-]?key|credential)", re.IGNORECASE
)
_BEARER_RE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_AUTH_HEADER_RE = re.compile(
    r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}\s]+(\s+[^'\",}\s]+)?"
)
_URL_PASSWORD_RE = re.compile(r"(://[^:/@\s]+:)[^@/\s]+@")

_registered: set[str] = set()
# The stream configure_logging last rendered JSON to: notices written to that same stream
# become JSON records too, so a journal or a pipe reads one format (see notice()).
_json_stream: TextIO | None = None
# Text the operator gave syncd (a file's path): printed as given even when a registered
# secret happens to occur in it, because mangling the name of the file an error is about
# hides the one thing the message must say, and the operator already holds that text.
_verbatim: set[str] = set()


def register_secret(value: str | None) -> None:
    """Make ``value`` unprintable: any log line containing it gets it replaced."""
    if value and len(value) >= 4:
        _registered.add(value)


def keep_verbatim(value: str | None) -> None:
    """Never redact inside ``value``: a file path the operator passed on the command line or
    in the configuration (see ``_verbatim``)."""
    if value:
        _verbatim.add(value)


def forget_secrets() -> None:
    """Testing hook: drop the registered secret values (and the verbatim texts)."""
    _registered.clear()
    _verbatim.clear()


def scrub(text: str) -> str:
    """Remove registered secrets, bearer/basic credentials and URL passwords from text;
    texts registered with :func:`keep_verbatim` are left as they are."""
    kept = [v for v in _verbatim if v in text and any(s in v for s in _registered)]
    if not kept:
        return _scrub(text)
    pieces = re.split(
        "(" + "|".join(re.escape(v) for v in sorted(kept, key=len, reverse=True)) + ")", text
    )
    return "".join(piece if i % 2 else _scrub(piece) for i, piece in enumerate(pieces))


def _scrub(text: str) -> str:
    for secret in sorted(_registered, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _AUTH_HEADER_RE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    return _URL_PASSWORD_RE.sub(lambda m: m.group(1) + REDACTED + "@", text)


def _scrub_value(key: str | None, value: Any, depth: int = 0) -> Any:
    if (
        key is not None
        and _SECRET_KEY_RE.search(key)
        and value not in (None, "", 0)
        and not key.endswith(("_count", "_file", "_expires_in", "_at"))
    ):
        return REDACTED
    if isinstance(value, str):
        return scrub(value)
    if depth > 6:
        return value
    if isinstance(value, MutableMapping):
        return {k: _scrub_value(str(k), v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub_value(None, v, depth + 1) for v in value)
    if isinstance(value, BaseException):
        return scrub(f"{type(value).__name__}: {value}")
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: the last line of defence for invariant 8 (secrets never leave)."""
    event_dict.pop("color_message", None)  # uvicorn's duplicate of the message, with ANSI codes
    for key in list(event_dict):
        event_dict[key] = _scrub_value(key if key != "event" else None, event_dict[key])
    return event_dict


def _scrub_rendered(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Scrub tracebacks rendered by format_exc_info (they can quote local values)."""
    exc = event_dict.get("exception")
    if isinstance(exc, str):
        event_dict["exception"] = scrub(exc)
    return event_dict


LogFormat = Literal["auto", "json", "console"]


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),
        redact_secrets,
    ]


def configure_logging(
    *,
    level: str = "info",
    fmt: LogFormat = "auto",
    stream: TextIO | None = None,
    secrets: Iterable[str] = (),
) -> None:
    """Route structlog and stdlib logging through one redacting pipeline to ``stream``.

    ``auto`` renders JSON unless ``stream`` is a terminal; JSON output never has colour codes.
    """
    out = stream if stream is not None else sys.stderr
    for secret in secrets:
        register_secret(secret)
    use_json = fmt == "json" or (fmt == "auto" and not _isatty(out))
    global _json_stream
    _json_stream = out if use_json else None
    renderer: Processor
    if use_json:
        renderer = structlog.processors.JSONRenderer(sort_keys=False)
        final: list[Processor] = [
            structlog.processors.format_exc_info,
            _scrub_rendered,
            structlog.processors.EventRenamer("event"),
        ]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=_isatty(out))
        final = []
    shared = _shared_processors()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *final,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Dependencies are chatty at INFO (every HTTP request); keep them at WARNING.
    for noisy in ("httpx", "httpcore", "uvicorn.access", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


NoticeLevel = Literal["info", "warning", "error"]
_NOTICE_PREFIX: dict[NoticeLevel, str] = {
    "info": "",
    "warning": "syncd: warning: ",
    "error": "syncd: error: ",
}


def notice(text: str, level: NoticeLevel = "info") -> None:
    """Tell the operator something on stderr, whatever the log level, in the logs' format.

    Where the logs are JSON (stderr is not a terminal, or ``logging.format = "json"``) the
    notice is one JSON record (``event`` ``cli.notice``, ``cli.warning`` or ``cli.error``,
    the text under ``message``), so human text never interleaves with JSON lines; elsewhere
    it is the plain line, prefixed ``syncd: error:`` or ``syncd: warning:`` by its level.
    The text is scrubbed of secrets either way.
    """
    out = sys.stderr
    text = scrub(text)
    if _json_stream is not None and out is _json_stream:
        record = {  # the key order of the log lines around it
            "message": text,
            "level": level,
            "logger": "syncd.cli",
            "timestamp": _STAMPER(None, "", {})["timestamp"],
            "event": "cli.notice" if level == "info" else f"cli.{level}",
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        out.write(_NOTICE_PREFIX[level] + text + "\n")
    out.flush()


_STAMPER = structlog.processors.TimeStamper(fmt="iso", utc=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
