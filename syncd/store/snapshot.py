"""``remote_snapshot``: what a full reconcile listed from Genesys, streamed page by page.

The listing never lives in a Python dict: each page is written as it arrives and the diff
reads it back by key, batch by batch. A dry run must change no state, so it streams into a
scratch SQLite file instead (:func:`scratch_snapshot`), with the same table and queries.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from syncd.store.db import Database, open_database
from syncd.store.schema import remote_snapshot

_t = remote_snapshot.c


@dataclass(frozen=True, slots=True)
class SnapshotRow:
    genesys_id: str
    external_id: str | None
    content: dict[str, Any]
    content_hash: str


def _chunks(items: Sequence[Any], size: int = 500) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _row(r: sa.Row[Any]) -> SnapshotRow:
    m = r._mapping
    return SnapshotRow(m["genesys_id"], m["external_id"], m["content"], m["content_hash"])


class Snapshot:
    """The snapshot table in ``db`` (the main database, or a scratch one for dry runs)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def clear(self) -> None:
        with self.db.write() as conn:
            conn.execute(sa.delete(remote_snapshot))

    def add_page(self, run_id: int, rows: Sequence[SnapshotRow]) -> None:
        """Store one listing page; a contact listed twice (pages shift) is stored once."""
        if not rows:
            return
        unique = {r.genesys_id: r for r in rows}
        with self.db.write() as conn:
            conn.execute(sa.delete(remote_snapshot).where(_t.genesys_id.in_(list(unique))))
            conn.execute(
                sa.insert(remote_snapshot),
                [
                    {
                        "genesys_id": r.genesys_id,
                        "external_id": r.external_id,
                        "content": r.content,
                        "content_hash": r.content_hash,
                        "run_id": run_id,
                    }
                    for r in unique.values()
                ],
            )

    def by_external_ids(self, external_ids: Sequence[str]) -> dict[str, list[SnapshotRow]]:
        found: dict[str, list[SnapshotRow]] = {}
        with self.db.read() as conn:
            for chunk in _chunks(list(external_ids)):
                q = sa.select(remote_snapshot).where(_t.external_id.in_(chunk))
                for r in conn.execute(q.order_by(_t.genesys_id)):
                    row = _row(r)
                    assert row.external_id is not None
                    found.setdefault(row.external_id, []).append(row)
        return found

    def by_genesys_ids(self, genesys_ids: Sequence[str]) -> dict[str, SnapshotRow]:
        found: dict[str, SnapshotRow] = {}
        with self.db.read() as conn:
            for chunk in _chunks(list(genesys_ids)):
                for r in conn.execute(sa.select(remote_snapshot).where(_t.genesys_id.in_(chunk))):
                    row = _row(r)
                    found[row.genesys_id] = row
        return found

    def external_id_keys(self, *, after: str | None = None, limit: int = 500) -> list[str]:
        """A keyset page of the distinct non-empty externalIds listed."""
        q = sa.select(_t.external_id).distinct().where(_t.external_id.is_not(None))
        q = q.where(_t.external_id != "")
        if after is not None:
            q = q.where(_t.external_id > after)
        with self.db.read() as conn:
            return [r[0] for r in conn.execute(q.order_by(_t.external_id).limit(limit))]

    def without_external_id(
        self, *, after: str | None = None, limit: int = 500
    ) -> list[SnapshotRow]:
        """Listed contacts that carry no externalId at all (keyset by genesys_id)."""
        q = sa.select(remote_snapshot).where(sa.or_(_t.external_id.is_(None), _t.external_id == ""))
        if after is not None:
            q = q.where(_t.genesys_id > after)
        with self.db.read() as conn:
            return [_row(r) for r in conn.execute(q.order_by(_t.genesys_id).limit(limit))]

    def count(self) -> int:
        with self.db.read() as conn:
            q = sa.select(sa.func.count()).select_from(remote_snapshot)
            return int(conn.execute(q).scalar_one())


@contextmanager
def scratch_snapshot() -> Iterator[Snapshot]:
    """A snapshot in a throw-away SQLite file (dry runs: the main database stays untouched)."""
    with tempfile.TemporaryDirectory(prefix="syncd-dry-run-") as tmp:
        db = open_database(f"sqlite:///{Path(tmp) / 'snapshot.db'}")
        try:
            remote_snapshot.create(db.engine)
            yield Snapshot(db)
        finally:
            db.dispose()
