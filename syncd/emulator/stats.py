"""Counters for introspection: what the clients asked, what was applied, what was injected.

Counters are never truncated (unlike the request and write logs), so a long run still
reports exact totals.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

WRITE_OPS = ("create", "update", "replace", "delete")


class Stats:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.writes: Counter[str] = Counter()

    def record_request(self, method: str, route: str, status: int) -> None:
        self.requests[(method, route, status)] += 1

    def record_write(self, op: str) -> None:
        self.writes[op] += 1

    def snapshot(self) -> dict[str, Any]:
        """Counters as JSON. Status 0 means "no response was sent" (lost acknowledgement)."""
        by_method: Counter[str] = Counter()
        by_route: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        detail = []
        for (method, route, status), count in sorted(self.requests.items()):
            by_method[method] += count
            by_route[f"{method} {route}"] += count
            by_status[str(status)] += count
            detail.append({"method": method, "route": route, "status": status, "count": count})
        return {
            "requests_total": sum(self.requests.values()),
            "requests_by_method": dict(sorted(by_method.items())),
            "requests_by_route": dict(sorted(by_route.items())),
            "requests_by_status": dict(sorted(by_status.items())),
            "requests": detail,
            "rate_limited": by_status.get("429", 0),
            "writes_applied": sum(self.writes.values()),
            # Profile-specific ops (externalcontacts' "merge") only once they happened.
            "writes_by_op": {
                **{op: self.writes.get(op, 0) for op in WRITE_OPS},
                **{op: n for op, n in self.writes.items() if op not in WRITE_OPS},
            },
        }
