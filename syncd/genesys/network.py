"""What went wrong on the network, in words an operator can act on.

httpx reports a refused port, an unknown host name, a TLS handshake against a plain-HTTP
port and a timeout all as ``ConnectError``/``TimeoutException`` whose text is an errno or an
OpenSSL reason code. :func:`describe` names the URL (scheme, host, port and path: never a
query, which could carry a credential) and the cause, with the fix where there is one.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

import httpx

from syncd.config import unsafe_url_problem
from syncd.errors import ConfigError

if TYPE_CHECKING:
    from syncd.config import GenesysSettings

__all__ = ["describe", "open_http", "request_url", "require_safe_url"]

USER_AGENT = "syncd/0.1 (+genesys-contacts-sync)"

# OpenSSL's words for "the other side answered, but not in TLS": a plain-HTTP server.
_NOT_TLS = ("wrong_version_number", "wrong version number", "record layer failure", "http request")


def request_url(exc: httpx.TransportError) -> str:
    """The URL the failed request went to, without its query; ``?`` when httpx had none."""
    try:
        url = exc.request.url
    except RuntimeError:  # raised when the error carries no request
        return "?"
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}{url.path}"


def _causes(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _cause(exc: httpx.TransportError) -> str:
    chain = _causes(exc)
    text = " ".join(str(e) for e in chain).lower()
    if isinstance(exc, httpx.ConnectTimeout):
        return "the connection timed out (nothing answered; genesys.connect_timeout)"
    if isinstance(exc, httpx.ReadTimeout):
        return "no answer in time (genesys.read_timeout)"
    if isinstance(exc, httpx.WriteTimeout):
        return "sending the request timed out (genesys.read_timeout)"
    if isinstance(exc, httpx.PoolTimeout):
        return "no free connection in time (genesys.max_in_flight requests already in flight)"
    if any(isinstance(e, ConnectionRefusedError) for e in chain) or "refused" in text:
        return "connection refused: nothing listens on that host and port"
    if any(isinstance(e, socket.gaierror) for e in chain) or any(
        words in text
        for words in ("name or service not known", "nodename nor servname", "name resolution")
    ):
        return "DNS: the host name does not resolve (check the URL or genesys.region)"
    if any(isinstance(e, ssl.SSLCertVerificationError) for e in chain) or (
        "certificate verify failed" in text
    ):
        return "TLS: the server's certificate is not trusted (certificate verify failed)"
    if any(isinstance(e, ssl.SSLError) for e in chain) or "ssl" in text:
        if any(words in text for words in _NOT_TLS):
            return (
                "TLS handshake failed: the server does not speak TLS on that port (a plain-HTTP "
                "port? https:// needs a TLS port)"
            )
        return "TLS handshake failed"
    if any(isinstance(e, ConnectionResetError) for e in chain) or "reset" in text:
        return "the connection was reset by the other side"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server closed the connection or broke the HTTP protocol"
    if any(isinstance(e, OSError) and e.errno is not None for e in chain):
        errno_error = next(e for e in chain if isinstance(e, OSError) and e.errno is not None)
        return f"network error: {errno_error.strerror or errno_error}"
    return type(exc).__name__


def describe(exc: httpx.TransportError) -> str:
    """``<url>: <cause>``, e.g. ``https://login.example:443/oauth/token: connection refused``."""
    return f"{request_url(exc)}: {_cause(exc)}"


def require_safe_url(url: str, what: str) -> str:
    """Refuse ``http://`` unless the host is loopback: tokens never travel in clear text."""
    problem = unsafe_url_problem(url)
    if problem is not None:
        raise ConfigError(f"genesys.{what}: {problem}")
    return url.rstrip("/")


def open_http(
    settings: GenesysSettings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The client's connection pool: the configured timeouts, one connection per request
    in flight (plus two), certificates verified, redirects never followed."""
    connect = settings.connect_timeout.total_seconds()
    read = settings.read_timeout.total_seconds()
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(connect=connect, read=read, write=read, pool=connect),
        limits=httpx.Limits(
            max_connections=settings.max_in_flight + 2,
            max_keepalive_connections=settings.max_in_flight,
        ),
        verify=True,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )
