"""Keep the client benchmark from rotting: run it in a tiny form (no timing assertions)."""

from __future__ import annotations

import pytest

from tests.benchmarks import client_bench

pytestmark = pytest.mark.anyio


async def test_benchmark_runs_in_tiny_form() -> None:
    rows = await client_bench.run(client_bench.TINY)
    by_name = {row["scenario"].split(":")[0]: row for row in rows}
    assert set(by_name) == {"a", "b", "c"}
    a, b, c = by_name["a"], by_name["b"], by_name["c"]
    assert a["created"] == client_bench.TINY.a_creates
    assert a["duplicates"] == 0
    assert a["utilization_pct"] > 0
    assert b["errors"] == 0
    assert b["duplicates"] == 0
    assert b["requests"] > 0
    assert c["requests_during_outage"] >= 1
    assert c["recovery_s"] is not None  # the client came back by itself
    assert "a: " in client_bench.format_table(rows)
