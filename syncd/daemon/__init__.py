"""The daemon (`syncd run`): scheduler, manual resyncs, leader election, systemd integration.

See docs/daemon.md. The CLI uses four modules: ``service`` (the ``Daemon``), ``resync``
(asking a running daemon for a run), ``schedule`` (when runs are due) and ``settings``.
Nothing is imported eagerly, so ``syncd resync`` does not load the scheduler.
"""

__all__ = ["resync", "schedule", "service", "settings"]
