"""Database layer: schema, engine set-up, migrations and repositories. Hides SQL from sync/."""

from syncd.store.db import Database, open_database
from syncd.store.schema import metadata

__all__ = ["Database", "metadata", "open_database"]
