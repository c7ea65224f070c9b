"""The operators' query commands: `syncd ledger`, `runs`, `contact` and `status`.

Each lives in its own ``ops_*`` module; this one only registers them. All of them only read,
except `syncd ledger prune` (retention).
"""

from __future__ import annotations

import click

from syncd.cli.ops_contact import contact_cmd
from syncd.cli.ops_ledger import ledger_cmd
from syncd.cli.ops_runs import runs_cmd
from syncd.cli.ops_status import status_cmd


def register(cli: click.Group) -> None:
    for command in (ledger_cmd, runs_cmd, contact_cmd, status_cmd):
        cli.add_command(command)
