"""The delete guard (invariant 4): an empty or shrunken source is a fault, not an instruction.

The verdict is taken once per run, before any delete is sent, from counts the store computes
in SQL: how many linked contacts the run would delete, how many syncd holds in Genesys, and
whether the mirror still has any live row. Held deletes are recorded, never sent, until an
operator passes ``--allow-mass-delete`` on a manual run.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.logs import get_logger
from syncd.store import changes, links
from syncd.store.db import Database

log = get_logger("syncd.sync")


@dataclass(frozen=True, slots=True)
class DeleteLimits:
    max_count: int
    max_percent: float


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    reason: str | None = None


ALLOWED = Verdict(True)


def check_deletes(
    planned: int,
    linked: int,
    *,
    live_mirror: bool,
    limits: DeleteLimits,
    allow_mass_delete: bool = False,
) -> Verdict:
    """Whether ``planned`` deletes out of ``linked`` contacts may go ahead."""
    if planned <= 0:
        return ALLOWED
    if allow_mass_delete:
        return Verdict(True, "released by --allow-mass-delete")
    if not live_mirror and linked > 0:
        return Verdict(
            False,
            f"the mirror has no live contact while {linked} are linked: "
            f"refusing to delete {planned}",
        )
    if planned > limits.max_count:
        return Verdict(
            False, f"{planned} deletes exceed sync.max_delete_count ({limits.max_count})"
        )
    percent = 100.0 * planned / linked if linked else 100.0
    if percent > limits.max_percent:
        return Verdict(
            False,
            f"{planned} deletes are {percent:.1f}% of {linked} linked contacts, above "
            f"sync.max_delete_percent ({limits.max_percent:g}%)",
        )
    return ALLOWED


def run_verdict(
    db: Database,
    kind: str,
    limits: DeleteLimits,
    *,
    allow_mass_delete: bool = False,
    targeted: int = 0,
) -> Verdict:
    """A run's verdict: its planned deletes counted in SQL (a full run: links without a
    live mirror row; a targeted run: ``targeted``; incremental: the change log's deletes
    and the held rows)."""
    with db.read() as conn:
        if kind == "full":
            planned = links.count_linked_without_live_mirror(conn)
        elif kind == "targeted":
            planned = targeted
        else:
            planned = changes.count_change_deletes(conn) + links.count_in_state(conn, "held")
        if planned == 0:
            return ALLOWED
        linked = links.count_linked(conn)
        live = changes.live_mirror_exists(conn)
    verdict = check_deletes(
        planned, linked, live_mirror=live, limits=limits, allow_mass_delete=allow_mass_delete
    )
    if not verdict.allowed:
        log.warning("sync.guard.held", planned=planned, linked=linked, reason=verdict.reason)
    return verdict
