"""The CRM side of the chaos: contacts generated from a seed, and a writer that keeps editing.

The writer is what an ETL job and an operator do to the mirror while the daemon runs: plain
SQL on ``crm_contacts`` (updates, formatting-only rewrites, tombstones, revivals, hard deletes,
inserts) and `syncd mirror import` of JSON Lines files, now and then as a ``--snapshot`` that
tombstones what it leaves out. Every value it writes is valid, so at the end the mirror
says exactly what Genesys must hold. It is the only writer of ``crm_contacts`` in a test.
"""

from __future__ import annotations

import json
import random
import threading
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from syncd.store.db import Database
from syncd.store.schema import crm_contacts

FIRST = ["Ada", "Grace", "Alan", "José", "Zoë", "Chloé", "Søren", "Mary", "Linus", "Ines"]
LAST = ["Lovelace", "Hopper", "Turing", "García", "Nuñez", "Brontë", "Kierkegaard", "Curie"]
AREAS = ["202", "312", "415", "617", "718"]
# Enough organizations that some of their record creates (externalcontacts) meet the faults.
ORGS = [
    *((f"ORG-{n}", f"{name} {n}") for n, name in enumerate(["Acme", "Globex", "Initech"] * 12)),
    *([None] * 18),
]


def external_id(i: int) -> str:
    return f"CRM-{i:06}"


def phone(rng: random.Random) -> str:
    """A valid number, written the way a CRM might write it (formatting is normalized)."""
    area, line = rng.choice(AREAS), rng.randrange(100, 200)
    style = rng.randrange(4)
    if style == 0:
        return f"+1 {area} 555 {line:04}"
    if style == 1:
        return f"({area}) 555-{line:04}"
    if style == 2:
        return f"{area}.555.{line:04}"
    return f"+44 20 7946 {rng.randrange(0, 1000):04}"


def contact(rng: random.Random, ext: str) -> dict[str, Any]:
    """Mirror row values (``crm_contacts`` columns) for ``ext``."""
    first, last = rng.choice(FIRST), rng.choice(LAST)
    if rng.random() < 0.1:
        first = unicodedata.normalize("NFD", first)  # NFC is the canonical form
    phones: list[dict[str, str]] = []
    for kind in rng.sample(["WORK", "MOBILE", "HOME"], rng.randrange(0, 3)):
        phones.append({"number": phone(rng), "type": kind})
    org = rng.choice(ORGS)
    return {
        "external_id": ext,
        "first_name": first,
        "last_name": f"{last}-{rng.randrange(1000)}",
        "email": f"{first[:1].lower()}.{ext.lower()}.{rng.randrange(100)}@example.com",
        "phone_numbers": phones,
        "organization_id": org[0] if org else None,
        "organization_name": org[1] if org else None,
        "deleted": False,
    }


def reformatted(row: dict[str, Any]) -> dict[str, Any]:
    """The same contact written differently (canonical form equal: costs no API call)."""
    out = dict(row)
    if out.get("email"):
        out["email"] = f"  {str(out['email']).upper()} "
    out["first_name"] = f" {out['first_name']} "
    return out


def jsonl_line(row: dict[str, Any]) -> str:
    """A mirror row in the import's JSON Lines shape (the reference API's contact)."""
    doc: dict[str, Any] = {
        "externalId": row["external_id"],
        "firstName": row["first_name"],
        "lastName": row["last_name"],
        "email": row["email"],
        "phoneNumbers": row["phone_numbers"],
    }
    if row.get("organization_id") or row.get("organization_name"):
        doc["externalOrganization"] = {
            "id": row.get("organization_id"),
            "name": row.get("organization_name"),
        }
    return json.dumps(doc, ensure_ascii=False)


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(jsonl_line(r) + "\n" for r in rows), encoding="utf-8")
    return path


