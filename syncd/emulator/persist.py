"""Saving and loading the store as one JSON file, atomically.

The file is written beside its destination, flushed to disk, then renamed over it, so a
crash leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from syncd.errors import UserError

FORMAT = "syncd-emulator/1"


class PersistError(UserError):
    """The persisted store cannot be read (the operator must fix or remove the file)."""


def save(
    path: Path,
    *,
    profile: str,
    saved_at: str,
    contacts: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> None:
    """``extra``: more top-level keys a profile keeps (e.g. its external sources)."""
    payload = {
        **(extra or {}),
        "format": FORMAT,
        "profile": profile,
        "saved_at": saved_at,
        "contacts": contacts,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, ensure_ascii=False, separators=(",", ":"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load(path: Path, *, profile: str, extra: dict[str, Any] | None = None) -> list[Any]:
    """The contact documents saved at ``path`` (empty when the file does not exist).

    The file's other top-level keys are copied into ``extra`` when given.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise PersistError(f"cannot read the emulator store {path}: {exc}") from exc
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise PersistError(f"the emulator store {path} is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise PersistError(f"{path} is not a syncd emulator store (format {FORMAT})")
    if payload.get("profile") != profile:
        raise PersistError(
            f"{path} holds {payload.get('profile')!r} contacts, not {profile!r} contacts"
        )
    contacts = payload.get("contacts")
    if not isinstance(contacts, list):
        raise PersistError(f"{path} has no contacts list")
    if extra is not None:
        extra.update(
            (k, v)
            for k, v in payload.items()
            if k not in ("format", "profile", "saved_at", "contacts")
        )
    return contacts
