"""A webhook goes to the address the SSRF check passed, never to a second DNS answer (rebinding)."""

from __future__ import annotations

import ssl
import time

import redis.asyncio as aioredis
import trustme

from engagement.localstack import free_port
from engagement.webhooks import RetryPolicy, WebhookConfig, WebhookEndpoint
from services.notifier.deliveries import DeliveryQueue
from services.notifier.delivery import Deliverer
from services.notifier.egress import pinned_client
from services.notifier.metrics import NotifierMetrics
from tests.integration.notifier.conftest import SECRET, Receiver
from tests.support.server import serve


async def test_a_delivery_connects_to_the_address_it_checked_not_to_a_second_lookup(
    redis_client: aioredis.Redis, redis_prefix: str
):
    # given an internal service on localhost (127.0.0.1) and the ATS on 127.0.0.2, same port
    port = free_port()
    internal, ats = Receiver(), Receiver()
    with serve(internal, port=port), serve(ats, port=port, host="127.0.0.2"):
        # and an endpoint whose host the (attacker's) DNS answers with the allowlisted 127.0.0.2,
        # while the system resolver says localhost is the internal 127.0.0.1
        endpoint = WebhookEndpoint(id="ats", url=f"http://localhost:{port}/hook", secret=SECRET)
        config = WebhookConfig(
            require_https=False, allow_private_networks=("127.0.0.2/32",), endpoints=(endpoint,)
        )
        lookups: list[tuple[str, int]] = []

        async def rebinding_dns(host: str, port: int) -> list[str]:
            lookups.append((host, port))
            return ["127.0.0.2"]

        queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
        body = b'{"type":"candidate.hot"}'
        now_ms = int(time.time() * 1000)
        await queue.enqueue(
            delivery_id="d1", endpoint_id="ats", msg_id="msg_1", record_key="t:u1", body=body,
            now_ms=now_ms,
        )  # fmt: skip
        dead: list[bytes] = []

        async def publish_dlq(_key: bytes, value: bytes) -> None:
            dead.append(value)

        http, pins = pinned_client(timeout=10)
        async with http:
            deliverer = Deliverer(
                queue, config, RetryPolicy(), http, pins, publish_dlq, NotifierMetrics(),
                lease_s=30, resolver=rebinding_dns,
            )  # fmt: skip
            # when the notifier delivers it
            assert await deliverer.drain() == 1
    # then one lookup decided it, and the ATS at the checked address got it, for the endpoint's host
    assert lookups == [("localhost", port)]
    assert [(r.path, r.headers["host"], r.body) for r in ats.received] == [
        ("/hook", f"localhost:{port}", body)
    ]
    # and the internal service got nothing
    assert internal.received == []
    assert (await queue.status("d1"))["status"] == "delivered"
    assert dead == []


async def test_an_https_delivery_to_the_checked_address_verifies_the_endpoints_certificate(
    redis_client: aioredis.Redis, redis_prefix: str, tmp_path
):
    # given an ATS on 127.0.0.2 serving https with a certificate for ats.example only
    ca = trustme.CA()
    cert = ca.issue_cert("ats.example")
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    cert.private_key_pem.write_to_path(key_file)
    cert.cert_chain_pems[0].write_to_path(cert_file)
    ats = Receiver()
    port = free_port()
    with serve(ats, port=port, host="127.0.0.2", tls=(key_file, cert_file)):
        # and an https endpoint on that name, resolved to 127.0.0.2 (allowlisted)
        endpoint = WebhookEndpoint(id="ats", url=f"https://ats.example:{port}/hook", secret=SECRET)
        config = WebhookConfig(allow_private_networks=("127.0.0.2/32",), endpoints=(endpoint,))

        async def dns(_host: str, _port: int) -> list[str]:
            return ["127.0.0.2"]

        queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
        await queue.enqueue(
            delivery_id="d2", endpoint_id="ats", msg_id="msg_2", record_key="t:u2", body=b"{}",
            now_ms=int(time.time() * 1000),
        )  # fmt: skip
        context = ssl.create_default_context()
        ca.configure_trust(context)
        http, pins = pinned_client(timeout=10, verify=context)
        async with http:
            deliverer = Deliverer(
                queue, config, RetryPolicy(), http, pins, _no_dlq, NotifierMetrics(), lease_s=30,
                resolver=dns,
            )  # fmt: skip
            # when the notifier delivers it over TLS to the address
            assert await deliverer.drain() == 1
    # then the TLS handshake named ats.example and its certificate checked out: delivered
    assert (await queue.status("d2"))["status"] == "delivered"
    assert [r.headers["host"] for r in ats.received] == [f"ats.example:{port}"]


