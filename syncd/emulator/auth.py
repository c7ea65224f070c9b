"""OAuth client credentials as the login service does them, and bearer-token checks.

Only HTTP Basic client authentication is accepted (as the reference documents). Tokens
are opaque random strings with a lifetime on the monotonic clock; revocation forgets them
all, so the next API call with one gets a 401 and the client must fetch a new token.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class OAuthError(Exception):
    """A token request refused with an RFC 6749 error body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


@dataclass(frozen=True, slots=True)
class BearerProblem:
    """Why an API request is not authenticated (the 401 body's code and message)."""

    code: str
    message: str


MISSING = BearerProblem(
    "authentication.required", "No authentication bearer token specified in authorization header."
)
INVALID = BearerProblem("bad.credentials", "Invalid login credentials.")
EXPIRED = BearerProblem("bad.credentials", "Invalid login credentials: the token has expired.")

_PURGE_EVERY = 1024
# Test hook (docs/emulator.md): every issued token is appended to the file this names, so a
# security test can search syncd's logs and database for the exact tokens it was given.
TOKEN_LOG_ENV = "SYNCD_EMULATOR_TOKEN_LOG"


class TokenIssuer:
    def __init__(self, client_id: str, client_secret: str, expires_in: int) -> None:
        self._client_id = client_id.encode()
        self._client_secret = client_secret.encode()
        self.expires_in = expires_in
        self._tokens: dict[str, float] = {}  # token -> monotonic expiry
        self.issued = 0

    def active(self, now: float) -> int:
        self._purge(now)
        return len(self._tokens)

    def issue(
        self, authorization: str | None, form: Mapping[str, Any], now: float
    ) -> dict[str, Any]:
        """Answer ``POST /oauth/token``; OAuthError for anything but a valid request."""
        self._authenticate_client(authorization)
        grant = form.get("grant_type")
        if not grant:
            raise OAuthError(400, "invalid_request", "grant_type is required")
        if grant != "client_credentials":
            raise OAuthError(
                400, "unsupported_grant_type", f"grant type {grant!r} is not supported"
            )
        if len(self._tokens) >= _PURGE_EVERY:
            self._purge(now)
        token = secrets.token_urlsafe(32)
        self._tokens[token] = now + self.expires_in
        self.issued += 1
        if log_path := os.environ.get(TOKEN_LOG_ENV):
            with open(log_path, "a", encoding="ascii") as log:
                log.write(token + "\n")
        return {"access_token": token, "token_type": "bearer", "expires_in": self.expires_in}

    def check(self, authorization: str | None, now: float) -> BearerProblem | None:
        """None when the request carries a live token, else why it does not."""
        if not authorization:
            return MISSING
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return MISSING
        expires = self._tokens.get(token)
        if expires is None:
            return INVALID
        if now >= expires:
            del self._tokens[token]
            return EXPIRED
        return None

    def revoke_all(self) -> int:
        """Forget every token; returns how many were live or not yet purged."""
        count = len(self._tokens)
        self._tokens.clear()
        return count

    def _authenticate_client(self, authorization: str | None) -> None:
        scheme, _, encoded = (authorization or "").strip().partition(" ")
        if scheme.lower() != "basic" or not encoded.strip():
            raise OAuthError(401, "invalid_client", "client authentication (HTTP Basic) required")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise OAuthError(401, "invalid_client", "malformed Basic credentials") from None
        client_id, sep, client_secret = decoded.partition(b":")
        ok_id = hmac.compare_digest(client_id, self._client_id)
        ok_secret = hmac.compare_digest(client_secret, self._client_secret)
        if not sep or not (ok_id and ok_secret):
            raise OAuthError(401, "invalid_client", "client authentication failed")

    def _purge(self, now: float) -> None:
        expired = [token for token, expires in self._tokens.items() if now >= expires]
        for token in expired:
            del self._tokens[token]
