"""Keep the import benchmark runnable: the same script, with a tiny row count."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_benchmark_runs_with_a_few_rows() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.benchmarks.import_bench", "--rows", "300"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "first import (inserts)   exit 0" in result.stdout
    assert "re-import (unchanged)    exit 0" in result.stdout
    assert "peak RSS" in result.stdout
