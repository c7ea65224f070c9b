"""The delete guard (invariant 4): an empty or shrunken source is a fault, not an instruction.

The verdict is taken once per run, before any delete is sent, from counts the store computes
in SQL: how many linked contacts the run would delete, how many syncd holds in Genesys, and
whether the mirror still has any live row. Held deletes are recorded, never sent, until an
operator passes ``--allow-mass-delete`` on a manual run.
"""

from __future__ import annotations

from dataclasses import dataclass


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
