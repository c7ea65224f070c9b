"""Hypothesis state machine: CRM edits, hand edits in Genesys, faults, crashes and runs, in any
order. After a fault-free full reconcile: Genesys equals the mirror, no externalId appears
twice, and every write the emulator applied has a ledger row (invariants 1, 2, 3 and 5)."""

from __future__ import annotations

import contextlib
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from syncd.emulator import EmulatorConfig
from syncd.store import migrate
from syncd.store.db import open_database
from syncd.sync.canonical import RawContact, RejectedRow, content_hash, normalize
from tests.support.emulator import CLIENT_ID, CLIENT_SECRET, emulator_app
from tests.sync.conftest import (
    PROFILES,
    CrashAt,
    CrashError,
    Harness,
    person,
)

POOL = [f"SM-{i}" for i in range(8)]
NAMES = ["Ada", "Grace", "  Ada ", "Zoë", "Zoe\u0308", "Alan"]
OPS = ["create", "update", "delete", "recreate", "drift"]


def _desired(row: dict[str, Any]) -> str | None:
    """The canonical hash the mirror row asks for (None: nothing can be sent)."""
    try:
        contact = normalize(
            RawContact(
                external_id=row["external_id"],
                first_name=row["first_name"],
                last_name=row["last_name"],
                email=row["email"],
                phone_numbers=tuple((p["number"], p["type"]) for p in row["phone_numbers"]),
            )
        )
    except RejectedRow:
        return None
    return content_hash(contact)


def _remote_hash(doc: dict[str, Any]) -> str:
    from syncd.model import Contact, Phone
    from syncd.sync.canonical import normalize_remote

    contact = normalize_remote(
        Contact(
            external_id=doc.get("externalId") or "",
            first_name=doc.get("firstName"),
            last_name=doc.get("lastName"),
            email=doc.get("email"),
            phone_numbers=tuple(
                Phone(p["number"], p.get("type") or "WORK") for p in doc.get("phoneNumbers") or ()
            ),
        )
    )
    return content_hash(contact)


