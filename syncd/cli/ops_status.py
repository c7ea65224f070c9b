"""`syncd status`: is the daemon alive, is syncing healthy? Usable as a health check.

Exit status (also in ``health.exit_code`` of the JSON), an :class:`~syncd.exit_codes.ExitCode`:

* 0 healthy: a live daemon (heartbeat fresher than ``--stale-after``) and nothing to fix;
* 1 degraded: links in ``failed`` state (``blocked`` ones too: they wait for a fix in
  Genesys), deletes held by the guard (links ``held``), intents
  unresolved for longer than ``--pending-after``, a scheduled run not started
  ``--overdue-after`` after it was due (a missed nightly reconcile), the last run of a kind
  ended ``failed`` or ``held``, or live daemons without a leader; CRM rows Genesys cannot
  take (links shown ``rejected``) only with ``--rejected-degrades``;
* 2 usage or configuration error (bad option, unreadable config, schema missing or old);
* 4 down: no daemon has ever reported, or every instance is dead: heartbeat stale, state
  ``stopped``, or (an instance of this host) its process gone;
* 5 unknown: the database cannot be read, so health cannot be told.

The policy itself is :func:`syncd.store.health.evaluate_health`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import click

from syncd.cli.context import AppContext, pass_app
from syncd.cli.formatting import (
    NULL_DISPLAY,
    Column,
    display,
    format_option,
    human_duration,
    print_key_values,
    print_table,
    short_time,
    write_object,
)
from syncd.cli.ops_common import DURATION, friendly_errors, open_database
from syncd.daemon.schedule import overdue_runs
from syncd.exit_codes import ExitCode
from syncd.store import runs as run_store
from syncd.store.health import Health, evaluate_health
from syncd.store.reports import StatusReport, status_report

DEFAULT_STALE_AFTER = timedelta(seconds=120)


@click.command("status")
@click.option(
    "--stale-after",
    type=DURATION,
    default="120s",
    show_default=True,
    metavar="DURATION",
    help="A heartbeat older than this means the daemon is down.",
)
@click.option(
    "--pending-after",
    type=DURATION,
    default="15m",
    show_default=True,
    metavar="DURATION",
    help="An intent unresolved for longer than this makes the status degraded.",
)
@click.option(
    "--overdue-after",
    type=DURATION,
    default="15m",
    show_default=True,
    metavar="DURATION",
    help="A scheduled run not started this long after it was due makes the status degraded.",
)
@click.option(
    "--rejected-degrades",
    is_flag=True,
    help="CRM rows Genesys cannot take (shown as rejected) make the status degraded too.",
)
@format_option(("table", "json"))
@pass_app
@friendly_errors
def status_cmd(
    app: AppContext,
    stale_after: timedelta,
    pending_after: timedelta,
    overdue_after: timedelta,
    rejected_degrades: bool,
    fmt: str,
) -> None:
    """Daemon liveness, leader, last runs, schedule, requests and sync state.

    Exit status: 0 healthy, 1 degraded, 2 usage/config error, 4 no live daemon,
    5 database unreadable.
    """
    db = open_database(app)
    with db.read() as conn:
        report = status_report(conn, stale_after=stale_after, pending_after=pending_after)
        overdue: dict[str, datetime] = {}
        if report.live_instances and report.current_run is None:  # runs wait for each other
            started = run_store.last_started(conn)
            overdue = overdue_runs(
                app.local_settings.sync, started, report.checked_at, overdue_after
            )
    health = evaluate_health(report, rejected_degrades=rejected_degrades, overdue=overdue)
    if fmt == "json":
        write_object(as_json(report, health, overdue))
    else:
        print_status(report, health)
    if health.exit_code != ExitCode.OK:
        raise click.exceptions.Exit(health.exit_code)


def _age(report: StatusReport, when: Any) -> float | None:
    return None if when is None else (report.checked_at - when).total_seconds()


def _run_json(report: StatusReport, run: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    keys = (
        "id",
        "kind",
        "trigger",
        "status",
        "started_at",
        "finished_at",
        "duration_seconds",
        "error",
    )
    return {**{k: run[k] for k in keys}, "age_seconds": _age(report, run["started_at"])}


def as_json(
    report: StatusReport, health: Health, overdue: Mapping[str, datetime]
) -> dict[str, Any]:
    """The ``--format json`` object; ``overdue`` maps each late kind of run to when it was due."""
    sched = report.scheduler
    freshest = report.instances[0] if report.instances else None
    return {
        "health": {
            "state": health.state,
            "exit_code": health.exit_code,
            "problems": list(health.problems),
        },
        "checked_at": report.checked_at,
        "stale_after_seconds": report.stale_after.total_seconds(),
        "daemon": {
            "alive": bool(report.live_instances),
            "heartbeat_age_seconds": freshest["heartbeat_age_seconds"] if freshest else None,
            "leader": report.leader["instance_id"] if report.leader else None,
            "instances": report.instances,
        },
        "next_runs": {
            "incremental": sched["next_incremental_at"] if sched else None,
            "full": sched["next_full_at"] if sched else None,
        },
        "overdue": dict(overdue),
        "current_run": _run_json(report, report.current_run),
        "abandoned_run": _run_json(report, report.abandoned_run),
        "last_runs": {k: _run_json(report, r) for k, r in report.last_runs.items()},
        "requests": report.requests,
        "links": {"total": sum(report.links.values()), "by_state": report.links},
        "held_deletes": report.links.get("held", 0),
        "intents": {**report.intents, "threshold_seconds": report.pending_after.total_seconds()},
        "mirror": report.mirror,
    }


def _ago(report: StatusReport, when: Any) -> str:
    age = _age(report, when)
    return NULL_DISPLAY if age is None else f"{human_duration(age)} ago"


def _in(report: StatusReport, when: Any) -> str:
    age = _age(report, when)
    if age is None:
        return "not scheduled"
    rel = f"in {human_duration(-age)}" if age <= 0 else f"overdue by {human_duration(age)}"
    return f"{short_time(when)} ({rel})"


def _plain(value: Any) -> str:
    return display(value, 60)


INSTANCES_TABLE = (
    Column("instance_id", "instance", _plain),
    Column("hostname", "host", _plain),
    Column("pid", "pid", _plain, justify="right"),
    Column("version", "version", _plain),
    Column("state", "state", _plain),
    Column("leader", "leader", _plain),
    Column("heartbeat", "heartbeat", _plain),
)

RUNS_TABLE = (
    Column("kind", "kind", _plain),
    Column("id", "run", _plain, justify="right"),
    Column("status", "status", _plain),
    Column("started", "started", _plain),
    Column("took", "took", _plain, justify="right"),
    Column("error", "error", lambda v: display(v, 80)),
)


def _instance_state(inst: Mapping[str, Any]) -> str:
    if inst["alive"] or inst["state"] == "stopped":
        return str(inst["state"])
    why = "process gone" if inst.get("process_gone") else "heartbeat stale"
    return f"dead ({why})"


def _running_now(report: StatusReport) -> str:
    run = report.current_run
    if run is not None:
        return f"run {run['id']} ({run['kind']}), started " + _ago(report, run["started_at"])
    gone = report.abandoned_run
    if gone is not None:
        return f"nothing (run {gone['id']} ({gone['kind']}) was left by a process that is gone)"
    return "nothing"


def print_status(report: StatusReport, health: Health) -> None:
    click.echo(f"syncd status: {health.state.upper()} (exit {health.exit_code})")
    for problem in health.problems:
        click.echo(f"  - {problem}")
    click.echo()
    leader = report.leader
    sched = report.scheduler
    links = report.links
    pending = {k: v for k, v in links.items() if k.startswith("pending_") and v}
    print_key_values(
        [
            ("daemon", "alive" if report.live_instances else "not running"),
            (
                "leader",
                f"{leader['instance_id']} on {leader['hostname']} (pid {leader['pid']})"
                if leader
                else None,
            ),
            ("next incremental", _in(report, sched["next_incremental_at"]) if sched else None),
            ("next full", _in(report, sched["next_full_at"]) if sched else None),
            ("running now", _running_now(report)),
            (
                "requests",
                f"{report.requests['pending']} pending, {report.requests['running']} "
                "running"
                + (
                    f" (oldest {_ago(report, report.requests['oldest_pending_at'])})"
                    if report.requests["oldest_pending_at"]
                    else ""
                ),
            ),
            (
                "links",
                f"{sum(links.values())} total: {links.get('synced', 0)} synced, "
                f"{links.get('failed', 0)} failed, {links.get('rejected', 0)} rejected, "
                f"{links.get('blocked', 0)} blocked, "
                f"{links.get('held', 0)} held, "
                + (", ".join(f"{v} {k}" for k, v in pending.items()) or "0 pending"),
            ),
            ("mirror", f"{report.mirror['live']} live, {report.mirror['tombstoned']} tombstoned"),
        ]
    )
    if report.instances:
        click.echo()
        print_table(
            [
                {
                    **i,
                    "state": _instance_state(i),
                    "leader": "yes" if i["is_leader"] and i["alive"] else "no",
                    "heartbeat": _ago(report, i["heartbeat_at"]) + ("" if i["alive"] else " STALE"),
                }
                for i in report.instances
            ],
            INSTANCES_TABLE,
            title="Daemon instances",
        )
    click.echo()
    print_table(
        [
            {
                "kind": kind,
                "id": run["id"] if run else None,
                "status": run["status"] if run else "never ran",
                "started": _ago(report, run["started_at"]) if run else None,
                "took": human_duration(run["duration_seconds"]) if run else None,
                "error": run["error"] if run else None,
            }
            for kind, run in report.last_runs.items()
        ],
        RUNS_TABLE,
        title="Last finished runs",
    )
