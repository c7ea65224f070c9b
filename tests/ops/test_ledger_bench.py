"""The ledger benchmark still runs (tiny N), so it cannot rot between real runs."""

from __future__ import annotations

import pytest

from tests.benchmarks import ledger_bench
from tests.conftest import require_postgres


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_ledger_bench_runs(backend: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--rows", "2000", "--repeat", "3", "--prune"]
    if backend == "postgresql":
        args += ["--postgres", require_postgres()]
    assert ledger_bench.main(args) == 0
    out = capsys.readouterr().out
    assert f"backend {backend}: loaded 2,000 ledger rows" in out
    for query in ("--external-id X", "--since 1h", "--outcome failed", "--run R"):
        assert query in out
    assert "prune --older-than 60d: deleted" in out
