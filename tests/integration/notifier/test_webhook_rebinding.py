"""A webhook goes to the address the SSRF check passed, never to a second DNS answer (rebinding)."""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import redis.asyncio as aioredis
import trustme

from engagement.model.webhooks import RetryPolicy, WebhookConfig, WebhookEndpoint
from engagement.tools.localstack import free_port
from services.notifier.attempts import Deliverer, Resolver
from services.notifier.delivery_queue import DeliveryQueue
from services.notifier.egress import Egress
from services.notifier.metrics import NotifierMetrics
from tests.integration.notifier.conftest import SECRET, Receiver
from tests.support.server import serve


def _certificate(name: str, folder: Path) -> tuple[ssl.SSLContext, tuple[Path, Path]]:
    """A client context trusting a fresh CA, and that CA's key and certificate files for ``name``."""
    ca = trustme.CA()
    cert = ca.issue_cert(name)
    key_file, cert_file = folder / "key.pem", folder / "cert.pem"
    cert.private_key_pem.write_to_path(key_file)
    cert.cert_chain_pems[0].write_to_path(cert_file)
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context, (key_file, cert_file)


@contextlib.contextmanager
def _https_server(folder: Path) -> Iterator[tuple[Receiver, int, ssl.SSLContext]]:
    """An https server on 127.0.0.2 whose certificate names ats.example only: the server, its
    port and a client context trusting its CA."""
    context, tls = _certificate("ats.example", folder)
    server, port = Receiver(), free_port()
    with serve(server, port=port, host="127.0.0.2", tls=tls):
        yield server, port, context


def _dns(*addresses: str, asked: list[tuple[str, int]] | None = None) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if asked is not None:
            asked.append((host, port))
        return list(addresses)

    return resolve