class SyncMachine(RuleBasedStateMachine):
    template: Path  # a migrated empty SQLite database, copied for each example
    workdir: Path
    profile: str = "reference"

    def __init__(self) -> None:
        super().__init__()
        self.n = getattr(SyncMachine, "_n", 0) + 1
        SyncMachine._n = self.n  # type: ignore[attr-defined]
        path = self.workdir / f"sm-{self.n}.db"
        shutil.copy(self.template, path)
        self.db = open_database(f"sqlite:///{path}")
        app = emulator_app(
            EmulatorConfig(
                requests_per_minute=1_000_000,
                client_id=CLIENT_ID,
                client_secret=CLIENT_SECRET,
                profile=self.profile,
            )
        )
        self.h = Harness(self.db, app)
        self.mirror: dict[str, dict[str, Any]] = {}
        self.orphans = 0
        self.days = 0

    def teardown(self) -> None:
        self.db.dispose()

    @initialize(n=st.integers(2, 4))
    def seed(self, n: int) -> None:
        """Start from a synced org, so that every example edits, deletes and drifts."""
        for ext in POOL[:n]:
            self.crm_upsert(ext, "Ada", True)
        self.h.run()

    # -- the CRM -------------------------------------------------------------------------

    @rule(
        ext=st.sampled_from(POOL),
        first=st.sampled_from(NAMES),
        valid=st.sampled_from([True, True, True, False]),
    )
    def crm_upsert(self, ext: str, first: str, valid: bool) -> None:
        row = person(ext, first=first, last="Lovelace" if valid else None)
        self.h.upsert(row)
        self.mirror[ext] = row

    @rule(ext=st.sampled_from(POOL))
    def crm_tombstone(self, ext: str) -> None:
        if ext in self.mirror:
            self.h.tombstone(ext)
            self.mirror[ext] = {**self.mirror[ext], "deleted": True}

    @rule(ext=st.sampled_from(POOL))
    def crm_hard_delete(self, ext: str) -> None:
        self.h.remove_rows(ext)
        self.mirror.pop(ext, None)

    # -- a person in Genesys -----------------------------------------------------------------

    @precondition(lambda self: bool(self.h.remote()))
    @rule(pick=st.integers(0, 50), first=st.sampled_from(["Mallory", "Eve"]))
    def hand_edit(self, pick: int, first: str) -> None:
        remote = self.h.remote()
        self.h.hand_edit(remote[pick % len(remote)]["id"], first_name=first)

    @precondition(lambda self: bool(self.h.remote()))
    @rule(pick=st.integers(0, 50))
    def hand_delete(self, pick: int) -> None:
        remote = self.h.remote()
        self.h.hand_delete(remote[pick % len(remote)]["id"])

    @rule()
    def hand_create_orphan(self) -> None:
        self.orphans += 1
        self.h.hand_create(f"ORPHAN-{self.orphans}")

    # -- faults and runs ---------------------------------------------------------------

    @rule(
        error_rate=st.sampled_from([0.0, 0.3]),
        lost_ack_rate=st.sampled_from([0.0, 0.5, 1.0]),
        bulk_entity_error_rate=st.sampled_from([0.0, 0.0, 0.5]),
    )
    def faults(
        self, error_rate: float, lost_ack_rate: float, bulk_entity_error_rate: float
    ) -> None:
        """``bulk_entity_error_rate``: entities of a bulk request failing on their own
        (externalcontacts; the reference has no bulk endpoints)."""
        self.h.em.set_faults(
            error_rate=error_rate,
            lost_ack_rate=lost_ack_rate,
            bulk_entity_error_rate=bulk_entity_error_rate,
        )

    @rule(
        kind=st.sampled_from(["incremental", "incremental", "full"]),
        crash=st.none()
        | st.tuples(st.sampled_from(["after_intent", "after_write"]), st.sampled_from(OPS)),
    )
    def run(self, kind: str, crash: tuple[str, str] | None) -> None:
        hooks = CrashAt(crash[0], op=crash[1]) if crash else None
        with contextlib.suppress(CrashError):
            self.h.run(kind, hooks=hooks, clock=self._clock())

    def _clock(self) -> Any:
        at = datetime.now(UTC) + timedelta(days=self.days)
        return lambda: at

    # -- the invariants ---------------------------------------------------------------------

    @invariant()
    def syncd_never_deletes_what_is_not_ours(self) -> None:
        """Orphans (hand-made, externalIds unknown to the CRM) are never touched by syncd."""
        for write in self.h.syncd_writes():
            assert write["externalId"] in POOL, write

    @rule()
    def reconcile_and_check(self) -> None:
        self.h.em.set_faults(error_rate=0.0, lost_ack_rate=0.0, bulk_entity_error_rate=0.0)
        for _ in range(4):  # resolving a create that was never sent takes absent_checks runs
            self.days += 1
            report = self.h.run("full", clock=self._clock(), allow_mass_delete=True)
            unsettled = [
                link
                for link in self.h.links().values()
                if link["state"] != "synced" and link["rejected_hash"] is None
            ]
            if report.counts["failed"] == 0 and not unsettled:
                break
        self._check()

    def _check(self) -> None:
        remote = self.h.remote_by_ext()
        for ext, docs in remote.items():
            if ext in POOL:
                assert len(docs) == 1, f"{ext} appears {len(docs)} times in Genesys"
        for ext in POOL:
            row = self.mirror.get(ext)
            live = row is not None and not row["deleted"]
            wanted = _desired(row) if live and row else None
            if not live:
                assert ext not in remote, f"{ext} is gone from the CRM but still in Genesys"
            elif wanted is not None:
                assert ext in remote, f"{ext} is missing from Genesys"
                assert _remote_hash(remote[ext][0]) == wanted, f"{ext} differs"
        rows = self.h.ledger()
        ops = {
            "create": ("create", "recreate"),
            "update": ("update", "drift"),
            "replace": ("update", "drift"),  # bulk updates (externalcontacts)
            "delete": ("delete",),
        }
        for write in self.h.syncd_writes():
            assert any(
                r["op"] in ops[write["op"]] and r["genesys_id"] == write["id"] for r in rows
            ), f"no ledger row for {write}"
        assert [r for r in rows if r["outcome"] == "pending"] == []


@pytest.fixture
def machine_template(tmp_path: Path) -> Path:
    path = tmp_path / "template.db"
    db = open_database(f"sqlite:///{path}")
    migrate.upgrade(db)
    db.dispose()
    return path


@pytest.mark.parametrize("profile", PROFILES)
def test_sync_state_machine(machine_template: Path, tmp_path: Path, profile: str) -> None:
    SyncMachine.template = machine_template
    SyncMachine.workdir = tmp_path
    SyncMachine.profile = profile
    run_state_machine_as_test(
        SyncMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            derandomize=True,
        ),
    )
