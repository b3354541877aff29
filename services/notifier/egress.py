"""Webhook egress: HTTP clients that connect a host only to the addresses its attempt checked.

Each delivery attempt resolves the endpoint's host once, passes every address through the SSRF
check (``engagement.model.webhooks.destination_refusal``) and ``pin``s them; the client's connections
go to those addresses, in the resolver's order, and to nothing else. A second lookup by the HTTP
client could be answered differently (DNS rebinding) and reach an internal address. The URL keeps
its host, so ``Host``, TLS SNI and the certificate check are per host as without pinning, and each
endpoint has connections of its own (``EndpointPool``): a connection to one address is never
shared between two host names, nor between two endpoints.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence

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


class EndpointPool:
    """One endpoint's keep-alive connections, the most recently used handed out first. A lane
    has at most ``WEBHOOK_CONCURRENCY`` attempts in flight, so its pool never holds more
    connections than that. httpcore's own pool checks every connection it holds (a ``select``
    on each idle socket) twice per request; this one checks the connection it hands out and the
    longest idle one (closed once its keep-alive is over)."""

    def __init__(
        self, backend: PinnedBackend, ssl_context: ssl.SSLContext, keepalive_expiry: float = 5.0
    ) -> None:
        self._backend = backend
        self._ssl_context = ssl_context
        self._keepalive_expiry = keepalive_expiry
        self._idle: list[httpcore.AsyncHTTPConnection] = []

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        """Send ``request`` on an idle connection to its origin, or on a new one."""
        connection = await self._connection(request.url.origin)
        try:
            response = await connection.handle_async_request(request)
        except BaseException:
            await _close(connection)
            raise
        stream = _Released(response.stream, connection, self._idle)
        return httpcore.Response(
            response.status,
            headers=response.headers,
            content=stream,
            extensions=response.extensions,
        )

    async def _connection(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        if self._idle and self._idle[0].has_expired():
            await _close(self._idle.pop(0))
        while self._idle:
            connection = self._idle.pop()
            if connection.can_handle_request(origin) and not connection.has_expired():
                return connection  # idle, neither past its keep-alive nor closed by the server
            await _close(connection)
        return httpcore.AsyncHTTPConnection(
            origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._keepalive_expiry,
            network_backend=self._backend,
        )

    async def aclose(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        for connection in idle:
            await _close(connection)


class _Released:
    """A response body that hands its connection back to the pool once read (or closes it when
    it cannot serve another request)."""

    def __init__(
        self,
        stream: Iterable[bytes] | AsyncIterable[bytes],
        connection: httpcore.AsyncHTTPConnection,
        idle: list[httpcore.AsyncHTTPConnection],
    ) -> None:
        assert isinstance(stream, AsyncIterable)
        self._stream = stream
        self._connection = connection
        self._idle = idle

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for part in self._stream:
            yield part

    async def aclose(self) -> None:
        try:
            close = getattr(self._stream, "aclose", None)
            if close is not None:
                await close()
        finally:
            if self._connection.is_idle() and not self._connection.is_closed():
                self._idle.append(self._connection)
            else:
                await _close(self._connection)


async def _close(connection: httpcore.AsyncHTTPConnection) -> None:
    with contextlib.suppress(Exception):
        await connection.aclose()


class Egress:
    """The webhooks' HTTP egress: a client per endpoint (no redirects, no proxy from the
    environment), each on its own ``EndpointPool``, all connecting through one
    ``PinnedBackend`` (``pins``): one endpoint's connections never serve or wait for another's."""

    def __init__(self, *, timeout: float, verify: ssl.SSLContext | bool = True) -> None:
        self.pins = PinnedBackend()
        self._timeout = timeout
        self._ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client(self, endpoint_id: str) -> httpx.AsyncClient:
        """The endpoint's client (made on first use)."""
        client = self._clients.get(endpoint_id)
        if client is None:
            transport = httpx.AsyncHTTPTransport(verify=self._ssl_context, trust_env=False)
            # httpx takes no pool: its transport calls handle_async_request and aclose on this one
            transport._pool = EndpointPool(self.pins, self._ssl_context)  # type: ignore[assignment]
            client = httpx.AsyncClient(
                transport=transport, timeout=self._timeout, follow_redirects=False, trust_env=False
            )
            self._clients[endpoint_id] = client
        return client

    async def __aenter__(self) -> Egress:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every endpoint's client and its connections."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
