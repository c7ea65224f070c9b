"""Genesys Cloud API client: auth, pacing, retries, error mapping and wire profiles."""
