"""Make claimed webhook attempts: SSRF check, signed POST, then delivered / retry / DLQ.

Each endpoint's deliveries are claimed and sent by its own lane (``services.notifier.lanes``); this
module makes one attempt and records its outcome.

The SSRF check and the connection use the same lookup: each attempt resolves the endpoint's host
once, checks every address and pins them (``services.notifier.egress``): the HTTP client connects
to those and never looks the host up again (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import random
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

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
from services.notifier.delivery_queue import Claim, Claimed, DeliveryQueue, Finish
from services.notifier.egress import Egress
from services.notifier.metrics import NotifierMetrics

log = logging.getLogger(__name__)

PublishDlq = Callable[[bytes, bytes], Awaitable[None]]
Resolver = Callable[[str, int], Awaitable[list[str]]]
T = TypeVar("T")

_claims = itertools.count()  # tells apart two claims of one worker in the same nanosecond


@dataclass(frozen=True)
class Attempt:
    """What one HTTP attempt produced."""

    status: int | None
    error: str = ""
    retry_after: float | None = None


async def resolve(host: str, port: int) -> list[str]:
    """Return every address ``host`` resolves to (empty when it does not resolve); an address
    is its own answer, with no lookup."""
    with contextlib.suppress(ValueError):
        return [str(ipaddress.ip_address(host))]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        return []
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # the resolver's order


@dataclass
class Deliverer:
    """Makes claimed attempts: check, sign, POST, then record delivered / retry / DLQ. Never
    raises for a delivery's own failure; Redis or broker trouble while recording an attempt is
    retried in place until it ends (the claim's token still owns the delivery)."""

    queue: DeliveryQueue
    config: WebhookConfig
    policy: RetryPolicy
    egress: Egress  # a client per endpoint, connecting only to the addresses pinned
    publish_dlq: PublishDlq
    metrics: NotifierMetrics
    lease_s: float
    concurrency: int = 16  # attempts in flight at once per endpoint (``lanes.Lane``)
    poison_retries: int = 3
    retry_max: float = 1.0  # longest wait between retries of a Redis or broker write
    rng: random.Random = field(default_factory=random.Random)
    resolver: Resolver = resolve
    worker_id: str = field(
        default_factory=lambda: f"{socket.gethostname()}-{random.getrandbits(32):08x}"
    )

    def token(self) -> str:
        """A claim token no other claim (of any worker) shares."""
        return f"{self.worker_id}-{time.time_ns()}-{next(_claims)}"

    async def drain(self) -> int:
        """Send every due delivery of every configured endpoint, each endpoint's at most
        ``concurrency`` at once; return how many attempts were made."""
        made = 0
        for endpoint in self.config.endpoints:
            while True:
                claim = await self.queue.claim(
                    endpoint_id=endpoint.id,
                    now_ms=int(time.time() * 1000),
                    lease_ms=int(self.lease_s * 1000),
                    limit=self.concurrency,
                    token=self.token(),
                )
                if not claim.claimed:
                    break
                await asyncio.gather(*(self.send(c, claim.disabled) for c in claim.claimed))
                made += len(claim.claimed)
        return made

    async def send(self, claimed: Claimed, disabled: str | None, *, then: int = 0) -> Claim | None:
        """Make one claimed attempt and record its outcome; recording it also claims up to
        ``then`` due deliveries of the same endpoint (the slot's next attempts), returned. A
        failure that is the delivery's own (a bug, a stored delivery no code foresaw) leaves it
        to ``failed``."""
        try:
            return await self._record(claimed, await self._attempt(claimed, disabled), then)
        except Exception as exc:
            return await self._failed(claimed, exc, then)

    async def _record(self, claimed: Claimed, finish: Finish, then: int) -> Claim:
        """Record an attempt's outcome (retried in place through outages) and count it."""
        token = self.token() if then else ""
        lease_ms = int(self.lease_s * 1000)
        _, claim = await self._recorded(
            lambda: self.queue.complete(claimed, finish, claim=then, lease_ms=lease_ms, token=token)
        )
        outcome = "retry" if finish.status == "pending" else finish.status
        self.metrics.deliveries.labels(claimed.endpoint_id, outcome).inc()
        return claim

    async def _failed(self, claimed: Claimed, error: Exception, then: int) -> Claim | None:
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
            return None
        finish = await self._dead(claimed, Attempt(None, describe(error)), outcome="quarantined")
        return await self._record(claimed, finish, then)

    async def _attempt(self, claimed: Claimed, disabled: str | None) -> Finish:
        """Make the attempt if it may be made; return how it ends."""
        endpoint = self.config.endpoint(claimed.endpoint_id)
        if endpoint is None or not endpoint.enabled or disabled is not None:
            reason = disabled or "endpoint removed or disabled"
            return await self._dead(claimed, Attempt(None, reason), outcome="disabled")
        if claimed.attempt > self.policy.max_attempts:  # died after the last attempt, before DLQ
            return await self._dead(claimed, Attempt(None, "attempts exhausted"), outcome="dlq")
        url = httpx.URL(endpoint.url)
        port = url.port or (443 if url.scheme == "https" else 80)
        host = url.raw_host.decode("ascii")  # IDNA: what the client connects to
        addresses = await self.resolver(host, port)
        if not addresses:  # DNS down or the name gone: retried like any failed attempt
            return await self._settle(endpoint, claimed, Attempt(None, "host does not resolve"))
        refusal = destination_refusal(
            endpoint.url, addresses, endpoint=endpoint, config=self.config
        )
        if refusal is not None:
            return await self._dead(claimed, Attempt(None, refusal), outcome="refused")
        self.egress.pins.pin(host, port, addresses)
        return await self._settle(endpoint, claimed, await self._post(endpoint, claimed))

    async def _post(self, endpoint: WebhookEndpoint, claimed: Claimed) -> Attempt:
        headers = request_headers(
            endpoint, msg_id=claimed.msg_id, sent_at=datetime.now(UTC), body=claimed.body
        )
        started = time.perf_counter()
        try:
            response = await self.egress.client(endpoint.id).post(
                endpoint.url, content=claimed.body, headers=headers
            )
        except httpx.HTTPError as exc:
            return Attempt(None, f"{type(exc).__name__}: {exc}")
        finally:
            self.metrics.webhook_seconds.observe(time.perf_counter() - started)
        retry_after = parse_retry_after(response.headers.get("retry-after"), datetime.now(UTC))
        return Attempt(response.status_code, "", retry_after)

    async def _settle(
        self, endpoint: WebhookEndpoint, claimed: Claimed, attempt: Attempt
    ) -> Finish:
        """Delivered, retried later, or dead: what an answered (or failed) request means."""
        now_ms = int(time.time() * 1000)
        outcome = classify(attempt.status)
        if outcome == "delivered":
            return Finish("delivered", now_ms, last_status=attempt.status)
        if outcome == "gone":
            await self._recorded(lambda: self.queue.disable(endpoint.id, f"410 Gone at {now_ms}"))
            log.warning("webhook endpoint %s answered 410: disabled", endpoint.id)
            return await self._dead(claimed, attempt, outcome="gone")
        delay = next_delay(claimed.attempt, self.rng.random(), attempt.retry_after, self.policy)
        if delay is None:
            return await self._dead(claimed, attempt, outcome="dlq")
        return Finish(
            "pending",
            now_ms,
            next_due_ms=now_ms + int(delay * 1000),
            last_status=attempt.status,
            last_error=attempt.error,
        )

    async def _dead(self, claimed: Claimed, attempt: Attempt, *, outcome: str) -> Finish:
        """Publish the delivery to the webhook DLQ; return its final state, recorded after it (at
        least once in the DLQ)."""
        record = dlq_record(claimed, attempt, outcome)
        await self._recorded(lambda: self.publish_dlq(claimed.record_key.encode(), record))
        log.warning(
            "webhook %s to %s failed for good (%s): %s",
            claimed.msg_id,
            claimed.endpoint_id,
            outcome,
            attempt.error or attempt.status,
        )
        return Finish(
            outcome,
            int(time.time() * 1000),
            last_status=attempt.status,
            last_error=attempt.error,
        )

    async def _recorded(self, write: Callable[[], Awaitable[T]]) -> T:
        """Run one Redis or broker write of an attempt's outcome, retried while it fails for an
        outage (every ``retry_max`` at most), so deliveries resume as soon as it ends, not a lease
        later; a failure that is no outage is raised."""
        delay, failures = min(0.05, self.retry_max), 0
        while True:
            try:
                return await write()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.metrics.retries.labels("deliveries").inc()
                failures += 1
                log.log(
                    logging.WARNING if failures == 1 else logging.DEBUG,  # one line per write
                    "recording a webhook attempt failed (%s); retrying until it works",
                    describe(exc),
                    extra={"event": "notifier.deliveries_retry", "error": describe(exc)},
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.retry_max)


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
