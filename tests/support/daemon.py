"""`python -m tests.support.daemon --config X run`: syncd's CLI with the test executor injected.

Everything is the real `syncd` command line (:func:`syncd.cli.main`); only the executor
factory behind `syncd run` is replaced by the test double of :mod:`tests.daemon.fake_executor`,
so a real daemon process runs without Genesys. Other commands behave exactly as `syncd`'s.
"""

from __future__ import annotations

import sys

from syncd.cli import main
from tests.daemon.fake_executor import create_executor

COMMAND = (sys.executable, "-m", "tests.support.daemon")
"""The argv prefix that starts syncd's CLI with the test executor."""
ENGINE_COMMAND = (sys.executable, "-m", "syncd")
"""The argv prefix of the production CLI: `syncd run` drives the real sync engine."""

if __name__ == "__main__":
    main(executor_factory=create_executor)
