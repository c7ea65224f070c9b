"""Keep the bulk benchmark from rotting: run it in a tiny form (no timing assertions)."""

from __future__ import annotations

import pytest

from tests.benchmarks import bulk_bench

pytestmark = pytest.mark.anyio


async def test_bulk_benchmark_runs_in_tiny_form() -> None:
    rows = await bulk_bench.run(bulk_bench.TINY)
    by_name = {row["scenario"]: row for row in rows}
    assert set(by_name) == {
        "creates-single",
        "creates-bulk-10",
        "updates-single",
        "updates-bulk-10",
    }
    for row in rows:
        assert row["contacts"] > 0
        assert row["failed"] == 0
        assert row["duplicates"] == 0
    bulk = by_name["creates-bulk-10"]
    assert bulk["contacts"] == 10 * bulk["requests"]  # one request per batch of 10
    assert "x" in bulk_bench.format_table(rows)
