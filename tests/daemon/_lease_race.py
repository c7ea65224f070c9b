"""Helper process for the lease race test: get ready, wait for "go" on stdin, try once.

Usage: python -m tests.daemon._lease_race URL NAME HOLDER
Prints "ready" once connected, then "won TOKEN" or "lost".
"""

from __future__ import annotations

import sys
from datetime import timedelta

from syncd.store import leases
from syncd.store.db import open_database


def main() -> None:
    url, name, holder = sys.argv[1], sys.argv[2], sys.argv[3]
    db = open_database(url)
    with db.read() as conn:  # connect (and warm the pool) before the start line
        conn.exec_driver_sql("SELECT 1")
    print("ready", flush=True)
    sys.stdin.readline()
    lease = leases.acquire(db, name, holder, timedelta(seconds=60))
    print(f"won {lease.fencing_token}" if lease else "lost", flush=True)
    db.dispose()


if __name__ == "__main__":
    main()
