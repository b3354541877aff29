"""Webhook egress: an HTTP client that connects a host only to the addresses its attempt checked.

Each delivery attempt resolves the endpoint's host once, passes every address through the SSRF
check (``engagement.model.webhooks.destination_refusal``) and ``pin``s them; the client's connections
go to those addresses, in the resolver's order, and to nothing else. A second lookup by the HTTP
client could be answered differently (DNS rebinding) and reach an internal address. The URL keeps
its host, so the connection pool, ``Host``, TLS SNI and the certificate check are per host as
without pinning (connections to one address are never shared between two host names).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Sequence

import httpcore
import httpx


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting ``host:port`` only to its pinned addresses."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore.AnyIOBackend()
        self._pins: dict[tuple[str, int], tuple[str, ...]] = {}

    def pin(self, host: str, port: int, addresses: Sequence[str]) -> None:
        """Let connections to ``host:port`` (its ASCII / IDNA form) go to ``addresses`` only."""
        self._pins[(host.lower(), port)] = tuple(addresses)

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the first pinned address that accepts (a host never pinned: refused)."""
        addresses = self._pins.get((host.lower(), port), ())
        if not addresses:
            raise httpcore.ConnectError(f"{host}:{port} has no checked address")
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc  # the next address, as a client connecting by name would
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks go over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def pinned_client(
    *, timeout: float, verify: ssl.SSLContext | bool = True, connections: int = 100
) -> tuple[httpx.AsyncClient, PinnedBackend]:
    """An HTTP client (no redirects, no proxy from the environment) on a ``PinnedBackend``, its
    pool holding up to ``connections`` (every lane's slots: one slow endpoint's connections never
    make another endpoint's attempts wait for one)."""
    backend = PinnedBackend()
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    transport = httpx.AsyncHTTPTransport(verify=verify, trust_env=False, limits=limits)
    pool = transport._pool
    if not isinstance(pool, httpcore.AsyncConnectionPool):  # pragma: no cover - no proxy here
        raise TypeError("expected httpcore's connection pool")
    pool._network_backend = backend  # httpx takes no backend; the pool hands it to each connection
    client = httpx.AsyncClient(
        transport=transport, timeout=timeout, follow_redirects=False, trust_env=False
    )
    return client, backend
