"""Database layer: schema, engine set-up, migrations and repositories. Hides SQL from sync/."""

from syncd.store.db import Database, open_database
from syncd.store.schema import metadata

# The package's own names, then the repositories other layers use (one module per table or
# concern; see docs/architecture.md).
__all__ = [
    "Database",
    "changes",
    "db",
    "health",
    "leases",
    "ledger",
    "ledger_query",
    "links",
    "metadata",
    "migrate",
    "mirror",
    "open_database",
    "organizations",
    "reports",
    "requests",
    "retention",
    "runs",
    "schema",
    "snapshot",
    "status",
]
