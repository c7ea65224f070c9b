"""The sync engine: canonical contact, diff, guards, intent protocol, runs and mirror import.

Other layers use four modules: ``seam`` (what a run is asked and answers, for the daemon),
``runs`` (the engine-backed executor and its report), ``importer`` and ``import_formats``
(``syncd mirror import``). The rest is the engine's own. Nothing is imported eagerly, so the
daemon can load the seam without loading the engine.
"""

__all__ = ["import_formats", "importer", "runs", "seam"]