async def _no_dlq(_key: bytes, _value: bytes) -> None:
    raise AssertionError("nothing goes to the DLQ here")


async def test_two_host_names_on_one_address_never_share_a_tls_connection(
    redis_client: aioredis.Redis, redis_prefix: str, tmp_path
):
    # given one https server on 127.0.0.2 with a certificate for ats.example only, and a second
    # endpoint whose (poisoned) DNS also points at it
    ca = trustme.CA()
    cert = ca.issue_cert("ats.example")
    key_file, cert_file = tmp_path / "key.pem", tmp_path / "cert.pem"
    cert.private_key_pem.write_to_path(key_file)
    cert.cert_chain_pems[0].write_to_path(cert_file)
    server, port = Receiver(), free_port()
    with serve(server, port=port, host="127.0.0.2", tls=(key_file, cert_file)):
        good = WebhookEndpoint(id="good", url=f"https://ats.example:{port}/a", secret=SECRET)
        spoof = WebhookEndpoint(id="spoof", url=f"https://other.example:{port}/b", secret=SECRET)
        config = WebhookConfig(allow_private_networks=("127.0.0.2/32",), endpoints=(good, spoof))

        async def dns(_host: str, _port: int) -> list[str]:
            return ["127.0.0.2"]

        queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
        context = ssl.create_default_context()
        ca.configure_trust(context)
        http, pins = pinned_client(timeout=10, verify=context)
        async with http:
            deliverer = Deliverer(
                queue, config, RetryPolicy(), http, pins, _no_dlq, NotifierMetrics(), lease_s=30,
                resolver=dns,
            )  # fmt: skip
            # when the good endpoint gets a webhook (its connection stays in the pool), then the
            # spoofed one
            for n, endpoint in enumerate((good, spoof)):
                await queue.enqueue(
                    delivery_id=f"d{n}", endpoint_id=endpoint.id, msg_id=f"msg_{n}",
                    record_key="t:u", body=b"{}", now_ms=int(time.time() * 1000),
                )  # fmt: skip
                assert await deliverer.drain() == 1
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
    with serve(ats, port=port, host="127.0.0.2"):
        endpoint = WebhookEndpoint(id="ats", url=f"http://ats.example:{port}/hook", secret=SECRET)
        config = WebhookConfig(
            require_https=False, allow_private_networks=("127.0.0.0/8",), endpoints=(endpoint,)
        )

        async def dns(_host: str, _port: int) -> list[str]:
            return ["127.0.0.3", "127.0.0.2"]

        queue = DeliveryQueue(redis_client, prefix=redis_prefix, retention_s=3600)
        await queue.enqueue(
            delivery_id="d3", endpoint_id="ats", msg_id="msg_3", record_key="t:u3", body=b"{}",
            now_ms=int(time.time() * 1000),
        )  # fmt: skip
        http, pins = pinned_client(timeout=10)
        async with http:
            deliverer = Deliverer(
                queue, config, RetryPolicy(), http, pins, _no_dlq, NotifierMetrics(), lease_s=30,
                resolver=dns,
            )  # fmt: skip
            # when the notifier delivers it
            assert await deliverer.drain() == 1
    # then it reached the ATS at the second address
    assert (await queue.status("d3"))["status"] == "delivered"
    assert [r.headers["host"] for r in ats.received] == [f"ats.example:{port}"]
