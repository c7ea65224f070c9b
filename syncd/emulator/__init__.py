"""A faithful local Genesys Cloud: the contacts API, OAuth, rate limits and faults.

Used by the demo, the tests, the benchmarks and operators' rehearsals; never imported by
``syncd.sync``. See ``docs/emulator.md``.
"""

from syncd.emulator.app import create_app
from syncd.emulator.clock import Clock, ManualClock, SystemClock
from syncd.emulator.config import EmulatorConfig
from syncd.emulator.pipeline import LostAcknowledgement
from syncd.emulator.serve import EmulatorServer, run_forever
from syncd.emulator.state import Emulator

__all__ = [
    "Clock",
    "Emulator",
    "EmulatorConfig",
    "EmulatorServer",
    "LostAcknowledgement",
    "ManualClock",
    "SystemClock",
    "create_app",
    "run_forever",
]
