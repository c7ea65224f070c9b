"""Error paths never carry a credential: a server that echoes the request in its error body,
a login service that quotes the secret, a 400 with the token in its message.

The messages end up in exceptions, the ledger (``last_error``, ledger ``error``), logs and the
operator's terminal; :func:`syncd.genesys.responses.server_message` scrubs them at the source.
"""

from __future__ import annotations

import base64
import json

import anyio
import httpx
import pytest
from structlog.testing import capture_logs

from syncd.errors import ApiAuthError, ApiError, ApiValidationError
from syncd.model import Contact
from tests.genesys.fakes import CLIENT_ID, CLIENT_SECRET, FakeServer, FakeTime, make_client


def _echo(request: httpx.Request) -> httpx.Response:
    """A misbehaving gateway: a 400 whose message quotes every request header."""
    headers = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
    return httpx.Response(400, json={"message": f"bad request ({headers})", "code": "bad"})


@pytest.mark.parametrize("shape", ["json", "text"])
def test_a_400_echoing_the_authorization_header_is_scrubbed(shape: str) -> None:
    server = FakeServer(FakeTime())
    if shape == "json":
        server.default = _echo
    else:
        server.default = lambda request: httpx.Response(
            400, text="rejected " + request.headers["authorization"] + " " + CLIENT_SECRET
        )
    errors: list[ApiError] = []

    async def go() -> None:
        async with make_client(server) as client:
            with pytest.raises(ApiValidationError) as info:
                await client.create(Contact("e-1", "Ada", "Lovelace"))
            errors.append(info.value)

    with capture_logs() as logs:
        anyio.run(go)
    text = str(errors[0]) + repr(errors[0].__dict__) + json.dumps(logs, default=str)
    for token in server.issued:
        assert token not in text
    assert CLIENT_SECRET not in text
    assert "400" in str(errors[0])


def test_a_login_failure_quoting_the_credentials_is_scrubbed() -> None:
    server = FakeServer(FakeTime())
    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    server.token_script = [
        httpx.Response(
            401,
            json={"error": "invalid_client", "error_description": f"bad {CLIENT_SECRET} {basic}"},
        )
    ]

    async def go() -> ApiAuthError:
        async with make_client(server) as client:
            with pytest.raises(ApiAuthError) as info:
                await client.get("c-1")
            return info.value

    error = anyio.run(go)
    assert CLIENT_SECRET not in str(error)
    assert basic not in str(error)
    assert "check client_id and client_secret" in str(error)
