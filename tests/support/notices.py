"""Read the operator notices out of a command's stderr, whichever format the logs used.

A CLI command whose stderr is not a terminal writes its notices as JSON records (see
``syncd.logs.notice``); :func:`plain` turns each such record back into the line a terminal
shows, so a test can check the words without caring which format was chosen.
"""

from __future__ import annotations

import json

_PREFIX = {"cli.notice": "", "cli.warning": "syncd: warning: ", "cli.error": "syncd: error: "}


def plain(stderr: str) -> str:
    """``stderr`` with every JSON notice record replaced by its plain text; other lines kept."""
    lines = []
    for line in stderr.splitlines():
        record = _json_record(line)
        if record is not None and record.get("event") in _PREFIX:
            lines.append(_PREFIX[record["event"]] + str(record["message"]))
        else:
            lines.append(line)
    return "\n".join(lines) + ("\n" if stderr.endswith("\n") else "")


def _json_record(line: str) -> dict[str, object] | None:
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None
