"""Send claimed webhook deliveries: SSRF check, signed POST, then delivered / retry / DLQ.

The SSRF check and the connection use the same lookup: each attempt resolves the endpoint's host
once, checks every address and pins them (``services.notifier.egress``): the HTTP client connects
to those and never looks the host up again (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from engagement.faust.outages import is_outage
from engagement.faust.poison import describe
from engagement.model.webhooks import (
    RetryPolicy,
    WebhookConfig,
    WebhookEndpoint,
    classify,
    destination_refusal,
    next_delay,
    parse_retry_after,
    request_headers,
)
from services.notifier.deliveries import Claimed, DeliveryQueue
from services.notifier.egress import PinnedBackend
from services.notifier.metrics import NotifierMetrics

log = logging.getLogger(__name__)

PublishDlq = Callable[[bytes, bytes], Awaitable[None]]
Resolver = Callable[[str, int], Awaitable[list[str]]]


@dataclass(frozen=True)
class Attempt:
    """What one HTTP attempt produced."""

    status: int | None
    error: str = ""
    retry_after: float | None = None


async def resolve(host: str, port: int) -> list[str]:
    """Return every address ``host`` resolves to (empty when it does not resolve)."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # the resolver's order


@dataclass
class Deliverer:
    """Drains the due-deliveries set: one claim per attempt, never raising out of ``drain``."""

    queue: DeliveryQueue
    config: WebhookConfig
    policy: RetryPolicy
    http: httpx.AsyncClient  # on ``pins`` (``egress.pinned_client``)
    pins: PinnedBackend
    publish_dlq: PublishDlq
    metrics: NotifierMetrics
    lease_s: float
    batch: int = 16
    poison_retries: int = 3
    rng: random.Random = field(default_factory=random.Random)
    resolver: Resolver = resolve
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{random.getrandbits(32):08x}"
    )

    async def drain(self) -> int:
        """Send every due delivery (in claim batches); return how many attempts were made."""
        made = 0
        while True:
            token = f"{self.worker_id}-{time.time_ns()}"
            now_ms = int(time.time() * 1000)
            claimed = await self.queue.claim(
                now_ms=now_ms, lease_ms=int(self.lease_s * 1000), limit=self.batch, token=token
            )
            if not claimed:
                return made
            results = await asyncio.gather(
                *(self._deliver(c) for c in claimed), return_exceptions=True
            )
            outages = []
            for delivery, result in zip(claimed, results, strict=True):
                if isinstance(result, Exception):
                    if is_outage(result):
                        outages.append(result)
                    else:
                        await self._failed(delivery, result)
                elif isinstance(result, BaseException):  # cancelled: the worker stops
                    raise result
            if outages:  # the loop backs off; these are claimed again once their lease ends
                raise outages[0]
            made += len(claimed)

    async def _failed(self, claimed: Claimed, error: Exception) -> None:
        """A delivery that failed for a reason that is no outage (a bug, or a stored delivery no
        code foresaw): tried again once its lease ends, up to ``poison_retries`` more times, then
        quarantined to the webhook DLQ, so it never holds the others up."""
        if claimed.attempt <= self.poison_retries:
            log.warning(
                "webhook delivery %s failed (%s); tried again in %.0fs",
                claimed.delivery_id,
                describe(error),
                self.lease_s,
                exc_info=error,
                extra={"event": "notifier.delivery_failed", "error": describe(error)},
            )
            return
        await self._dead(claimed, Attempt(None, describe(error)), outcome="quarantined")

    async def _deliver(self, claimed: Claimed) -> None:
        endpoint = self.config.endpoint(claimed.endpoint_id)
        disabled = await self.queue.disabled()
        if endpoint is None or not endpoint.enabled or claimed.endpoint_id in disabled:
            reason = disabled.get(claimed.endpoint_id, "endpoint removed or disabled")
            await self._dead(claimed, Attempt(None, reason), outcome="disabled")
            return
        if claimed.attempt > self.policy.max_attempts:  # died after the last attempt, before DLQ
            await self._dead(claimed, Attempt(None, "attempts exhausted"), outcome="dlq")
            return
        url = httpx.URL(endpoint.url)
        port = url.port or (443 if url.scheme == "https" else 80)
        host = url.raw_host.decode("ascii")  # IDNA: what the client connects to
        addresses = await self.resolver(host, port)
        if not addresses:  # DNS down or the name gone: retried like any failed attempt
            await self._settle(endpoint, claimed, Attempt(None, "host does not resolve"))
            return
        refusal = destination_refusal(
            endpoint.url, addresses, endpoint=endpoint, config=self.config
        )
        if refusal is not None:
            await self._dead(claimed, Attempt(None, refusal), outcome="refused")
            return
        self.pins.pin(host, port, addresses)
        attempt = await self._post(endpoint, claimed)
        await self._settle(endpoint, claimed, attempt)

    async def _post(self, endpoint: WebhookEndpoint, claimed: Claimed) -> Attempt:
        headers = request_headers(
            endpoint, msg_id=claimed.msg_id, sent_at=datetime.now(UTC), body=claimed.body
        )
        started = time.perf_counter()
        try:
            response = await self.http.post(endpoint.url, content=claimed.body, headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}")
        finally:
            self.metrics.webhook_seconds.observe(time.perf_counter() - started)
        retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        return Attempt(response.status_code, "", retry_after)

    async def _settle(self, endpoint: WebhookEndpoint, claimed: Claimed, attempt: Attempt) -> None:
        now_ms = int(time.time() * 1000)
        outcome = classify(attempt.status)
        if outcome == "delivered":
            await self.queue.complete(
                claimed, status="delivered", now_ms=now_ms, last_status=attempt.status
            )
            self.metrics.deliveries.labels(endpoint.id, "delivered").inc()
            return
        if outcome == "gone":
            await self.queue.disable(endpoint.id, f"410 Gone at {now_ms}")
            log.warning("webhook endpoint %s answered 410: disabled", endpoint.id)
            await self._dead(claimed, attempt, outcome="gone")
            return
        delay = next_delay(claimed.attempt, self.rng.random(), attempt.retry_after, self.policy)
        if delay is None:
            await self._dead(claimed, attempt, outcome="dlq")
            return
        await self.queue.complete(
            claimed,
            status="pending",
            now_ms=now_ms,
            next_due_ms=now_ms + int(delay * 1000),
            last_status=attempt.status,
            last_error=attempt.error,
        )
        self.metrics.deliveries.labels(endpoint.id, "retry").inc()

    async def _dead(self, claimed: Claimed, attempt: Attempt, *, outcome: str) -> None:
        """Publish the delivery to the webhook DLQ, then mark it final (at least once in the DLQ)."""
        record = dlq_record(claimed, attempt, outcome)
        await self.publish_dlq(claimed.record_key.encode(), record)
        await self.queue.complete(
            claimed,
            status=outcome,
            now_ms=int(time.time() * 1000),
            last_status=attempt.status,
            last_error=attempt.error,
        )
        self.metrics.deliveries.labels(claimed.endpoint_id, outcome).inc()
        log.warning(
            "webhook %s to %s failed for good (%s): %s",
            claimed.msg_id,
            claimed.endpoint_id,
            outcome,
            attempt.error or attempt.status,
        )


def dlq_record(claimed: Claimed, attempt: Attempt, outcome: str) -> bytes:
    """Return the webhook DLQ value: which delivery, why it failed, and the payload sent (as
    text when it is not JSON: a row is written whatever the delivery held)."""
    try:
        payload: Any = orjson.loads(claimed.body)
    except orjson.JSONDecodeError:
        payload = claimed.body.decode("utf-8", errors="replace")
    value: dict[str, Any] = {
        "deliveryId": claimed.delivery_id,
        "webhookId": claimed.msg_id,
        "endpoint": claimed.endpoint_id,
        "outcome": outcome,
        "attempts": claimed.attempt,
        "lastStatus": attempt.status,
        "lastError": attempt.error,
        "failedAt": datetime.now(UTC).isoformat(),
        "payload": payload,
    }
    return orjson.dumps(value)
