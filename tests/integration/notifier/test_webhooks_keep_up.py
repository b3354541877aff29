"""Webhooks keep up: a slow or failing endpoint holds only its own deliveries, never a healthy one's.

One notifier subprocess (real broker and Redis) and a real receiver whose ``held`` path answers
nothing until the test lets it, and whose ``down`` path answers 500 to everything.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from engagement.kafka.topics import Topics
from tests.conftest import SESSION_ID
from tests.integration.notifier.conftest import SECRET, create_topics, score_change
from tests.support.server import serve

MODULE = uuid.uuid4().hex[:8]
TOPICS = Topics(f"tk{MODULE}.")
CANDIDATES = 60


@dataclass
class Endpoints:
    """ATS stand-ins: ``/held/*`` answers once released, ``/down/*`` answers 500, others 204."""

    released: threading.Event = field(default_factory=threading.Event)
    answered: Counter[str] = field(default_factory=Counter)
    ids: dict[str, set[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    def delivered(self, path: str) -> set[str]:
        """The webhook ids ``path`` answered 2xx to."""
        with self.lock:
            return set(self.ids.get(path, set()))

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        path = scope["path"]
        if path.startswith("/held/"):  # released from the test's thread
            await asyncio.to_thread(self.released.wait)
        status = 500 if path.startswith("/down/") else 204
        headers = dict(scope["headers"])
        with self.lock:
            self.answered[path] += 1
            if status < 300 and b"webhook-id" in headers:
                self.ids.setdefault(path, set()).add(headers[b"webhook-id"].decode())
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def endpoints() -> Iterator[Endpoints]:
    app = Endpoints()
    with serve(app) as base:
        app.base = base
        yield app
    app.released.set()


def _toml(endpoints: Endpoints, routes: dict[str, tuple[str, str]]) -> str:
    lines = ["require_https = false"]
    for name, (path, tenant) in routes.items():
        lines += [
            "[[endpoints]]",
            f'id = "{name}"',
            f'url = "{endpoints.base}{path}"',
            f'secret = "{SECRET}"',
            f'tenants = ["{tenant}"]',
            "allow_private = true",
        ]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
async def notifier(kafka_bootstrap, endpoints, make_notifier):
    await create_topics(kafka_bootstrap, TOPICS)
    routes = {
        "quick": ("/quick/a", "t-slow"),
        "held": ("/held/a", "t-slow"),
        "quick2": ("/quick/b", "t-down"),
        "down": ("/down/b", "t-down"),
    }
    proc = make_notifier(
        prefix=TOPICS.prefix,
        redis_prefix=f"test:{SESSION_ID}k{MODULE}:",
        webhooks=_toml(endpoints, routes),
        WEBHOOK_TIMEOUT="60",  # the held endpoint's attempts stay open until it is released
        WEBHOOK_CONCURRENCY="4",
        WEBHOOK_MAX_ATTEMPTS="100",
        WEBHOOK_RETRY_BASE="0.2",
        WEBHOOK_RETRY_FACTOR="1",
    )
    return await asyncio.to_thread(proc.start)


async def _until(check, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    """``check()`` once it is truthy, or its last value when ``timeout`` runs out first."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.05)


def _gauge(text: str, name: str, endpoint: str) -> float | None:
    match = re.search(rf'^{name}{{endpoint="{endpoint}"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else None


async def _hot(feed, tenant: str) -> None:  # type: ignore[no-untyped-def]
    for n in range(CANDIDATES):
        await feed.send(score_change(tenant, f"c{n}", 1, score=90, tier="hot", previous="cold"))


async def test_a_slow_endpoint_holds_none_of_a_healthy_endpoints_deliveries(
    notifier, endpoints, feed_for
):
    # given an endpoint that answers nothing yet beside a fast one, both wanting every alert
    # when 60 candidates of the tenant turn hot
    await _hot(feed_for(TOPICS), "t-slow")
    # then the fast endpoint receives all 60 while the slow one has answered none of its 60
    quick = await _until(lambda: len(endpoints.delivered("/quick/a")) >= CANDIDATES)
    assert quick, (len(endpoints.delivered("/quick/a")), notifier.log_tail())
    assert endpoints.answered["/held/a"] == 0
    # and the scrape shows the slow endpoint's backlog, and none for the fast one
    text = await asyncio.to_thread(notifier.metrics)
    assert _gauge(text, "engagement_webhook_endpoint_pending", "held") == CANDIDATES
    assert (_gauge(text, "engagement_webhook_endpoint_oldest_seconds", "held") or 0) > 0
    assert _gauge(text, "engagement_webhook_endpoint_pending", "quick") == 0
    assert _gauge(text, "engagement_webhook_endpoint_oldest_seconds", "quick") == 0
    # and once the slow endpoint answers, it gets every one of its deliveries too
    endpoints.released.set()
    held = await _until(lambda: len(endpoints.delivered("/held/a")) >= CANDIDATES)
    assert held, len(endpoints.delivered("/held/a"))


async def test_an_endpoint_failing_everything_holds_none_of_a_healthy_endpoints_deliveries(
    notifier, endpoints, feed_for
):
    # given an endpoint answering 500 to everything (retried every 0.2 s) beside a fast one
    # when 60 candidates of the tenant turn hot
    await _hot(feed_for(TOPICS), "t-down")
    # then the fast endpoint receives all 60, while the failing one keeps being retried
    quick = await _until(lambda: len(endpoints.delivered("/quick/b")) >= CANDIDATES)
    assert quick, (len(endpoints.delivered("/quick/b")), notifier.log_tail())
    failing = await _until(lambda: endpoints.answered["/down/b"] > 2 * CANDIDATES)
    assert failing
    assert not endpoints.delivered("/down/b")
