"""The engine benchmark still runs (tiny sizes; the figures themselves are not asserted)."""

from __future__ import annotations

import pytest

from tests.benchmarks import engine_bench

pytestmark = pytest.mark.slow


def test_engine_benchmark_runs_tiny(capsys: pytest.CaptureFixture[str]) -> None:
    engine_bench.main(["--tiny"])
    out = capsys.readouterr().out
    assert "incremental:" in out
    assert "full reconcile:" in out
    assert "peak RSS" in out
