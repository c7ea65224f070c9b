"""Leader election: the ``"leader"`` lease, renewed every heartbeat with a short TTL.

Why a lease and not a PostgreSQL advisory lock: it works the same on SQLite (a second daemon
on the same file becomes a standby instead of fighting), it is visible in the database
(``syncd status`` can say who leads and until when), and its failover time is bounded by
configuration (``leader_ttl + heartbeat_every``) rather than by TCP keepalive timeouts when a
host vanishes without closing its connection.

A leader that cannot renew (database unreachable) steps down on its own before its lease
can expire, so two leaders never act at once. Runs are additionally fenced by the ``"sync"``
lease that the executor holds, so even a paused ex-leader cannot overlap a new one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from syncd.logs import get_logger
from syncd.store import leases
from syncd.store.db import Database
from syncd.store.leases import LEADER_LEASE, Lease

_log = get_logger("syncd.daemon.leader")


class Leadership:
    """Tracks whether this instance leads; :meth:`tick` is called every heartbeat.

    ``clock`` is the local monotonic clock our belief in leading is measured on; ``lease_now``
    gives the time lease expiries are compared with (``None``: the database's, see
    :func:`syncd.store.leases.db_now`). Tests pass both to move time without sleeping.
    """

    def __init__(
        self,
        db: Database,
        holder: str,
        ttl: timedelta,
        *,
        on_change: Callable[[bool], None],
        clock: Callable[[], float] = time.monotonic,
        lease_now: Callable[[], datetime] | None = None,
    ) -> None:
        self.db = db
        self.holder = holder
        self.ttl = ttl
        self._on_change = on_change
        self._clock = clock
        self._lease_now = lease_now
        self._lock = threading.Lock()
        self._lease: Lease | None = None
        self._valid_until = 0.0  # monotonic: past this, we may no longer be leader
        self._last_seen_leader: str | None = None

    @property
    def is_leader(self) -> bool:
        with self._lock:
            return self._lease is not None and self._clock() < self._valid_until

    @property
    def lease(self) -> Lease | None:
        with self._lock:
            return self._lease

    def tick(self) -> None:
        """Renew when leading, otherwise try to take over. Never raises."""
        started = self._clock()
        now = self._lease_now() if self._lease_now is not None else None
        lease = self.lease
        try:
            if lease is not None:
                if leases.renew(self.db, lease, now):
                    self._set(lease, started)
                else:
                    self._lose("the leader lease was taken over")
                return
            won = leases.acquire(self.db, LEADER_LEASE, self.holder, self.ttl, now)
        except Exception as exc:
            _log.warning("daemon.leader.check_failed", error=str(exc))
            if lease is not None and self._clock() >= self._valid_until:
                self._lose(f"could not renew the leader lease: {exc}")
            return
        if won is not None:
            self._set(won, started)
            _log.info("daemon.leader.elected", holder=self.holder, fencing=won.fencing_token)
            self._last_seen_leader = None
            self._on_change(True)
        else:
            self._report_standby()

    def _set(self, lease: Lease, started: float) -> None:
        # Measured from before the database call, minus a margin for clock rate differences:
        # locally we stop believing we lead strictly before the lease can expire for others.
        with self._lock:
            self._lease = lease
            self._valid_until = started + self.ttl.total_seconds() * 0.9

    def _lose(self, why: str) -> None:
        with self._lock:
            was = self._lease is not None
            self._lease = None
        if was:
            _log.warning("daemon.leader.lost", holder=self.holder, reason=why)
            self._on_change(False)

    def check_expiry(self) -> None:
        """Step down if the lease could not be renewed in time (called from the main loop)."""
        with self._lock:
            expired = self._lease is not None and self._clock() >= self._valid_until
        if expired:
            self._lose("the leader lease could not be renewed in time")

    def _report_standby(self) -> None:
        try:
            info = leases.current(self.db, LEADER_LEASE)
        except Exception:
            return
        holder = info.holder if info else None
        if holder != self._last_seen_leader:
            self._last_seen_leader = holder
            _log.info(
                "daemon.standby",
                leader=holder,
                leader_until=info.expires_at.isoformat() if info and info.expires_at else None,
                detail="another syncd daemon leads for this database; waiting as standby",
            )

    def release(self) -> None:
        """Give the leadership up at shutdown, so a standby takes over at once."""
        with self._lock:
            lease, self._lease = self._lease, None
        if lease is not None:
            try:
                leases.release(self.db, lease)
            except Exception as exc:
                _log.warning("daemon.leader.release_failed", error=str(exc))
