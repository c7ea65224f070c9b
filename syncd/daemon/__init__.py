"""The daemon (`syncd run`): scheduler, manual resyncs, leader election, systemd integration.

See docs/daemon.md. Nothing is imported here, so that ``syncd.config`` can import
``syncd.daemon.settings`` cheaply.
"""
