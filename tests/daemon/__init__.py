"""Tests of the daemon, its leases, manual requests and the systemd unit."""
