"""`syncd` as an operator runs it: a child process of the console script's entry point."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_syncd(
    config: Path, *args: str, timeout: float = 60, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``syncd --config CONFIG ARGS`` in a child process; output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "syncd", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=cwd,
    )
