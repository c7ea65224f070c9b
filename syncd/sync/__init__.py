"""The sync engine: canonical contact, diff, guards, executor and runs."""
