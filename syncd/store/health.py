"""The health policy of `syncd status`: what a status report means for an operator.

:mod:`syncd.store.reports` says what *is* (daemons, runs, links); this module decides whether
that is healthy, degraded or down, and so the exit status a health check sees. Kept apart so
the policy can change without touching a query, and a query without touching the policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from syncd.exit_codes import ExitCode
from syncd.store.reports import StatusReport

__all__ = ["UNHEALTHY_LINK_STATES", "UNHEALTHY_RUN_STATUSES", "Health", "evaluate_health"]

UNHEALTHY_RUN_STATUSES = ("failed", "held")
"""A last run of a kind that ended so needs an operator."""
UNHEALTHY_LINK_STATES = ("failed", "held")
"""Contact links in these states need an operator."""
HELD_ADVICE = (
    "check them with `syncd ledger --outcome held`, then release them with "
    "`syncd sync --allow-mass-delete`"
)
PENDING_ADVICE = (
    "their outcome is unknown until a run resolves them (`syncd sync`); "
    "`syncd ledger --outcome pending` lists them"
)


def _seconds(value: float) -> str:
    minutes, seconds = divmod(round(value), 60)
    if not minutes:
        return f"{seconds}s"
    if minutes >= 60:
        hours, minutes = divmod(minutes, 60)
        return f"{hours}h{minutes:02}m"
    return f"{minutes}m{seconds:02}s" if seconds else f"{minutes}m"


@dataclass(frozen=True)
class Health:
    """The verdict of `syncd status`: ``healthy``, ``degraded`` or ``down``, with reasons."""

    state: str
    exit_code: ExitCode
    problems: tuple[str, ...] = ()


REJECTED_ADVICE = (
    "fix them in the CRM (`syncd ledger --outcome rejected` says why); each is sent again "
    "once its row changes"
)


OVERDUE_ADVICE = (
    "the daemon was down or not leading when it was due; it catches a missed full "
    "reconcile up when it starts, or run it now with `syncd resync --full`"
)


BLOCKED_ADVICE = (
    "each waits for a fix in Genesys (an organization record, a division, syncd's external "
    "source; `syncd contact <externalId>` shows which) and is retried with backoff"
)


def evaluate_health(
    report: StatusReport,
    *,
    rejected_degrades: bool = False,
    overdue: Mapping[str, datetime] | None = None,
) -> Health:
    """Down (no live daemon) beats degraded (something needs an operator) beats healthy.

    CRM rows that cannot be sent (links shown ``rejected``) are the CRM's to fix, not a
    failure of syncd: they make the status degraded only with ``rejected_degrades``.
    ``overdue``: the kinds of scheduled run that should have started, with when they were due.
    """
    problems: list[str] = []
    down = False
    stale = report.stale_after.total_seconds()
    if not report.instances:
        down = True
        problems.append("no daemon has ever reported to this database (is `syncd run` running?)")
    elif not report.live_instances:
        down = True
        freshest = report.instances[0]
        gone = [i for i in report.instances if i.get("process_gone")]
        if gone:
            problems.append(
                "no live daemon: "
                + ", ".join(f"{i['instance_id']} (pid {i['pid']})" for i in gone)
                + f" on {gone[0]['hostname']} is dead: its process no longer exists "
                "(start it again: `syncd run`)"
            )
        else:
            problems.append(
                f"no live daemon: the freshest heartbeat ({freshest['instance_id']} on "
                f"{freshest['hostname']}) is {freshest['heartbeat_age_seconds']:.0f}s old "
                f"(stale after {stale:.0f}s)"
            )
    elif report.leader is None and any(i["state"] != "starting" for i in report.live_instances):
        problems.append("daemons are alive but none is the leader: nothing is syncing")
    if report.links.get("failed"):
        problems.append(f"{report.links['failed']} contact link(s) in state failed")
    if report.links.get("blocked"):
        problems.append(f"{report.links['blocked']} CRM row(s) blocked: {BLOCKED_ADVICE}")
    if rejected_degrades and report.links.get("rejected"):
        problems.append(f"{report.links['rejected']} CRM row(s) rejected: {REJECTED_ADVICE}")
    if report.links.get("held"):
        problems.append(
            f"{report.links['held']} delete(s) held by the mass-delete guard: {HELD_ADVICE}"
        )
    intents = report.intents
    pending_links = sum(v for k, v in report.links.items() if k.startswith("pending_"))
    if pending_links and intents.get("older_than_threshold"):
        age = (report.checked_at - intents["oldest_at"]).total_seconds()
        problems.append(
            f"{intents['older_than_threshold']} intent(s) unresolved for more than "
            f"{_seconds(report.pending_after.total_seconds())} (the oldest for "
            f"{_seconds(age)}): {PENDING_ADVICE}"
        )
    for kind, due in (overdue or {}).items():
        late = (report.checked_at - due).total_seconds()
        problems.append(
            f"the {kind} run due at {due:%Y-%m-%d %H:%M}Z has not started (overdue by "
            f"{_seconds(late)}): {OVERDUE_ADVICE}"
        )
    for kind, run in report.last_runs.items():
        if run is not None and run["status"] in UNHEALTHY_RUN_STATUSES:
            reason = f": {run['error']}" if run.get("error") else ""
            problems.append(f"the last {kind} run (#{run['id']}) ended {run['status']}{reason}")
    if down:
        return Health("down", ExitCode.NO_DAEMON, tuple(problems))
    if problems:
        return Health("degraded", ExitCode.PARTIAL, tuple(problems))
    return Health("healthy", ExitCode.OK)
