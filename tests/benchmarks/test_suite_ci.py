"""The benchmark suite at its CI size, run by ``.ci/run`` so that it cannot rot.

Every benchmark runs in its own subprocess, as with ``python -m tests.benchmarks --ci``. The
figures are printed (``pytest -s`` shows the table) but not judged: on a shared CI machine a
timing threshold would only measure the neighbours. What is asserted is that every benchmark
produced its rows and every row a figure, and that what the benchmarks did was correct (no
duplicate, no failed call, every import exiting 0), whatever it cost.

These tests are marked ``benchmark``, which the default ``uv run pytest`` leaves out; run them
with ``uv run pytest -n 0 -m benchmark tests/benchmarks/test_suite_ci.py``. Two checks need code
the suite does not run: the client's recovery from an outage and the ledger prune.
"""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest

from tests.benchmarks import bulk_bench, client_bench, ledger_bench, suite
from tests.conftest import require_postgres

pytestmark = pytest.mark.benchmark


@pytest.mark.timeout(600)
def test_every_benchmark_produces_a_figure_at_ci_size() -> None:
    run = suite.run_suite("ci", progress=print)
    table = suite.format_text(run)
    print(table)
    expected = {name for name, bench in suite.BENCHES.items() if bench.skip() is None}
    assert {r.bench for r in run.runs} == expected, table
    failed = {r.bench: f"{r.error}\n{r.log_tail}" for r in run.runs if r.error}
    assert not failed, table + "\n\n" + "\n\n".join(f"{k}:\n{v}" for k, v in failed.items())
    for row in run.rows:
        assert row.figure, row
        assert not row.figure.startswith("error"), row
        assert row.verdict in {suite.MEETS, suite.MISSES, suite.REPORTED}, row
        assert row.size, row
    names = [row.name for row in run.rows]
    for wanted in (
        "Rate-limit utilization, 600/min",
        "Rate-limit utilization, 6,000/min",
        "429 share",
        "API calls per change: create",
        "API calls per change: no-op",
        "API calls per change: full",
        "Incremental run cost vs mirror size",
        "Full reconcile time",
        "Full reconcile peak memory",
        "Mirror import rate",
        "Mirror import peak memory",
        "Ledger query latency, --external-id (SQLite)",
        "Daemon idle memory",
        "Resync pick-up latency",
    ):
        assert any(name.startswith(wanted) for name in names), (wanted, table)
    markdown = suite.format_markdown(run)
    assert markdown.count("\n| ") >= len(run.rows)
    assert suite.format_text(suite.from_json(suite.to_json(run))) == table
    raw = {r.bench: r.raw for r in run.runs}
    check_client_results(raw)
    check_import_results(raw["import"])
    if "bulk" in raw:
        check_bulk_results(raw["bulk"]["scenarios"])


def check_client_results(raw: dict[str, dict[str, Any]]) -> None:
    """Every create went through once, under the budget and under a server that refuses."""
    for name in ("rate", "rate-scaled"):
        a = raw[name]
        asked = re.match(r"a: (\d+) creates", a["scenario"])
        assert asked, a
        assert a["created"] == int(asked.group(1)), a
        assert a["duplicates"] == 0, a
        assert a["utilization_pct"] > 0, a
    for b in raw["429"]["scenarios"]:
        assert b["errors"] == 0, b
        assert b["duplicates"] == 0, b
        assert b["requests"] > 0, b


def check_import_results(result: dict[str, Any]) -> None:
    """Both imports of the generated file succeeded (a failed one still gets timed)."""
    runs = {run["label"]: run["exit_code"] for run in result["runs"]}
    assert runs == {"first import (inserts)": 0, "re-import (unchanged)": 0}, result["lines"]
    assert any("peak RSS" in line for line in result["lines"]), result["lines"]


def check_bulk_results(scenarios: list[dict[str, Any]]) -> None:
    """Each scenario wrote contacts without a failure or a duplicate, a batch per request."""
    by_name = {row["scenario"]: row for row in scenarios}
    # bulk_bench.TINY, the suite's CI size: one batch size, 10.
    assert set(by_name) == {
        "creates-single",
        "creates-bulk-10",
        "updates-single",
        "updates-bulk-10",
    }
    for row in scenarios:
        assert row["contacts"] > 0, row
        assert row["failed"] == 0, row
        assert row["duplicates"] == 0, row
    bulk = by_name["creates-bulk-10"]
    assert bulk["contacts"] == 10 * bulk["requests"], bulk  # one request per batch of 10
    assert "x" in bulk_bench.format_table(scenarios)


def test_client_recovers_from_an_outage_by_itself() -> None:
    """Scenario c of the client benchmark (not a row of the suite), in its tiny form."""
    rows = anyio.run(client_bench.run, client_bench.TINY, {"c"})
    (c,) = rows
    assert c["requests_during_outage"] >= 1
    assert c["recovery_s"] is not None  # the client came back by itself
    assert "c: " in client_bench.format_table(rows)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_ledger_benchmark_runs_the_queries_and_a_prune(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The ledger benchmark's own command, with the prune the suite does not time."""
    args = ["--rows", "2000", "--repeat", "3", "--prune"]
    if backend == "postgresql":
        args += ["--postgres", require_postgres()]
    assert ledger_bench.main(args) == 0
    out = capsys.readouterr().out
    assert f"backend {backend}: loaded 2,000 ledger rows" in out
    for query in ("--external-id X", "--since 1h", "--outcome failed", "--run R"):
        assert query in out
    assert "prune --older-than 60d: deleted" in out
