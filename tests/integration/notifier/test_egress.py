"""Webhook egress on a real local server: each endpoint's connections are kept alive, reused, and
its own."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from services.notifier.egress import Egress
from tests.support.server import serve


@dataclass
class Peers:
    """Answers 204 (``/close``: with ``connection: close``); remembers each request's client
    port (one per connection), and ``/slow`` holds its answer until ``held`` requests wait."""

    ports: list[int] = field(default_factory=list)
    held: int = 0
    waiting: list[asyncio.Event] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        if scope["path"] != "/healthz":
            self.ports.append(scope["client"][1])
        if scope["path"] == "/slow":
            await self._hold()
        headers = [(b"connection", b"close")] if scope["path"] == "/close" else []
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})

    async def _hold(self) -> None:
        event = asyncio.Event()
        self.waiting.append(event)
        if len(self.waiting) >= self.held:
            for waiting in self.waiting:
                waiting.set()
        await event.wait()


@pytest.fixture
def peers() -> Iterator[tuple[Peers, str]]:
    app = Peers()
    with serve(app) as base:
        yield app, base


async def post(egress: Egress, endpoint_id: str, url: str) -> int:
    egress.pins.pin("127.0.0.1", httpx.URL(url).port or 80, ["127.0.0.1"])
    response = await egress.client(endpoint_id).post(url, content=b"{}")
    return response.status_code


async def test_sequential_attempts_to_an_endpoint_reuse_one_connection(
    peers: tuple[Peers, str],
) -> None:
    app, base = peers
    async with Egress(timeout=10) as egress:
        for _ in range(5):
            assert await post(egress, "a", f"{base}/hook") == 204
    assert len(set(app.ports)) == 1


async def test_attempts_in_flight_together_each_get_a_connection_kept_for_the_next(
    peers: tuple[Peers, str],
) -> None:
    app, base = peers
    app.held = 4  # the server answers once four requests wait at once
    async with Egress(timeout=10) as egress:
        assert (
            await asyncio.gather(*(post(egress, "a", f"{base}/slow") for _ in range(4)))
            == [204] * 4
        )
        together = set(app.ports)
        for _ in range(4):
            assert await post(egress, "a", f"{base}/hook") == 204
    assert len(together) == 4
    assert set(app.ports) == together


async def test_a_connection_the_server_closes_is_replaced_by_a_new_one(
    peers: tuple[Peers, str],
) -> None:
    app, base = peers
    async with Egress(timeout=10) as egress:
        assert await post(egress, "a", f"{base}/close") == 204
        assert await post(egress, "a", f"{base}/hook") == 204
        assert await post(egress, "a", f"{base}/hook") == 204
    assert len(set(app.ports)) == 2
    assert app.ports[1] == app.ports[2]


async def test_two_endpoints_on_one_server_never_share_a_connection(
    peers: tuple[Peers, str],
) -> None:
    app, base = peers
    async with Egress(timeout=10) as egress:
        for endpoint_id in ("a", "b", "a", "b"):
            assert await post(egress, endpoint_id, f"{base}/hook") == 204
    assert app.ports[0] == app.ports[2] != app.ports[1] == app.ports[3]
