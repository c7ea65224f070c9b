"""One Hypothesis settings profile for the bad-input suite: derandomized, so CI is repeatable.

``derandomize=True`` derives every example from the test itself, so a run is the same on
every machine and a failure replays exactly; no example database is read or written.
``SYNCD_FUZZ_EXAMPLES=N`` raises every test's example count for a longer local run
(``SYNCD_FUZZ_EXAMPLES=2000 uv run pytest tests/fuzz``), still deterministic.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE = "syncd-fuzz"

settings.register_profile(
    PROFILE,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        # Fixtures here are reset by each example itself (tables emptied, servers rebuilt).
        HealthCheck.function_scoped_fixture,
    ],
)


def fuzz(examples: int) -> settings:
    """The profile with ``examples`` examples (or ``$SYNCD_FUZZ_EXAMPLES``)."""
    override = int(os.environ.get("SYNCD_FUZZ_EXAMPLES", "0") or 0)
    return settings(settings.get_profile(PROFILE), max_examples=override or examples)