class MirrorWriter(threading.Thread):
    """Edits the mirror every ``every`` seconds until stopped (or ``max_ops`` edits).

    ``live`` holds the rows it knows to be live (it is the only writer, so its knowledge is
    exact). ``run_import(path, snapshot)`` runs `syncd mirror import` and returns its exit
    code. An exception ends the thread and is kept in ``error`` for the test to raise.
    """

    def __init__(
        self,
        db: Database,
        rng: random.Random,
        live: dict[str, dict[str, Any]],
        next_id: int,
        *,
        every: float,
        import_every: int,
        run_import: Callable[[Path, bool], int],
        tmp: Path,
        max_ops: int = 1_000_000,
    ) -> None:
        super().__init__(name="mirror-writer", daemon=True)
        self.db, self.rng, self.live = db, rng, live
        self.tombstoned: set[str] = set()
        self.gone: set[str] = set()
        self.next_id = next_id
        self.every, self.import_every = every, import_every
        self.run_import, self.tmp, self.max_ops = run_import, tmp, max_ops
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self.counts: dict[str, int] = {}
        self.imports = 0

    def stop(self, timeout: float = 120) -> None:
        self.stop_event.set()
        self.join(timeout)
        if self.is_alive():
            raise AssertionError("the mirror writer did not stop")
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        try:
            for n in range(1, self.max_ops + 1):
                if self.stop_event.wait(self.every):
                    return
                if n % self.import_every == 0:
                    self._import(snapshot=self.imports % 3 == 2)
                else:
                    self._edit()
        except BaseException as exc:
            self.error = exc

    def _count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def _new_id(self) -> str:
        ext = external_id(self.next_id)
        self.next_id += 1
        return ext

    def _edit(self) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.40 and self.live:
            self._update()
        elif roll < 0.50 and self.live:
            ext = rng.choice(sorted(self.live))
            self._sql_update(ext, reformatted(self.live[ext]))
            self._count("reformat")
        elif roll < 0.62 and self.live:
            ext = rng.choice(sorted(self.live))
            self._sql_update(ext, {"deleted": True})
            del self.live[ext]
            self.tombstoned.add(ext)
            self._count("tombstone")
        elif roll < 0.70 and self.tombstoned:
            ext = rng.choice(sorted(self.tombstoned))
            row = contact(rng, ext)
            self._sql_update(ext, row)
            self.tombstoned.discard(ext)
            self.live[ext] = row
            self._count("revive")
        elif roll < 0.76 and self.live:
            ext = rng.choice(sorted(self.live))
            with self.db.write() as conn:
                conn.execute(sa.delete(crm_contacts).where(crm_contacts.c.external_id == ext))
            del self.live[ext]
            self.gone.add(ext)
            self._count("hard_delete")
        else:
            ext = rng.choice(sorted(self.gone)) if self.gone and rng.random() < 0.3 else None
            ext = ext or self._new_id()
            row = contact(rng, ext)
            with self.db.write() as conn:
                conn.execute(sa.insert(crm_contacts).values(**row))
            self.gone.discard(ext)
            self.live[ext] = row
            self._count("insert")

    def _update(self) -> None:
        ext = self.rng.choice(sorted(self.live))
        fresh = contact(self.rng, ext)
        keys = self.rng.sample(
            ["first_name", "last_name", "email", "phone_numbers", "organization_id"],
            self.rng.randrange(1, 4),
        )
        change = {k: fresh[k] for k in keys}
        if "organization_id" in change:
            change["organization_name"] = fresh["organization_name"]
        self._sql_update(ext, change)
        self.live[ext] = {**self.live[ext], **change}
        self._count("update")

    def _sql_update(self, ext: str, values: dict[str, Any]) -> None:
        values = {k: v for k, v in values.items() if k != "external_id"}
        with self.db.write() as conn:
            conn.execute(
                sa.update(crm_contacts).where(crm_contacts.c.external_id == ext).values(**values)
            )

    def _import(self, *, snapshot: bool) -> None:
        """`syncd mirror import`: some rows changed, some new; a snapshot also tombstones."""
        rng = self.rng
        self.imports += 1
        rows: dict[str, dict[str, Any]]
        if snapshot:
            keep = sorted(self.live)
            dropped = set(rng.sample(keep, min(len(keep) // 50 + 1, len(keep))))
            rows = {e: self.live[e] for e in keep if e not in dropped}
        else:
            rows = {}
            dropped = set()
        for ext in rng.sample(sorted(self.live), min(20, len(self.live))):
            if ext not in dropped:
                rows[ext] = {**self.live[ext], **{"last_name": f"Imported-{rng.randrange(10**6)}"}}
        for _ in range(10):
            ext = self._new_id()
            rows[ext] = contact(rng, ext)
        path = write_jsonl(self.tmp / f"import-{self.imports:03}.jsonl", list(rows.values()))
        code = self.run_import(path, snapshot)
        if code != 0:
            raise AssertionError(f"syncd mirror import {path.name} exited {code}")
        for ext, row in rows.items():
            self.live[ext] = row
            self.tombstoned.discard(ext)
            self.gone.discard(ext)
        for ext in dropped:
            del self.live[ext]
            self.tombstoned.add(ext)
        self._count("snapshot_import" if snapshot else "import")
