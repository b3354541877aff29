"""``/metrics`` on an address and port of its own (INGEST_METRICS_PORT), off the public API port.

The metrics name every tenant and source, so a deployment can keep them on an interface only
Prometheus reaches. Each server process listens on the port with ``SO_REUSEPORT``: with
``--workers N`` they share it, and whichever answers a scrape reports the totals of all
(prometheus_client's multiprocess mode, see ``metrics.exposition``).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.ingest.metrics import IngestMetrics, exposition, scrape_allowed


def metrics_app(metrics: IngestMetrics, *, token: SecretStr) -> Starlette:
    """An app that answers ``GET /metrics`` (401 without the token, if one is set), else 404."""

    async def scrape(request: Request) -> Response:
        if not scrape_allowed(request.headers.get("authorization"), token=token):
            return Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
        return Response(exposition(metrics), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"])])


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server run inside another one's event loop: the outer server owns the signals."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # --workers N share the port
    sock.bind((host, port))
    return sock


@contextlib.asynccontextmanager
async def serving_metrics(
    metrics: IngestMetrics, *, host: str, port: int, token: SecretStr
) -> AsyncIterator[None]:
    """Serve ``metrics_app`` on ``host:port`` while the context is open."""
    app = metrics_app(metrics, token=token)
    # log_config None and access_log left on: either would reconfigure the process's logging
    # (access_log=False empties the shared uvicorn.access logger of the API server too)
    config = uvicorn.Config(app, lifespan="off", log_config=None)
    server = _EmbeddedServer(config)
    sock = _listening_socket(host, port)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="metrics-listener")
    try:
        listening = asyncio.create_task(server.listening.wait())
        await asyncio.wait([task, listening], return_when=asyncio.FIRST_COMPLETED)
        listening.cancel()
        if task.done():
            task.result()  # it could not start: raise why
        yield
    finally:
        server.should_exit = True
        await task
        sock.close()
