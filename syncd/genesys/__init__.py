"""Genesys Cloud API client: auth, pacing, retries, error mapping and wire profiles.

Other layers use two modules: ``api`` (the protocol the engine talks to) and ``client``
(``GenesysClient``, its HTTP implementation). Everything else here is this layer's own.
Nothing is imported eagerly, so importing the protocol does not load httpx.
"""

__all__ = ["api", "client"]
