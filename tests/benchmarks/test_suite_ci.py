"""The benchmark suite at its CI size, in the plain test suite, so that it cannot rot.

Every benchmark runs in its own subprocess, as with ``python -m tests.benchmarks --ci``. The
figures are printed (``pytest -s`` shows the table) but not judged: on a shared CI machine a
timing threshold would only measure the neighbours. What is asserted is that every benchmark
produced its rows and every row a figure.
"""

from __future__ import annotations

import pytest

from tests.benchmarks import suite

pytestmark = pytest.mark.slow


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
