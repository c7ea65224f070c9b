"""Prometheus metrics of the daemon, served on ``[metrics] listen`` when it is set.

Run counters are updated by the worker after each run; database gauges (pending requests,
contacts by link state) are read at scrape time, so an idle daemon does no extra queries
when nobody scrapes. The endpoint also serves the default registry (process CPU and memory,
and whatever the engine registers there, such as API requests by status).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector

from syncd.logs import get_logger
from syncd.store.db import Database
from syncd.store.schema import LINK_STATES, contact_links, sync_requests

_log = get_logger("syncd.daemon.metrics")


class _DatabaseCollector(Collector):
    """Gauges read from the database when scraped."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        try:
            with self.db.read() as conn:
                pending = conn.execute(
                    sa.select(sa.func.count())
                    .select_from(sync_requests)
                    .where(sync_requests.c.status == "pending")
                ).scalar_one()
                by_state: dict[str, int] = dict(
                    conn.execute(
                        sa.select(contact_links.c.state, sa.func.count()).group_by(
                            contact_links.c.state
                        )
                    ).all()
                )
        except Exception as exc:
            _log.warning("daemon.metrics.query_failed", error=str(exc))
            return
        yield GaugeMetricFamily(
            "syncd_pending_requests", "Manual resync requests waiting for the daemon", pending
        )
        yield GaugeMetricFamily(
            "syncd_failed_rows",
            "Contacts whose last sync attempt failed",
            by_state.get("failed", 0),
        )
        states = GaugeMetricFamily(
            "syncd_contact_links", "Contacts known to Genesys by link state", labels=["state"]
        )
        for state in LINK_STATES:
            states.add_metric([state], by_state.get(state, 0))
        yield states


class _Union(Collector):
    """Serve several registries from one endpoint."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self.registries = registries

    def collect(self) -> Iterator[Metric]:
        for registry in self.registries:
            yield from registry.collect()


class Metrics:
    """The daemon's own metrics, in a registry of their own (tests create several)."""

    def __init__(self, *, instance_id: str, version: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        Info("syncd", "syncd build and instance", registry=r).info(
            {"version": version, "instance_id": instance_id}
        )
        self.runs = Counter(
            "syncd_runs",
            "Sync runs by kind, trigger and status",
            ["kind", "trigger", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "syncd_run_duration_seconds",
            "Duration of sync runs",
            ["kind"],
            registry=r,
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, float("inf")),
        )
        self.last_success = Gauge(
            "syncd_last_success_timestamp_seconds",
            "End of the last successful run by kind",
            ["kind"],
            registry=r,
        )
        self.api_requests = Counter(
            "syncd_api_requests", "Genesys API requests made by runs", ["kind"], registry=r
        )
        self.rate_limited = Counter(
            "syncd_api_rate_limited", "HTTP 429 answers received by runs", ["kind"], registry=r
        )
        self.row_failures = Counter(
            "syncd_row_failures", "Rows that failed in runs", ["kind"], registry=r
        )
        self.leader = Gauge("syncd_leader", "1 while this instance is the leader", registry=r)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def observe_run(
        self,
        *,
        kind: str,
        trigger: str,
        status: str,
        duration: float,
        finished_at: float,
        counters: dict[str, int],
    ) -> None:
        self.runs.labels(kind, trigger, status).inc()
        self.duration.labels(kind).observe(duration)
        if status == "succeeded":
            self.last_success.labels(kind).set(finished_at)
        self.api_requests.labels(kind).inc(counters.get("api_calls", 0))
        self.rate_limited.labels(kind).inc(counters.get("rate_limited", 0))
        self.row_failures.labels(kind).inc(counters.get("failed", 0))

    def serve(self, address: tuple[str, int], db: Database) -> None:
        """Start the HTTP endpoint in a daemon thread."""
        served = CollectorRegistry(auto_describe=False)
        served.register(_Union(self.registry, REGISTRY))
        served.register(_DatabaseCollector(db))
        host, port = address
        self._server, self._thread = start_http_server(port, addr=host, registry=served)
        _log.info("daemon.metrics.listening", address=f"{host}:{port}")

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
