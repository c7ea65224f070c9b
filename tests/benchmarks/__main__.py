"""``uv run python -m tests.benchmarks [--quick|--ci] [--only NAME ...] [--markdown]``: the suite.

See :mod:`tests.benchmarks.suite` and ``docs/benchmarks.md``.
"""

from __future__ import annotations

import sys

from tests.benchmarks.suite import main

if __name__ == "__main__":
    sys.exit(main())