async def _enqueue(queue: DeliveryQueue, delivery_id: str, endpoint_id: str, body: bytes) -> None:
    await queue.enqueue(
        delivery_id=delivery_id, endpoint_id=endpoint_id, msg_id=f"msg_{delivery_id}",
        record_key="t:u", body=body, now_ms=int(time.time() * 1000),
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _deliverer(
    queue: DeliveryQueue,
    config: WebhookConfig,
    dns: Resolver,
    verify: ssl.SSLContext | bool = True,
    dead: list[bytes] | None = None,
) -> AsyncIterator[Deliverer]:
    async def publish_dlq(_key: bytes, value: bytes) -> None:
        if dead is not None:
            dead.append(value)

    async with Egress(timeout=10, verify=verify) as egress:
        yield Deliverer(
            queue, config, RetryPolicy(), egress, publish_dlq, NotifierMetrics(), lease_s=30,
            resolver=dns,
        )  # fmt: skip


async def test_a_delivery_connects_to_the_address_it_checked_not_to_a_second_lookup(
    redis_client: aioredis.Redis, redis_prefix: str
):
    # given an internal service on localhost (127.0.0.1) and the ATS on 127.0.0.2, same port
    port = free_port()
    internal, ats = Receiver(), Receiver()
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    with serve(internal, port=port), serve(ats, port=port, host="127.0.0.2"):
        # and an endpoint whose host the (attacker's) DNS answers with the allowlisted 127.0.0.2,
        # while the system resolver says localhost is the internal 127.0.0.1
        endpoint = WebhookEndpoint(id="ats", url=f"http://localhost:{port}/hook", secret=SECRET)
        config = WebhookConfig(
            require_https=False, allow_private_networks=("127.0.0.2/32",), endpoints=(endpoint,)
        )
        asked: list[tuple[str, int]] = []
        body, dead = b'{"type":"candidate.hot"}', []
        await _enqueue(queue, "d1", "ats", body)
        async with _deliverer(queue, config, _dns("127.0.0.2", asked=asked), dead=dead) as sender:
            # when the notifier delivers it
            assert await sender.drain() == 1
    # then one lookup decided it, and the ATS at the checked address got it, for the endpoint's host
    assert asked == [("localhost", port)]
    assert [(r.path, r.headers["host"], r.body) for r in ats.received] == [
        ("/hook", f"localhost:{port}", body)
    ]
    # and the internal service got nothing
    assert internal.received == []
    assert (await queue.status("d1"))["status"] == "delivered"
    assert dead == []


async def test_an_https_delivery_to_the_checked_address_verifies_the_endpoints_certificate(
    redis_client: aioredis.Redis, redis_prefix: str, tmp_path: Path
):
    # given an ATS on 127.0.0.2 serving https with a certificate for ats.example only
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    with _https_server(tmp_path) as (ats, port, context):
        # and an https endpoint on that name, resolved to 127.0.0.2 (allowlisted)
        endpoint = WebhookEndpoint(id="ats", url=f"https://ats.example:{port}/hook", secret=SECRET)
        config = WebhookConfig(allow_private_networks=("127.0.0.2/32",), endpoints=(endpoint,))
        await _enqueue(queue, "d2", "ats", b"{}")
        async with _deliverer(queue, config, _dns("127.0.0.2"), verify=context) as sender:
            # when the notifier delivers it over TLS to the address
            assert await sender.drain() == 1
    # then the TLS handshake named ats.example and its certificate checked out: delivered
    assert (await queue.status("d2"))["status"] == "delivered"
    assert [r.headers["host"] for r in ats.received] == [f"ats.example:{port}"]


async def test_two_host_names_on_one_address_never_share_a_tls_connection(
    redis_client: aioredis.Redis, redis_prefix: str, tmp_path: Path
):
    # given one https server on 127.0.0.2 with a certificate for ats.example only, and a second
    # endpoint whose (poisoned) DNS also points at it
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    with _https_server(tmp_path) as (server, port, context):
        good = WebhookEndpoint(id="good", url=f"https://ats.example:{port}/a", secret=SECRET)
        spoof = WebhookEndpoint(id="spoof", url=f"https://other.example:{port}/b", secret=SECRET)
        config = WebhookConfig(allow_private_networks=("127.0.0.2/32",), endpoints=(good, spoof))
        async with _deliverer(queue, config, _dns("127.0.0.2"), verify=context) as sender:
            # when the good endpoint gets a webhook (its connection stays in the pool), then the
            # spoofed one
            for n, endpoint in enumerate((good, spoof)):
                await _enqueue(queue, f"d{n}", endpoint.id, b"{}")
                assert await sender.drain() == 1
    # then the spoofed name got its own handshake, whose certificate check failed: not delivered
    assert (await queue.status("d0"))["status"] == "delivered"
    spoofed = await queue.status("d1")
    assert spoofed["status"] == "pending"
    assert "CERTIFICATE_VERIFY_FAILED" in spoofed["last_error"]
    assert [r.path for r in server.received] == ["/a"]


async def test_an_address_that_refuses_is_skipped_for_the_next_checked_one(
    redis_client: aioredis.Redis, redis_prefix: str
):
    # given a host resolving to 127.0.0.3 (nothing listens) and then 127.0.0.2 (the ATS)
    ats, port = Receiver(), free_port()
    queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
    with serve(ats, port=port, host="127.0.0.2"):
        endpoint = WebhookEndpoint(id="ats", url=f"http://ats.example:{port}/hook", secret=SECRET)
        config = WebhookConfig(
            require_https=False, allow_private_networks=("127.0.0.0/8",), endpoints=(endpoint,)
        )
        await _enqueue(queue, "d3", "ats", b"{}")
        async with _deliverer(queue, config, _dns("127.0.0.3", "127.0.0.2")) as sender:
            # when the notifier delivers it
            assert await sender.drain() == 1
    # then it reached the ATS at the second address
    assert (await queue.status("d3"))["status"] == "delivered"
    assert [r.headers["host"] for r in ats.received] == [f"ats.example:{port}"]
