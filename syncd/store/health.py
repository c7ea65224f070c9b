"""The health policy of `syncd status`: what a status report means for an operator.

:mod:`syncd.store.reports` says what *is* (daemons, runs, links); this module decides whether
that is healthy, degraded or down, and so the exit status a health check sees. Kept apart so
the policy can change without touching a query, and a query without touching the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from syncd.exit_codes import ExitCode
from syncd.store.reports import StatusReport

__all__ = ["UNHEALTHY_LINK_STATES", "UNHEALTHY_RUN_STATUSES", "Health", "evaluate_health"]

UNHEALTHY_RUN_STATUSES = ("failed", "held")
"""A last run of a kind that ended so needs an operator."""
UNHEALTHY_LINK_STATES = ("failed", "held")
"""Contact links in these states need an operator."""


@dataclass(frozen=True)
class Health:
    """The verdict of `syncd status`: ``healthy``, ``degraded`` or ``down``, with reasons."""

    state: str
    exit_code: ExitCode
    problems: tuple[str, ...] = ()


def evaluate_health(report: StatusReport) -> Health:
    """Down (no live daemon) beats degraded (something needs an operator) beats healthy."""
    problems: list[str] = []
    down = False
    stale = report.stale_after.total_seconds()
    if not report.instances:
        down = True
        problems.append("no daemon has ever reported to this database (is `syncd run` running?)")
    elif not report.live_instances:
        down = True
        freshest = report.instances[0]
        problems.append(
            f"no live daemon: the freshest heartbeat ({freshest['instance_id']} on "
            f"{freshest['hostname']}) is {freshest['heartbeat_age_seconds']:.0f}s old "
            f"(stale after {stale:.0f}s)"
        )
    elif report.leader is None and any(i["state"] != "starting" for i in report.live_instances):
        problems.append("daemons are alive but none is the leader: nothing is syncing")
    for state in UNHEALTHY_LINK_STATES:
        if report.links.get(state):
            problems.append(f"{report.links[state]} contact link(s) in state {state}")
    for kind, run in report.last_runs.items():
        if run is not None and run["status"] in UNHEALTHY_RUN_STATUSES:
            reason = f": {run['error']}" if run.get("error") else ""
            problems.append(f"the last {kind} run (#{run['id']}) ended {run['status']}{reason}")
    if down:
        return Health("down", ExitCode.NO_DAEMON, tuple(problems))
    if problems:
        return Health("degraded", ExitCode.PARTIAL, tuple(problems))
    return Health("healthy", ExitCode.OK)
